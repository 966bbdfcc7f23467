"""UniCLIP (Lee et al., NeurIPS 2022, arXiv 2209.13430) with Jang et al.'s relaxed positives substituted (eq. 3).

What the UniCLIP paper states (abstract): image-text (inter-domain) and image-image (intra-domain) pairs are
contrasted in ONE universal embedding space, made consistent by (1) an augmentation-aware feature embedding,
(2) the MP-NCE loss and (3) a domain-dependent similarity measure. Papers that adopt MP-NCE describe it as
treating each positive pair separately: every positive competes only against the anchor's negatives.

The method section of UniCLIP was not reachable when this was written, so the following are OUR choices
(stated in papers/loss_relaxation/README.md's deviation table and published.yaml's quirks):
- the universal set of a batch is V augmented image views and the text of every sample; each embedding is an
  anchor whose positives are the other embeddings of its sample and whose negatives are all embeddings of other
  samples (itself excluded); the loss is the mean over anchors of the mean over their positives of
  -log(e^{s_p} / (e^{s_p} + sum_n e^{s_n}));
- the domain-dependent similarity is s = (cos - b_d) / tau_d with a learnable temperature tau_d (init 0.07) and
  offset b_d (init 0) per domain pair d in {image-image, image-text, text-text};
- the augmentation-aware embedding adds an MLP of the view's augmentation parameters to the pooled image
  feature before the projection (`models.dual_encoder`), the identity parameters (zeros) at evaluation;
- relaxation (eq. 3) transforms the cosine of every positive pair, before the domain similarity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ParameterError
from ..models.uniclip import IMAGE, TEXT, DomainSimilarity
from .distributed import gather_batch
from .precision import full_precision
from .relaxed import relax_positive


def mp_nce_loss(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Multi-positive NCE: each (anchor, positive) pair against the anchor's negatives only; mean over an
    anchor's positives, then over anchors. `positive` (M, M) bool; an entry is a negative when it is neither a
    positive nor the anchor itself."""
    if logits.shape != positive.shape or logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ParameterError(f"mp_nce_loss needs square logits and positive mask, got {tuple(logits.shape)} "
                             f"and {tuple(positive.shape)}")
    eye = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
    negative = ~(positive | eye)
    neg_lse = torch.logsumexp(logits.masked_fill(~negative, float("-inf")), dim=1, keepdim=True)
    per_pair = torch.logaddexp(logits, neg_lse) - logits  # -log(e^p / (e^p + sum_n e^n))
    per_anchor = (per_pair * positive).sum(1) / positive.sum(1).clamp(min=1)
    return per_anchor[positive.any(1)].mean()


def uniclip_loss(views: list[torch.Tensor], text: torch.Tensor, similarity: DomainSimilarity,
                 relax: tuple[float, float] | None = None) -> torch.Tensor:
    """MP-NCE over the universal set {view_1 .. view_V, text} of a (global) batch; see the module docstring."""
    if not views or any(v.shape != text.shape for v in views) or text.ndim != 2:
        raise ParameterError(f"uniclip_loss needs V >= 1 views and a text batch of one shape (B, D), got "
                             f"{[tuple(v.shape) for v in views]} and {tuple(text.shape)}")
    parts = [gather_batch(x) for x in (*views, text)]
    b = parts[0].shape[0]
    z = F.normalize(full_precision(torch.cat(parts)), dim=-1)
    sample = torch.arange(b, device=z.device).repeat(len(parts))
    domains = torch.cat([torch.full((b * len(views),), IMAGE), torch.full((b,), TEXT)]).to(z.device)
    positive = (sample[:, None] == sample[None, :]) & ~torch.eye(len(sample), dtype=torch.bool, device=z.device)
    cos = z @ z.T
    if relax is not None:
        cos = torch.where(positive, relax_positive(cos, *relax), cos)
    return mp_nce_loss(similarity(cos, domains), positive)
