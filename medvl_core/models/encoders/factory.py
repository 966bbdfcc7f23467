"""Encoder spec strings and the factory: parse a spec, build the image or text tower of its backend."""

from __future__ import annotations

import functools

from torch import nn

from ...errors import ParameterError, UnknownSpecError
from .base import ImageEncoder, TextEncoder
from .bundled import bundled_image, bundled_text
from .conch import conch_image
from .cxr_clip import cxr_clip_image
from .flair import flair_image
from .hf_towers import hf_image, hf_text
from .hub import SCHEMAS
from .llava import llava_image
from .open_clip_towers import open_clip_image, open_clip_text
from .timm_towers import timm_image
from .tiny import tiny_image, tiny_text
from .torchvision_towers import torchvision_image

_FORMS = (
    ("open_clip:ARCH[@TAG]", "open_clip config; no tag = random init (offline), a TAG = pretrained download"),
    ("open_clip:hf-hub:ORG/NAME", "open_clip model from the Hugging Face hub (download)"),
    ("open_clip:local-dir:PATH", "open_clip model saved in the hub layout (open_clip_config.json + weights), offline"),
    ("timm:NAME[@random]", "timm model, pretrained (hub download) unless @random (offline); image only"),
    ("torchvision:NAME[@random]", "torchvision ResNet family, pretrained (download) unless @random; image only"),
    ("torchvision:vgg16|vit_l_16[@random|@PATH]", "torchvision VGG / ViT (IMAGENET1K_V1); @PATH = local state dict"),
    ("timm:hf-hub:ORG/NAME | timm:local-dir:PATH", "timm model with its own config.json (e.g. UNI), pretrained"),
    ("llava:REPO_OR_PATH[@tower]", "LLaVA-family vision tower (+ projector) from a llava-hf checkpoint"),
    ("conch:PATH | cxr_clip:PATH | flair:PATH", "CONCH / CXR-CLIP / FLAIR image towers from local checkpoints"),
    (
        "hf:REPO_OR_LOCAL_PATH",
        "transformers Auto classes; a local folder works offline; image specs use the vision tower",
    ),
    ("bundled:efficientnet_lite0", "pretrained ImageNet EfficientNet-Lite0 from a registry package (offline, image)"),
    ("bundled:minilm", "pretrained all-MiniLM-L6-v2 sentence encoder from a registry package (offline, text)"),
    (
        "tiny:cnn[-DIM] | tiny:vit[-DIM] | tiny:text[-DIM]",
        "small random-init towers for tests and demos (DIM: multiple of 32)",
    ),
)
ACCEPTED_SPECS = "\n".join(f"{form:<50} {meaning}" for form, meaning in _FORMS)
_KINDS = ("open_clip", "timm", "torchvision", "hf", "bundled", "tiny", "llava", "conch", "cxr_clip", "flair")
_TAGGED = ("open_clip", "timm", "torchvision", "llava")


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """Split an encoder spec into (kind, name, tag), e.g. "timm:resnet50@random" -> ("timm", "resnet50", "random")."""
    kind, sep, rest = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not sep or kind not in _KINDS or not rest:
        raise UnknownSpecError(f"unknown encoder spec {spec!r}; accepted forms: {' | '.join(f for f, _ in _FORMS)}")
    name, tag = rest, None
    if kind in _TAGGED and not rest.startswith(SCHEMAS):
        name, _, tag = rest.partition("@")
        tag = tag or None
    if not name:
        raise UnknownSpecError(
            f"encoder spec {spec!r} has no model name; accepted forms: {' | '.join(f for f, _ in _FORMS)}"
        )
    return kind, name, tag


def build_image_encoder(spec: str, device=None, image_size: int | None = None) -> ImageEncoder:
    """An ImageEncoder for `spec` in eval mode (on `device` if given).

    `image_size` sets the input side for tiny:*, bundled: and timm: CNNs (e.g. 128 for fast CPU runs on
    small images); other towers keep their official input size, which `image_size` may only restate.
    """
    kind, name, tag = parse_spec(spec)
    if image_size is not None and kind not in ("tiny", "bundled", "timm"):
        encoder = build_image_encoder(spec, device)
        if encoder.image_size != image_size:
            raise ParameterError(f"image_size={image_size}: {spec!r} keeps its official input size "
                                 f"{encoder.image_size}; set image_size to {encoder.image_size} (or null), or resize "
                                 "only tiny:, bundled: and timm: CNN specs")
        return encoder
    builders = {
        "open_clip": open_clip_image,
        "timm": functools.partial(timm_image, image_size=image_size),
        "torchvision": torchvision_image,
        "hf": hf_image,
        "bundled": functools.partial(bundled_image, image_size=image_size),
        "tiny": functools.partial(tiny_image, image_size=image_size or 224),
        "llava": llava_image,
        "conch": conch_image,
        "cxr_clip": cxr_clip_image,
        "flair": flair_image,
    }
    return _finish(builders[kind](spec, name, tag), device)


def build_text_encoder(spec: str, device=None) -> TextEncoder:
    """A TextEncoder for `spec` in eval mode (on `device` if given)."""
    kind, name, tag = parse_spec(spec)
    builders = {"open_clip": open_clip_text, "hf": hf_text, "bundled": bundled_text, "tiny": tiny_text}
    if kind not in builders:
        raise UnknownSpecError(
            f"{spec!r} is an image-only spec; text specs: open_clip:..., hf:..., bundled:minilm, tiny:text[-DIM]"
        )
    return _finish(builders[kind](spec, name, tag), device)


def _finish(encoder: nn.Module, device) -> nn.Module:
    """Put a freshly built encoder in eval mode and on the requested device."""
    encoder.eval()
    if device is not None:
        from ...config import choose_device

        encoder.to(choose_device(str(device)))
    return encoder
