"""Accuracy of predicted labels against the truth, and of constant guesses (a constant label, the majority label)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def accuracy(predicted, truth) -> float | None:
    """Fraction of cases whose predicted label equals the truth (None without truth)."""
    if truth is None:
        return None
    return float(np.mean([p == t for p, t in zip(predicted, truth)]))


def constant_accuracy(y: np.ndarray, guess: float) -> float:
    """Accuracy of always predicting `guess` over the stated (non-NaN) labels."""
    stated = y[np.isfinite(y)]
    return float(np.mean(stated == guess)) if len(stated) else float("nan")


def majority_accuracy(labels) -> float:
    """Accuracy of always predicting the most frequent of `labels` (the constant-guess reference)."""
    counts = pd.Series(list(labels)).value_counts()
    return float(counts.iloc[0] / counts.sum()) if len(counts) else float("nan")
