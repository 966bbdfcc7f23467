"""The CheXpert label space shared by every chest X-ray loader (order is part of the contract)."""

from ..text.observations import CHEXPERT_LABELS  # noqa: F401  (single source of the 14 names)
