"""The two encoder interfaces every backend implements: ImageEncoder and TextEncoder (docs/architecture.md,
"Contracts")."""

from __future__ import annotations

import torch
from torch import nn

from ..modules import device_of, eval_mode


class ImageEncoder(nn.Module):
    """Image tower: forward -> (B, embed_dim) pooled; forward_grid -> (B, grid_dim, h, w) spatial features."""

    def __init__(self, spec: str, embed_dim: int, grid_dim: int, image_size: int, preprocess):
        super().__init__()
        self.spec, self.embed_dim, self.grid_dim = spec, int(embed_dim), int(grid_dim)
        self.image_size, self.preprocess = int(image_size), preprocess

    def forward_grid(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, images, batch_size: int = 32) -> torch.Tensor:
        """Pooled embeddings of PIL images (official preprocessing, eval mode), as a float CPU tensor."""
        images, device, outs = list(images), device_of(self), []
        with eval_mode(self):
            for i in range(0, len(images), batch_size):
                batch = torch.stack([self.preprocess(img) for img in images[i : i + batch_size]]).to(device)
                outs.append(self(batch).float().cpu())
        return torch.cat(outs) if outs else torch.empty(0, self.embed_dim)


class TextEncoder(nn.Module):
    """Text tower: tokenize -> ids/mask; forward -> (B, embed_dim) pooled; forward_tokens -> (B, T, token_dim)."""

    def __init__(self, spec: str, embed_dim: int, token_dim: int, max_length: int):
        super().__init__()
        self.spec, self.max_length = spec, int(max_length)
        self.embed_dim, self.token_dim = int(embed_dim), int(token_dim)

    def tokenize(self, texts, max_length: int | None = None) -> dict:
        raise NotImplementedError

    def forward_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, texts, batch_size: int = 64) -> torch.Tensor:
        """Pooled embeddings of a list of strings (eval mode), as a float CPU tensor."""
        texts, device, outs = list(texts), device_of(self), []
        with eval_mode(self):
            for i in range(0, len(texts), batch_size):
                batch = self.tokenize(texts[i : i + batch_size])
                outs.append(self(batch["input_ids"].to(device), batch["attention_mask"].to(device)).float().cpu())
        return torch.cat(outs) if outs else torch.empty(0, self.embed_dim)

