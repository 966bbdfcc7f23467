"""`medmnist`: MedMNIST v2/v3 (MedMNIST+) 2D `.npz` files, `{flag}.npz` (28 px) or `{flag}_{size}.npz`.

Each file holds `{train,val,test}_images` (uint8, (N,H,W) or (N,H,W,3)) and `{train,val,test}_labels`
((N,1) class index, or (N,L) 0/1 for the multi-label ChestMNIST). Class names are MedMNIST 3.0.2's
`INFO[flag]["label"]`. The data is not bundled: it downloads from Zenodo with the `medmnist` package.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataFormatError
from .base import RecordDataset
from .registry import register
from .splits import canonical_split

SIZES = (28, 64, 128, 224)
ORGAN_CLASSES = ("bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver",
                 "lung-left", "lung-right", "pancreas", "spleen")
MEDMNIST_CLASSES: dict[str, tuple[str, ...]] = {  # MedMNIST 3.0.2 medmnist/info.py, label index order
    "pathmnist": ("adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle", "normal colon mucosa",
                  "cancer-associated stroma", "colorectal adenocarcinoma epithelium"),
    "chestmnist": ("atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia",
                   "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis", "pleural", "hernia"),
    "dermamnist": ("actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma",
                   "benign keratosis-like lesions", "dermatofibroma", "melanoma", "melanocytic nevi", "vascular lesions"),
    "octmnist": ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
    "pneumoniamnist": ("normal", "pneumonia"),
    "retinamnist": ("0", "1", "2", "3", "4"),
    "breastmnist": ("malignant", "normal, benign"),
    "bloodmnist": ("basophil", "eosinophil", "erythroblast",
                   "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)", "lymphocyte", "monocyte",
                   "neutrophil", "platelet"),
    "tissuemnist": ("Collecting Duct, Connecting Tubule", "Distal Convoluted Tubule", "Glomerular endothelial cells",
                    "Interstitial endothelial cells", "Leukocytes", "Podocytes", "Proximal Tubule Segments",
                    "Thick Ascending Limb"),
    "organamnist": ORGAN_CLASSES, "organcmnist": ORGAN_CLASSES, "organsmnist": ORGAN_CLASSES,
}
MULTI_LABEL = frozenset({"chestmnist"})
HOW_TO_GET = ("MedMNIST downloads are not bundled with medvl: `pip install medmnist`, then the flag's class with "
              "download=True, e.g. `python -c \"import medmnist; medmnist.PneumoniaMNIST(split='train', download=True, "
              "size=28, root='DIR')\"` (or `python -m medmnist download --size=SIZE --root=DIR` for every flag, or the "
              "Zenodo record 10.5281/zenodo.10519652); then pass root=DIR or put the files in $MEDVL_DATA/medmnist/")


def npz_path(root: Path, flag: str, size: int | None = None) -> Path:
    """The file of `flag` at `size` under `root` (`root` may also be the .npz file itself)."""
    if root.suffix == ".npz":
        return root
    if size not in (None, *SIZES):
        raise DataFormatError(f"medmnist: size={size!r}; use None (28), 28, 64, 128 or 224")
    return root / (f"{flag}.npz" if size in (None, 28) else f"{flag}_{size}.npz")


def read_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of one split from a MedMNIST .npz, checked; errors name the file and array."""
    if not path.is_file():
        others = sorted(p.name for p in path.parent.glob(f"{path.stem.split('_')[0]}*.npz")) if path.parent.is_dir() else []
        found = f" (found there: {', '.join(others)}; pass size= to pick one)" if others else ""
        raise DataFormatError(f"MedMNIST file not found: {path}{found}. {HOW_TO_GET}")
    try:
        npz = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DataFormatError(f"cannot read {path} as a MedMNIST .npz ({exc}); re-download it") from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataFormatError(f"{path} holds a single array, not a MedMNIST .npz archive of named arrays; re-download it")
    with npz:
        for key in (f"{split}_images", f"{split}_labels"):
            if key not in npz.files:
                raise DataFormatError(f"{path} has no array {key!r} (arrays there: {sorted(npz.files)}); "
                                      "expected a MedMNIST .npz with {train,val,test}_{images,labels}")
        images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
    return _checked(path, split, images, labels)


def _checked(path: Path, split: str, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes and dtypes of one split's arrays."""
    if images.ndim == 4 and images.shape[-1] not in (1, 3):
        raise DataFormatError(f"{path}: {split}_images has shape {images.shape}, a 3D volume set; "
                              "the medmnist loader reads the 2D flags only")
    if images.ndim not in (3, 4) or images.dtype != np.uint8:
        raise DataFormatError(f"{path}: {split}_images must be uint8 (N,H,W) or (N,H,W,3), got {images.dtype} {images.shape}")
    labels = labels.reshape(len(labels), -1) if labels.ndim == 1 else labels
    if labels.ndim != 2 or len(labels) != len(images):
        raise DataFormatError(f"{path}: {split}_labels has shape {labels.shape}; expected ({len(images)}, 1) or "
                              f"({len(images)}, L) to match {split}_images {images.shape}")
    return (images[..., 0] if images.ndim == 4 and images.shape[-1] == 1 else images), labels


def class_names(flag: str, n_classes: int) -> list[str]:
    """The flag's class names when known (and of the right count), else class_0 .. class_{n-1}."""
    known = MEDMNIST_CLASSES.get(flag)
    return list(known) if known and len(known) >= n_classes else [f"class_{k}" for k in range(n_classes)]


def _records(prefix: str, labels: np.ndarray, names: list[str], multi_label: bool) -> list[dict]:
    """One record per image: id, index, and label/class_name (multi-class) or labels (multi-label)."""
    if multi_label:
        rows = labels.astype(np.float32)
        return [{"id": f"{prefix}-{i:06d}", "index": i, "labels": rows[i]} for i in range(len(rows))]
    codes = labels[:, 0].astype(np.int64)
    return [{"id": f"{prefix}-{i:06d}", "index": i, "label": int(c), "class_index": int(c), "class_name": names[c]}
            for i, c in enumerate(codes)]


@register("medmnist", "MedMNIST v2/v3 2D .npz files: ROOT/{flag}.npz or ROOT/{flag}_{size}.npz (pip install medmnist to download)")
def medmnist(root: Path, split: str = "train", flag: str = "pneumoniamnist", size: int | None = None,
             mode: str | None = None, transform=None):
    """One split of a MedMNIST 2D flag (root may be the .npz itself); items: id, image (PIL, L/RGB as stored), label or labels."""
    flag = re.sub(r"_\d+$", "", Path(root).stem) if Path(root).suffix == ".npz" else flag
    path, split = npz_path(Path(root), flag, size), canonical_split(split, dataset="medmnist")
    images, labels = read_split(path, split)
    multi_label = flag in MULTI_LABEL or labels.shape[1] > 1
    n_classes = labels.shape[1] if multi_label else (int(labels.max()) + 1 if labels.size else 0)
    names = class_names(flag, n_classes)
    records = _records(f"{path.stem}-{split}", labels, names, multi_label)
    image_mode = mode or ("RGB" if images.ndim == 4 else "L")

    def load(item):
        item["image"] = Image.fromarray(images[item["index"]]).convert(image_mode)
        return item

    dataset = RecordDataset(records, label_names=names if multi_label else (), load=load, transform=transform,
                            name="medmnist")
    dataset.classes, dataset.flag, dataset.multi_label, dataset.path = names, flag, multi_label, path
    return dataset
