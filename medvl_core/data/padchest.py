"""`padchest` loader (BIMCV PadChest): the label CSV's stringified term lists mapped onto the 14 CheXpert
observations (`PADCHEST_TO_CHEXPERT`, also listed in its data card), broken images skipped with one warning."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataFormatError, MedvlError
from .base import RecordDataset
from .cxr_common import (
    FRONTAL_VIEWS,
    build_records,
    find_file,
    hash_split,
    image_loader,
    read_table,
    require_dir,
    terms_matrix,
    view_filter,
)
from .labels import CHEXPERT_LABELS
from .registry import register
from .splits import canonical_split

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
    split = canonical_split(split, ("train", "val", "test", "all"), "padchest")
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
