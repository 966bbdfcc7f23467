"""User-facing errors: one clear line naming the file or parameter and the fix."""


class MedvlError(Exception):
    """A user mistake or missing resource; the message says what and how to fix it."""


class UsageError(MedvlError):
    """The command line or a parameter asks for something unknown or invalid; `medvl` exits 2 before running."""


class AssetNotFoundError(MedvlError):
    """An offline asset is not installed; the message names the package that provides it."""


class DataFormatError(MedvlError):
    """A dataset file is missing or malformed; the message names the file and the column/field."""


class UnknownSpecError(MedvlError):
    """An encoder/model spec string is not understood or not reachable."""


class ParameterError(UsageError):
    """A notebook/run parameter is unknown or invalid."""
