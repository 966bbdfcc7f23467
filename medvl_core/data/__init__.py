"""Dataset loaders for real on-disk formats and synthetic worlds written in those formats."""

# Importing a loader module registers its datasets.
from . import (  # noqa: F401
    cxr,
    folders,  # noqa: E402,F401
    openi,
    synth_cxr,  # noqa: F401
)
from .registry import DATASETS, open_dataset, register

__all__ = ["DATASETS", "open_dataset", "register"]
