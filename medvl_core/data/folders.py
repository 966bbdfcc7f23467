"""`image-folder`: one sub-folder per class, images inside (any PIL format or DICOM)."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataFormatError
from .base import RecordDataset
from .images import DICOM_SUFFIXES, load_image
from .registry import register

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"} | DICOM_SUFFIXES


@register("image-folder", "class-per-folder images: ROOT/[SPLIT/]CLASS/*.png|jpg|dcm")
def image_folder(root: Path, split: str = "train", mode: str = "RGB", transform=None):
    """Images under root/split/<class>/ (or root/<class>/ when there is no split folder)."""
    if not root.is_dir():
        raise DataFormatError(f"image-folder root {root} does not exist; pass root= pointing at ROOT/<class>/ images")
    base = root / split if (root / split).is_dir() else root
    classes = sorted(p.name for p in base.iterdir() if p.is_dir())
    if not classes:
        raise DataFormatError(f"no class sub-folders in {base}; expected {base}/<class>/<image files>")
    records = []
    for index, cls in enumerate(classes):
        for path in sorted((base / cls).rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                records.append({"id": str(path.relative_to(base)), "path": str(path), "class_index": index, "class_name": cls})
    if not records:
        raise DataFormatError(f"no image files under {base}/<class>/; accepted suffixes: {sorted(IMAGE_SUFFIXES)}")

    def load(item):
        item["image"] = load_image(item["path"], mode=mode)
        return item

    dataset = RecordDataset(records, load=load, transform=transform, name="image-folder")
    dataset.classes = classes
    return dataset
