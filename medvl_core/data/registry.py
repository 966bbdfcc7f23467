"""Dataset registry behind `open_dataset`: name -> factory(root, split, **options)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import dataset_dir
from ..errors import MedvlError


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its factory and a one-line description."""

    name: str
    factory: Callable
    description: str


DATASETS: dict[str, DatasetEntry] = {}


def register(name: str, description: str):
    """Decorator registering `factory(root: Path, split: str, **options) -> Dataset` under `name`."""

    def wrap(factory):
        DATASETS[name] = DatasetEntry(name, factory, description)
        return factory

    return wrap


def open_dataset(name: str, root=None, split: str = "train", **options):
    """Open dataset `name` (see DATASETS) from `root` (default: its place under the data root)."""
    if name not in DATASETS:
        close = difflib.get_close_matches(name, DATASETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise MedvlError(f"unknown dataset {name!r}{hint}; choose one of: {', '.join(sorted(DATASETS))}")
    root = Path(root).expanduser() if root is not None else dataset_dir(name)
    return DATASETS[name].factory(root, split, **options)
