"""The paper's metrics: AUC and F1 at argmax on the binarised label matrix, and the trivial references beside them."""

from __future__ import annotations

import numpy as np

from ...eval.metrics import argmax_onehot, auroc_per_label, column_f1, micro_auroc


def binarised(Y, P, task: str) -> tuple[np.ndarray, np.ndarray]:
    """The paper's binarised label and score matrices: binary -> columns (No Finding, Finding); multilabel unchanged."""
    y, p = np.asarray(Y, dtype=np.float64), np.asarray(P, dtype=np.float64)
    if task == "binary":
        return np.column_stack([1 - y[:, 0], y[:, 0]]), np.column_stack([1 - p[:, 0], p[:, 0]])
    return y, p


def paper_auc(Yb, Pb) -> dict:
    """The paper's AUC: mean of the column AUCs of the binarised matrix, and micro AUC on its flattening."""
    per_column = auroc_per_label(Yb, Pb).to_numpy(dtype=np.float64)
    return {"auc": float(np.nanmean(per_column)), "auc_micro": micro_auroc(Yb, Pb)}


def paper_scores(Y, P, task: str, thresholds=None) -> dict:
    """AUC, micro AUC and F1 at argmax as the paper computes them, plus F1 at validation `thresholds` (our extra).

    Binary: `f1` is the Finding column's F1 (the paper's 0.815 / 0.817 fit that column at its 2:1 prevalence),
    `f1_columns` the mean over both columns. Multilabel: `f1` is the mean over the 14 columns of the
    argmax one-hot prediction. `f1_threshold` thresholds each task column of P at the validation threshold.
    """
    Yb, Pb = binarised(Y, P, task)
    f1 = column_f1(Yb, argmax_onehot(Pb))
    out = {**paper_auc(Yb, Pb), "f1": float(f1[-1] if task == "binary" else np.nanmean(f1)),
           "f1_columns": float(np.nanmean(f1))}
    if thresholds is not None:
        y, p = np.asarray(Y, dtype=np.float64), np.asarray(P, dtype=np.float64)
        out["f1_threshold"] = float(np.nanmean(column_f1(y, p >= np.asarray(thresholds)[None, :])))
    return out


def reference_scores(Y, task: str) -> dict:
    """Trivial references on the same labels: every column positive, and a constant (prevalence) score."""
    Yb, _ = binarised(Y, np.zeros_like(np.asarray(Y, dtype=np.float64)), task)
    everything = column_f1(Yb, np.ones(Yb.shape, dtype=bool))
    prevalence = np.nanmean(Yb, axis=0)
    constant = paper_scores(Y, np.tile(np.nanmean(np.asarray(Y, dtype=np.float64), 0), (len(Yb), 1)), task)
    return {"all positive": {"auc": 0.5, "auc_micro": np.nan, "f1": float(everything[-1] if task == "binary"
                                                                          else np.nanmean(everything)),
                             "f1_columns": float(np.nanmean(everything))},
            "constant prevalence score": {**constant, "auc": 0.5},
            "_prevalence": prevalence}
