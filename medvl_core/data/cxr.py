"""Chest X-ray loaders in their official layouts: `mimic-cxr`, `chexpert`, `padchest`, `vindr-cxr`.

Shared pieces (CSV reading with column checks, the -1 uncertainty policy, view filtering, hashed
splits, lazy image/report loading) are defined once at the top and used by every loader, and by
`openi.py`. Label mappings of PadChest and VinDr-CXR onto the 14 CheXpert observations are listed
here and in their data cards.
"""

from __future__ import annotations

import ast
import hashlib
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataFormatError, MedvlError
from ..text.sections import findings_impression
from .base import RecordDataset
from .images import load_image
from .labels import CHEXPERT_LABELS
from .registry import register

FRONTAL_VIEWS = ("PA", "AP")
LATERAL_VIEWS = ("LATERAL", "LL", "RL", "L")
UNCERTAIN_POLICIES = {"zeros": 0.0, "ones": 1.0, "ignore": np.nan}
SPLIT_ALIASES = {"val": "validate", "valid": "validate", "validation": "validate", "validate": "validate"}
HASH_FRACTIONS = {"train": (0.0, 0.8), "validate": (0.8, 0.9), "test": (0.9, 1.0)}

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


def canonical_split(split: str, allowed: Sequence[str], dataset: str) -> str:
    """Map split aliases (val/valid -> validate) and check the name against `allowed`."""
    key = SPLIT_ALIASES.get(str(split).lower(), str(split).lower())
    if key not in allowed:
        raise MedvlError(f"{dataset}: unknown split {split!r}; use one of {list(allowed)}")
    return key


def hash_split(keys: pd.Series, split: str) -> np.ndarray:
    """Boolean mask of `keys` falling in `split` under a fixed md5-based 80/10/10 train/validate/test split."""
    if split == "all":
        return np.ones(len(keys), dtype=bool)
    lo, hi = HASH_FRACTIONS[split]
    fractions = np.array([int(hashlib.md5(str(k).encode()).hexdigest()[:8], 16) / 16**8 for k in keys])
    return (fractions >= lo) & (fractions < hi)


def image_loader(images: bool = True, mode: str = "L", text: Callable[[dict], str] | None = None):
    """The lazy `load` callback: opens `item["path"]` as `item["image"]` and fills `item["text"]`."""
    if not images and text is None:
        return None

    def load(item: dict) -> dict:
        if text is not None:
            item["text"] = text(item)
        if images:
            item["image"] = load_image(item["path"], mode=mode)
        return item

    return load


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


# ------------------------------------------------------------------ mimic-cxr

MIMIC_PREFIX = "mimic-cxr-2.0.0"


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
        frame = frame[frame["split"].astype(str).str.lower() == split]
    matrix = chexpert_matrix(labels, label_path, uncertain)
    index = pd.MultiIndex.from_frame(labels[["subject_id", "study_id"]])
    if index.has_duplicates:
        raise DataFormatError(f"{label_path}: duplicate (subject_id, study_id) rows; labels must be one row per study")
    rows = index.get_indexer(pd.MultiIndex.from_frame(frame[["subject_id", "study_id"]]))
    aligned = np.where((rows >= 0)[:, None], matrix[np.maximum(rows, 0)], np.nan).astype(np.float32)
    return frame, aligned


@register("mimic-cxr", "MIMIC-CXR-JPG 2.0: JPGs, metadata/split/CheXpert CSVs, free-text reports (PhysioNet)")
def mimic_cxr(root: Path, split: str = "train", views=FRONTAL_VIEWS, uncertain: str = "ignore", images: bool = True,
              text: bool = True, reports_root=None, labeler: str = "chexpert", mode: str = "L", transform=None):
    """One item per image: id (dicom_id), image, text (Findings+Impression), labels, subject/study ids, view, split."""
    split = canonical_split(split, ("train", "validate", "test", "all"), "mimic-cxr")
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
    load = image_loader(images, mode, (lambda item: read_report(item["report_path"])) if text else None)
    return RecordDataset(records, CHEXPERT_LABELS, load, transform, "mimic-cxr")


# ------------------------------------------------------------------ chexpert

CHEXPERT_FILES = {"train": ["train.csv"], "validate": ["valid.csv"],
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
             mode: str = "L", transform=None):
    """One item per image (or per study for Study-form ground truth): id, image, labels, view, sex, age, patient_id."""
    split = canonical_split(split, ("train", "validate", "test"), "chexpert")
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
    return RecordDataset(records, CHEXPERT_LABELS, image_loader(images, mode), transform, "chexpert")


