"""What the chest X-ray loaders share: CSV reading with column checks, the -1 uncertainty policy, CheXpert label
matrices, view filtering, hashed splits, records and the lazy image/report loader.

Used by the `mimic-cxr` and `chexpert` loaders (`cxr`), `padchest`, `vindr_cxr` and `openi`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataFormatError, MedvlError
from .images import load_image
from .labels import CHEXPERT_LABELS

FRONTAL_VIEWS = ("PA", "AP")
LATERAL_VIEWS = ("LATERAL", "LL", "RL", "L")
UNCERTAIN_POLICIES = {"zeros": 0.0, "ones": 1.0, "ignore": np.nan}
HASH_FRACTIONS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}

# ------------------------------------------------------------------ shared: files and tables


def find_file(folder: Path, names: Sequence[str], what: str) -> Path:
    """First existing `folder/name` (a `.csv` name also matches its `.csv.gz`), else a DataFormatError."""
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    tried = ", ".join(str(folder / n) for n in names)
    raise DataFormatError(f"{what} not found: tried {tried} (or .gz); check root= and the layout in data_cards/")


def read_table(path: Path, required: Iterable[str] = (), what: str = "CSV") -> pd.DataFrame:
    """Read a CSV/CSV.GZ and check its required columns, naming the file and the missing column."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{what} not found: {path}; check root= and the layout in data_cards/")
    try:
        frame = pd.read_csv(path, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataFormatError(f"cannot parse {what} {path}: {exc}; re-download the file") from exc
    read_table_check(frame, path, list(required))
    return frame


def numeric_column(frame: pd.DataFrame, column: str, path: Path, allowed=(1.0, 0.0, -1.0)) -> np.ndarray:
    """A label column as float (blank -> NaN), rejecting values outside `allowed` with file+column named."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = (frame[column].notna() & values.isna()) | (values.notna() & ~values.isin(allowed))
    if bad.any():
        raise DataFormatError(f"{path}: column {column!r} has value {frame[column][bad].iloc[0]!r}; "
                              f"expected one of {list(allowed)} or blank")
    return values.to_numpy(dtype=np.float32)


def uncertainty_value(policy: str) -> float:
    """The value that replaces -1 ("uncertain") under `policy` = zeros | ones | ignore (NaN)."""
    if policy not in UNCERTAIN_POLICIES:
        raise MedvlError(f"uncertain={policy!r} is not a policy; use one of {list(UNCERTAIN_POLICIES)}")
    return UNCERTAIN_POLICIES[policy]


def chexpert_matrix(frame: pd.DataFrame, path: Path, uncertain: str = "ignore", allow_missing: bool = False) -> np.ndarray:
    """(N, 14) float32 CheXpert labels: 1/0 kept, -1 by `uncertain` policy, blank -> NaN."""
    fill = uncertainty_value(uncertain)
    present = [c for c in CHEXPERT_LABELS if c in frame.columns]
    if not allow_missing:
        read_table_check(frame, path, CHEXPERT_LABELS)
    if not present:
        raise DataFormatError(f"{path}: none of the 14 CheXpert label columns found (e.g. 'Cardiomegaly')")
    out = np.full((len(frame), len(CHEXPERT_LABELS)), np.nan, dtype=np.float32)
    for column in present:
        values = numeric_column(frame, column, path)
        values[values == -1] = fill
        out[:, CHEXPERT_LABELS.index(column)] = values
    return out


def read_table_check(frame: pd.DataFrame, path: Path, required: Iterable[str]) -> None:
    """Raise the missing-column error of `read_table` for an already-read frame."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: missing column {missing[0]!r} (all missing: {missing}); "
                              f"the file must have columns {list(required)}")


