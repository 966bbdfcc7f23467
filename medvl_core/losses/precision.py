"""Float precision shared by the losses: softmaxes run in float32 even when AMP hands them half floats."""

from __future__ import annotations

import torch


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 (AMP) -> float32 for the softmax; float32/float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
