"""The one bootstrap of eval.metrics: chunked resamples equal one draw, the CI of a mean (Table IV of the perturbed
report study) and the AUROC CIs, pinned to the values the callers' former implementations gave."""

import numpy as np
import pytest

from medvl_core.errors import ParameterError
from medvl_core.eval.metrics import auroc_ci, bootstrap_ci, percentile_interval, resample_chunks
from medvl_core.studies.perturbed_report_discrimination.discrimination import TABLE_IV_QUANTILES

Y = np.array([1, 1, 0, 0, 1, 0, 1, 0, 0, 1], dtype=float)
P = np.array([0.9, 0.8, 0.3, 0.6, 0.55, 0.1, 0.4, 0.35, 0.7, 0.95])


@pytest.mark.parametrize("n", [3, 700, 40_000])
def test_chunked_resamples_are_one_draw_of_the_generator(n):
    chunks = np.concatenate([c.idx for c in resample_chunks(n, 60, seed=4)])
    np.testing.assert_array_equal(chunks, np.random.default_rng(4).integers(0, n, (60, n)))


def test_mean_ci_reproduces_the_former_table_iv_bootstrap():
    values = np.random.default_rng(7).choice([0.0, 1.0, 0.5], size=40)
    ci = bootstrap_ci(values, metric="mean", n_resamples=300, seed=2, quantiles=TABLE_IV_QUANTILES)
    means = values[np.random.default_rng(2).integers(0, 40, (300, 40))].mean(1)
    assert (ci["low"], ci["high"]) == (float(np.quantile(means, (1 - 0.95) / 2)), float(np.quantile(means, (1 + 0.95) / 2)))
    assert ci["point"] == values.mean()
    assert ci == bootstrap_ci(values, metric="mean", n_resamples=300, seed=2, quantiles=TABLE_IV_QUANTILES)


def test_pinned_values_of_the_former_callers():
    ci = bootstrap_ci([0.0, 1.0] * 50, metric="mean", n_resamples=500, seed=1, quantiles=TABLE_IV_QUANTILES)
    assert (ci["low"], ci["high"]) == (0.4047500000000001, 0.59)
    ci = bootstrap_ci([1.0, 0.0, 0.5, 1 / 3, 1.0, 0.0, 1.0, 1.0, 0.25, 0.0], metric="mean", n_resamples=200, seed=7,
                      quantiles=TABLE_IV_QUANTILES)
    assert (ci["low"], ci["high"]) == (0.23312500000000003, 0.75)
    assert auroc_ci(Y, P, 300, 2) == {"point": 0.84, "low": 0.5218095238095238, "high": 1.0}
    two = bootstrap_ci(np.column_stack([Y, Y[::-1]]), np.column_stack([P, P[::-1] * 0.9]), "macro_auroc", 250, seed=4)
    assert two == {"point": 0.84, "low": 0.5900000000000001, "high": 1.0}


def test_quantile_levels_and_alpha_percentiles_differ_in_the_last_bits():
    stats = np.random.default_rng(0).random(1000)
    by_alpha = percentile_interval(stats, 0.05)
    by_levels = percentile_interval(stats, 0.05, TABLE_IV_QUANTILES)
    assert by_alpha == pytest.approx(by_levels, abs=1e-12) and by_alpha != by_levels
    assert by_levels == (float(np.quantile(stats, (1 - 0.95) / 2)), float(np.quantile(stats, (1 + 0.95) / 2)))


def test_auroc_ci_is_nan_with_one_class_and_mean_needs_no_scores():
    assert all(np.isnan(v) for v in auroc_ci(np.ones(5), np.arange(5.0), 10, 0).values())
    with pytest.raises(ParameterError):
        bootstrap_ci([0.5, 1.0], [0.1, 0.2], metric="mean")
    with pytest.raises(ParameterError):
        bootstrap_ci([0, 1], metric="auroc")
    with pytest.raises(ParameterError):
        bootstrap_ci([0.5, 1.0], metric="mean", n_resamples=0)
