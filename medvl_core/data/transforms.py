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


AUG_PARAMS = ("rotation", "log_scale", "flip", "log_brightness", "log_contrast")  # UniCLIP's view encoding


class PaperAugmentation:
    """Jang et al.'s augmentation on PIL images, with its parameters drawn explicitly (so a view can say how it was
    made): random affine rotation +-20 deg and scale 0.9-1.1, horizontal flip (p=0.5), brightness and contrast
    factors in (0.5, 2) (Methods, Implementation details). Shrinks the shorter side to `image_size` first when given.

    Note: a horizontal flip swaps left/right findings in chest X-rays; the paper uses it anyway.
    """

    def __init__(self, image_size: int | None = None, degrees: float = 20.0, scale=(0.9, 1.1), jitter=(0.5, 2.0)):
        self.shrink = ShrinkTo(image_size) if image_size else None
        self.degrees, self.scale, self.jitter = float(degrees), tuple(scale), tuple(jitter)

    def sample(self) -> dict:
        """Draw one set of parameters from torch's global RNG (seed it for reproducible views)."""
        import torch

        u = torch.rand(5).tolist()
        lo, hi = self.jitter
        return {"angle": (2 * u[0] - 1) * self.degrees, "scale": self.scale[0] + u[1] * (self.scale[1] - self.scale[0]),
                "flip": u[2] < 0.5, "brightness": lo + u[3] * (hi - lo), "contrast": lo + u[4] * (hi - lo)}

    def apply(self, image: Image.Image, params: dict) -> Image.Image:
        from torchvision.transforms import functional as TF

        image = self.shrink(image) if self.shrink else image
        image = TF.affine(image, angle=params["angle"], translate=[0, 0], scale=params["scale"], shear=[0.0])
        if params["flip"]:
            image = TF.hflip(image)
        return TF.adjust_contrast(TF.adjust_brightness(image, params["brightness"]), params["contrast"])

    def with_params(self, image: Image.Image):
        """(augmented image, its parameter vector, see `param_vector`)."""
        params = self.sample()
        return self.apply(image, params), param_vector(params)

    def __call__(self, image: Image.Image) -> Image.Image:
        return self.apply(image, self.sample())

    def __repr__(self):
        return f"PaperAugmentation(degrees={self.degrees}, scale={self.scale}, jitter={self.jitter})"


def param_vector(params: dict | None):
    """Augmentation parameters as a float tensor ordered as AUG_PARAMS, scaled to about [-1, 1]; zeros = no
    augmentation (the identity view used at evaluation)."""
    import math

    import torch

    if params is None:
        return torch.zeros(len(AUG_PARAMS))
    return torch.tensor([params["angle"] / 20.0, math.log(params["scale"]) / math.log(1.1), float(params["flip"]),
                         math.log(params["brightness"]) / math.log(2.0), math.log(params["contrast"]) / math.log(2.0)])


def paper_augmentation(image_size: int | None = None) -> PaperAugmentation:
    """Jang et al.'s augmentation (see `PaperAugmentation`)."""
    return PaperAugmentation(image_size)


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
