"""The M3G CLIP recipe's image augmentations (WangLab, Table 5): MONAI's RandFlip, RandRotate, RandSpatialCrop and
RandAdjustContrast on PIL images, each draw seeded explicitly so a view is reproducible from (seed, epoch, index).

Table 5 names the four transforms but none of their settings; `DEFAULT_SETTINGS` are ours (MONAI's usual
ranges): flip left-right with p=0.5, rotate up to +-15 degrees with p=0.5, a square crop of 80 % of the shorter
side at a random place (always applied; the image tower's preprocessing resizes it back), contrast gamma in
(0.7, 1.5) with p=0.5. MONAI is imported on first use (it takes seconds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from ..errors import ParameterError

AUGMENTATIONS = ("RandFlip", "RandRotate", "RandSpatialCrop", "RandAdjustContrast")  # Table 5, in its order
DEFAULT_SETTINGS = {
    "RandFlip": {"prob": 0.5, "spatial_axis": 1},  # axis 1 of (C, H, W) input: left-right
    "RandRotate": {"prob": 0.5, "range_x": math.radians(15.0)},  # in-plane rotation, radians
    "RandSpatialCrop": {"roi_scale": 0.8},  # crop side as a fraction of the shorter image side (ours, not MONAI's)
    "RandAdjustContrast": {"prob": 0.5, "gamma": (0.7, 1.5)},
}


class MonaiAugment:
    """`augment(image, seed) -> image`: the named MONAI transforms, in order, with one seeded draw per call."""

    def __init__(self, names: Sequence[str] = AUGMENTATIONS, settings: Mapping | None = None):
        names = tuple(names)
        unknown = [n for n in names if n not in AUGMENTATIONS]
        if unknown or not names:
            raise ParameterError(f"augmentations={list(names)!r}; use a non-empty list of {list(AUGMENTATIONS)}")
        self.names = names
        self.settings = {n: {**DEFAULT_SETTINGS[n], **dict((settings or {}).get(n, {}))} for n in names}
        self._composed: dict[tuple, object] = {}

    def __repr__(self):
        return f"MonaiAugment({list(self.names)}, {self.settings})"

    def _compose(self, height: int, width: int):
        """The MONAI Compose for images of this size (built once per size)."""
        if (height, width) not in self._composed:
            from monai.data import set_track_meta
            from monai.transforms import Compose

            set_track_meta(False)  # plain tensors out: MetaTensor bookkeeping is not needed here
            self._composed[(height, width)] = Compose([_transform(n, self.settings[n], height, width)
                                                       for n in self.names])
        return self._composed[(height, width)]

    def __call__(self, image: Image.Image, seed: int) -> Image.Image:
        """One augmented view of an RGB PIL image, drawn from `seed` (same seed, same view)."""
        array = np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
        compose = self._compose(*array.shape[1:])
        compose.set_random_state(seed=int(seed) % (2**32))
        out = np.asarray(compose(array), dtype=np.float32).clip(0.0, 1.0)
        return Image.fromarray((out.transpose(1, 2, 0) * 255.0).round().astype(np.uint8))

    def with_params(self, image: Image.Image):
        """(view, [its seed / 2**31]), the seed drawn from torch's global RNG (`models.cache.image_view_features`)."""
        import torch

        seed = int(torch.randint(0, 2**31 - 1, ()).item())
        return self(image, seed), torch.tensor([seed / 2**31])


def _transform(name: str, settings: dict, height: int, width: int):
    """One MONAI transform from its name and settings."""
    import monai.transforms as mt

    if name == "RandSpatialCrop":
        scale = float(settings.get("roi_scale", 1.0))
        if not 0.0 < scale <= 1.0:
            raise ParameterError(f"RandSpatialCrop roi_scale={scale}; use a fraction in (0, 1]")
        side = max(1, round(min(height, width) * scale))
        rest = {k: v for k, v in settings.items() if k != "roi_scale"}
        return mt.RandSpatialCrop(roi_size=(side, side), random_size=False, **rest)
    if name == "RandRotate":
        return mt.RandRotate(keep_size=True, padding_mode="border", **settings)
    return getattr(mt, name)(**settings)


def view_seed(seed: int, epoch: int, index: int, stream: int = 0) -> int:
    """The augmentation seed of item `index` in `epoch` (stream separates training views from inference views)."""
    return int(np.random.default_rng([int(seed), int(epoch), int(index), int(stream)]).integers(2**31))
