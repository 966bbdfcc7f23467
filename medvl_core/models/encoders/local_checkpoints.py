"""Research checkpoints of the feature-probing poster's encoders, loaded from local files: where to get each, the
weights-only loader, state-dict helpers and the pooled-tower-plus-projection base class.

Checkpoints load with `torch.load(weights_only=True)`; a missing file raises one error naming where to get it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...errors import UnknownSpecError
from .base import ImageEncoder

WHERE = {
    "conch": "MahmoodLab/CONCH on the Hugging Face hub (gated: accept its terms), file pytorch_model.bin",
    "cxr_clip": "github.com/kakaobrain/cxr-clip (released checkpoints, e.g. r50_mcc.tar / swint_mcc.tar)",
    "flair": "github.com/jusiro/FLAIR (flair_resnet.pth, linked from its README)",
    "uni": "MahmoodLab/UNI on the Hugging Face hub (gated): 'timm:hf-hub:MahmoodLab/UNI' or 'timm:local-dir:PATH'",
}


def load_checkpoint(spec: str, path: str, family: str) -> dict:
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


def strip_prefix(state: dict, prefix: str) -> dict:
    """The entries under `prefix`, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def linear_from_state(state: dict, prefix: str) -> nn.Linear | None:
    """A Linear layer from `prefix`weight (and bias) in `state`, or None when absent."""
    weight = state.get(f"{prefix}weight")
    if weight is None:
        return None
    bias = state.get(f"{prefix}bias")
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    layer.load_state_dict({"weight": weight, **({"bias": bias} if bias is not None else {})})
    return layer


class ProjectedTower(ImageEncoder):
    """A tower returning pooled features, optionally followed by a linear projection (pooled = projected)."""

    def __init__(self, spec: str, tower: nn.Module, dim: int, preprocess, image_size: int, projection=None):
        super().__init__(spec, projection.out_features if projection is not None else dim, dim, image_size, preprocess)
        self.tower, self.projection = tower, projection

    def pooled(self, x):
        raise NotImplementedError

    def forward(self, x):
        pooled = self.pooled(x)
        return pooled if self.projection is None else self.projection(pooled)
