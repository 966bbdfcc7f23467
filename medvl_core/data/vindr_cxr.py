"""`vindr-cxr` loader (VinDr-CXR): per-radiologist image labels aggregated as any-positive and mapped onto the
CheXpert observations (`VINDR_TO_CHEXPERT`, also listed in its data card)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataFormatError
from .base import RecordDataset
from .cxr_common import build_records, find_file, image_loader, numeric_column, read_table, require_dir
from .labels import CHEXPERT_LABELS
from .registry import register
from .splits import canonical_split

# VinDr-CXR image-level label (lower-case) -> CheXpert observation. Enlarged Cardiomediastinum and
# Support Devices have no VinDr counterpart and stay NaN.
VINDR_TO_CHEXPERT = {
    "No Finding": ("no finding",),
    "Cardiomegaly": ("cardiomegaly",),
    "Lung Opacity": ("lung opacity", "infiltration"),
    "Lung Lesion": ("nodule/mass", "lung tumor", "lung cavity", "lung cyst"),
    "Edema": ("edema",),
    "Consolidation": ("consolidation",),
    "Pneumonia": ("pneumonia",),
    "Atelectasis": ("atelectasis",),
    "Pneumothorax": ("pneumothorax",),
    "Pleural Effusion": ("pleural effusion",),
    "Pleural Other": ("pleural thickening",),
    "Fracture": ("rib fracture", "clavicle fracture"),
}


def vindr_label_csv(root: Path, split: str) -> Path:
    """annotations/image_labels_{split}.csv, or the same name at the root."""
    name = f"image_labels_{split}.csv"
    try:
        return find_file(root / "annotations", [name], "VinDr-CXR image label CSV")
    except DataFormatError:
        return find_file(root, [name, f"annotations/{name}"], "VinDr-CXR image label CSV")


def vindr_aggregate(frame: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """One row per image_id: any-positive (max) over radiologists; rad_ids collected into a list."""
    names = [c for c in frame.columns if c not in ("image_id", "rad_id")]
    if not names:
        raise DataFormatError(f"{path}: no label columns besides image_id/rad_id; expected e.g. 'Cardiomegaly'")
    values = pd.DataFrame({c: numeric_column(frame, c, path, allowed=(0.0, 1.0)) for c in names}, index=frame.index)
    values["image_id"] = frame["image_id"].astype(str)
    grouped = values.groupby("image_id", sort=True)
    out = grouped[names].max()
    out["n_readers"] = grouped.size()
    if "rad_id" in frame.columns:
        out["rad_ids"] = frame.assign(image_id=values["image_id"]).groupby("image_id")["rad_id"].agg(lambda s: [str(x) for x in s])
    return out.reset_index(), names


def vindr_to_chexpert(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """(N, 14) CheXpert labels from aggregated VinDr columns (max over the mapped columns; NaN where unmapped)."""
    lower = {n.strip().lower(): n for n in names}
    out = np.full((len(frame), len(CHEXPERT_LABELS)), np.nan, dtype=np.float32)
    for label, terms in VINDR_TO_CHEXPERT.items():
        columns = [lower[t] for t in terms if t in lower]
        if columns:
            out[:, CHEXPERT_LABELS.index(label)] = frame[columns].max(axis=1).to_numpy(dtype=np.float32)
    return out


@register("vindr-cxr", "VinDr-CXR: DICOM images, per-radiologist image labels aggregated as any-positive (PhysioNet)")
def vindr_cxr(root: Path, split: str = "train", images: bool = True, mode: str = "L", transform=None):
    """One item per image: id (image_id), image, labels (CheXpert), vindr_labels (all VinDr columns), n_readers."""
    split = canonical_split(split, ("train", "test"), "vindr-cxr")
    path = vindr_label_csv(require_dir(root, "VinDr-CXR root", "set root= or $MEDVL_DATA"), split)
    frame, names = vindr_aggregate(read_table(path, ["image_id"], "VinDr-CXR image label CSV"), path)
    labels = vindr_to_chexpert(frame, names)
    keys = {"image_id": "id", "n_readers": "n_readers", **({"rad_ids": "rad_ids"} if "rad_ids" in frame else {})}
    records = build_records(frame, labels, keys)
    for record, row in zip(records, frame[names].to_numpy(dtype=np.float32), strict=True):
        record["vindr_labels"] = row
        record["path"] = str(root / split / f"{record['id']}.dicom")
    dataset = RecordDataset(records, CHEXPERT_LABELS, image_loader(images, mode), transform, "vindr-cxr")
    dataset.vindr_label_names = names
    return dataset
