"""Captioning objective of Show, Attend and Tell: word cross-entropy + the doubly stochastic attention regulariser."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ParameterError


def doubly_stochastic_penalty(alphas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean over images and cells of (1 - sum_t alpha_tp)^2, summing only the real (unmasked) steps (Xu et al. eq. 14)."""
    if alphas.ndim != 3 or mask.shape != alphas.shape[:2]:
        raise ParameterError(f"alphas must be (B, T, P) and mask (B, T); got {tuple(alphas.shape)} and {tuple(mask.shape)}")
    attended = (alphas * mask.unsqueeze(-1).to(alphas.dtype)).sum(1)
    return ((1.0 - attended) ** 2).mean()


def captioning_loss(logits: torch.Tensor, targets: torch.Tensor, alphas: torch.Tensor, pad_id: int = 0,
                    alpha_c: float = 1.0) -> dict:
    """{"loss", "cross_entropy", "attention_reg"}: token cross-entropy (pads ignored) + alpha_c x penalty."""
    if logits.shape[:2] != targets.shape:
        raise ParameterError(f"logits (B, T, V) {tuple(logits.shape)} do not match targets (B, T) {tuple(targets.shape)}")
    mask = targets != pad_id
    cross_entropy = F.cross_entropy(logits.float()[mask], targets[mask])
    penalty = doubly_stochastic_penalty(alphas.float(), mask)
    return {"loss": cross_entropy + alpha_c * penalty, "cross_entropy": cross_entropy.detach(),
            "attention_reg": penalty.detach()}
