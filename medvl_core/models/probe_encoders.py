"""Image towers of the feature-probing poster's encoders that the core factory does not cover, by spec family.

`llava:REPO_OR_PATH[@tower]` (LLaVA / LLaVA-Med / LLaVA-Med++ in the transformers llava-hf layout: the vision
tower's selected layer through the multi-modal projector, mean over patches; `@tower` skips the projector),
`conch:PATH` (CONCH through the authors' `conch` package), `cxr_clip:PATH` (CXR-CLIP Swin-Tiny checkpoint),
`flair:PATH` (FLAIR ResNet-50 checkpoint), torchvision `vgg*` / `vit_*` (and any torchvision model with
`@PATH` to a local state_dict), timm `hf-hub:` / `local-dir:` models (UNI). Checkpoints load with
`torch.load(weights_only=True)`; a missing file or package raises one error naming where to get it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import UnknownSpecError
from .encoders import _RGB, ImageEncoder, _HFPreprocess, _imagenet_transform, _quiet_loading

WHERE = {
    "conch": "MahmoodLab/CONCH on the Hugging Face hub (gated: accept its terms), file pytorch_model.bin",
    "cxr_clip": "github.com/kakaobrain/cxr-clip (released checkpoints, e.g. r50_mcc.tar / swint_mcc.tar)",
    "flair": "github.com/jusiro/FLAIR (flair_resnet.pth, linked from its README)",
    "uni": "MahmoodLab/UNI on the Hugging Face hub (gated): 'timm:hf-hub:MahmoodLab/UNI' or 'timm:local-dir:PATH'",
}


def _checkpoint(spec: str, path: str, family: str) -> dict:
    """A local checkpoint's state dict (`state_dict` / `model` entry when nested), loaded weights-only."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UnknownSpecError(f"{spec}: no checkpoint at {file}; download it from {WHERE[family]} and give its path")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickled configs (OmegaConf etc.) are refused by weights_only
        raise UnknownSpecError(f"{spec}: {file} does not load with weights_only=True ({type(exc).__name__}); "
                               "re-save its state dict alone: torch.save(ckpt['model'], 'weights.pt')") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def _strip(state: dict, prefix: str) -> dict:
    """The entries under `prefix`, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


class _ProjectedTower(ImageEncoder):
    """A tower returning pooled features, optionally followed by a linear projection (pooled = projected)."""

    def __init__(self, spec: str, tower: nn.Module, dim: int, preprocess, image_size: int, projection=None):
        super().__init__(spec, projection.out_features if projection is not None else dim, dim, image_size, preprocess)
        self.tower, self.projection = tower, projection

    def pooled(self, x):
        raise NotImplementedError

    def forward(self, x):
        pooled = self.pooled(x)
        return pooled if self.projection is None else self.projection(pooled)


# ------------------------------------------------------------------ LLaVA family (llava-hf layout)


class _LlavaImage(ImageEncoder):
    """A LLaVA vision tower: hidden states of `vision_feature_layer`, CLS dropped ("default" strategy), through the
    multi-modal projector (unless `tower_only`), mean over patches."""

    def __init__(self, spec: str, tower: nn.Module, projector, config, preprocess, image_size: int):
        super().__init__(spec, 0, 0, image_size, preprocess)
        self.tower, self.projector = tower, projector
        self.layer = config.vision_feature_layer if isinstance(config.vision_feature_layer, int) else -2
        self.drop_cls = getattr(config, "vision_feature_select_strategy", "default") == "default"
        with torch.no_grad():
            tokens = self._tokens(torch.zeros(1, 3, image_size, image_size))
        self.embed_dim = self.grid_dim = int(tokens.shape[-1])

    def _tokens(self, x):
        hidden = self.tower(pixel_values=x, output_hidden_states=True).hidden_states[self.layer]
        hidden = hidden[:, 1:] if self.drop_cls else hidden
        return hidden if self.projector is None else self.projector(hidden)

    def forward(self, x):
        return self._tokens(x).mean(1)

    def forward_grid(self, x):
        tokens = self._tokens(x)
        side = int(tokens.shape[1] ** 0.5)
        return tokens[:, -side * side:].transpose(1, 2).reshape(x.shape[0], -1, side, side)


def llava_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """llava:REPO_OR_PATH[@tower]: a transformers Llava checkpoint's vision tower (+ projector), LLM discarded."""
    from .encoders import _hf_load

    def load(source):
        import transformers as tr

        model = tr.LlavaForConditionalGeneration.from_pretrained(source, dtype=torch.float32)
        inner = getattr(model, "model", model)
        tower, projector = inner.vision_tower, None if tag == "tower" else inner.multi_modal_projector
        processor = tr.AutoImageProcessor.from_pretrained(source)
        size = getattr(model.config.vision_config, "image_size", 336)
        return _LlavaImage(spec, tower, projector, model.config, _HFPreprocess(processor), size)

    if tag not in (None, "tower"):
        raise UnknownSpecError(f"{spec!r}: the only llava tag is '@tower' (features before the projector)")
    with _quiet_loading():
        return _hf_load(spec, name, load, "a local llava-hf folder (save_pretrained layout)")