# ------------------------------------------------------------------ padchest

PADCHEST_CSV = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"
PADCHEST_PROJECTIONS = {"PA": "PA", "AP": "AP", "AP_HORIZONTAL": "AP", "L": "LATERAL"}
# PadChest label strings (exact, lower-case) -> CheXpert observation. Terms not listed map to nothing.
PADCHEST_TO_CHEXPERT = {
    "No Finding": ("normal",),
    "Enlarged Cardiomediastinum": ("mediastinal enlargement", "superior mediastinal enlargement"),
    "Cardiomegaly": ("cardiomegaly",),
    "Lung Opacity": ("infiltrates", "alveolar pattern", "interstitial pattern", "reticular interstitial pattern",
                     "reticulonodular interstitial pattern", "ground glass pattern", "increased density",
                     "miliary opacities"),
    "Lung Lesion": ("nodule", "multiple nodules", "pulmonary mass", "mass", "lung metastasis", "cavitation",
                    "lepidic adenocarcinoma", "abscess"),
    "Edema": ("pulmonary edema", "kerley lines"),
    "Consolidation": ("consolidation", "air bronchogram"),
    "Pneumonia": ("pneumonia", "atypical pneumonia"),
    "Atelectasis": ("atelectasis", "laminar atelectasis", "lobar atelectasis", "segmental atelectasis",
                    "atelectasis basal", "total atelectasis", "round atelectasis"),
    "Pneumothorax": ("pneumothorax", "hydropneumothorax"),
    "Pleural Effusion": ("pleural effusion", "loculated pleural effusion", "loculated fissural effusion",
                         "costophrenic angle blunting", "hydropneumothorax", "empyema"),
    "Pleural Other": ("pleural thickening", "apical pleural thickening", "calcified pleural thickening",
                      "calcified pleural plaques", "pleural plaques", "pleural mass", "asbestosis signs"),
    "Fracture": ("fracture", "rib fracture", "callus rib fracture", "clavicle fracture", "humeral fracture",
                 "vertebral fracture"),
    "Support Devices": ("nsg tube", "endotracheal tube", "tracheostomy tube", "chest drain tube", "pacemaker",
                        "dual chamber device", "single chamber device", "dai", "electrical device", "catheter",
                        "central venous catheter", "central venous catheter via jugular vein",
                        "central venous catheter via subclavian vein", "central venous catheter via umbilical vein",
                        "reservoir central venous catheter", "artificial heart valve", "artificial mitral heart valve",
                        "artificial aortic heart valve", "ventriculoperitoneal drain tube", "gastrostomy tube",
                        "nephrostomy tube", "aortic endoprosthesis", "double j stent"),
}
# Images known to be truncated/broken in the public release (list from torchxrayvision's PC_Dataset).
PADCHEST_BROKEN = frozenset({
    "216840111366964012819207061112010307142602253_04-014-084.png", "216840111366964012989926673512011074122523403_00-163-058.png",
    "216840111366964012959786098432011033083840143_00-176-115.png", "216840111366964012558082906712009327122220177_00-102-064.png",
    "216840111366964012339356563862009072111404053_00-043-192.png", "216840111366964013076187734852011291090445391_00-196-188.png",
    "216840111366964012373310883942009117084022290_00-064-025.png", "216840111366964012283393834152009033102258826_00-059-087.png",
    "216840111366964012373310883942009170084120009_00-097-074.png", "216840111366964012819207061112010315104455352_04-024-184.png",
    "216840111366964012819207061112010306085429121_04-020-102.png", "216840111366964012989926673512011083134050913_00-168-009.png",
    "216840111366964012373310883942009152114636712_00-102-045.png", "216840111366964012819207061112010281134410801_00-129-131.png",
    "216840111366964012487858717522009280135853083_00-075-001.png", "216840111366964012989926673512011151082430686_00-157-045.png",
    "216840111366964013686042548532013208193054515_02-026-007.png", "216840111366964013590140476722013058110301622_02-056-111.png",
    "216840111366964013590140476722013043111952381_02-065-198.png", "216840111366964013829543166512013353113303615_02-092-190.png",
    "216840111366964013962490064942014134093945580_01-178-104.png",
})


