"""Selection on validation data only: every function that chooses a model, epoch, threshold or variant calls
`require_validation` on its inputs, which refuses arrays tagged as test data (`data.splits.tag_split`; a test
split's label matrix carries the tag) and splits named "test". `require_scorable` refuses, before training, a
validation label matrix on which a monitored AUROC cannot be computed."""

from __future__ import annotations

import warnings

import numpy as np

from ..data.splits import split_of
from ..errors import MedvlError, ParameterError


def require_validation(*values, what: str, split: str | None = None) -> None:
    """Raise if any of `values` is tagged as test data or `split` names the test split."""
    named = [split] + [split_of(v) for v in values]
    if "test" in named:
        raise ParameterError(f"{what} received test-split data; models, epochs, thresholds and variants are "
                             "selected on the validation split only (pass the validation labels and scores)")


def label_counts(labels, label_names) -> dict[str, tuple[int, int, int]]:
    """label -> (positives, negatives, blanks) of a label matrix (1 positive, 0 negative, NaN blank)."""
    y = np.asarray(labels, dtype=np.float64)
    stated = np.isfinite(y)
    positives, negatives = (stated & (y > 0.5)).sum(axis=0), (stated & (y <= 0.5)).sum(axis=0)
    return {name: (int(p), int(n), int(b)) for name, p, n, b in zip(label_names, positives, negatives, (~stated).sum(axis=0))}


def require_scorable(labels, label_names, what: str, fix: str) -> None:
    """Raise one MedvlError when no label of `labels` has both a positive and a negative (a macro AUROC over them is
    undefined); warn, naming them, when only some lack one (the mean then leaves them out)."""
    counts = label_counts(labels, label_names)
    unscorable = {name: c for name, c in counts.items() if not (c[0] and c[1])}
    if not unscorable:
        return
    listed = "; ".join(f"{name}: {p} positive, {n} negative, {b} blank" for name, (p, n, b) in unscorable.items())
    if len(unscorable) == len(counts):
        raise MedvlError(f"{what}: no monitored label has both a positive and a negative on its "
                         f"{len(np.asarray(labels))} images ({listed}), so the validation AUROC that selects the "
                         f"epoch cannot be computed; {fix}")
    warnings.warn(f"{what}: {len(unscorable)} of {len(counts)} monitored labels have no positive or no negative "
                  f"({listed}); the validation AUROC averages the others only; {fix}", stacklevel=2)