# ------------------------------------------------------------------ CONCH (authors' package)


class _ConchImage(ImageEncoder):
    """CONCH's image encoder: `encode_image(proj_contrast=False, normalize=False)` (the authors' feature recipe)."""

    def __init__(self, spec: str, model, preprocess, image_size: int):
        super().__init__(spec, 0, 0, image_size, preprocess)
        self.model = model
        with torch.no_grad():
            self.embed_dim = self.grid_dim = int(self(torch.zeros(1, 3, image_size, image_size)).shape[-1])

    def forward(self, x):
        return self.model.encode_image(x, proj_contrast=False, normalize=False)

    def forward_grid(self, x):
        return self(x)[:, :, None, None]


def conch_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """conch:PATH: CONCH ViT-B/16 from a local pytorch_model.bin, through the `conch` package (its preprocessing)."""
    try:
        from conch.open_clip_custom import create_model_from_pretrained
    except ImportError as exc:
        raise UnknownSpecError(f"{spec}: CONCH needs the authors' package: pip install "
                               "git+https://github.com/mahmoodlab/CONCH (not in requirements.lock)") from exc
    if not Path(name).expanduser().is_file():
        raise UnknownSpecError(f"{spec}: no checkpoint at {name}; download it from {WHERE['conch']}")
    model, preprocess = create_model_from_pretrained("conch_ViT-B-16", checkpoint_path=str(Path(name).expanduser()))
    size = getattr(getattr(model, "visual", None), "image_size", 448)
    return _ConchImage(spec, model, _RGB(preprocess), size[0] if isinstance(size, tuple | list) else size)


# ------------------------------------------------------------------ CXR-CLIP (Swin-Tiny) and FLAIR (ResNet-50)


class _SwinTower(_ProjectedTower):
    """A transformers Swin model: pooled output; grid = last hidden state as a map."""

    def pooled(self, x):
        return self.tower(pixel_values=x).pooler_output

    def forward_grid(self, x):
        hidden = self.tower(pixel_values=x).last_hidden_state
        side = int(hidden.shape[1] ** 0.5)
        return hidden.transpose(1, 2).reshape(x.shape[0], -1, side, side)


def _linear(state: dict, prefix: str) -> nn.Linear | None:
    """A Linear layer from `prefix`weight (and bias) in `state`, or None when absent."""
    weight = state.get(f"{prefix}weight")
    if weight is None:
        return None
    bias = state.get(f"{prefix}bias")
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    layer.load_state_dict({"weight": weight, **({"bias": bias} if bias is not None else {})})
    return layer


