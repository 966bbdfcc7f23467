"""GLoRIA-style local attentive contrastive loss (Huang et al. 2021), as used by Zhong et al.

Words attend over image sub-regions: with projected, L2-normalised word features w_i and region
features v_j, a_ij = softmax_j(gamma1 * w_i . v_j) and the attended context is c_i = sum_j a_ij v_j.
An image-report pair scores R = (1 / gamma2) * log sum_i exp(gamma2 * cos(c_i, w_i)) over the report's
words, and the loss is the symmetric (image -> text, text -> image) cross-entropy over the batch of
pair scores scaled by gamma3.

A word's feature is the mean of its sub-word tokens, found from the tokenizer's word ids (fast
tokenizers) and character offsets; special tokens, padding and punctuation-only words are not words
(`word_index`, `pool_words`: in `models.multiscale`, the layer below, re-exported here).
This follows the papers, not the public code: Zhong et al.'s grouped tokens by token-type ids and summed
`loss0 + loss1 / 2`; GLoRIA's applies a softmax over words before the one over regions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ParameterError
from ..models.multiscale import NOT_A_WORD, pool_words, word_index  # noqa: F401  (the layer below owns them)
from .distributed import gather_batch, gather_padded
from .precision import full_precision

GAMMA1, GAMMA2, GAMMA3 = 4.0, 5.0, 10.0  # GLoRIA's attention, aggregation and logit temperatures


def _cosine_attention(regions: torch.Tensor, words: torch.Tensor, gamma1: float):
    """(word-region cosines (Bi, Bt, W, R), attention over regions, normalised regions)."""
    _check_local(regions, words)
    v, w = F.normalize(regions, dim=-1), F.normalize(words, dim=-1)
    sim = torch.einsum("ird,twd->itwr", v, w)
    return sim, torch.softmax(gamma1 * sim, dim=-1), v


def local_similarity(regions: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor, gamma1: float = GAMMA1,
                     gamma2: float = GAMMA2) -> torch.Tensor:
    """Pair scores (Bi, Bt): R(image i, text t) = log(sum_words exp(gamma2 * cos(context, word))) / gamma2.

    cos(c, w) is computed without materialising the contexts c (Bi x Bt x W x D): c.w = sum_r a_r (v_r.w) and
    |c|^2 = a^T (V V^T) a. A text without words scores 0.
    """
    sim, attention, v = _cosine_attention(regions, words, gamma1)
    norm_sq = ((attention @ (v @ v.transpose(1, 2)).unsqueeze(1)) * attention).sum(-1)  # a^T G a per word
    cosine = (attention * sim).sum(-1) / norm_sq.clamp(min=1e-12).sqrt()
    mask = word_mask.bool()
    score = torch.logsumexp(gamma2 * cosine.masked_fill(~mask.unsqueeze(0), float("-inf")), dim=-1) / gamma2
    return torch.where(mask.any(-1).unsqueeze(0), score, torch.zeros_like(score))


def local_contrastive_loss(regions: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor,
                           gamma1: float = GAMMA1, gamma2: float = GAMMA2, gamma3: float = GAMMA3) -> torch.Tensor:
    """Mean of image -> text and text -> image cross-entropy over the (B, B) matrix of gamma3-scaled pair scores."""
    _check_local(regions, words)
    if regions.shape[0] != words.shape[0] or word_mask.shape != words.shape[:2]:
        raise ParameterError(f"local loss needs matched pairs: regions {tuple(regions.shape)}, words "
                             f"{tuple(words.shape)}, word_mask {tuple(word_mask.shape)}")
    # global batch under torch.distributed (words padded to the longest report on any rank)
    regions, words = gather_batch(regions), gather_padded(words, dim=1)
    word_mask = gather_padded(word_mask.float(), dim=1).bool()
    logits = gamma3 * local_similarity(full_precision(regions), full_precision(words), word_mask, gamma1, gamma2)
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def _check_local(regions: torch.Tensor, words: torch.Tensor) -> None:
    """Raise unless regions are (Bi, R, D) and words (Bt, W, D) with the same D."""
    if regions.ndim != 3 or words.ndim != 3 or regions.shape[-1] != words.shape[-1]:
        raise ParameterError(f"local attention needs regions (B, R, D) and words (B, W, D), got "
                             f"{tuple(regions.shape)} and {tuple(words.shape)}")

