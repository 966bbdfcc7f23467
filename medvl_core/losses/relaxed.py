"""Relaxed positive similarity of Jang et al. (Sci. Rep. 2024), eq. (3)."""

from __future__ import annotations

import torch


def relax_positive(s: torch.Tensor, threshold: float = 0.5, alpha: float = 10.0) -> torch.Tensor:
    """Elementwise eq. (3): sigmoid(alpha*(s-t)) for s>=t, s/(2t) for 0<=s<t, s below 0."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    high = torch.sigmoid(alpha * (s - threshold))
    low = s / (2.0 * threshold)
    return torch.where(s >= threshold, high, torch.where(s >= 0, low, s))


def relaxed_similarity(sim: torch.Tensor, threshold: float = 0.5, alpha: float = 10.0) -> torch.Tensor:
    """N x N cosine matrix in; its diagonal (the positive pairs) relaxed by eq. (3), the rest unchanged."""
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"relaxed_similarity needs a square N x N matrix, got shape {tuple(sim.shape)}")
    eye = torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
    return torch.where(eye, relax_positive(sim, threshold, alpha), sim)
