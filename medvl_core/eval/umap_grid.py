"""Takeda et al.'s UMAP grid: cosine UMAP of raw features over n_neighbors x min_dist.

Following the paper, UMAP runs on the raw (unstandardised) features with the cosine metric: cosine ignores each
vector's length, so no per-sample normalisation is needed, and no per-dimension standardisation is applied (the
linear probe standardises; the UMAP figures show the encoder's own geometry). umap-learn's first fit in a process
compiles its numba kernels (~10 s on a 2-core CPU); later fits of a few hundred points take well under a second.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
from tqdm.auto import tqdm

PAPER_GRID = {"n_neighbors": [3, 5, 10, 15, 25, 50, 100, 200, 500, 1000], "min_dist": [0.1, 0.25, 0.5, 0.75, 1.0]}
_EXACT_BELOW = 4096  # umap-learn searches neighbours exactly below this many points (its own threshold)
_CACHE: dict[tuple, np.ndarray] = {}


def clip_grid(n_samples: int, grid: dict = PAPER_GRID) -> dict:
    """The grid without n_neighbors >= n_samples; keeps min(smallest value, n_samples - 1) if none is left."""
    values = [k for k in grid["n_neighbors"] if k < n_samples]
    if not values:
        values = [max(2, min(min(grid["n_neighbors"]), n_samples - 1))]
    return {"n_neighbors": values, "min_dist": list(grid["min_dist"])}


def umap_embeddings(
    features, grid: dict = PAPER_GRID, seed: int = 0, metric: str = "cosine", progress: bool = True
) -> dict[tuple[int, float], np.ndarray]:
    """{(n_neighbors, min_dist): (N, 2)} over the grid clipped to N; deterministic for a seed, memoised in memory."""
    x = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
    grid = clip_grid(len(x), grid)
    digest = hashlib.sha1(x.tobytes() + str(x.shape).encode()).hexdigest()
    points = [(k, d) for k in grid["n_neighbors"] for d in grid["min_dist"]]
    out, knn = {}, {}
    for k, d in tqdm(points, desc=f"UMAP grid ({len(x)} points)", disable=not progress):
        key = (digest, metric, seed, k, d)
        if key not in _CACHE:
            if k not in knn:
                knn[k] = _knn(x, k, metric, seed)
            _CACHE[key] = _fit(x, k, d, metric, seed, knn[k])
        out[(k, d)] = _CACHE[key]
    return out


def clear_cache() -> None:
    """Forget the memoised embeddings."""
    _CACHE.clear()


def _knn(x: np.ndarray, k: int, metric: str, seed: int):
    """umap-learn's approximate k-NN graph, shared by all min_dist values of one n_neighbors (None: exact search)."""
    if len(x) < _EXACT_BELOW:
        return None
    from umap.umap_ import nearest_neighbors

    angular = metric in ("cosine", "correlation")
    return nearest_neighbors(x, k, metric, {}, angular, np.random.RandomState(seed), n_jobs=1)


def _fit(x: np.ndarray, n_neighbors: int, min_dist: float, metric: str, seed: int, knn) -> np.ndarray:
    """One seeded UMAP fit -> float32 (N, 2)."""
    import umap

    options = {"precomputed_knn": knn} if knn is not None else {}
    model = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, random_state=seed, n_jobs=1, **options)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(n_jobs|spectral initialisation|graph is not fully).*")
        return model.fit_transform(x).astype(np.float32)
