"""Thresholded multi-label metrics: per-label thresholds chosen on validation data, and F1 / MCC / precision /
recall / accuracy at given thresholds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...errors import ParameterError
from ..selection import require_validation
from .arrays import as_float_array, column_names, label_score_matrices
from .confusion import confusion_scores


def _best_threshold(y: np.ndarray, s: np.ndarray, metric: str) -> float:
    """The score cut (predict positive where score >= cut) maximising `metric` on one label."""
    keep = ~np.isnan(y)
    y, s = y[keep], s[keep]
    if len(y) == 0:
        return 0.5
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    last = np.r_[s[1:] != s[:-1], True]  # last row of each tie group
    tp, fp = np.cumsum(y)[last], np.cumsum(1 - y)[last]
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    scores = confusion_scores(tp, fp, n_pos - tp, n_neg - fp)[metric]
    return float(s[last][int(np.argmax(scores))])


def choose_thresholds(Y_val, P_val, metric: str = "f1") -> np.ndarray:
    """Per-label threshold maximising F1 or MCC on validation data (0.5 for a label with no labels)."""
    if metric not in ("f1", "mcc"):
        raise ParameterError(f"metric: unknown threshold metric {metric!r}; use 'f1' or 'mcc'")
    require_validation(Y_val, P_val, what="choose_thresholds")
    y, p = label_score_matrices(Y_val, P_val)
    return np.array([_best_threshold(y[:, j], p[:, j], metric) for j in range(y.shape[1])])


def binary_metrics(Y, P, thresholds, label_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-label F1, MCC, precision, recall, accuracy at `thresholds` (score >= t), plus a macro row."""
    y, p = label_score_matrices(Y, P)
    t = as_float_array(thresholds, "thresholds").ravel()
    if t.size not in (1, y.shape[1]):
        raise ParameterError(f"thresholds: {t.size} values for {y.shape[1]} labels; pass one per label or a scalar")
    t = np.broadcast_to(t, (y.shape[1],))
    valid = ~np.isnan(y)
    pred, truth = p >= t, y == 1
    neg_truth = valid & ~truth
    tp, fp = (pred & truth).sum(0), (pred & neg_truth).sum(0)
    fn, tn = (~pred & truth).sum(0), (~pred & neg_truth).sum(0)
    table = pd.DataFrame(confusion_scores(tp, fp, fn, tn), index=column_names(label_names, y.shape[1]))
    table.insert(0, "threshold", t)
    table["n"] = valid.sum(0).astype(np.float64)
    table.loc["macro"] = table.mean(numeric_only=True)
    table.loc["macro", ["threshold", "n"]] = np.nan
    return table
