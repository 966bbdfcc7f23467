"""Generic scores of the MEEMS tables: micro AUROC, confusion counts and matrices, F1 / FNR / FPR, bootstrap AUROC CIs."""

from __future__ import annotations

import numpy as np

from ...eval.metrics import auroc, bootstrap_ci


def micro_auroc(Y, P) -> float:
    """AUROC of all (image, label) pairs pooled; NaN labels dropped."""
    return auroc(np.asarray(Y, dtype=np.float64).ravel(), np.asarray(P, dtype=np.float64).ravel())


def confusion_counts(y: np.ndarray, pred: np.ndarray) -> dict:
    """tp, fp, fn, tn of boolean predictions against 0/1 labels (NaN labels dropped)."""
    keep = ~np.isnan(y)
    y, pred = y[keep] == 1, pred[keep]
    return {"tp": int((pred & y).sum()), "fp": int((pred & ~y).sum()), "fn": int((~pred & y).sum()),
            "tn": int((~pred & ~y).sum())}


def error_rates(c: dict) -> dict:
    """F1, FNR and FPR from confusion counts (NaN where undefined)."""
    pos, neg, denom = c["tp"] + c["fn"], c["fp"] + c["tn"], 2 * c["tp"] + c["fp"] + c["fn"]
    return {"f1": 2 * c["tp"] / denom if denom else np.nan, "fnr": c["fn"] / pos if pos else np.nan,
            "fpr": c["fp"] / neg if neg else np.nan}


def confusion_matrix(true_class: np.ndarray, pred_class: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n) counts: rows true class, columns predicted class."""
    out = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(out, (np.asarray(true_class, dtype=int), np.asarray(pred_class, dtype=int)), 1)
    return out


def single_label_confusion(Y, P) -> tuple[np.ndarray, np.ndarray]:
    """14-class argmax confusion over images with exactly one positive label; also returns which rows were used."""
    y = np.nan_to_num(np.asarray(Y, dtype=np.float64))
    rows = np.flatnonzero(y.sum(1) == 1)
    return confusion_matrix(y[rows].argmax(1), np.asarray(P)[rows].argmax(1), y.shape[1]), rows


def auroc_ci(y: np.ndarray, p: np.ndarray, n_resamples: int, seed: int) -> dict:
    """AUROC with a 95% percentile bootstrap CI (NaN when a class is missing)."""
    if len(np.unique(y)) < 2:
        return {"point": np.nan, "low": np.nan, "high": np.nan}
    ci = bootstrap_ci(y[:, None], p[:, None], "auroc", n_resamples=n_resamples, seed=seed)
    return {k: float(np.ravel(v)[0]) for k, v in ci.items()}


def argmax_onehot(Pb) -> np.ndarray:
    """One-hot of each row's argmax (the paper's operating point)."""
    Pb = np.asarray(Pb)
    out = np.zeros(Pb.shape, dtype=bool)
    out[np.arange(len(Pb)), Pb.argmax(1)] = True
    return out


def column_f1(Yb, pred) -> np.ndarray:
    """F1 of each column of boolean predictions against the binarised labels (NaN for a column with no positives)."""
    y = np.asarray(Yb, dtype=np.float64)
    return np.array([error_rates(confusion_counts(y[:, j], pred[:, j]))["f1"] if np.nansum(y[:, j]) else np.nan
                     for j in range(y.shape[1])])


def normalised_confusion(matrix: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix (each true class sums to 1; empty rows stay 0)."""
    m = np.asarray(matrix, dtype=np.float64)
    return np.divide(m, m.sum(1, keepdims=True), out=np.zeros_like(m), where=m.sum(1, keepdims=True) > 0)
