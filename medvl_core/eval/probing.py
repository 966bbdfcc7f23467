"""Takeda et al.'s linear-probe protocol: standardise, LinearSVC(C=100/N), 20% test, 5-fold CV."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from ..errors import ParameterError


@dataclass
class ProbeResult:
    """Cross-validated and held-out accuracy / macro F-score of a linear probe."""

    cv_accuracy: tuple[float, float]
    cv_macro_f1: tuple[float, float]
    test_accuracy: float
    test_macro_f1: float
    n_train: int
    n_test: int


def svc_c(n_samples: int) -> float:
    """The paper's regularisation: C = 100 / N_samples."""
    return 100.0 / n_samples


def make_probe(n_samples: int, seed: int = 0):
    """StandardScaler (fit on training folds only, inside the pipeline) + LinearSVC with C from N."""
    return make_pipeline(StandardScaler(), LinearSVC(C=svc_c(n_samples), max_iter=20000, random_state=seed))


def linear_probe(features, labels, seed: int = 0, test_size: float = 0.2, folds: int = 5) -> ProbeResult:
    """Hold out `test_size`, run `folds`-fold CV on the rest, then fit on all the rest and test."""
    x, y = np.asarray(features, dtype=np.float64), np.asarray(labels)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    accs, f1s = [], []
    for train, val in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x_rest, y_rest):
        model = make_probe(len(train), seed).fit(x_rest[train], y_rest[train])
        pred = model.predict(x_rest[val])
        accs.append(accuracy_score(y_rest[val], pred))
        f1s.append(f1_score(y_rest[val], pred, average="macro"))
    model = make_probe(len(x_rest), seed).fit(x_rest, y_rest)
    pred = model.predict(x_test)
    return ProbeResult((float(np.mean(accs)), float(np.std(accs))), (float(np.mean(f1s)), float(np.std(f1s))),
                       float(accuracy_score(y_test, pred)), float(f1_score(y_test, pred, average="macro")),
                       len(x_rest), len(x_test))


def probe_row(result: ProbeResult, labels) -> dict:
    """A ProbeResult flattened to plain numbers, with the majority-class (chance) accuracy and class count."""
    _, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return {
        "n_samples": result.n_train + result.n_test, "n_classes": len(counts), "n_train": result.n_train,
        "n_test": result.n_test, "C": svc_c(result.n_train),
        "cv_accuracy_mean": result.cv_accuracy[0], "cv_accuracy_std": result.cv_accuracy[1],
        "cv_macro_f1_mean": result.cv_macro_f1[0], "cv_macro_f1_std": result.cv_macro_f1[1],
        "test_accuracy": result.test_accuracy, "test_macro_f1": result.test_macro_f1,
        "chance_accuracy": float(counts.max() / counts.sum()),
    }  # fmt: skip


def confounder_probe(features, confounder_values, seed: int = 0, min_count: int = 5) -> dict:
    """The linear-probe protocol predicting a categorical confounder instead of the class (see `probe_row`).

    Images without a value (None/NaN/"") and values seen fewer than `min_count` times are left out
    (`n_dropped`); accuracy well above `chance_accuracy` means the confounder is linearly decodable.
    """
    values = np.array(["" if _missing(v) else str(v) for v in confounder_values], dtype=object)
    if len(values) != len(features):
        raise ParameterError(f"{len(values)} confounder values for {len(features)} feature rows; give one per image")
    names, counts = np.unique(values[values != ""], return_counts=True)
    keep = np.isin(values, names[counts >= min_count])
    if len(np.unique(values[keep])) < 2:
        raise ParameterError(f"the confounder needs >= 2 values seen >= {min_count} times each; got {dict(zip(names, counts))}")
    result = linear_probe(np.asarray(features)[keep], values[keep].astype(str), seed)
    return {**probe_row(result, values[keep]), "n_dropped": int((~keep).sum())}


def _missing(value) -> bool:
    """None, NaN or an empty string."""
    return value is None or (isinstance(value, str) and not value) or (isinstance(value, float | np.floating) and np.isnan(value))
