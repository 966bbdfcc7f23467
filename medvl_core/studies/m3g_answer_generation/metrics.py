"""Generic metric helpers of the M3G study (kept here until the shared metrics are consolidated)."""

from __future__ import annotations

import numpy as np


def accuracy(predicted, truth) -> float | None:
    """Fraction of cases whose predicted label equals the truth (None without truth)."""
    if truth is None:
        return None
    return float(np.mean([p == t for p, t in zip(predicted, truth)]))
