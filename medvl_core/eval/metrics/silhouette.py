"""Silhouettes of count-weighted (bootstrap) draws of items, from one distance matrix.

A bootstrap resample draws each item some number of times; sklearn's `silhouette_samples` on the repeated
rows gives each drawn item's silhouette. `silhouettes` computes the same from the draw counts with matrix
products (no repeated rows), for many resamples at once; `SilhouetteStatistic` is the mean silhouette of
selected items as a statistic the bootstrap and the claims engine resample (`point()`, `on(chunk)`).
"""

from __future__ import annotations

import numpy as np


def distance_matrix(x: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix of the rows of x."""
    x = np.asarray(x, dtype=np.float64)
    sq = (x * x).sum(1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))


def silhouettes(d: np.ndarray, groups: np.ndarray, counts: np.ndarray, rows=None) -> np.ndarray:
    """Silhouettes of the items `rows` (default all) with every item drawn `counts` times (resamples x items).

    sklearn's silhouette_samples on the repeated items: a = mean distance to the other draws of the item's
    cluster, b = the smallest mean distance to the draws of another cluster, s = (b - a) / max(a, b); 0 for
    an item alone in its cluster. Returns resamples x rows; NaN where fewer than two clusters were drawn.
    """
    counts = np.atleast_2d(np.asarray(counts, dtype=d.dtype))
    rows = np.arange(len(groups)) if rows is None else np.asarray(rows)
    r, n = counts.shape
    onehot = np.eye(int(groups.max()) + 1, dtype=d.dtype)[groups]
    k = onehot.shape[1]
    weighted = (counts[:, :, None] * onehot[None]).transpose(1, 0, 2).reshape(n, r * k)
    sums = (d[rows] @ weighted).reshape(len(rows), r, k).transpose(1, 0, 2).astype(np.float64)  # r x rows x k
    size = (counts @ onehot).astype(np.float64)  # resamples x clusters
    g = groups[rows]
    own = size[:, g] - 1
    a = sums[:, np.arange(len(rows)), g] / np.maximum(own, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_other = np.where(size[:, None, :] > 0, sums / np.where(size > 0, size, 1)[:, None, :], np.inf)
    mean_other[:, np.arange(len(rows)), g] = np.inf
    b = mean_other.min(2)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(own > 0, (b - a) / np.maximum(a, b), 0.0)
    s[(size > 0).sum(1) < 2] = np.nan
    return s


class SilhouetteStatistic:
    """Mean silhouette of the selected items (weighted by how often each was drawn), averaged over groupings.

    Distances are held in float32 (the matrix products dominate; silhouettes agree with float64 to ~1e-6).
    """

    BLOCK = 64  # resamples per matrix product

    def __init__(self, d: np.ndarray, groupings: list[np.ndarray], select: np.ndarray):
        self.d, self.groupings = np.asarray(d, dtype=np.float32), [np.asarray(g) for g in groupings]
        self.rows = np.flatnonzero(select)
        self.n = len(d)

    def point(self) -> float:
        """The mean silhouette with every item drawn once."""
        return float(self._on_counts(np.ones((1, self.n)))[0])

    def on(self, chunk) -> np.ndarray:
        """The statistic on each resample of a `ResampleChunk` (its `counts`: resamples x items)."""
        counts = chunk.counts
        return np.concatenate([self._on_counts(counts[i:i + self.BLOCK]) for i in range(0, len(counts), self.BLOCK)])

    def _on_counts(self, counts: np.ndarray) -> np.ndarray:
        w = np.asarray(counts, dtype=np.float64)[:, self.rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            per_grouping = [(w * silhouettes(self.d, g, counts, self.rows)).sum(1) / w.sum(1) for g in self.groupings]
        return np.mean(per_grouping, axis=0)
