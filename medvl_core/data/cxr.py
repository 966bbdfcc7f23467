"""Chest X-ray loaders in their official layouts: `mimic-cxr` and `chexpert`; `native_labels` (labels in the own
vocabulary of PadChest or VinDr-CXR).

The shared pieces (tables, uncertainty policy, views, splits, records) are in `cxr_common`; the `padchest` and
`vindr-cxr` loaders in `padchest` and `vindr_cxr`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataFormatError, MedvlError
from ..text.sections import findings_impression
from .base import RecordDataset
from .cxr_common import (
    FRONTAL_VIEWS,
    build_records,
    chexpert_matrix,
    find_file,
    image_loader,
    read_table,
    read_table_check,
    require_dir,
    view_filter,
)
from .labels import CHEXPERT_LABELS
from .registry import register
from .splits import canonical_split

# ------------------------------------------------------------------ mimic-cxr

MIMIC_PREFIX = "mimic-cxr-2.0.0"
MIMIC_SPLITS = {"val": "validate"}  # canonical split -> the split CSV's value


def mimic_image_path(root: Path, subject_id, study_id, dicom_id) -> Path:
    """files/p{subject_id[:2]}/p{subject_id}/s{study_id}/{dicom_id}.jpg under `root`."""
    sid = str(subject_id)
    return root / "files" / f"p{sid[:2]}" / f"p{sid}" / f"s{study_id}" / f"{dicom_id}.jpg"


def mimic_reports_dir(reports_root: Path) -> Path:
    """The `files/` folder of the reports tree (accepts its parent or mimic-cxr-reports/ above it)."""
    for candidate in (reports_root / "files", reports_root / "mimic-cxr-reports" / "files"):
        if candidate.is_dir():
            return candidate
    return reports_root


def mimic_report_path(files: Path, subject_id, study_id) -> Path:
    """files/p{subject_id[:2]}/p{subject_id}/s{study_id}.txt."""
    sid = str(subject_id)
    return files / f"p{sid[:2]}" / f"p{sid}" / f"s{study_id}.txt"


def read_report(path) -> str:
    """Findings + Impression of a report .txt file (DataFormatError if it is missing)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"report not found: {path}; unzip the reports there, pass reports_root=, or text=False")
    return findings_impression(path.read_text(encoding="utf-8", errors="replace"))


def _mimic_frame(root: Path, split: str, labeler: str, uncertain: str) -> tuple[pd.DataFrame, np.ndarray]:
    """metadata x split (on dicom_id) x study labels (on subject_id, study_id); labels matrix aligned."""
    meta_path = find_file(root, [f"{MIMIC_PREFIX}-metadata.csv"], "MIMIC-CXR metadata CSV")
    split_path = find_file(root, [f"{MIMIC_PREFIX}-split.csv"], "MIMIC-CXR split CSV")
    label_path = find_file(root, [f"{MIMIC_PREFIX}-{labeler}.csv"], f"MIMIC-CXR {labeler} label CSV")
    meta = read_table(meta_path, ["dicom_id", "subject_id", "study_id", "ViewPosition"], "MIMIC-CXR metadata CSV")
    splits = read_table(split_path, ["dicom_id", "study_id", "subject_id", "split"], "MIMIC-CXR split CSV")
    labels = read_table(label_path, ["subject_id", "study_id", *CHEXPERT_LABELS], "MIMIC-CXR label CSV")
    frame = meta.merge(splits[["dicom_id", "split"]], on="dicom_id", how="inner")
    if split != "all":
        frame = frame[frame["split"].astype(str).str.lower() == MIMIC_SPLITS.get(split, split)]
    matrix = chexpert_matrix(labels, label_path, uncertain)
    index = pd.MultiIndex.from_frame(labels[["subject_id", "study_id"]])
    if index.has_duplicates:
        raise DataFormatError(f"{label_path}: duplicate (subject_id, study_id) rows; labels must be one row per study")
    rows = index.get_indexer(pd.MultiIndex.from_frame(frame[["subject_id", "study_id"]]))
    aligned = np.where((rows >= 0)[:, None], matrix[np.maximum(rows, 0)], np.nan).astype(np.float32)
    return frame, aligned


