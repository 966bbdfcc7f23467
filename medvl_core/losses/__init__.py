"""medvl_core.losses layer: contrastive objectives and Jang et al.'s relaxed positive similarity."""

from .contrastive import FRAMEWORKS, ContrastiveObjective, clip_logits, clip_loss, relax_args, simclr_loss
from .relaxed import relax_positive, relaxed_similarity

__all__ = [
    "FRAMEWORKS",
    "ContrastiveObjective",
    "clip_logits",
    "clip_loss",
    "relax_args",
    "relax_positive",
    "relaxed_similarity",
    "simclr_loss",
]
