"""Class-index metrics: confusion matrices (plain and over single-label images), argmax one-hot
predictions, and a classifier's accuracy / per-class recall summary."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(true_class: np.ndarray, pred_class: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n) counts: rows true class, columns predicted class."""
    out = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(out, (np.asarray(true_class, dtype=int), np.asarray(pred_class, dtype=int)), 1)
    return out


def single_label_confusion(Y, P) -> tuple[np.ndarray, np.ndarray]:
    """Argmax confusion over the images with exactly one positive label; also returns which rows were used."""
    y = np.nan_to_num(np.asarray(Y, dtype=np.float64))
    rows = np.flatnonzero(y.sum(1) == 1)
    return confusion_matrix(y[rows].argmax(1), np.asarray(P)[rows].argmax(1), y.shape[1]), rows


def argmax_onehot(Pb) -> np.ndarray:
    """One-hot of each row's argmax (a multi-class operating point)."""
    Pb = np.asarray(Pb)
    out = np.zeros(Pb.shape, dtype=bool)
    out[np.arange(len(Pb)), Pb.argmax(1)] = True
    return out


def classification_summary(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, per-label recall (NaN where a label has no test pair), confusion (rows true, columns predicted), n_test."""
    confusion = confusion_matrix(y_true, y_pred, len(labels))
    support = confusion.sum(axis=1)
    per_label = {label: float(confusion[i, i] / support[i]) if support[i] else float("nan")
                 for i, label in enumerate(labels)}
    return {"accuracy": float(np.trace(confusion) / max(1, len(y_true))), "per_label": per_label,
            "confusion": confusion.tolist(), "n_test": int(len(y_true))}
