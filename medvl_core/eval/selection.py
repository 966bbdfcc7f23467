"""Selection on validation data only: every function that chooses a model, epoch, threshold or variant calls
`require_validation` on its inputs, which refuses arrays tagged as test data (`data.splits.tag_split`; a test
split's label matrix carries the tag) and splits named "test"."""

from __future__ import annotations

from ..data.splits import split_of
from ..errors import ParameterError


def require_validation(*values, what: str, split: str | None = None) -> None:
    """Raise if any of `values` is tagged as test data or `split` names the test split."""
    named = [split] + [split_of(v) for v in values]
    if "test" in named:
        raise ParameterError(f"{what} received test-split data; models, epochs, thresholds and variants are "
                             "selected on the validation split only (pass the validation labels and scores)")
