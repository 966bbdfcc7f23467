"""Cosine similarity statistics over embeddings (e.g. how often two reports say the same thing)."""

from __future__ import annotations

import numpy as np


def pairwise_cosine(embeddings) -> np.ndarray:
    """N x N cosine similarity of the rows of `embeddings` (array or tensor)."""
    x = np.asarray(embeddings.detach().cpu() if hasattr(embeddings, "detach") else embeddings, dtype=np.float64)
    x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    return x @ x.T


def off_diagonal(matrix: np.ndarray) -> np.ndarray:
    """The off-diagonal entries of a square matrix, flattened."""
    return matrix[~np.eye(matrix.shape[0], dtype=bool)]


def near_duplicate_fraction(sim: np.ndarray, threshold: float = 0.9) -> float:
    """Fraction of distinct pairs whose similarity is at least `threshold` (would-be false negatives)."""
    return float(np.mean(off_diagonal(sim) >= threshold))
