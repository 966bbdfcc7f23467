"""MEEMS tasks and models: the two tasks' targets, loss and probabilities, shared by the heads and the pixel baseline."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import ParameterError

TASKS = ("binary", "multilabel")
MODELS = ("MEEMS", "baseline")


def task_targets(labels: np.ndarray, task: str) -> np.ndarray:
    """Evaluation targets: binary -> (N, 1) Finding (= not No Finding); multilabel -> the (N, 14) labels."""
    if task not in TASKS:
        raise ParameterError(f"task={task!r}; use one of {TASKS}")
    return 1.0 - labels[:, :1] if task == "binary" else labels


def head_loss(logits: torch.Tensor, target: torch.Tensor, task: str) -> torch.Tensor:
    """binary: 2-way softmax cross-entropy (target Finding 0/1); multilabel: mean BCE over the 14 labels."""
    if task == "binary":
        return F.cross_entropy(logits.float(), target[:, 0].long())
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def head_probabilities(logits: torch.Tensor, task: str) -> np.ndarray:
    """(N, 1) P(Finding) or (N, 14) label probabilities."""
    probs = torch.softmax(logits.float(), 1)[:, 1:] if task == "binary" else torch.sigmoid(logits.float())
    return probs.cpu().numpy()
