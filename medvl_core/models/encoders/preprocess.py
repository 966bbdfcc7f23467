"""Image preprocessing shared by the encoder backends: RGB conversion, ImageNet resize/crop/normalise, and a
transformers image processor applied to one PIL image."""

from __future__ import annotations

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RGB:
    """Convert a PIL image to RGB, then apply a transform (medical images are often grayscale)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image):
        return self.transform(image.convert("RGB"))

    def __repr__(self):
        return f"RGB -> {self.transform!r}"


def imagenet_transform(size: int):
    """Resize (bicubic) + center crop to `size`, ImageNet normalization."""
    from torchvision import transforms as T

    return RGB(
        T.Compose(
            [
                T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
                T.CenterCrop(size),
                T.ToTensor(),
                T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )
    )


class HFPreprocess:
    """A transformers image processor applied to one PIL image -> 3xHxW float tensor."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, image):
        return self.processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"][0]
