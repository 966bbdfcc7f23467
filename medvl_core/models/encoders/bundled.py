"""bundled: towers whose pretrained weights come from registry packages (offline): EfficientNet-Lite0 (image) and
all-MiniLM-L6-v2 (text)."""

from __future__ import annotations

from ...errors import UnknownSpecError
from .base import ImageEncoder, TextEncoder
from .hf_towers import hf_text_from
from .hub import quiet_loading
from .timm_towers import TimmImage


def bundled_image(spec: str, name: str, tag: str | None, image_size: int | None = None) -> ImageEncoder:
    """bundled:efficientnet_lite0: timm efficientnet_lite0 with the pretrained weights of a registry package."""
    if name != "efficientnet_lite0":
        raise UnknownSpecError(f"no bundled image encoder {name!r}; bundled image specs: 'bundled:efficientnet_lite0'")
    import timm

    from ... import assets

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    model.load_state_dict(assets.efficientnet_lite0_state_dict())
    return TimmImage(spec, model, image_size)


def bundled_text(spec: str, name: str, tag: str | None) -> TextEncoder:
    """bundled:minilm: all-MiniLM-L6-v2 (mean pooling) from a registry package."""
    if name != "minilm":
        raise UnknownSpecError(f"no bundled text encoder {name!r}; bundled text specs: 'bundled:minilm'")
    from ... import assets

    source = str(assets.minilm_dir())
    with quiet_loading():
        return hf_text_from(spec, source)
