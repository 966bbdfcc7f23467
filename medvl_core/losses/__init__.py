"""medvl_core.losses layer: contrastive objectives (CLIP, SLIP, UniCLIP; global-batch under torch.distributed),
Jang et al.'s relaxed positive similarity, GLoRIA-style local and perturbation losses, captioning."""

from .captioning import captioning_loss, doubly_stochastic_penalty
from .contrastive import FRAMEWORKS, ContrastiveObjective, clip_logits, clip_loss, relax_args, simclr_loss
from .local import local_contrastive_loss, local_similarity, pool_words, word_index
from .perturbation import LossWeights, MultiScaleObjective, perturbation_logits, perturbation_loss
from .relaxed import relax_positive, relaxed_similarity
from .uniclip import mp_nce_loss, uniclip_loss

__all__ = [
    "FRAMEWORKS",
    "ContrastiveObjective",
    "LossWeights",
    "MultiScaleObjective",
    "captioning_loss",
    "clip_logits",
    "clip_loss",
    "doubly_stochastic_penalty",
    "local_contrastive_loss",
    "local_similarity",
    "mp_nce_loss",
    "perturbation_logits",
    "perturbation_loss",
    "pool_words",
    "relax_args",
    "relax_positive",
    "relaxed_similarity",
    "simclr_loss",
    "uniclip_loss",
    "word_index",
]
