"""Metrics from binary confusion counts: counts, precision, recall, F1, MCC, Cohen's kappa, FNR / FPR, column F1.

Scalar counts give Python floats; count arrays give arrays. What an undefined ratio (0 / 0) is worth differs
between tables (NaN in most, 0 in sklearn's convention), so each function takes it as `undefined`.
"""

from __future__ import annotations

import numpy as np

NAN = float("nan")


def rate(num, den, undefined: float = NAN):
    """num / den, or `undefined` where den is 0 (elementwise for arrays)."""
    if np.ndim(den) == 0:
        return num / den if den else undefined
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1), undefined)


def confusion_counts(y: np.ndarray, pred: np.ndarray) -> dict:
    """tp, fp, fn, tn of boolean predictions against 0/1 labels (NaN labels dropped)."""
    keep = ~np.isnan(y)
    y, pred = y[keep] == 1, pred[keep]
    return {"tp": int((pred & y).sum()), "fp": int((pred & ~y).sum()), "fn": int((~pred & y).sum()),
            "tn": int((~pred & ~y).sum())}


def precision(tp, fp, undefined: float = NAN):
    """tp / (tp + fp)."""
    return rate(tp, tp + fp, undefined)


def recall(tp, fn, undefined: float = NAN):
    """tp / (tp + fn) (sensitivity)."""
    return rate(tp, tp + fn, undefined)


def f1(tp, fp, fn, undefined: float = NAN):
    """2 tp / (2 tp + fp + fn)."""
    return rate(2 * tp, 2 * tp + fp + fn, undefined)


def mcc(tp, fp, fn, tn):
    """Matthews correlation coefficient of count arrays (0 where undefined, as sklearn)."""
    tp, fp, fn, tn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn, tn))
    with np.errstate(invalid="ignore", divide="ignore"):
        den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1), 0.0)


def cohen_kappa(tp: int, fp: int, fn: int, tn: int) -> float:
    """Cohen's kappa of a 2x2 table (NaN when undefined)."""
    n = tp + fp + fn + tn
    observed = (tp + tn) / n
    expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / n**2
    return float("nan") if expected == 1 else (observed - expected) / (1 - expected)


def confusion_scores(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    """F1, MCC, precision, recall, accuracy from count arrays (0 where undefined, as sklearn)."""
    tp, fp, fn, tn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn, tn))
    return {"f1": f1(tp, fp, fn, 0.0), "mcc": mcc(tp, fp, fn, tn), "precision": precision(tp, fp, 0.0),
            "recall": recall(tp, fn, 0.0), "accuracy": rate(tp + tn, tp + fp + fn + tn, 0.0)}


def error_rates(c: dict) -> dict:
    """F1, FNR and FPR from confusion counts (NaN where undefined)."""
    return {"f1": f1(c["tp"], c["fp"], c["fn"]), "fnr": rate(c["fn"], c["tp"] + c["fn"]),
            "fpr": rate(c["fp"], c["fp"] + c["tn"])}


def column_f1(Yb, pred) -> np.ndarray:
    """F1 of each column of boolean predictions against the binarised labels (NaN for a column with no positives)."""
    y = np.asarray(Yb, dtype=np.float64)
    return np.array([error_rates(confusion_counts(y[:, j], pred[:, j]))["f1"] if np.nansum(y[:, j]) else np.nan
                     for j in range(y.shape[1])])