def cxr_clip_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """cxr_clip:PATH: CXR-CLIP's Swin-Tiny image encoder (`image_encoder.image_encoder.*`, a transformers SwinModel
    of the swin-tiny-patch4-window7-224 shape) + its image projection (`image_projection.projection.*`)."""
    from transformers import SwinConfig, SwinModel

    state = _checkpoint(spec, name, "cxr_clip")
    tower_state = _swin_keys(_strip(state, "image_encoder.image_encoder."))
    if not tower_state:
        raise UnknownSpecError(f"{spec}: no 'image_encoder.image_encoder.*' weights; is this a CXR-CLIP Swin checkpoint?")
    config = SwinConfig(**_swin_shape(tower_state))
    tower = SwinModel(config, add_pooling_layer=True)
    missing, _ = tower.load_state_dict(tower_state, strict=False)
    if missing:
        raise UnknownSpecError(f"{spec}: the Swin weights lack {len(missing)} tensors, e.g. {missing[0]}")
    projection = _linear(state, "image_projection.projection.") or _linear(state, "image_projection.")
    preprocess = _imagenet_transform(config.image_size)  # CXR-CLIP: 224 px, ImageNet statistics
    return _SwinTower(spec, tower, tower.num_features, preprocess, config.image_size, projection)


SWIN_RENAMES = (  # transformers 4 names (the released checkpoints) -> transformers 5 names
    ("attention.self.relative_position_bias_table", "attention.relative_position_bias.relative_position_bias_table"),
    ("attention.self.query.", "attention.q_proj."), ("attention.self.key.", "attention.k_proj."),
    ("attention.self.value.", "attention.v_proj."), ("attention.output.dense.", "attention.o_proj."),
    ("intermediate.dense.", "mlp.fc1."), ("output.dense.", "mlp.fc2."),
)


def _swin_keys(state: dict) -> dict:
    """Swin state dict keys in this transformers' naming (old checkpoints renamed; index buffers dropped)."""
    out = {}
    for key, value in state.items():
        if key.endswith("relative_position_index"):
            continue
        for old, new in SWIN_RENAMES:
            key = key.replace(old, new)
        out[key] = value
    return out


def _swin_shape(state: dict) -> dict:
    """SwinConfig fields read off a Swin state dict (embed dim, depths, heads, window), swin-tiny by default."""
    embed = state["embeddings.patch_embeddings.projection.weight"].shape[0]
    stages = sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.layers.")})
    depths = [len({k.split(".")[4] for k in state if k.startswith(f"encoder.layers.{s}.blocks.")}) for s in stages]
    table_key = "blocks.0.attention.relative_position_bias.relative_position_bias_table"
    heads = [state[f"encoder.layers.{s}.{table_key}"].shape[1] for s in stages]
    table = state[f"encoder.layers.0.{table_key}"].shape[0]
    window = int((table ** 0.5 + 1) / 2)
    return {"embed_dim": embed, "depths": depths, "num_heads": heads, "window_size": window,
            "image_size": 224 if window == 7 else window * 32}


class _ResNetTower(_ProjectedTower):
    """A torchvision ResNet without fc: pooled = global average of layer4 (then the projection, if any)."""

    def pooled(self, x):
        return self.tower(x)

    def forward_grid(self, x):
        m = self.tower
        return m.layer4(m.layer3(m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x))))))))


def flair_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """flair:PATH: FLAIR's ResNet-50 (`vision_model.model.*`) + vision projection (`vision_model.projection_head_vision.*`),
    at FLAIR's 512 px input, pixel values in [0, 1] (FLAIR applies no mean/std normalisation)."""
    import torchvision
    from torchvision import transforms as T

    state = _checkpoint(spec, name, "flair")
    tower_state = _strip(state, "vision_model.model.")
    if not tower_state:
        raise UnknownSpecError(f"{spec}: no 'vision_model.model.*' weights; is this a FLAIR checkpoint?")
    tower = torchvision.models.resnet50(weights=None)
    tower.fc = nn.Identity()
    tower.load_state_dict({k: v for k, v in tower_state.items() if not k.startswith("fc.")})
    projection = _linear(state, "vision_model.projection_head_vision.projection.")
    preprocess = _RGB(T.Compose([T.Resize((512, 512), antialias=True), T.ToTensor()]))
    return _ResNetTower(spec, tower, 2048, preprocess, 512, projection)


