"""The one split vocabulary of every reader and world: 'train', 'val', 'test' (and 'all' where a reader allows it).

A reader checks the name with `canonical_split` and maps it to its dataset's official on-disk name itself
(MIMIC-CXR's split CSV says 'validate', DermaVQA's file is valid_ht.json, RadNLI's is *_dev_*.jsonl).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ParameterError

SPLITS = ("train", "val", "test")
ALL = "all"
FORMER_NAMES = ("valid", "validate", "validation", "dev")  # other datasets' names for 'val', named in the error


def canonical_split(split: str, allowed: Sequence[str] = SPLITS, dataset: str = "dataset") -> str:
    """`split` when it is one of `allowed`, else a ParameterError naming `dataset` and the allowed names."""
    if split in allowed:
        return split
    hint = " (the validation split is called 'val')" if str(split).lower() in FORMER_NAMES and "val" in allowed else ""
    raise ParameterError(f"{dataset}: unknown split {split!r}{hint}; use one of {list(allowed)}")


# ------------------------------------------------------------------ test data that cannot be selected on

class SplitArray(np.ndarray):
    """An array that remembers the split its values come from; slices and elementwise results keep the tag,
    reductions to one number return a plain numpy scalar."""

    split: str | None = None

    def __array_finalize__(self, obj) -> None:
        self.split = getattr(obj, "split", None)

    def __array_wrap__(self, obj, context=None, return_scalar=False):
        if obj.ndim == 0 or return_scalar:
            return obj[()]
        return super().__array_wrap__(obj, context, return_scalar)


def tag_split(values, split: str) -> SplitArray:
    """`values` as an array tagged with `split` (no copy), so selection functions can refuse test data."""
    tagged = np.asarray(values).view(SplitArray)
    tagged.split = split
    return tagged


def split_of(values) -> str | None:
    """The split an array was tagged with (None when untagged)."""
    return getattr(values, "split", None)
