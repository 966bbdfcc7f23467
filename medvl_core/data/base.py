"""A map-style dataset over a list of record dicts, decoding images lazily."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from torch.utils.data import Dataset

from .splits import tag_split


class RecordDataset(Dataset):
    """Items are record dicts; `load` turns a stored record into the item (e.g. opens its image)."""

    split = ""  # set by `open_dataset`; a test split's label matrix is tagged so no selection can use it
    prepared = None  # a data.prepared.PreparedImages when the images are read from a prepared copy

    def __init__(self, records: Sequence[dict], label_names: Sequence[str] = (), load: Callable | None = None,
                 transform: Callable | None = None, name: str = ""):
        self.records = list(records)
        self.label_names = list(label_names)
        self._load = load
        self.transform = transform
        self.name = name

    def __len__(self) -> int:
        return len(self.records)

    @property
    def loader(self) -> Callable | None:
        """The `load` callback turning a stored record into an item (None: records are the items)."""
        return self._load

    def __getitem__(self, index: int) -> dict:
        item = dict(self.records[index])
        if self._load is not None:
            item = self._load(item)
        if self.transform is not None and "image" in item:
            item["image"] = self.transform(item["image"])
        return item

    def label_matrix(self) -> np.ndarray:
        """All items' labels as an (N, L) float array (NaN = not stated), without decoding images."""
        if not self.label_names:
            return np.zeros((len(self.records), 0), dtype=np.float32)
        matrix = np.stack([np.asarray(r["labels"], dtype=np.float32) for r in self.records])
        return tag_split(matrix, "test") if self.split == "test" else matrix

    def first_index_per(self, key: str = "class_name") -> list[int]:
        """Index of the first record for each distinct value of `key`, in order of appearance."""
        seen: dict = {}
        for index, record in enumerate(self.records):
            seen.setdefault(record[key], index)
        return list(seen.values())

    def subset(self, indices) -> RecordDataset:
        """The same dataset (loader, transform, name, extra attributes) over the records at `indices`."""
        subset = RecordDataset([self.records[i] for i in indices], self.label_names, self._load, self.transform, self.name)
        subset.__dict__.update({k: v for k, v in vars(self).items() if k not in vars(subset)})
        return subset

    def column(self, key: str) -> list:
        """One stored record field for every item (no image decoding)."""
        return [record[key] for record in self.records]
