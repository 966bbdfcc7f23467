"""cxr_clip:PATH: CXR-CLIP's Swin-Tiny image encoder and image projection from a released checkpoint (a transformers
SwinModel of the swin-tiny-patch4-window7-224 shape; transformers 4 key names renamed to this version's)."""

from __future__ import annotations

from ...errors import UnknownSpecError
from .base import ImageEncoder
from .local_checkpoints import ProjectedTower, linear_from_state, load_checkpoint, strip_prefix
from .preprocess import imagenet_transform

SWIN_RENAMES = (  # transformers 4 names (the released checkpoints) -> transformers 5 names
    ("attention.self.relative_position_bias_table", "attention.relative_position_bias.relative_position_bias_table"),
    ("attention.self.query.", "attention.q_proj."), ("attention.self.key.", "attention.k_proj."),
    ("attention.self.value.", "attention.v_proj."), ("attention.output.dense.", "attention.o_proj."),
    ("intermediate.dense.", "mlp.fc1."), ("output.dense.", "mlp.fc2."),
)


class _SwinTower(ProjectedTower):
    """A transformers Swin model: pooled output; grid = last hidden state as a map."""

    def pooled(self, x):
        return self.tower(pixel_values=x).pooler_output

    def forward_grid(self, x):
        hidden = self.tower(pixel_values=x).last_hidden_state
        side = int(hidden.shape[1] ** 0.5)
        return hidden.transpose(1, 2).reshape(x.shape[0], -1, side, side)


def cxr_clip_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """cxr_clip:PATH: CXR-CLIP's Swin-Tiny image encoder (`image_encoder.image_encoder.*`, a transformers SwinModel
    of the swin-tiny-patch4-window7-224 shape) + its image projection (`image_projection.projection.*`)."""
    from transformers import SwinConfig, SwinModel

    state = load_checkpoint(spec, name, "cxr_clip")
    tower_state = _swin_keys(strip_prefix(state, "image_encoder.image_encoder."))
    if not tower_state:
        raise UnknownSpecError(f"{spec}: no 'image_encoder.image_encoder.*' weights; is this a CXR-CLIP Swin checkpoint?")
    config = SwinConfig(**_swin_shape(tower_state))
    tower = SwinModel(config, add_pooling_layer=True)
    missing, _ = tower.load_state_dict(tower_state, strict=False)
    if missing:
        raise UnknownSpecError(f"{spec}: the Swin weights lack {len(missing)} tensors, e.g. {missing[0]}")
    projection = linear_from_state(state, "image_projection.projection.") or linear_from_state(state, "image_projection.")
    preprocess = imagenet_transform(config.image_size)  # CXR-CLIP: 224 px, ImageNet statistics
    return _SwinTower(spec, tower, tower.num_features, preprocess, config.image_size, projection)


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
