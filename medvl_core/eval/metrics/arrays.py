"""Inputs of the metrics: numeric arrays, matching label / score matrices, label names, and model ensembles."""

from __future__ import annotations

import numpy as np

from ...errors import ParameterError


def as_float_array(x, name: str) -> np.ndarray:
    """A float64 numpy array from an array, list or tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name}: expected numbers, got {type(x).__name__}; pass a numeric array") from exc


def label_score_matrices(Y, P) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores as matching (N, L) arrays; 1-D inputs become one column."""
    y, p = as_float_array(Y, "Y"), as_float_array(P, "P")
    y, p = (y[:, None] if y.ndim == 1 else y), (p[:, None] if p.ndim == 1 else p)
    if y.shape != p.shape or y.ndim != 2:
        raise ParameterError(f"Y/P: shapes {y.shape} and {p.shape} differ; pass labels and scores as (N, L) arrays")
    if not np.isfinite(p[~np.isnan(y)]).all():
        raise ParameterError("P: scores contain NaN or inf where a label is stated; fix the model outputs")
    bad = ~np.isnan(y) & (y != 0) & (y != 1)
    if bad.any():
        raise ParameterError("Y: labels must be 0, 1 or NaN (not stated); binarise uncertain labels first")
    return y, p


def column_names(label_names, n: int) -> list[str]:
    """Label names, or label_0..label_{n-1} when none are given."""
    names = [f"label_{i}" for i in range(n)] if label_names is None else list(label_names)
    if len(names) != n:
        raise ParameterError(f"label_names: {len(names)} names for {n} label columns; pass one name per column")
    return names


def ensemble(prob_list) -> np.ndarray:
    """Mean of several models' (e.g. seeds') probability arrays of one shape."""
    arrays = [as_float_array(p, "prob_list") for p in prob_list]
    if not arrays:
        raise ParameterError("prob_list: empty; pass at least one probability array")
    if len({a.shape for a in arrays}) != 1:
        raise ParameterError(
            f"prob_list: shapes differ {[a.shape for a in arrays]}; pass predictions on the same images"
        )
    return np.mean(arrays, axis=0)
