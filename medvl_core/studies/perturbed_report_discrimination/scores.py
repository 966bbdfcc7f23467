"""Generic scores of Zhong et al.'s tables: a percentile bootstrap CI of a mean, and the accuracy of constant
guesses (all-negative / all-positive labels, the majority NLI label)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def bootstrap_ci(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of `values` (resampled with replacement, seeded)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (int(n_boot), len(values)))].mean(1)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))


def constant_accuracy(y: np.ndarray, guess: float) -> float:
    """Accuracy of always predicting `guess` over the stated (non-NaN) labels."""
    stated = y[np.isfinite(y)]
    return float(np.mean(stated == guess)) if len(stated) else float("nan")


def majority_accuracy(pairs) -> float:
    """Accuracy of always predicting the most frequent NLI label of `pairs` (the constant-guess reference)."""
    counts = pd.Series([p.label for p in pairs]).value_counts()
    return float(counts.iloc[0] / counts.sum()) if len(counts) else float("nan")
