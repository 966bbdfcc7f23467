"""2-D projections of feature matrices for plots."""

from __future__ import annotations

import numpy as np


def pca_2d(features, seed: int = 0) -> np.ndarray:
    """Standardise the features, then project on their first two principal components."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    return PCA(2, random_state=seed).fit_transform(StandardScaler().fit_transform(np.asarray(features, dtype=np.float64)))