def parse_label_list(value, path: Path, row: int) -> list[str] | None:
    """A stringified Python list ("['normal', 'nodule']") -> stripped strings; blank -> None."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or not str(value).strip():
        return None
    try:
        parsed = ast.literal_eval(str(value))
    except (ValueError, SyntaxError) as exc:
        raise DataFormatError(f"{path}: column 'Labels' row {row} is not a Python list literal: {str(value)[:60]!r}") from exc
    if not isinstance(parsed, (list, tuple)):
        raise DataFormatError(f"{path}: column 'Labels' row {row} is not a list: {str(value)[:60]!r}")
    return [str(term).strip() for term in parsed if str(term).strip()]


def padchest_labelled_by(frame: pd.DataFrame, labelled_by: str | None, path: Path) -> pd.DataFrame:
    """Rows whose MethodLabel is `labelled_by` ("physician" / "rnn_model", any case); None keeps all."""
    if labelled_by is None:
        return frame
    if "MethodLabel" not in frame.columns:
        raise DataFormatError(f"{path}: labelled_by={labelled_by!r} needs the column 'MethodLabel', which the file "
                              "lacks; use the full PadChest label CSV or labelled_by=None")
    method = frame["MethodLabel"].fillna("").astype(str).str.strip().str.lower()
    known = sorted(set(method) - {""})
    if labelled_by.lower() not in known:
        raise MedvlError(f"padchest: labelled_by={labelled_by!r} matches no MethodLabel in {path}; known: {known}")
    return frame[method == labelled_by.lower()]


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


def _image_ok(path: Path, verify: bool) -> bool:
    """True if the image file exists, is non-empty, and (when `verify`) passes PIL's integrity check."""
    if path.name in PADCHEST_BROKEN or not path.is_file() or path.stat().st_size == 0:
        return False
    if not verify:
        return True
    from PIL import Image
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception:  # PIL raises many error types for broken files
        return False
    return True


def skip_unreadable(records: list[dict], labels: np.ndarray, root: Path, verify: bool, dataset: str):
    """Drop records whose image is missing/broken, with ONE warning counting them."""
    ok = np.array([_image_ok(Path(r["path"]), verify) for r in records], dtype=bool)
    if records and not ok.any():
        raise DataFormatError(f"{dataset}: none of the {len(records)} images exist under {root} (first expected: "
                              f"{records[0]['path']}); check root= and the layout in data_cards/, or pass images=False")
    if not ok.all():
        first = next(r["path"] for r, good in zip(records, ok, strict=True) if not good)
        warnings.warn(f"{dataset}: skipped {int((~ok).sum())} of {len(records)} images that are missing or unreadable "
                      f"under {root} (first: {first})", stacklevel=3)
    return [r for r, good in zip(records, ok, strict=True) if good], labels[ok]


@register("padchest", "PadChest (BIMCV): 160K PNG images, Projection, stringified label lists")
def padchest(root: Path, split: str = "train", views=FRONTAL_VIEWS, csv=None, images: bool = True,
             verify: bool = False, mode: str = "L", transform=None, labelled_by: str | None = None):
    """One item per image: id (ImageID), image, labels (mapped to CheXpert), padchest_labels, patient_id, view.

    `labelled_by="physician"` keeps the images whose labels radiologists annotated by hand (MethodLabel
    "Physician"; the rest were labelled by the authors' RNN), the subset zero-shot papers test on."""
    split = canonical_split(split, ("train", "validate", "test", "all"), "padchest")
    require_dir(root, "PadChest root", "set root= or $MEDVL_DATA")
    path = Path(csv).expanduser() if csv else find_file(root, [PADCHEST_CSV], "PadChest label CSV")
    frame = read_table(path, ["ImageID", "ImageDir", "PatientID", "Projection", "Labels"], "PadChest label CSV")
    frame = padchest_labelled_by(frame, labelled_by, path)
    projection = frame["Projection"].fillna("").astype(str).str.upper()
    frame = frame.assign(view=projection.map(PADCHEST_PROJECTIONS).fillna(projection), projection=frame["Projection"])
    frame = view_filter(frame, "view", views)
    frame = frame[hash_split(frame["PatientID"], split)]
    terms = [parse_label_list(v, path, i) for i, v in zip(frame.index, frame["Labels"], strict=True)]
    labels = terms_matrix(terms, PADCHEST_TO_CHEXPERT)
    records = build_records(frame, labels, {"ImageID": "id", "PatientID": "patient_id", "view": "view",
                                            "projection": "projection", "ImageDir": "image_dir"})
    for record, found in zip(records, terms, strict=True):
        record["padchest_labels"] = found or []
        record["path"] = str(root / str(record.pop("image_dir")) / record["id"])
    if images:
        records, labels = skip_unreadable(records, labels, root, verify, "padchest")
    return RecordDataset(records, CHEXPERT_LABELS, image_loader(images, mode), transform, "padchest")


# ------------------------------------------------------------------ vindr-cxr

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