@register("mimic-cxr", "MIMIC-CXR-JPG 2.0: JPGs, metadata/split/CheXpert CSVs, free-text reports (PhysioNet)")
def mimic_cxr(root: Path, split: str = "train", views=FRONTAL_VIEWS, uncertain: str = "ignore", images: bool = True,
              text: bool = True, reports_root=None, labeler: str = "chexpert", mode: str = "L", transform=None,
              draft_side: int | None = None):
    """One item per image: id (dicom_id), image, text (Findings+Impression), labels, subject/study ids, view, split.

    `draft_side`: decode the JPGs at a reduced scale whose shorter side stays >= this (PIL draft mode; for
    training at a much smaller size)."""
    split = canonical_split(split, ("train", "val", "test", "all"), "mimic-cxr")
    frame, labels = _mimic_frame(require_dir(root, "MIMIC-CXR root", "set root= or $MEDVL_DATA"), split, labeler, uncertain)
    frame = frame.assign(view=frame["ViewPosition"].fillna("").astype(str).str.upper())
    keep = view_filter(frame, "view", views).index
    labels, frame = labels[frame.index.get_indexer(keep)], frame.loc[keep]
    if images:
        require_dir(root / "files", "MIMIC-CXR image folder", "put the JPG files/ tree there or pass images=False")
    reports = mimic_reports_dir(Path(reports_root).expanduser() if reports_root else root) if text else None
    records = build_records(frame, labels, {"dicom_id": "id", "subject_id": "subject_id", "study_id": "study_id",
                                            "view": "view", "split": "split"})
    for record in records:
        record["path"] = str(mimic_image_path(root, record["subject_id"], record["study_id"], record["id"]))
        if text:
            record["report_path"] = str(mimic_report_path(reports, record["subject_id"], record["study_id"]))
    if text and records and not Path(records[0]["report_path"]).is_file():
        raise DataFormatError(f"MIMIC-CXR report not found: {records[0]['report_path']}; unzip mimic-cxr-reports "
                              "(its files/ tree) there, pass reports_root=, or text=False")
    load = image_loader(images, mode, (lambda item: read_report(item["report_path"])) if text else None, draft_side)
    return RecordDataset(records, CHEXPERT_LABELS, load, transform, "mimic-cxr")


# ------------------------------------------------------------------ chexpert

CHEXPERT_FILES = {"train": ["train.csv"], "val": ["valid.csv"],
                  "test": ["test_labels.csv", "groundtruth.csv", "test.csv", "test/test_labels.csv"]}


def chexpert_home(root: Path) -> Path:
    """The folder holding train.csv/valid.csv: `root` itself or its CheXpert-v1.0[-small] child."""
    for child in (root, root / "CheXpert-v1.0-small", root / "CheXpert-v1.0"):
        if any((child / n).is_file() for names in CHEXPERT_FILES.values() for n in names):
            return child
    return root


def chexpert_resolver(home: Path, sample: str) -> Callable[[str], Path]:
    """Map CSV `Path` values ("CheXpert-v1.0-small/train/...") to files, whichever prefix the CSV uses."""
    def strip(value: str) -> str:
        head, _, tail = value.replace("\\", "/").partition("/")
        return tail if head.lower().startswith("chexpert-v1.0") else value
    if (home / sample).exists() and not (home / strip(sample)).exists():
        return lambda value: home / value
    if (home.parent / sample).exists() and not (home / strip(sample)).exists():
        return lambda value: home.parent / value
    return lambda value: home / strip(value)


def chexpert_view(frame: pd.DataFrame, paths: pd.Series) -> pd.Series:
    """View code: AP/PA value for frontal rows, LATERAL for laterals; from the file name when columns are absent."""
    from_name = np.where(paths.str.contains("lateral", case=False), "LATERAL",
                         np.where(paths.str.contains("frontal", case=False), "FRONTAL", ""))
    view = pd.Series(from_name, index=frame.index)
    if "Frontal/Lateral" in frame.columns:
        lateral = frame["Frontal/Lateral"].astype(str).str.lower().eq("lateral")
        view = view.where(frame["Frontal/Lateral"].isna(), np.where(lateral, "LATERAL", "FRONTAL"))
    if "AP/PA" in frame.columns:
        projection = frame["AP/PA"].fillna("").astype(str).str.upper()
        view = view.where(~(view.eq("FRONTAL") & projection.isin(FRONTAL_VIEWS)), projection)
    return view


