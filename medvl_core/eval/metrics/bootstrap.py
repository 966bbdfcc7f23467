"""Bootstrap over resampled rows: percentile CIs of AUROC statistics or of a mean, paired tests, per-label CI tables.

Everything is vectorised numpy: each resample of rows becomes per-row counts, and a weighted Mann-Whitney
AUROC is evaluated for all resamples of a chunk at once, so 1,000 resamples of 100k images take seconds.
The resamples depend only on (rows, n_resamples, seed): drawn in chunks from one generator, they are the
same draws as a single (n_resamples, rows) call of `rng.integers`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from ...errors import ParameterError
from .arrays import as_float_array, label_score_matrices
from .roc import AucIndex

METRICS = ("macro_auroc", "auroc")  # named statistics of (labels, scores); bootstrap_ci also takes "mean"
_CHUNK_ELEMENTS = 1_000_000  # resampled rows held at once (resamples x rows); cache-friendly


class ResampleChunk:
    """A block of bootstrap resamples: row indices (chunk x n) and, computed once on demand, row counts."""

    def __init__(self, idx: np.ndarray):
        self.idx, self._counts = idx, None

    @property
    def counts(self) -> np.ndarray:
        """How often each row appears in each resample (chunk x n; int32 unless n is huge)."""
        if self._counts is None:
            c, n = self.idx.shape
            self._counts = np.empty((c, n), dtype=np.int32 if n < 10_000_000 else np.int64)
            for r in range(c):
                self._counts[r] = np.bincount(self.idx[r], minlength=n)
        return self._counts


def resample_chunks(n: int, n_resamples: int, seed: int) -> Iterator[ResampleChunk]:
    """Blocks of bootstrap resamples of n rows; the same resamples for a given (n, seed)."""
    if n_resamples < 1:
        raise ParameterError(f"n_resamples: {n_resamples}; pass a positive number (1000 is usual)")
    rng = np.random.default_rng(seed)
    size = max(1, _CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, n_resamples, size):
        yield ResampleChunk(rng.integers(0, n, size=(min(size, n_resamples - start), n)))


class LabelStatistic:
    """A bootstrap-able statistic of (labels, scores): the full-data value and its value on each resample of a chunk."""

    def __init__(self, Y, P, metric):
        if not (callable(metric) or metric in METRICS):
            raise ParameterError(f"metric: unknown {metric!r}; use one of {METRICS} or a function (Y, P) -> float")
        self.y, self.p, self.metric = *label_score_matrices(Y, P), metric
        self.n = len(self.y)
        self.one_label = as_float_array(Y, "Y").ndim == 1
        self.index = (
            None if callable(metric) else [AucIndex(self.y[:, j], self.p[:, j]) for j in range(self.y.shape[1])]
        )

    def _reduce(self, per_label: np.ndarray):
        """Per-label AUROCs -> the requested statistic (per label, scalar, or macro mean)."""
        if self.metric == "macro_auroc":
            with _quiet():
                return np.nanmean(per_label, axis=-1)
        return per_label[..., 0] if self.one_label else per_label

    def point(self):
        """Statistic on the full data."""
        if callable(self.metric):
            return float(self.metric(self._out(self.y), self._out(self.p)))
        return self._reduce(np.array([ix.point() for ix in self.index]))

    def on(self, chunk: ResampleChunk) -> np.ndarray:
        """Statistic on each resample of a chunk."""
        if callable(self.metric):
            return np.array([float(self.metric(self._out(self.y[r]), self._out(self.p[r]))) for r in chunk.idx])
        return self._reduce(np.stack([ix.weighted(chunk.counts) for ix in self.index], axis=-1))

    def _out(self, a: np.ndarray) -> np.ndarray:
        """Arrays handed to a callable metric keep the caller's dimensionality."""
        return a[:, 0] if self.one_label else a


class MeanStatistic:
    """The mean of per-row values (e.g. per-image credit): the full-data value and each resample's."""

    def __init__(self, values):
        self.values = as_float_array(values, "Y")
        self.n = len(self.values)

    def point(self) -> float:
        """Mean of all values."""
        return float(self.values.mean())

    def on(self, chunk: ResampleChunk) -> np.ndarray:
        """Mean of each resample of a chunk."""
        return self.values[chunk.idx].mean(1)


