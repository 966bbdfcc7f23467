"""timm towers: timm:NAME (pretrained, hub download), timm:NAME@random (offline), and timm:hf-hub:ORG/NAME or
timm:local-dir:PATH (a model folder with its own config.json, e.g. UNI); image only."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ...errors import ParameterError, UnknownSpecError
from .base import ImageEncoder
from .hub import SCHEMAS, load_remote
from .local_checkpoints import WHERE
from .preprocess import RGB


class TimmImage(ImageEncoder):
    """A timm model with its classifier removed; grid = last feature map (CNN) or patch tokens (ViT)."""

    def __init__(self, spec: str, model: nn.Module, image_size: int | None = None):
        import timm.data

        model.reset_classifier(0)
        # token models (ViT) and NHWC models (Swin) need timm's intermediates API for an NCHW grid
        tokens = hasattr(model, "num_prefix_tokens") or getattr(model, "output_fmt", "NCHW") != "NCHW"
        config = timm.data.resolve_data_config({}, model=model)
        if image_size is not None:
            if tokens:
                raise ParameterError(f"image_size applies to CNNs; {spec!r} is a token model with a fixed input size")
            config.update(input_size=(3, int(image_size), int(image_size)), crop_pct=1.0)
        preprocess = RGB(timm.data.create_transform(**config))
        super().__init__(spec, model.num_features, model.num_features, config["input_size"][-1], preprocess)
        self.model, self._tokens = model, tokens

    def forward(self, x):
        return self.model(x)

    def forward_grid(self, x):
        if self._tokens:
            return self.model.forward_intermediates(
                x, indices=1, norm=True, output_fmt="NCHW", intermediates_only=True
            )[-1]
        return self.model.forward_features(x)


def timm_image(spec: str, name: str, tag: str | None, image_size: int | None = None) -> ImageEncoder:
    """timm:NAME (pretrained, downloads) or timm:NAME@random (offline)."""
    import timm

    if name.startswith(SCHEMAS):  # hf-hub:ORG/NAME or local-dir:PATH (feature-probing encoders such as UNI)
        return _timm_source_image(spec, name, tag, image_size)
    full = name if tag in (None, "random") else f"{name}.{tag}"
    if not timm.is_model(full):
        raise UnknownSpecError(f"timm has no model {full!r} (spec {spec!r}); see timm.list_models() for names")
    if tag == "random":
        return TimmImage(spec, timm.create_model(name, pretrained=False), image_size)
    alternative = f"'bundled:efficientnet_lite0' or 'timm:{name}@random'"
    model = load_remote(spec, lambda: timm.create_model(full, pretrained=True), alternative)
    return TimmImage(spec, model, image_size)


def _timm_source_image(spec: str, name: str, tag: str | None, image_size: int | None = None) -> ImageEncoder:
    """timm:hf-hub:ORG/NAME or timm:local-dir:PATH (a folder with config.json + weights, e.g. UNI's), pretrained."""
    import timm

    if name.startswith("local-dir:"):
        folder = Path(name.removeprefix("local-dir:")).expanduser()
        if not (folder / "config.json").is_file():
            raise UnknownSpecError(f"{spec}: {folder} has no config.json; save the model with "
                                   "timm.models.push_to_hf.save_for_hf or download it (UNI: " + WHERE["uni"] + ")")
        return TimmImage(spec, timm.create_model(f"local-dir:{folder}", pretrained=True), image_size)
    model = load_remote(spec, lambda: timm.create_model(name, pretrained=True), "'timm:local-dir:PATH'")
    return TimmImage(spec, model, image_size)
