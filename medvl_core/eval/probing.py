"""Takeda et al.'s linear-probe protocol: standardise, LinearSVC(C=100/N), 20% test, 5-fold CV.

F-score = the macro average of the per-class F1 (every class weighs the same); the poster does not say which
average it used. `groups` (patient / slide ids) switches both splits to group-disjoint ones: our extra beside
the poster's random split, which lets images of one patient or slide sit on both sides.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from ..errors import ParameterError


def _empty(dtype=float) -> np.ndarray:
    return np.empty(0, dtype=dtype)


@dataclass(eq=False)
class ProbeResult:
    """Cross-validated and held-out accuracy / macro F-score of a linear probe, and per CV item (the `n_train`
    not held out) what the CV produced: `cv_index` (its row in the probed features), `cv_true` (its label),
    `cv_predicted` (the prediction of the fold model that did not see it) and `cv_fold` (that fold). Compared by
    identity (the arrays have no single truth value)."""

    cv_accuracy: tuple[float, float]
    cv_macro_f1: tuple[float, float]
    test_accuracy: float
    test_macro_f1: float
    n_train: int
    n_test: int
    cv_index: np.ndarray = field(default_factory=lambda: _empty(int))
    cv_true: np.ndarray = field(default_factory=_empty)
    cv_predicted: np.ndarray = field(default_factory=_empty)
    cv_fold: np.ndarray = field(default_factory=lambda: _empty(int))

    def cv_correct(self) -> np.ndarray:
        """0/1 per CV item: its out-of-fold prediction equals its label (pooled over the folds, so its mean
        differs slightly from `cv_accuracy[0]`, the mean of the fold accuracies)."""
        return (self.cv_predicted == self.cv_true).astype(float)


def svc_c(n_samples: int) -> float:
    """The paper's regularisation: C = 100 / N_samples."""
    return 100.0 / n_samples


def make_probe(n_samples: int, seed: int = 0):
    """StandardScaler (fit on training folds only, inside the pipeline) + LinearSVC with C from N, otherwise
    sklearn's defaults as the poster states nothing else (max_iter 1000: liblinear may stop before convergence on
    many-class sets, as it would have for the poster; the warning is silenced in `linear_probe`)."""
    return make_pipeline(StandardScaler(), LinearSVC(C=svc_c(n_samples), random_state=seed))


def linear_probe(features, labels, seed: int = 0, test_size: float = 0.2, folds: int = 5, groups=None) -> ProbeResult:
    """Hold out `test_size`, run `folds`-fold CV on the rest, then fit on all the rest and test (group-disjoint
    splits when `groups` is given). The CV items' out-of-fold predictions are kept (`ProbeResult.cv_*`)."""
    x, y = np.asarray(features, dtype=np.float64), np.asarray(labels)
    rest, test = _holdout(y, test_size, seed, groups)
    g_rest = None if groups is None else np.asarray(groups)[rest]
    accs, f1s = [], []
    with warnings.catch_warnings():  # rare values (4 images of a patient) make folds without them: expected
        warnings.filterwarnings("ignore", message="The least populated class")
        splits = list(_folds(y[rest], folds, seed, g_rest))
    predicted, fold = np.empty(len(rest), dtype=y.dtype), np.empty(len(rest), dtype=int)
    for k, (train, val) in enumerate(splits):
        model = _fit(make_probe(len(train), seed), x[rest][train], y[rest][train])
        pred = model.predict(x[rest][val])
        predicted[val], fold[val] = pred, k
        accs.append(accuracy_score(y[rest][val], pred))
        f1s.append(f1_score(y[rest][val], pred, average="macro"))
    model = _fit(make_probe(len(rest), seed), x[rest], y[rest])
    pred = model.predict(x[test])
    return ProbeResult((float(np.mean(accs)), float(np.std(accs))), (float(np.mean(f1s)), float(np.std(f1s))),
                       float(accuracy_score(y[test], pred)), float(f1_score(y[test], pred, average="macro")),
                       len(rest), len(test), np.asarray(rest), y[rest], predicted, fold)


def _fit(model, x, y):
    """Fit without liblinear's convergence warnings (sklearn's max_iter is part of the protocol)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return model.fit(x, y)


def _holdout(y, test_size: float, seed: int, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """(rest, test) indices: stratified random, or the first fold of a stratified group split (about 1 / round(1 / test_size))."""
    index = np.arange(len(y))
    if groups is None:
        return train_test_split(index, test_size=test_size, stratify=y, random_state=seed)
    splitter = StratifiedGroupKFold(max(2, round(1 / test_size)), shuffle=True, random_state=seed)
    rest, test = next(splitter.split(index, y, np.asarray(groups)))
    return rest, test


def _folds(y, folds: int, seed: int, groups=None):
    """Stratified (group-disjoint when `groups`) K-fold splits of the rest."""
    if groups is None:
        return StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y)
    return StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(y, y, groups)


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


def confounder_probe(features, confounder_values, seed: int = 0, min_count: int = 5) -> tuple[ProbeResult, dict]:
    """The linear-probe protocol predicting a categorical confounder instead of the class: (result, row; see
    `probe_row`). Images without a value (None/NaN/"") and values seen fewer than `min_count` times are left out
    (`n_dropped`); accuracy well above `chance_accuracy` means the confounder is linearly decodable. The
    result's `cv_index` counts the kept images only; `cv_true` holds their values."""
    values = np.array(["" if _missing(v) else str(v) for v in confounder_values], dtype=object)
    if len(values) != len(features):
        raise ParameterError(f"{len(values)} confounder values for {len(features)} feature rows; give one per image")
    names, counts = np.unique(values[values != ""], return_counts=True)
    keep = np.isin(values, names[counts >= min_count])
    if len(np.unique(values[keep])) < 2:
        raise ParameterError(f"the confounder needs >= 2 values seen >= {min_count} times each; got {dict(zip(names, counts))}")
    result = linear_probe(np.asarray(features)[keep], values[keep].astype(str), seed)
    return result, {**probe_row(result, values[keep]), "n_dropped": int((~keep).sum())}


def _missing(value) -> bool:
    """None, NaN or an empty string."""
    return value is None or (isinstance(value, str) and not value) or (isinstance(value, float | np.floating) and np.isnan(value))
