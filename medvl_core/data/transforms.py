"""PIL image augmentations for contrastive training (Jang et al.'s recipe) and SLIP's two views."""

from __future__ import annotations

from PIL import Image


class ShrinkTo:
    """Downscale a PIL image so its shorter side is at most `size` (never upscales; cheap later transforms)."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, image: Image.Image) -> Image.Image:
        short = min(image.size)
        if short <= self.size:
            return image
        w, h = image.size
        return image.resize(
            (max(1, round(w * self.size / short)), max(1, round(h * self.size / short))), Image.Resampling.BICUBIC
        )

    def __repr__(self):
        return f"ShrinkTo({self.size})"


def paper_augmentation(image_size: int | None = None):
    """Jang et al.'s augmentations on PIL images: random affine (rotation +-20 deg, scale 0.9-1.1), horizontal
    flip, brightness/contrast jitter 0.2; first shrinks the shorter side to `image_size` when given.

    Note: a horizontal flip swaps left/right findings in chest X-rays; the paper uses it anyway.
    """
    from torchvision import transforms as T

    steps = [ShrinkTo(image_size)] if image_size else []
    steps += [
        T.RandomAffine(degrees=20, scale=(0.9, 1.1)),
        T.RandomHorizontalFlip(),
        T.ColorJitter(brightness=0.2, contrast=0.2),
    ]
    return T.Compose(steps)


class TwoViews:
    """Apply `augment` twice, independently: image -> (view1, view2) (SLIP/SimCLR)."""

    def __init__(self, augment):
        self.augment = augment

    def __call__(self, image):
        return self.augment(image), self.augment(image)

    def __repr__(self):
        return f"TwoViews({self.augment!r})"


def two_views(augment) -> TwoViews:
    """A transform returning two independent augmentations of one image."""
    return TwoViews(augment)