# ------------------------------------------------------------------ torchvision VGG / ViT, local state dicts


class _TorchvisionTower(ImageEncoder):
    """A torchvision classifier without its head: VGG = global average of the last conv block (512), ViT = CLS."""

    def __init__(self, spec: str, model: nn.Module, preprocess, image_size: int):
        vit = hasattr(model, "heads")
        dim = model.hidden_dim if vit else model.features[-3].out_channels
        super().__init__(spec, dim, dim, image_size, preprocess)
        self.model, self.vit = model, vit

    def forward(self, x):
        if self.vit:
            tokens = self.model.encoder(torch.cat([self.model.class_token.expand(x.shape[0], -1, -1),
                                                   self.model._process_input(x)], dim=1))
            return tokens[:, 0]
        return self.model.features(x).mean(dim=(2, 3))

    def forward_grid(self, x):
        if self.vit:
            patches = self.model._process_input(x)
            side = int(patches.shape[1] ** 0.5)
            tokens = self.model.encoder(torch.cat([self.model.class_token.expand(x.shape[0], -1, -1), patches], 1))
            return tokens[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, side, side)
        return self.model.features(x)


def _torchvision_weights(name: str):
    """The ImageNet-1k weights enum entry (IMAGENET1K_V1: 224-px preprocessing) of a torchvision model."""
    import torchvision

    enum = torchvision.models.get_model_weights(name)
    return getattr(enum, "IMAGENET1K_V1", None) or enum.DEFAULT


def torchvision_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """torchvision:NAME[@random|@PATH]: VGG or ViT (IMAGENET1K_V1, downloads), random init, or a local state dict."""
    import torchvision

    weights = _torchvision_weights(name)
    preprocess = weights.transforms()
    if tag == "random":
        model = torchvision.models.get_model(name, weights=None)
    elif tag:
        model = torchvision.models.get_model(name, weights=None)
        state = _local_state(spec, tag)
        missing, _ = model.load_state_dict(state, strict=False)
        needed = [k for k in missing if not k.startswith(("classifier.", "heads."))]
        if needed:
            raise UnknownSpecError(f"{spec}: {tag} lacks {len(needed)} weights of {name}, e.g. {needed[0]}")
    else:
        from .encoders import _load_remote

        model = _load_remote(spec, lambda: torchvision.models.get_model(name, weights=weights),
                             f"'torchvision:{name}@/path/to/state_dict.pth' or '@random'")
    return _TorchvisionTower(spec, model, _RGB(preprocess), preprocess.crop_size[0])


def _local_state(spec: str, path: str) -> dict:
    """A local torchvision state dict file (weights-only)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UnknownSpecError(f"{spec}: no state dict at {file}; save one with torch.save(model.state_dict(), path)")
    return torch.load(file, map_location="cpu", weights_only=True)


def timm_source_image(spec: str, name: str, tag: str | None, image_size: int | None = None) -> ImageEncoder:
    """timm:hf-hub:ORG/NAME or timm:local-dir:PATH (a folder with config.json + weights, e.g. UNI's), pretrained."""
    import timm

    from .encoders import _load_remote, _TimmImage

    if name.startswith("local-dir:"):
        folder = Path(name.removeprefix("local-dir:")).expanduser()
        if not (folder / "config.json").is_file():
            raise UnknownSpecError(f"{spec}: {folder} has no config.json; save the model with "
                                   "timm.models.push_to_hf.save_for_hf or download it (UNI: " + WHERE["uni"] + ")")
        return _TimmImage(spec, timm.create_model(f"local-dir:{folder}", pretrained=True), image_size)
    model = _load_remote(spec, lambda: timm.create_model(name, pretrained=True), "'timm:local-dir:PATH'")
    return _TimmImage(spec, model, image_size)
