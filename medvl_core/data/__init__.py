"""Dataset loaders for real on-disk formats and synthetic worlds written in those formats."""

# Importing a loader module registers its datasets.
from . import (  # noqa: F401
    cxr,
    dermavqa,
    folders,  # noqa: E402,F401
    medmnist,
    nli,
    openi,
    synth_cxr,  # noqa: F401
    synth_derm,
    synth_modalities,
)
from .registry import DATASETS, open_dataset, register

__all__ = ["DATASETS", "open_dataset", "register"]
