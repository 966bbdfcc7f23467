"""Dataset loaders for the real on-disk formats; synthetic worlds (medvl_core.worlds) are opened by name."""

# Importing a loader module registers its datasets.
from . import (  # noqa: F401
    cxr,
    dermavqa,
    folders,
    medmnist,
    nli,
    openi,
    padchest,
    probe_datasets,
    vindr_cxr,
)
from .registry import DATASETS, open_dataset, register

__all__ = ["DATASETS", "open_dataset", "register"]
