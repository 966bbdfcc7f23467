"""Helpers for any torch module: the device its parameters live on, a temporary switch to eval mode."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def device_of(model) -> torch.device:
    """Device of a model's first parameter (CPU for a model without parameters)."""
    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    return first.device if first is not None else torch.device("cpu")


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """Temporarily switch a module to eval mode (dropout off), restoring its mode after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
