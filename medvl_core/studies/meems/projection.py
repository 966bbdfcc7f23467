"""Low-dimensional projections of feature matrices for plots."""

from __future__ import annotations

import numpy as np

from ...errors import ParameterError


def pca(features, n_components: int = 2, seed: int = 0) -> np.ndarray:
    """Standardise the features, then project on their first `n_components` principal components."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or not 1 <= n_components <= min(x.shape):
        raise ParameterError(f"n_components={n_components} must be between 1 and min(n_samples, n_features) of "
                             f"features with shape {x.shape}")
    return PCA(n_components, random_state=seed).fit_transform(StandardScaler().fit_transform(x))
