"""Cosine k-nearest-neighbour retrieval and voting (the retrieval step of CLIP-kNN answering)."""

from __future__ import annotations

import numpy as np


def cosine_topk(queries, gallery, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of the k most similar gallery rows per query, best first."""
    q = _unit(np.asarray(queries, dtype=np.float64))
    g = _unit(np.asarray(gallery, dtype=np.float64))
    k = min(k, len(g))
    sim = q @ g.T
    idx = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(sim, idx, axis=1)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
