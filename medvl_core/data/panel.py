"""Augmented views of the small panel of real images bundled in registry packages."""

from __future__ import annotations

import torch
from torchvision import transforms

from .. import assets


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
    panel = assets.real_image_panel()
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
