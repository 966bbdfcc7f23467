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


def knn_predict(queries, gallery, gallery_labels, k: int = 1) -> np.ndarray:
    """Majority label of the k nearest gallery items per query (ties -> the nearer item's label)."""
    idx, _ = cosine_topk(queries, gallery, k)
    labels = np.asarray(gallery_labels)[idx]
    return np.array([_vote(row) for row in labels])


def _vote(labels: np.ndarray):
    """Most frequent label, ties broken by first occurrence (= nearest)."""
    values, first, counts = np.unique(labels, return_index=True, return_counts=True)
    best = np.flatnonzero(counts == counts.max())
    return values[best[np.argmin(first[best])]]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
