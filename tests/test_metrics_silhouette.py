"""Silhouettes of count-weighted draws (eval.metrics.silhouette) equal sklearn's on the repeated items."""

from __future__ import annotations

import numpy as np
import pytest

from medvl_core.eval.metrics import ResampleChunk, SilhouetteStatistic, distance_matrix, silhouettes


def clusters(seed=1):
    """Three Gaussian clusters in 3-D and their labels."""
    rng = np.random.default_rng(seed)
    x = np.r_[rng.normal(0, 1, (12, 3)), rng.normal(3, 1, (10, 3)), rng.normal((0, 4, 0), 1, (8, 3))]
    return x, np.repeat([0, 1, 2], [12, 10, 8])


def test_distance_matrix_is_euclidean():
    x, _ = clusters()
    np.testing.assert_allclose(distance_matrix(x), np.linalg.norm(x[:, None] - x[None], axis=2), atol=1e-6)


def test_silhouettes_equal_sklearn_on_the_repeated_items():
    from sklearn.metrics import silhouette_samples

    x, groups = clusters()
    rng = np.random.default_rng(2)
    d = distance_matrix(x)
    idx = rng.integers(0, len(x), len(x))
    counts = np.bincount(idx, minlength=len(x)).astype(float)
    ours = silhouettes(d, groups, counts[None])[0]
    ref = silhouette_samples(x[idx], groups[idx])
    drawn = np.flatnonzero(counts)
    np.testing.assert_allclose(ours[drawn], [ref[idx == i][0] for i in drawn], atol=1e-9)
    np.testing.assert_allclose(silhouettes(d, groups, np.ones((1, len(x))))[0], silhouette_samples(x, groups), atol=1e-9)
    assert np.isnan(silhouettes(d, groups, (groups == 0)[None].astype(float))).all()  # one cluster drawn


def test_silhouette_statistic_point_and_resamples():
    from sklearn.metrics import silhouette_samples

    x, groups = clusters()
    stat = SilhouetteStatistic(distance_matrix(x), [groups], groups == 1)
    assert stat.point() == pytest.approx(silhouette_samples(x, groups)[groups == 1].mean(), abs=1e-6)
    idx = np.random.default_rng(3).integers(0, len(x), (5, len(x)))
    values = stat.on(ResampleChunk(idx))
    for r in range(5):
        s = silhouette_samples(x[idx[r]], groups[idx[r]])
        assert values[r] == pytest.approx(s[groups[idx[r]] == 1].mean(), abs=1e-5)
