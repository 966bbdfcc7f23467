"""UniCLIP's learnable parts (Lee et al. 2022): augmentation-aware feature embedding and domain-dependent similarity.

See `losses.uniclip` for what the UniCLIP paper states and which details are our choices.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ParameterError

DOMAIN_PAIRS = ("image-image", "image-text", "text-text")
IMAGE, TEXT = 0, 1


class AugmentationEmbedding(nn.Module):
    """MLP of a view's augmentation parameters (`data.transforms.param_vector`), added to its pooled image feature
    before the projection; the zero vector (no augmentation) is the view used at evaluation."""

    def __init__(self, n_params: int, out_dim: int, hidden_dim: int = 128):
        super().__init__()
        self.n_params = int(n_params)
        self.net = nn.Sequential(nn.Linear(n_params, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))

    def forward(self, pooled: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        if params is None:
            params = pooled.new_zeros(pooled.shape[0], self.n_params)
        if params.shape != (pooled.shape[0], self.n_params):
            raise ParameterError(f"augmentation parameters must be (B, {self.n_params}), got {tuple(params.shape)}")
        return pooled + self.net(params.to(pooled.dtype))


class DomainSimilarity(nn.Module):
    """s = (cos - offset[d]) * scale[d] for the domain pair d of each entry, one learnable (scale, offset) per pair."""

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0):
        super().__init__()
        if not 0.0 < init_temperature <= 1.0:
            raise ParameterError(f"init_temperature={init_temperature} must be in (0, 1]")
        self.log_scale = nn.Parameter(torch.full((len(DOMAIN_PAIRS),), math.log(1.0 / init_temperature)))
        self.offset = nn.Parameter(torch.zeros(len(DOMAIN_PAIRS)))
        self.max_scale = float(max_scale)

    def forward(self, cos: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        pair = domains[:, None] + domains[None, :]  # 0 image-image, 1 image-text, 2 text-text
        scale = self.log_scale.clamp(max=math.log(self.max_scale)).exp()
        return (cos - self.offset[pair].to(cos.dtype)) * scale[pair].to(cos.dtype)
