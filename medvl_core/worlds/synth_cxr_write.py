"""SynthCXR files: the MIMIC-CXR-JPG tables and report files, the CheXpert-style test label CSV and the
ground-truth table (synth_truth.csv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data.labels import CHEXPERT_LABELS
from .synth_cxr_plan import present_vector
from .synth_cxr_reports import report_text

PREFIX = "mimic-cxr-2.0.0"
CHEXPERT_TEST_DIR = "chexpert-test"  # the CheXpert-style part: test_labels.csv, valid.csv, test/ and valid/
CHEXPERT_VALID_PART = "chexpert-valid"  # synth_truth.csv's part name of its valid set


def mimic_paths(subject_id: int, study_id: int, dicom_id: str) -> tuple[str, str]:
    """(image path, report path) relative to the world root, in the MIMIC-CXR-JPG layout."""
    sid = str(subject_id)
    folder = f"files/p{sid[:2]}/p{sid}"
    return f"{folder}/s{study_id}/{dicom_id}.jpg", f"{folder}/s{study_id}.txt"


def _label_frame(stated: np.ndarray, keys: pd.DataFrame) -> pd.DataFrame:
    """A CheXpert-valued label table (blank = not stated) with the label columns in alphabetical order."""
    labels = pd.DataFrame(stated, columns=list(CHEXPERT_LABELS)).astype("float64")
    return pd.concat([keys.reset_index(drop=True), labels[sorted(CHEXPERT_LABELS)]], axis=1)


def write_tables(tmp: Path, studies: pd.DataFrame, noisy: np.ndarray, size: int) -> None:
    """The MIMIC split, metadata and label CSVs and every report .txt."""
    keys = studies[["subject_id", "study_id"]]
    _label_frame(noisy, keys).to_csv(tmp / f"{PREFIX}-chexpert.csv", index=False)
    studies[["dicom_id", "study_id", "subject_id", "split"]].to_csv(tmp / f"{PREFIX}-split.csv", index=False)
    meta = pd.DataFrame({
        "dicom_id": studies["dicom_id"], "subject_id": studies["subject_id"], "study_id": studies["study_id"],
        "PerformedProcedureStepDescription": np.where(studies["view"] == "AP", "CHEST (PORTABLE AP)", "CHEST (PA AND LAT)"),
        "ViewPosition": studies["view"], "Rows": size, "Columns": size,
        "StudyDate": 21500101 + (studies["study_id"] % 28), "StudyTime": 100000.0 + (studies["study_id"] % 80000),
        "ProcedureCodeSequence_CodeMeaning": np.where(studies["view"] == "AP", "CHEST (PORTABLE AP)", "CHEST (PA AND LAT)"),
        "ViewCodeSequence_CodeMeaning": np.where(studies["view"] == "AP", "antero-posterior", "postero-anterior"),
        "PatientOrientationCodeSequence_CodeMeaning": "Erect",
    })
    meta.to_csv(tmp / f"{PREFIX}-metadata.csv", index=False)
    for row in studies.itertuples():
        _, report = mimic_paths(row.subject_id, row.study_id, row.dicom_id)
        path = tmp / report
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report_text(row.findings_text, row.impression_text, row.indication, row.view), encoding="utf-8")


def write_test_table(tmp: Path, tests: pd.DataFrame, name: str = "test_labels.csv") -> None:
    """chexpert-test/test_labels.csv (or valid.csv): Path, Sex, Age, Frontal/Lateral, AP/PA + 14 binary labels."""
    if tests.empty:
        return
    head = pd.DataFrame({"Path": tests["path"], "Sex": tests["sex"], "Age": tests["age"], "Frontal/Lateral": "Frontal",
                         "AP/PA": tests["view"]})
    labels = pd.DataFrame(np.stack(tests["stated"]), columns=list(CHEXPERT_LABELS)).astype("float64")
    (tmp / CHEXPERT_TEST_DIR).mkdir(parents=True, exist_ok=True)
    pd.concat([head, labels], axis=1).to_csv(tmp / CHEXPERT_TEST_DIR / name, index=False)


def truth_frame(studies: pd.DataFrame, tests: pd.DataFrame, flipped: np.ndarray,
                valids: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ground-truth table: one row per image of the MIMIC part, the CheXpert-style test set and its valid set."""
    rows = []
    parts = [("mimic", studies), (CHEXPERT_TEST_DIR, tests), (CHEXPERT_VALID_PART, valids)]
    for part, frame in [(name, f) for name, f in parts if f is not None]:
        for i, row in enumerate(frame.itertuples()):
            image = mimic_paths(row.subject_id, row.study_id, row.dicom_id)[0] if part == "mimic" else f"{CHEXPERT_TEST_DIR}/{row.path}"
            flips = [CHEXPERT_LABELS[j] for j in np.flatnonzero(flipped[i])] if part == "mimic" else []
            rows.append(_truth_row(part, image, row, flips))
    return pd.DataFrame(rows)


def _truth_row(part: str, image: str, row, flips: list[str]) -> dict:
    """One truth-table row: ids, nuisance-relevant facts, and per observation drawn/stated/severity/side."""
    record = {"part": part, "image": image, "dicom_id": getattr(row, "dicom_id", ""),
              "subject_id": getattr(row, "subject_id", ""), "study_id": getattr(row, "study_id", ""),
              "split": {"valid": "validate"}.get(getattr(row, "split", "test"), getattr(row, "split", "test")), "view": row.view, "site": row.site, "rare_stratum": row.rare_stratum,
              "image_seed": row.image_seed, "source_id": row.source_id, "n_flipped": len(flips),
              "flipped_labels": "|".join(flips)}
    present = present_vector(row.findings)
    for j, label in enumerate(CHEXPERT_LABELS):
        f = row.findings.get(label)
        record[label] = int(present[j])
        record[f"{label}.stated"] = row.stated[j]
        record[f"{label}.severity"] = f.severity if f else 0
        record[f"{label}.side"] = f.side if f else ""
    record["devices"] = row.findings["Support Devices"].variant if "Support Devices" in row.findings else ""
    return record
