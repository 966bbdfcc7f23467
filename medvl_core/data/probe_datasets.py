"""The eight datasets of Takeda et al.'s feature-probing poster, read in their public layouts (see data_cards/).

Each loader returns a RecordDataset of all images of the requested part (the poster's n in brackets):
`brain-mr` (2,870), `sars-cov-2-ct` (2,481), `pneumoniamnist` (4,708: the official train split), `breast-us`
(780, masks excluded), `breakhis` (7,909; patient, subtype and magnification recorded), `hicervix` (28,160; 29
classes, level_1..3 recorded), `deepdr` (1,200: regular fundus training set; patient and eye recorded), `isic2019`
(25,331; lesion id recorded). Items carry `class_index`, `class_name`, and the dataset's group key (patient,
slide or lesion) where the release records one; `dataset.classes`, `dataset.group` and `dataset.confounders`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import DataFormatError
from .base import RecordDataset
from .folders import IMAGE_SUFFIXES
from .images import load_image
from .registry import register
from .splits import SPLITS, canonical_split


def _require(path: Path, what: str, card: str) -> Path:
    """`path` if it exists, else a DataFormatError naming what is missing and the card describing the layout."""
    if not path.exists():
        raise DataFormatError(f"{path} not found ({what}); see data_cards/{card}.md for where to get it and its layout")
    return path


def _dataset(records: list[dict], classes: list[str], name: str, mode: str, group: str | None = None,
             confounders: tuple = (), transform=None) -> RecordDataset:
    """A RecordDataset over image records (`path`, `class_name`) with class indices and probing attributes."""
    if not records:
        raise DataFormatError(f"{name}: no images found; see data_cards/{name}.md for the expected layout")
    for record in records:
        record["class_index"] = classes.index(record["class_name"])

    def load(item):
        item["image"] = load_image(item["path"], mode=mode)
        return item

    data = RecordDataset(records, load=load, transform=transform, name=name)
    data.classes, data.group = classes, group
    data.confounders = [c for c in ((group,) if group else ()) + tuple(confounders)]
    return data


def _images(folder: Path, exclude: str | None = None) -> list[Path]:
    """Image files under `folder` (recursive, sorted), minus names matching the regex `exclude`."""
    return [p for p in sorted(folder.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES
            and not (exclude and re.search(exclude, p.name))]


def _class_folders(base: Path, name: str, mode: str, exclude: str | None = None, transform=None) -> RecordDataset:
    """One sub-folder per class under `base`."""
    classes = sorted(p.name for p in _require(base, "class folders", name).iterdir() if p.is_dir())
    records = [{"id": str(p.relative_to(base)), "path": str(p), "class_name": c}
               for c in classes for p in _images(base / c, exclude)]
    return _dataset(records, classes, name, mode, transform=transform)


@register("brain-mr", "Brain tumour MRI (Kaggle, 4 classes): ROOT/Training|Testing/<class>/*.jpg")
def brain_mr(root: Path, split: str = "train", mode: str = "L", transform=None):
    """Cheng et al. / Kaggle brain tumour MRI: split train = Training (2,870 images, the poster's n), test = Testing."""
    folder = {"train": "Training", "test": "Testing"}[canonical_split(split, ("train", "test"), "brain-mr")]
    return _class_folders(_require(root / folder, "Training/ and Testing/ folders", "brain-mr"), "brain-mr", mode,
                          transform=transform)


@register("sars-cov-2-ct", "SARS-CoV-2 CT-scan dataset (Soares/Angelov 2020): ROOT/COVID|non-COVID/*.png")
def sars_cov_2_ct(root: Path, split: str = "all", mode: str = "L", transform=None):
    """All CT slices, class = folder (COVID, non-COVID); no official split."""
    return _class_folders(root, "sars-cov-2-ct", mode, transform=transform)


@register("breast-us", "BUSI breast ultrasound: ROOT/Dataset_BUSI_with_GT/<class>/*.png, masks excluded")
def breast_us(root: Path, split: str = "all", mode: str = "L", transform=None):
    """The 780 BUSI images (benign, malignant, normal); `*_mask*.png` lesion masks are not images to probe."""
    base = root / "Dataset_BUSI_with_GT" if (root / "Dataset_BUSI_with_GT").is_dir() else root
    return _class_folders(base, "breast-us", mode, exclude=r"_mask(_\d+)?\.png$", transform=transform)


_BREAKHIS = re.compile(r"SOB_(?P<cls>[BM])_(?P<subtype>[A-Z]+)-(?P<patient>\d+-\d+[A-Z]*)-(?P<mag>\d+)-\d+")


@register("breakhis", "BreaKHis v1: ROOT/BreaKHis_v1/histology_slides/breast/<class>/SOB/<subtype>/<patient>/<mag>X/*.png")
def breakhis(root: Path, split: str = "all", mode: str = "RGB", magnification: str | None = None, transform=None):
    """All 7,909 images (or one `magnification`, e.g. "40X"); patient, tumour subtype and magnification recorded."""
    base = next((p for p in (root / "BreaKHis_v1/histology_slides/breast", root / "histology_slides/breast", root)
                 if (p / "benign").is_dir()), root / "BreaKHis_v1/histology_slides/breast")
    _require(base / "benign", "benign/ and malignant/ folders", "breakhis")
    records = []
    for path in _images(base):
        match = _BREAKHIS.match(path.stem)
        if not match:
            raise DataFormatError(f"{path}: not a BreaKHis file name (SOB_<B|M>_<subtype>-<patient>-<mag>-<seq>.png)")
        mag = f"{match['mag']}X"
        if magnification in (None, mag):
            records.append({"id": path.stem, "path": str(path), "class_name": path.relative_to(base).parts[0],
                            "patient": match["patient"], "subtype": match["subtype"], "magnification": mag})
    return _dataset(records, ["benign", "malignant"], "breakhis", mode, "patient", ("magnification",), transform)


@register("hicervix", "HiCervix: ROOT/train|val|test/*.jpg + ROOT/<split>.csv (image_name, class_name, level_1..3)")
def hicervix(root: Path, split: str = "train", mode: str = "RGB", transform=None):
    """One split (train, val, test or all) of HiCervix: fine class = class_name (29), level_1..3 recorded."""
    split = canonical_split(split, (*SPLITS, "all"), "hicervix")
    parts = SPLITS if split == "all" else (split,)
    records = []
    for part in parts:
        table = pd.read_csv(_require(root / f"{part}.csv", f"the {part} label table", "hicervix"), dtype=str)
        missing = {"image_name", "class_name"} - set(table.columns)
        if missing:
            raise DataFormatError(f"{root / f'{part}.csv'} lacks columns {sorted(missing)}; see data_cards/hicervix.md")
        for row in table.fillna("").to_dict("records"):
            path = root / part / row["image_name"]
            records.append({"id": f"{part}/{row['image_name']}", "path": str(path), "class_name": row["class_name"],
                            **{k: row[k] for k in ("level_1", "level_2", "level_3") if k in row}})
    classes = sorted({r["class_name"] for r in records})
    data = _dataset(records, classes, "hicervix", mode, transform=transform)
    data.confounders = []
    return data


@register("deepdr", "DeepDRiD regular fundus: ROOT/regular_fundus_images/regular-fundus-<split>/<csv> + Images/")
def deepdr(root: Path, split: str = "train", mode: str = "RGB", transform=None):
    """DeepDRiD's regular fundus images (train = training, 1,200; val = validation): class = the image's own eye's DR grade."""
    part = {"train": "training", "val": "validation"}[canonical_split(split, ("train", "val"), "deepdr")]
    base = root / "regular_fundus_images" if (root / "regular_fundus_images").is_dir() else root
    folder = base / f"regular-fundus-{part}"
    table = pd.read_csv(_require(folder / f"regular-fundus-{part}.csv", "the label table", "deepdr"))
    grade = table["left_eye_DR_Level"].fillna(table["right_eye_DR_Level"])
    records = [{"id": str(row.image_id), "path": str(folder / "Images" / str(row.patient_id) / f"{row.image_id}.jpg"),
                "class_name": f"grade{int(g)}", "patient": str(row.patient_id),
                "eye": "left" if "_l" in str(row.image_id) else "right"}
               for row, g in zip(table.itertuples(), grade)]
    return _dataset(records, [f"grade{g}" for g in range(5)], "deepdr", mode, "patient", ("eye",), transform)


ISIC2019_CLASSES = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"]


@register("isic2019", "ISIC 2019 training set: ROOT/ISIC_2019_Training_Input/*.jpg + GroundTruth/Metadata CSVs")
def isic2019(root: Path, split: str = "train", mode: str = "RGB", transform=None):
    """The 25,331 ISIC 2019 training images; class = the one-hot ground-truth column (9, UNK has no image);
    lesion id (metadata CSV, when present) as the group."""
    truth = pd.read_csv(_require(root / "ISIC_2019_Training_GroundTruth.csv", "the ground-truth CSV", "isic2019"))
    labels = truth[ISIC2019_CLASSES].idxmax(axis=1)
    meta_file = root / "ISIC_2019_Training_Metadata.csv"
    lesions = pd.read_csv(meta_file).set_index("image")["lesion_id"] if meta_file.is_file() else pd.Series(dtype=str)
    folder = root / "ISIC_2019_Training_Input"
    records = [{"id": image, "path": str(folder / f"{image}.jpg"), "class_name": label,
                "lesion": _lesion(lesions.get(image), image)} for image, label in zip(truth["image"], labels)]
    return _dataset(records, ISIC2019_CLASSES, "isic2019", mode, "lesion", (), transform)


def _lesion(value, image: str) -> str:
    """The lesion id, or the image id for images without one (its own group)."""
    return value if isinstance(value, str) and value else image


@register("pneumoniamnist", "PneumoniaMNIST (.npz under ROOT or $MEDVL_DATA/medmnist), all items of one split")
def pneumoniamnist(root: Path, split: str = "train", size: int | None = None, mode: str | None = None, transform=None):
    """PneumoniaMNIST through the medmnist loader; train = 4,708 images (the poster's n)."""
    from ..config import dataset_dir
    from .medmnist import medmnist

    where = root if root.exists() else dataset_dir("medmnist")
    data = medmnist(where, split=split, flag="pneumoniamnist", size=size, mode=mode, transform=transform)
    data.classes, data.group, data.confounders = sorted(set(data.column("class_name"))), None, []
    return data
