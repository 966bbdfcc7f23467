"""Contrastive objectives: symmetric InfoNCE (CLIP), optional relaxed positives (Jang et al.), SimCLR, SLIP."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from ..errors import ParameterError
from .distributed import gather_batch
from .precision import full_precision
from .relaxed import relaxed_similarity
from .uniclip import uniclip_loss

FRAMEWORKS = ("clip", "slip", "uniclip")


def relax_args(relax) -> tuple[float, float] | None:
    """None | (threshold, alpha) | dict(threshold=0.5, alpha=10.0) -> None or a (threshold, alpha) tuple."""
    if relax is None or relax is False:
        return None
    if relax is True:
        return 0.5, 10.0
    if isinstance(relax, Mapping):
        unknown = set(relax) - {"threshold", "alpha"}
        if unknown:
            raise ParameterError(f"relax has unknown keys {sorted(unknown)}; use dict(threshold=0.5, alpha=10.0)")
        return float(relax.get("threshold", 0.5)), float(relax.get("alpha", 10.0))
    try:
        threshold, alpha = relax
        return float(threshold), float(alpha)
    except (TypeError, ValueError):
        raise ParameterError(
            f"relax={relax!r}; use None, (threshold, alpha) or dict(threshold=..., alpha=...)"
        ) from None


def clip_logits(img: torch.Tensor, txt: torch.Tensor, logit_scale, relax=None) -> torch.Tensor:
    """Scaled cosine matrix (image rows, text columns), the diagonal relaxed first when `relax` is given."""
    sim = F.normalize(full_precision(img), dim=-1) @ F.normalize(full_precision(txt), dim=-1).T
    args = relax_args(relax)
    if args is not None:
        sim = relaxed_similarity(sim, *args)
    return torch.as_tensor(logit_scale, dtype=sim.dtype, device=sim.device) * sim


def clip_loss(img: torch.Tensor, txt: torch.Tensor, logit_scale, relax=None) -> torch.Tensor:
    """Symmetric InfoNCE over matched rows: mean of image->text and text->image cross-entropy.

    Inputs are L2-normalised here (idempotent for normalised embeddings); `relax=(threshold, alpha)` passes the
    cosine matrix's diagonal through `relaxed_similarity` before scaling (Jang et al., eq. 3). Under
    torch.distributed the loss is the global batch's on every rank (`losses.distributed`).
    """
    if img.ndim != 2 or img.shape != txt.shape:
        raise ParameterError(
            f"clip_loss needs matching (B, D) embeddings, got {tuple(img.shape)} and {tuple(txt.shape)}"
        )
    img, txt = gather_batch(img), gather_batch(txt)
    logits = clip_logits(img, txt, logit_scale, relax)
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def simclr_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent over 2B views: each view's positive is its pair, negatives the other 2B-2 views (self excluded)."""
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ParameterError(f"simclr_loss needs matching (B, D) views, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if temperature <= 0:
        raise ParameterError(f"temperature must be > 0, got {temperature}")
    z1, z2 = gather_batch(z1), gather_batch(z2)  # global batch under torch.distributed
    z = F.normalize(full_precision(torch.cat([z1, z2])), dim=-1)
    n = z1.shape[0]
    logits = (z @ z.T) / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


class ContrastiveObjective:
    """`objective(model, batch) -> dict(loss, clip, ssl)`: a training engine's loss_fn for a DualEncoder.

    framework="clip": symmetric InfoNCE (relaxed positives when `relax` is set).
    framework="slip": that plus `ssl_weight` x SimCLR on two image views through the model's SSL head (build it
    with `build_dual_encoder(..., ssl_dim=256)`).
    framework="uniclip": MP-NCE over the universal set {image, its views, text} with the model's augmentation-aware
    embedding and domain-dependent similarity (`build_dual_encoder(..., aug_params=5, domain_similarity=True)`;
    `losses.uniclip`), relaxed positives when `relax` is set; its one loss covers both domains, so "ssl" is 0.
    Views come as pixels `batch["views"]` (V, B, 3, H, W) or as cached pooled features `batch["view_features"]`
    (B, V, tower dim), with `batch["view_params"]` (same leading dims, P) for UniCLIP. Everything goes through one
    model call (one forward under DDP); the heads live in the model, so they are trained, checkpointed and saved.
    """

    def __init__(self, framework: str = "clip", relax=None, ssl_weight: float = 1.0, ssl_temperature: float = 0.1):
        if framework not in FRAMEWORKS:
            raise ParameterError(f"framework={framework!r}; use one of {', '.join(FRAMEWORKS)}")
        self.framework, self.relax = framework, relax_args(relax)
        self.ssl_weight, self.ssl_temperature = float(ssl_weight), float(ssl_temperature)

    def __repr__(self):
        return (
            f"ContrastiveObjective(framework={self.framework!r}, relax={self.relax}, "
            f"ssl_weight={self.ssl_weight}, ssl_temperature={self.ssl_temperature})"
        )

    def __call__(self, model, batch: Mapping) -> dict:
        inputs = _model_inputs(batch)
        if self.framework == "clip":
            img, txt, scale = model(**inputs)
            clip = clip_loss(img, txt, scale, self.relax)
            return {"loss": clip, "clip": clip.detach(), "ssl": torch.zeros((), device=clip.device)}
        views, n_views = _views(batch, self.framework)
        if self.framework == "slip" and getattr(model, "module", model).ssl_head is None:
            raise ParameterError("framework='slip' needs the model's SSL head; build it with build_dual_encoder(..., ssl_dim=256)")
        img, txt, scale, out = model(**inputs, **views)
        chunks = list(out.split(out.shape[0] // n_views))
        if self.framework == "slip":
            clip = clip_loss(img, txt, scale, self.relax)
            ssl = simclr_loss(chunks[0], chunks[1], self.ssl_temperature)
            return {"loss": clip + self.ssl_weight * ssl, "clip": clip.detach(), "ssl": ssl.detach()}
        similarity = getattr(model, "module", model).domain_similarity  # DDP wraps the model in .module
        if similarity is None:
            raise ParameterError("framework='uniclip' needs a model built with domain_similarity=True and aug_params=5")
        loss = uniclip_loss([img, *chunks], txt, similarity, self.relax)
        return {"loss": loss, "clip": loss.detach(), "ssl": torch.zeros((), device=loss.device)}


def _views(batch: Mapping, framework: str) -> tuple[dict, int]:
    """Model keyword arguments carrying the image views (flattened view-major) and the number of views."""
    if batch.get("views") is not None and batch["views"].ndim == 5:
        views = batch["views"]
        out = {"views": views.flatten(0, 1)}
        if batch.get("view_params") is not None:
            out["view_params"] = batch["view_params"].flatten(0, 1)
        return out, views.shape[0]
    if batch.get("view_features") is not None and batch["view_features"].ndim == 3:
        features = batch["view_features"].transpose(0, 1)  # (V, B, D)
        out = {"view_features": features.flatten(0, 1)}
        if batch.get("view_params") is not None:
            out["view_params"] = batch["view_params"].transpose(0, 1).flatten(0, 1)
        return out, features.shape[0]
    raise ParameterError(
        f"framework={framework!r} needs image views: batch['views'] (V, B, 3, H, W) from ImageTextPairs(..., slip=True) "
        "or batch['view_features'] (B, V, D) from FeaturePairs(..., view_features=...)")


def _model_inputs(batch: Mapping) -> dict:
    """The DualEncoder inputs present in a batch: pixels/tokens, or cached tower features."""
    keys = ("images", "input_ids", "attention_mask", "image_features", "text_features")
    inputs = {key: batch[key] for key in keys if key in batch}
    if not ({"images", "image_features"} & inputs.keys() and {"input_ids", "text_features"} & inputs.keys()):
        raise ParameterError("a contrastive batch needs images (or image_features) and input_ids (or text_features)")
    return inputs
