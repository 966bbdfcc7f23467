"""The small panel of real images bundled in registry packages (DICOM decoded by `data.images`), and augmented
views of it."""

from __future__ import annotations

import torch
from torchvision import transforms

from .. import assets
from ..errors import AssetNotFoundError
from .images import dicom_to_uint8

# (name, modality, file in pydicom/pydicom-data or skimage.data function)
_PANEL = (
    ("chest_cr", "CR (chest PA)", "dicom", "RG1_UNCR.dcm"),
    ("tibia_cr", "CR (extremity)", "dicom", "RG3_UNCR.dcm"),
    ("ct_small", "CT", "dicom", "CT_small.dcm"),
    ("mr_small", "MR", "dicom", "MR_small.dcm"),
    ("ultrasound", "US", "dicom", "US1_UNCR.dcm"),
    ("retina", "fundus photograph", "skimage", "retina"),
    ("immunohistochemistry", "IHC microscopy", "skimage", "immunohistochemistry"),
    ("cell", "microscopy", "skimage", "cell"),
    ("microaneurysms", "fundus (angiography crop)", "skimage", "microaneurysms"),
)


def real_image_panel(max_size: int | None = 512) -> list[dict]:
    """Small real images bundled in registry packages: dicts with name, modality, source, image (PIL L or RGB)."""
    from PIL import Image

    panel = []
    for name, modality, kind, ref in _PANEL:
        if kind == "dicom":
            array, source = _dicom_array(ref), f"pydicom-data/pydicom {ref}"
        else:
            array, source = assets.skimage_image(ref), f"scikit-image skimage.data.{ref}()"
        if array is None:
            continue
        image = Image.fromarray(array)
        if max_size and max(image.size) > max_size:
            image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
        panel.append({"name": name, "modality": modality, "source": source, "image": image})
    if not panel:
        raise AssetNotFoundError("no panel image could be read; run `pip install pydicom-data scikit-image`")
    return panel


def _dicom_array(name: str):
    """uint8 pixels of a bundled DICOM file, or None where pydicom-data lacks it."""
    try:
        return dicom_to_uint8(assets.pydicom_file(name))
    except AssetNotFoundError:
        return None


def view_transform(size: int = 224):
    """Random crop/flip/rotation/brightness: a 'new photo' of the same image."""
    return transforms.Compose([
        transforms.RandomResizedCrop(size, scale=(0.4, 1.0), antialias=True),
        transforms.RandomHorizontalFlip(),
        transforms.RandomRotation(15),
        transforms.ColorJitter(brightness=0.3, contrast=0.3),
    ])


def real_panel_views(n_views: int = 8, size: int = 224, seed: int = 0) -> tuple[list, list[str], list[str]]:
    """`n_views` augmented RGB views of every real panel image: (images, source names, modalities)."""
    panel = real_image_panel()
    augment = view_transform(size)
    images, names, modalities = [], [], []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for entry in panel:
            rgb = entry["image"].convert("RGB")
            for _ in range(n_views):
                images.append(augment(rgb))
                names.append(entry["name"])
                modalities.append(entry["modality"])
    return images, names, modalities
