"""Confusion-count metrics, class-index confusion matrices and label / constant-guess accuracy of eval.metrics."""

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score, matthews_corrcoef

from medvl_core.eval.metrics import (
    accuracy,
    argmax_onehot,
    classification_summary,
    cohen_kappa,
    column_f1,
    confusion_counts,
    confusion_matrix,
    confusion_scores,
    constant_accuracy,
    error_rates,
    f1,
    majority_accuracy,
    mcc,
    precision,
    rate,
    recall,
    single_label_confusion,
)


def test_confusion_counts_drop_nan_labels():
    y = np.array([1.0, 1.0, 0.0, 0.0, np.nan, 1.0])
    pred = np.array([True, False, True, False, True, True])
    assert confusion_counts(y, pred) == {"tp": 2, "fp": 1, "fn": 1, "tn": 1}


def test_scalar_counts_give_python_floats_and_nan_when_undefined():
    assert f1(2, 1, 1) == 2 * 2 / (2 * 2 + 1 + 1) and type(f1(2, 1, 1)) is float
    assert precision(2, 1) == 2 / 3 and recall(2, 2) == 0.5
    assert math.isnan(f1(0, 0, 0)) and math.isnan(precision(0, 0)) and f1(0, 0, 0, undefined=0.0) == 0.0
    assert error_rates({"tp": 2, "fp": 1, "fn": 2, "tn": 2}) == {"f1": 4 / 7, "fnr": 0.5, "fpr": 1 / 3}
    rates = error_rates({"tp": 0, "fp": 0, "fn": 0, "tn": 3})
    assert math.isnan(rates["f1"]) and math.isnan(rates["fnr"]) and rates["fpr"] == 0.0
    assert math.isnan(rate(1, 0)) and rate(3, 4) == 0.75


def test_count_arrays_match_sklearn_and_give_zero_when_undefined():
    rng = np.random.default_rng(0)
    y, pred = rng.random((50, 3)) < 0.4, rng.random((50, 3)) < 0.5
    tp, fp = (pred & y).sum(0), (pred & ~y).sum(0)
    fn, tn = (~pred & y).sum(0), (~pred & ~y).sum(0)
    scores = confusion_scores(tp, fp, fn, tn)
    for j in range(3):
        assert scores["f1"][j] == pytest.approx(f1_score(y[:, j], pred[:, j]), abs=1e-12)
        assert scores["mcc"][j] == pytest.approx(matthews_corrcoef(y[:, j], pred[:, j]), abs=1e-12)
    zero = confusion_scores([0], [0], [0], [5])
    assert (zero["f1"], zero["mcc"], zero["precision"], zero["recall"], zero["accuracy"]) == ([0.0], [0.0], [0.0], [0.0], [1.0])
    assert mcc([0], [0], [3], [2]).tolist() == [0.0]


def test_cohen_kappa_matches_sklearn_and_pins_its_value():
    truth, pred = [1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 0, 0]  # tp 2, fp 1, fn 1, tn 2
    assert cohen_kappa(2, 1, 1, 2) == pytest.approx(cohen_kappa_score(truth, pred))
    assert cohen_kappa(2, 1, 1, 2) == 0.33333333333333326  # pinned: the labeler agreement table's value
    assert math.isnan(cohen_kappa(5, 0, 0, 0))


def test_column_f1_is_nan_for_a_column_without_positives():
    y = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, np.nan]])
    pred = np.array([[True, True], [True, False], [False, False]])
    out = column_f1(y, pred)
    assert out[0] == pytest.approx(0.5) and np.isnan(out[1])


def test_confusion_matrices_and_argmax_onehot():
    np.testing.assert_array_equal(confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], 3), [[1, 1, 0], [0, 1, 0], [0, 1, 0]])
    P = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6]])
    np.testing.assert_array_equal(argmax_onehot(P), np.eye(3, dtype=bool))


def test_single_label_confusion_uses_only_single_label_images():
    Y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=float)
    P = np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1], [0.5, 0.5, 0.0], [0.0, 0.2, 0.7]])
    matrix, rows = single_label_confusion(Y, P)
    assert rows.tolist() == [0, 1, 3]
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [1, 0, 0], [0, 0, 1]])


def test_classification_summary_values():
    out = classification_summary(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), ("a", "b", "c"))
    assert out["accuracy"] == 0.5
    assert out["per_label"] == {"a": 0.5, "b": 1.0, "c": 0.0}
    assert out["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    assert out["n_test"] == 4


def test_label_and_constant_guess_accuracies():
    assert accuracy(["a", "b", "b"], ["a", "b", "c"]) == pytest.approx(2 / 3) and accuracy(["a"], None) is None
    y = np.array([1.0, 0.0, np.nan, 0.0])
    assert constant_accuracy(y, 0.0) == pytest.approx(2 / 3) and constant_accuracy(y, 1.0) == pytest.approx(1 / 3)
    assert np.isnan(constant_accuracy(np.full(2, np.nan), 1.0))
    assert majority_accuracy(["n", "e", "n", "c"]) == 0.5 and np.isnan(majority_accuracy([]))