@contextmanager
def _quiet():
    """Silence numpy's 'mean of empty slice' warning for all-NaN resamples."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _check_alpha(alpha: float) -> None:
    """alpha must lie strictly between 0 and 1."""
    if not 0 < alpha < 1:
        raise ParameterError(f"alpha: {alpha}; pass a level in (0, 1), e.g. 0.05 for a 95% interval")


def percentile_interval(stats: np.ndarray, alpha: float, quantiles: tuple[float, float] | None = None) -> tuple:
    """(low, high) over resamples, ignoring NaN resamples: the 100 alpha/2 and 100 (1 - alpha/2) percentiles, or
    the two `quantiles` levels when given (the same interval can differ in the last bits: 0.025 != (1 - 0.95) / 2)."""
    with _quiet():
        if quantiles is None:
            low, high = np.nanpercentile(stats, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
        else:
            low, high = np.nanquantile(stats, list(quantiles), axis=0)
    return _scalar(low), _scalar(high)


def _scalar(v):
    """0-d arrays become floats; per-label arrays stay arrays."""
    return float(v) if np.ndim(v) == 0 else np.asarray(v)


def _statistic(Y, P, metric):
    """The statistic to bootstrap: a mean of Y's values (metric 'mean', no P) or a statistic of (Y, P)."""
    if (metric == "mean") != (P is None):
        raise ParameterError("P: pass scores with a label metric, and none with metric='mean' (a CI of Y's mean)")
    return MeanStatistic(Y) if metric == "mean" else LabelStatistic(Y, P, metric)


def bootstrap_ci(
    Y, P=None, metric: str | Callable = "macro_auroc", n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0,
    quantiles: tuple[float, float] | None = None,
) -> dict:
    """Percentile bootstrap CI over resampled rows: dict(point, low, high); per-label arrays for 'auroc' on (N, L).

    metric: 'macro_auroc', 'auroc', a function (Y, P) -> float, or 'mean' (the mean of the values Y, no P).
    quantiles: the interval's two quantile levels, replacing alpha's percentiles (see `percentile_interval`).
    """
    _check_alpha(alpha)
    m = _statistic(Y, P, metric)
    stats = np.concatenate([m.on(chunk) for chunk in resample_chunks(m.n, n_resamples, seed)])
    low, high = percentile_interval(stats, alpha, quantiles)
    return {"point": _scalar(m.point()), "low": low, "high": high}


def paired_bootstrap_pvalue(
    Y, P_a, P_b, metric: str | Callable = "macro_auroc", n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05
) -> dict:
    """Two-sided paired bootstrap test of metric(a) - metric(b) on shared resamples: dict(diff, p_value, low, high).

    p = (1 + #{|d* - d| >= |d|}) / (1 + B): how often the centred resampled difference is at least as
    extreme as the observed one (identical models give p = 1).
    """
    _check_alpha(alpha)
    a, b = LabelStatistic(Y, P_a, metric), LabelStatistic(Y, P_b, metric)
    diffs = np.concatenate([a.on(chunk) - b.on(chunk) for chunk in resample_chunks(a.n, n_resamples, seed)])
    diff = np.asarray(a.point() - b.point())
    with np.errstate(invalid="ignore"):
        extreme = np.abs(diffs - diff) >= np.abs(diff) - 1e-12
    p_value = (1 + np.sum(extreme & ~np.isnan(diffs), axis=0)) / (1 + np.sum(~np.isnan(diffs), axis=0))
    low, high = percentile_interval(diffs, alpha)
    return {"diff": _scalar(diff), "p_value": _scalar(p_value), "low": low, "high": high}


def auroc_ci(y: np.ndarray, p: np.ndarray, n_resamples: int, seed: int) -> dict:
    """One label's AUROC with a 95% percentile bootstrap CI as floats (all NaN when a class is missing)."""
    if len(np.unique(y)) < 2:
        return {"point": np.nan, "low": np.nan, "high": np.nan}
    ci = bootstrap_ci(y[:, None], p[:, None], "auroc", n_resamples=n_resamples, seed=seed)
    return {k: float(np.ravel(v)[0]) for k, v in ci.items()}
