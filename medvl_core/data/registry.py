"""Dataset registry behind `open_dataset`: name -> factory(root, split, **options)."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import dataset_dir
from ..errors import MedvlError
from .prepared import attach


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its factory (a callable, or "module:function" imported on first use) and a description."""

    name: str
    target: Callable | str
    description: str

    @property
    def factory(self) -> Callable:
        if callable(self.target):
            return self.target
        module, function = self.target.split(":")
        return getattr(importlib.import_module(module), function)


DATASETS: dict[str, DatasetEntry] = {}

# Synthetic worlds (medvl_core.worlds) sit above this layer: they write the real formats and read them back
# with these loaders. They are registered by name and imported only when opened, so `data` never imports them.
SYNTHETIC_WORLDS = {
    "synth-cxr": ("medvl_core.worlds.synth_cxr:synth_cxr",
                  "SynthCXR: deterministic synthetic chest X-rays + reports in the MIMIC-CXR-JPG layout (generated on first use)"),
    "synth-derm": ("medvl_core.worlds.synth_derm:synth_derm",
                   "SynthDerm: deterministic synthetic dermatology VQA in the MEDIQA-M3G layout (generated on first use)"),
    "synth-modalities": ("medvl_core.worlds.synth_modalities:synth_modalities",
                         "eight synthetic modality datasets (X-ray, CT, MR, US, histology, cytology, fundus, dermoscopy) "
                         "with recorded confounders; image-folder layout (generated on first use)"),
}
for _name, (_target, _description) in SYNTHETIC_WORLDS.items():
    DATASETS[_name] = DatasetEntry(_name, _target, _description)


def register(name: str, description: str):
    """Decorator registering `factory(root: Path, split: str, **options) -> Dataset` under `name`."""

    def wrap(factory):
        DATASETS[name] = DatasetEntry(name, factory, description)
        return factory

    return wrap


def open_dataset(name: str, root=None, split: str = "train", prepared="auto", **options):
    """Open dataset `name` (see DATASETS) from `root` (default: its place under the data root).

    `prepared`: "auto" reads a chest X-ray dataset's images from its prepared copy (`medvl prepare`) when one
    matches the root's files, a size (e.g. 256) requires that copy, "off" decodes the source images.
    """
    if name not in DATASETS:
        close = difflib.get_close_matches(name, DATASETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise MedvlError(f"unknown dataset {name!r}{hint}; choose one of: {', '.join(sorted(DATASETS))}")
    root = Path(root).expanduser() if root is not None else dataset_dir(name)
    dataset = DATASETS[name].factory(root, split, **options)
    if hasattr(dataset, "records"):
        dataset.split = split
        attach(dataset, name, root, prepared)
    return dataset
