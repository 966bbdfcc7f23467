"""Zhong et al.'s perturbation loss and their total pre-training objective (global + local + perturbation).

Perturbation loss: each image must pick its own report among {original report, its perturbations}
(word-order shuffles, antonyms; `text.perturb`), a cross-entropy over the cosines / temperature of the
image's global embedding with those texts' global embeddings. Total: L = L_global + alpha L_local +
beta L_pert (alpha = beta = 0.1, temperature 0.07 in the paper).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ParameterError
from .contrastive import clip_loss
from .local import GAMMA1, GAMMA2, GAMMA3, local_contrastive_loss
from .precision import full_precision

TEMPERATURE = 0.07


def perturbation_logits(image: torch.Tensor, original: torch.Tensor, perturbed: torch.Tensor,
                        mask: torch.Tensor | None = None, temperature: float = TEMPERATURE) -> torch.Tensor:
    """(B, 1 + K) cosines / temperature of each image with [its original report, its K perturbations]; masked
    (absent) perturbations get -inf."""
    if image.ndim != 2 or original.shape != image.shape or perturbed.ndim != 3 or perturbed.shape[0] != image.shape[0] \
            or perturbed.shape[-1] != image.shape[-1]:
        raise ParameterError(f"perturbation loss needs image (B, D), original (B, D), perturbed (B, K, D); got "
                             f"{tuple(image.shape)}, {tuple(original.shape)}, {tuple(perturbed.shape)}")
    if temperature <= 0:
        raise ParameterError(f"temperature must be > 0, got {temperature}")
    img = F.normalize(full_precision(image), dim=-1)
    texts = F.normalize(full_precision(torch.cat([original.unsqueeze(1), perturbed], dim=1)), dim=-1)
    logits = torch.einsum("bd,bkd->bk", img, texts) / temperature
    if mask is not None:
        if mask.shape != perturbed.shape[:2]:
            raise ParameterError(f"mask must be (B, K) = {tuple(perturbed.shape[:2])}, got {tuple(mask.shape)}")
        keep = torch.cat([torch.ones_like(mask[:, :1], dtype=torch.bool), mask.bool()], dim=1)
        logits = logits.masked_fill(~keep, float("-inf"))
    return logits


def perturbation_loss(image: torch.Tensor, original: torch.Tensor, perturbed: torch.Tensor,
                      mask: torch.Tensor | None = None, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Mean cross-entropy of choosing the original report (index 0) among it and its perturbations."""
    logits = perturbation_logits(image, original, perturbed, mask, temperature)
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


@dataclass(frozen=True)
class LossWeights:
    """Weights of the local (alpha) and perturbation (beta) terms; the global term always has weight 1."""

    local: float = 0.0
    perturbation: float = 0.0

    def __post_init__(self):
        if self.local < 0 or self.perturbation < 0:
            raise ParameterError(f"loss weights must be >= 0, got local={self.local}, perturbation={self.perturbation}")


class MultiScaleObjective:
    """`objective(model, batch) -> dict(loss, global, local, perturbation)`: the engine's loss_fn.

    `model(**inputs)` must return an object with `image` (B, D), `regions` (B, R, D), `text` (B + B*K, D: the B
    originals first, then each image's K perturbations), `words` (B, W, D) and `word_mask` of the B reports (the rows `word_ids` covers: passed only when the local
    term is on); the batch carries `perturbation_mask` (B, K). Terms with weight 0 are not computed (reported as 0).
    """

    def __init__(self, weights: LossWeights, temperature: float = TEMPERATURE, gamma1: float = GAMMA1,
                 gamma2: float = GAMMA2, gamma3: float = GAMMA3):
        if temperature <= 0:
            raise ParameterError(f"temperature must be > 0, got {temperature}")
        self.weights, self.temperature, self.gammas = weights, float(temperature), (gamma1, gamma2, gamma3)

    def __repr__(self):
        return f"MultiScaleObjective({self.weights}, temperature={self.temperature}, gammas={self.gammas})"

    def __call__(self, model, batch: Mapping) -> dict:
        n = len(batch["perturbation_mask"])  # B images; the words of their B reports only, when the local term is on
        word_ids = batch["word_ids"][:n] if self.weights.local else None
        out = model(batch["images"], batch["text_input"], batch["attention_mask"], word_ids)
        n = out.image.shape[0]
        zero = torch.zeros((), device=out.image.device)
        terms = {"global": clip_loss(out.image, out.text[:n], 1.0 / self.temperature), "local": zero,
                 "perturbation": zero}
        if self.weights.local:
            terms["local"] = local_contrastive_loss(out.regions, out.words[:n], out.word_mask[:n], *self.gammas)
        if self.weights.perturbation:
            mask = batch["perturbation_mask"]
            perturbed = out.text[n:].reshape(n, mask.shape[1], -1)
            terms["perturbation"] = perturbation_loss(out.image, out.text[:n], perturbed, mask, self.temperature)
        loss = terms["global"] + self.weights.local * terms["local"] + self.weights.perturbation * terms["perturbation"]
        return {"loss": loss, **{k: v.detach() for k, v in terms.items()}}