def terms_matrix(term_lists: Sequence[Sequence[str] | None], mapping: dict[str, tuple[str, ...]]) -> np.ndarray:
    """(N, 14) labels from finding-term lists: 1 if a mapped term is present, else 0; None -> all NaN."""
    lookup = {term.lower(): CHEXPERT_LABELS.index(label) for label, terms in mapping.items() for term in terms}
    out = np.zeros((len(term_lists), len(CHEXPERT_LABELS)), dtype=np.float32)
    for row, terms in enumerate(term_lists):
        if terms is None:
            out[row] = np.nan
            continue
        for term in terms:
            if term.strip().lower() in lookup:
                out[row, lookup[term.strip().lower()]] = 1.0
    unmapped = [CHEXPERT_LABELS.index(label) for label in CHEXPERT_LABELS if label not in mapping]
    out[:, unmapped] = np.nan
    return out


# ------------------------------------------------------------------ shared: views, splits, items


def normalize_views(views) -> frozenset | None:
    """Views to keep as upper-case codes; None keeps all. "frontal"/"lateral" are groups; PA/AP admit generic FRONTAL."""
    if views is None or (isinstance(views, str) and views.lower() == "all"):
        return None
    items = [views] if isinstance(views, str) else list(views)
    groups = {"FRONTAL": set(FRONTAL_VIEWS), "LATERAL": set(LATERAL_VIEWS)}
    codes = set()
    for view in items:
        key = str(view).strip().upper()
        codes |= groups.get(key, set()) | {key}
    if codes & set(FRONTAL_VIEWS):
        codes.add("FRONTAL")
    return frozenset(codes)


def view_filter(frame: pd.DataFrame, column: str, views) -> pd.DataFrame:
    """Rows of `frame` whose `column` (a normalised view code) is among `views`."""
    keep = normalize_views(views)
    if keep is None:
        return frame
    return frame[frame[column].fillna("").astype(str).str.upper().isin(keep)]


def hash_split(keys: pd.Series, split: str) -> np.ndarray:
    """Boolean mask of `keys` falling in `split` under a fixed md5-based 80/10/10 train/val/test split."""
    if split == "all":
        return np.ones(len(keys), dtype=bool)
    lo, hi = HASH_FRACTIONS[split]
    fractions = np.array([int(hashlib.md5(str(k).encode()).hexdigest()[:8], 16) / 16**8 for k in keys])
    return (fractions >= lo) & (fractions < hi)


class ImageTextLoad:
    """The lazy `load` callback: opens `item["path"]` as `item["image"]` (or reads its row of a prepared copy, see
    `data.prepared`) and fills `item["text"]`."""

    def __init__(self, images: bool = True, mode: str = "L", text: Callable[[dict], str] | None = None,
                 draft_side: int | None = None):
        self.images, self.mode, self.text, self.draft_side = images, mode, text, draft_side
        self.prepared = None  # a data.prepared.PreparedImages, set by open_dataset when a matching copy exists

    def __call__(self, item: dict) -> dict:
        if self.text is not None:
            item["text"] = self.text(item)
        if self.images:
            if self.prepared is not None:
                item["image"] = self.prepared.image(item["id"], self.mode)
            else:
                item["image"] = load_image(item["path"], mode=self.mode, draft_side=self.draft_side)
        return item


def image_loader(images: bool = True, mode: str = "L", text: Callable[[dict], str] | None = None,
                 draft_side: int | None = None) -> ImageTextLoad | None:
    """The lazy `load` callback of a chest X-ray loader (`ImageTextLoad`); None when it loads nothing."""
    if not images and text is None:
        return None
    return ImageTextLoad(images, mode, text, draft_side)


def build_records(frame: pd.DataFrame, labels: np.ndarray, columns: dict[str, str]) -> list[dict]:
    """Record dicts from `frame` (renaming `columns` source -> key) with one labels row each."""
    renamed = frame[list(columns)].rename(columns=columns)
    records = renamed.to_dict("records")
    for record, row in zip(records, labels, strict=True):
        record["labels"] = row
    return records


def require_dir(path: Path, what: str, fix: str) -> Path:
    """`path` if it is a folder, else a DataFormatError naming it and the fix."""
    if not path.is_dir():
        raise DataFormatError(f"{what} not found: {path}; {fix}")
    return path
