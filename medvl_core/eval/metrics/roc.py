"""AUROC (Mann-Whitney, ties count 1/2): one label, per label, macro, micro, and ROC curve points.

Labels are arrays with NaN meaning "not stated"; such entries are dropped per label. `AucIndex` also
evaluates a weighted AUROC for many bootstrap resamples at once (`bootstrap`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .arrays import as_float_array, column_names, label_score_matrices


class AucIndex:
    """One label's rows split into positives and score-sorted negatives, for weighted AUROC."""

    def __init__(self, y: np.ndarray, s: np.ndarray):
        valid = ~np.isnan(y)
        rows = np.flatnonzero(valid)
        neg, pos = rows[y[valid] == 0], rows[y[valid] == 1]
        self.neg = neg[np.argsort(s[neg], kind="stable")]
        self.pos = pos
        neg_sorted = s[self.neg]
        self.below = np.searchsorted(neg_sorted, s[pos], side="left")  # negatives strictly below
        self.upto = np.searchsorted(neg_sorted, s[pos], side="right")  # ... plus tied negatives
        self.tied = bool((self.upto != self.below).any())

    def point(self) -> float:
        """AUROC with every row counted once (NaN when a class is absent)."""
        if len(self.pos) == 0 or len(self.neg) == 0:
            return float("nan")
        return float((self.below.sum() + self.upto.sum()) / (2.0 * len(self.pos) * len(self.neg)))

    def weighted(self, counts: np.ndarray) -> np.ndarray:
        """AUROC per row of `counts` (resamples x rows: how often each row was drawn)."""
        wn = np.take(counts, self.neg, axis=1)
        cum = np.zeros((len(counts), wn.shape[1] + 1), dtype=counts.dtype)
        np.cumsum(wn, axis=1, dtype=counts.dtype, out=cum[:, 1:])  # integer cumsum on rows is fast
        wp = np.take(counts, self.pos, axis=1)
        pairs = np.take(cum, self.below, axis=1)
        pairs += np.take(cum, self.upto, axis=1) if self.tied else pairs
        pairs *= wp
        num = pairs.sum(axis=1, dtype=np.float64)
        den = 2.0 * wp.sum(axis=1, dtype=np.float64) * cum[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def auroc(y, scores) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count 1/2); NaN labels ignored; NaN if one class."""
    yy, ss = label_score_matrices(np.ravel(as_float_array(y, "y")), np.ravel(as_float_array(scores, "scores")))
    return AucIndex(yy[:, 0], ss[:, 0]).point()


def auroc_per_label(Y, P, label_names: Sequence[str] | None = None) -> pd.Series:
    """AUROC of each label column (NaN where a label has only one class)."""
    y, p = label_score_matrices(Y, P)
    values = [AucIndex(y[:, j], p[:, j]).point() for j in range(y.shape[1])]
    return pd.Series(values, index=column_names(label_names, y.shape[1]), name="auroc")


def macro_auroc(Y, P) -> float:
    """Mean AUROC over the labels that have both classes."""
    values = auroc_per_label(Y, P).to_numpy()
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def micro_auroc(Y, P) -> float:
    """AUROC of all (image, label) pairs pooled; NaN labels dropped."""
    return auroc(np.asarray(Y, dtype=np.float64).ravel(), np.asarray(P, dtype=np.float64).ravel())


def roc_curve_points(y, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) for plotting, NaN labels dropped (sklearn.metrics.roc_curve)."""
    from sklearn.metrics import roc_curve

    yy, ss = as_float_array(y, "y").ravel(), as_float_array(scores, "scores").ravel()
    keep = ~np.isnan(yy)
    return roc_curve(yy[keep], ss[keep])