def _first_frontal(study_dir: Path) -> Path:
    """The first frontal image of a study folder (Study-form ground truth), else its first image."""
    files = sorted(study_dir.glob("*.jpg")) + sorted(study_dir.glob("*.png"))
    frontal = [f for f in files if "frontal" in f.name.lower()]
    if not (frontal or files):
        raise DataFormatError(f"no images in study folder {study_dir}; check root= or pass images=False")
    return (frontal or files)[0]


@register("chexpert", "CheXpert v1.0 (small or full): train/valid CSVs and test ground truth (Stanford AIMI)")
def chexpert(root: Path, split: str = "train", views=FRONTAL_VIEWS, uncertain: str = "ignore", images: bool = True,
             mode: str = "L", transform=None, draft_side: int | None = None):
    """One item per image (or per study for Study-form ground truth): id, image, labels, view, sex, age, patient_id
    (`draft_side` as for mimic-cxr)."""
    split = canonical_split(split, ("train", "val", "test"), "chexpert")
    home = chexpert_home(require_dir(root, "CheXpert root", "set root= or $MEDVL_DATA"))
    path = find_file(home, CHEXPERT_FILES[split], f"CheXpert {split} CSV")
    frame = read_table(path, [], f"CheXpert {split} CSV")
    key = "Study" if "Study" in frame.columns and "Path" not in frame.columns else "Path"
    read_table_check(frame, path, [key])
    labels = chexpert_matrix(frame, path, uncertain, allow_missing=split == "test")
    values = frame[key].astype(str)
    frame = frame.assign(id=values, view=chexpert_view(frame, values) if key == "Path" else "FRONTAL",
                         patient_id=values.str.extract(r"(patient\d+)", expand=False),
                         sex=frame.get("Sex"), age=frame.get("Age"))
    if key == "Path":
        keep = view_filter(frame, "view", views).index
        labels, frame = labels[frame.index.get_indexer(keep)], frame.loc[keep]
    records = build_records(frame, labels, {c: c for c in ("id", "view", "patient_id", "sex", "age")})
    resolve = chexpert_resolver(home, records[0]["id"]) if records else (lambda v: home / v)
    for record in records:
        record["path"] = str(resolve(record["id"]))
    if key == "Study" and images:
        for record in records:
            record["path"] = str(_first_frontal(Path(record["path"])))
    return RecordDataset(records, CHEXPERT_LABELS, image_loader(images, mode, None, draft_side), transform, "chexpert")


# ------------------------------------------------------------------ labels in a dataset's own vocabulary

def native_labels(dataset: RecordDataset, names: Sequence[str]) -> np.ndarray:
    """(N, len(names)) 0/1 labels in a dataset's own vocabulary (PadChest terms, VinDr-CXR columns), matched
    case-insensitively; a name the dataset does not know is an error listing the known ones."""
    if dataset.name == "padchest":
        rows = [{t.strip().lower() for t in r["padchest_labels"]} for r in dataset.records]
        known = set().union(*rows) if rows else set()
        matrix = [[float(n.lower() in row) for n in names] for row in rows]
    elif dataset.name == "vindr-cxr":
        columns = {c.strip().lower().removesuffix("s"): i for i, c in enumerate(dataset.vindr_label_names)}
        known = set(columns)  # singular forms: the CSV says "Other diseases" where papers write "other disease"
        names_in = [n.lower().removesuffix("s") for n in names]
        matrix = [[float(r["vindr_labels"][columns[n]]) if n in columns else 0.0 for n in names_in]
                  for r in dataset.records]
        names = names_in
    else:
        raise MedvlError(f"native_labels: {dataset.name!r} has no own label vocabulary here; use padchest or vindr-cxr")
    unknown = [n for n in names if n.lower() not in known]
    if dataset.name == "vindr-cxr" and unknown:  # PadChest: a term nobody was given is a label with no positives
        raise DataFormatError(f"vindr-cxr: label columns {unknown} not in the label CSV; known: {sorted(known)}")
    return np.asarray(matrix, dtype=np.float32).reshape(len(dataset.records), len(names))
