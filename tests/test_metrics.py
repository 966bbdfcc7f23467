"""AUROC, thresholded metrics, bootstrap CIs and paired tests against sklearn / direct numpy."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, matthews_corrcoef, precision_score, recall_score, roc_auc_score

from medvl_core.errors import ParameterError
from medvl_core.eval.metrics import (
    LabelStatistic,
    ResampleChunk,
    auroc,
    auroc_per_label,
    binary_metrics,
    bootstrap_ci,
    choose_thresholds,
    ensemble,
    macro_auroc,
    paired_bootstrap_pvalue,
    roc_curve_points,
)


def make_data(n=300, labels=4, signal=1.0, seed=0, nan_frac=0.1, decimals=None):
    """Random multi-label data: scores shifted up for positives; some labels not stated (NaN)."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, labels)) < 0.35).astype(float)
    p = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=y.shape))))
    if decimals is not None:
        p = np.round(p, decimals)
    y[rng.random(y.shape) < nan_frac] = np.nan
    return y, p


@pytest.mark.parametrize("decimals", [None, 1, 2])
def test_auroc_equals_sklearn_with_ties_and_nan(decimals):
    y, p = make_data(decimals=decimals)
    for j in range(y.shape[1]):
        keep = ~np.isnan(y[:, j])
        assert auroc(y[:, j], p[:, j]) == pytest.approx(roc_auc_score(y[keep, j], p[keep, j]), abs=1e-12)


def test_auroc_all_tied_is_half_and_one_class_is_nan():
    assert auroc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == 0.5
    assert np.isnan(auroc([1, 1, np.nan], [0.2, 0.4, 0.1]))


def test_per_label_and_macro_skip_single_class_labels():
    y, p = make_data(labels=3)
    y[:, 1] = np.where(np.isnan(y[:, 1]), np.nan, 1.0)  # only positives stated
    series = auroc_per_label(y, p, ["a", "b", "c"])
    assert list(series.index) == ["a", "b", "c"] and np.isnan(series["b"])
    assert macro_auroc(y, p) == pytest.approx(np.mean([series["a"], series["c"]]))


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(ParameterError, match="Y/P"):
        auroc_per_label(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ParameterError, match="Y: labels"):
        macro_auroc([[0.5], [1.0]], [[0.1], [0.2]])
    with pytest.raises(ParameterError, match="metric"):
        bootstrap_ci([0, 1], [0.1, 0.2], metric="accuracy")


def test_thresholds_pick_the_f1_optimal_cut():
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1], dtype=float)
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    cuts = np.unique(s)
    f1s = [f1_score(y, s >= t) for t in cuts]
    (t,) = choose_thresholds(y[:, None], s[:, None], "f1")
    assert t == 0.4 == cuts[int(np.argmax(f1s))]
    (t_mcc,) = choose_thresholds(y[:, None], s[:, None], "mcc")
    assert matthews_corrcoef(y, s >= t_mcc) == pytest.approx(max(matthews_corrcoef(y, s >= c) for c in cuts))


def test_binary_metrics_match_sklearn():
    y, p = make_data(labels=3, decimals=2)
    t = choose_thresholds(y, p, "mcc")
    table = binary_metrics(y, p, t, ["a", "b", "c"])
    assert list(table.index) == ["a", "b", "c", "macro"]
    for j, name in enumerate("abc"):
        keep = ~np.isnan(y[:, j])
        yt, yp = y[keep, j], p[keep, j] >= t[j]
        assert table.loc[name, "f1"] == pytest.approx(f1_score(yt, yp))
        assert table.loc[name, "mcc"] == pytest.approx(matthews_corrcoef(yt, yp))
        assert table.loc[name, "precision"] == pytest.approx(precision_score(yt, yp))
        assert table.loc[name, "recall"] == pytest.approx(recall_score(yt, yp))
        assert table.loc[name, "n"] == keep.sum()
    assert table.loc["macro", "f1"] == pytest.approx(table.loc[["a", "b", "c"], "f1"].mean())


def test_mcc_zero_when_undefined():
    table = binary_metrics(np.array([[0.0], [1.0]]), np.array([[0.1], [0.2]]), 0.9)
    assert table.loc["label_0", "mcc"] == 0 and table.loc["label_0", "precision"] == 0


def test_bootstrap_resamples_equal_sklearn_on_the_same_rows():
    y, p = make_data(n=120, labels=2, decimals=1)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 120, size=(5, 120))
    got = LabelStatistic(y, p, "auroc").on(ResampleChunk(idx))
    for r, row in zip(idx, got):
        for j in range(2):
            keep = ~np.isnan(y[r, j])
            assert row[j] == pytest.approx(roc_auc_score(y[r, j][keep], p[r, j][keep]))


def test_bootstrap_ci_contains_point_narrows_and_is_deterministic():
    small, large = make_data(n=200, seed=1), make_data(n=3000, seed=1)
    ci_small = bootstrap_ci(*small, n_resamples=300, seed=3)
    ci_large = bootstrap_ci(*large, n_resamples=300, seed=3)
    for ci in (ci_small, ci_large):
        assert ci["low"] <= ci["point"] <= ci["high"]
    assert ci_large["high"] - ci_large["low"] < 0.5 * (ci_small["high"] - ci_small["low"])
    assert bootstrap_ci(*small, n_resamples=300, seed=3) == ci_small
    assert bootstrap_ci(*small, n_resamples=300, seed=4) != ci_small


def test_bootstrap_per_label_and_callable_metric():
    y, p = make_data(n=400, labels=3)
    ci = bootstrap_ci(y, p, metric="auroc", n_resamples=200)
    assert ci["point"].shape == (3,) and (ci["low"] <= ci["point"]).all() and (ci["point"] <= ci["high"]).all()
    one = bootstrap_ci(y[:, 0], p[:, 0], metric="auroc", n_resamples=200)
    assert isinstance(one["point"], float) and one["low"] == pytest.approx(ci["low"][0])
    via_callable = bootstrap_ci(y, p, metric=macro_auroc, n_resamples=50)
    via_name = bootstrap_ci(y, p, metric="macro_auroc", n_resamples=50)
    assert via_callable == pytest.approx(via_name)


def test_paired_pvalue_small_for_better_model_and_one_for_identical():
    y, good = make_data(n=800, labels=3, signal=1.5, seed=2, nan_frac=0)
    rng = np.random.default_rng(9)
    weak = 0.3 * good + 0.7 * rng.random(good.shape)
    better = paired_bootstrap_pvalue(y, good, weak, n_resamples=300)
    assert better["diff"] > 0 and better["p_value"] < 0.01 and better["low"] > 0
    same = paired_bootstrap_pvalue(y, good, good.copy(), n_resamples=300)
    assert same["diff"] == 0 and same["p_value"] == 1.0


def test_ensemble_is_the_mean_and_checks_shapes():
    a, b = np.array([[0.2, 0.4]]), np.array([[0.6, 0.8]])
    np.testing.assert_allclose(ensemble([a, b]), [[0.4, 0.6]])
    with pytest.raises(ParameterError, match="prob_list"):
        ensemble([a, np.zeros((2, 2))])


def test_roc_curve_points_drop_nan():
    fpr, tpr, _ = roc_curve_points([0, 1, np.nan, 1], [0.1, 0.9, 0.5, 0.8])
    assert fpr[-1] == 1 and tpr[-1] == 1 and np.trapezoid(tpr, fpr) == pytest.approx(1.0)
