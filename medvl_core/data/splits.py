"""The one split vocabulary of every reader and world: 'train', 'val', 'test' (and 'all' where a reader allows it).

A reader checks the name with `canonical_split` and maps it to its dataset's official on-disk name itself
(MIMIC-CXR's split CSV says 'validate', DermaVQA's file is valid_ht.json, RadNLI's is *_dev_*.jsonl).
"""

from __future__ import annotations

from collections.abc import Sequence

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
