"""Zero-shot multi-label classification with positive/negative prompt pairs, and image-text alignment.

The model follows the dual-encoder protocol: `encode_text(list[str]) -> (n, D)` and
`encode_images(batch) -> (B, D)`, both L2-normalised tensors, and `logit_scale` (the exp'd
temperature, a tensor or float). For each label the probability of "positive" is the softmax over
the pair of scaled cosines (image vs "{label}", image vs "no {label}").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from medvl_core.errors import ParameterError
from medvl_core.models.modules import device_of


def prompt_pairs(
    labels: Sequence[str], positive: str = "{label}", negative: str = "no {label}", lower: bool = True
) -> tuple[list[str], list[str]]:
    """Positive and negative prompt texts per label (labels lower-cased by default)."""
    for name, template in (("positive", positive), ("negative", negative)):
        if "{label}" not in template:
            raise ParameterError(f"{name}: template {template!r} lacks '{{label}}'; e.g. 'no {{label}}'")
    names = [label.lower() if lower else label for label in labels]
    return [positive.format(label=n) for n in names], [negative.format(label=n) for n in names]


def _tensor(x, name: str) -> torch.Tensor:
    """A 2-D float tensor from an array or tensor."""
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ParameterError(f"{name}: expected an (N, D) embedding matrix, got shape {tuple(t.shape)}")
    return t.float()


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length."""
    return torch.nn.functional.normalize(x, dim=-1)


def _images(batch):
    """The image tensor of a batch: a tensor, a dict with 'image', or a tuple/list whose first item is it."""
    if isinstance(batch, dict):
        if "image" not in batch:
            raise ParameterError("batches: a dict batch has no 'image' key; collate images under 'image'")
        return batch["image"]
    if isinstance(batch, (tuple, list)):
        return batch[0]
    return batch


class ZeroShotClassifier:
    """Prompt-pair zero-shot classifier; the prompt embeddings are computed once, at construction."""

    def __init__(
        self,
        model,
        labels: Sequence[str],
        positive: str = "{label}",
        negative: str = "no {label}",
        lower: bool = True,
        logit_scale: float | None = None,
    ):
        if len(labels) == 0:
            raise ParameterError("labels: empty; pass the label names to classify, e.g. CHEXPERT_LABELS")
        self.model, self.labels = model, list(labels)
        self.pos_texts, self.neg_texts = prompt_pairs(self.labels, positive, negative, lower)
        with torch.no_grad():
            text = _tensor(model.encode_text(self.pos_texts + self.neg_texts), "encode_text output")
        self.text_pos, self.text_neg = _unit(text[: len(labels)]), _unit(text[len(labels) :])
        scale = model.logit_scale if logit_scale is None else logit_scale
        self.scale = float(scale.detach() if isinstance(scale, torch.Tensor) else scale)

    def probabilities(self, image_embeddings) -> np.ndarray:
        """(N, L) probability of each label's positive prompt over its (positive, negative) pair."""
        img = _unit(_tensor(image_embeddings, "image_embeddings"))
        if img.shape[1] != self.text_pos.shape[1]:
            raise ParameterError(
                f"image_embeddings: dimension {img.shape[1]} != text dimension {self.text_pos.shape[1]}; "
                "embed images with the same model"
            )
        pos, neg = self.text_pos.to(img.device), self.text_neg.to(img.device)
        logits = self.scale * (img @ pos.T - img @ neg.T)  # softmax over a pair = sigmoid of the difference
        return torch.sigmoid(logits).cpu().numpy().astype(np.float64)

    def predict_dataset(self, batches: Iterable) -> np.ndarray:
        """(N, L) probabilities for a loader / iterable of image batches (embedded batch by batch)."""
        return np.concatenate([self.probabilities(e) for e in self._embedded(batches)])

    def _embedded(self, batches: Iterable):
        """Yield each batch's image embeddings; restores the model's training mode afterwards."""
        device, was_training = device_of(self.model), getattr(self.model, "training", False)
        if hasattr(self.model, "eval"):
            self.model.eval()
        try:
            with torch.no_grad():
                for batch in batches:
                    yield self.model.encode_images(_images(batch).to(device)).float().cpu()
        finally:
            if was_training and hasattr(self.model, "train"):
                self.model.train()


def _paired(a, b, name_a: str, name_b: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Two embedding matrices with one row each per pair, unit-normalised."""
    x, y = _unit(_tensor(a, name_a)), _unit(_tensor(b, name_b))
    if x.shape != y.shape:
        raise ParameterError(
            f"{name_a}/{name_b}: shapes {tuple(x.shape)} and {tuple(y.shape)} differ; pass matched rows"
        )
    return x, y


def alignment(image_emb, text_emb) -> float:
    """Mean cosine similarity of matched (image i, text i) pairs."""
    x, y = _paired(image_emb, text_emb, "image_emb", "text_emb")
    return float((x * y).sum(dim=1).mean())


def report_alignment(image_emb, report_emb) -> float:
    """Report-level alignment: mean cosine between each image and its whole-report embedding."""
    return alignment(image_emb, report_emb)


def sentence_alignment(image_emb, sentence_emb, owner_index) -> float:
    """Sentence-level alignment: mean cosine between each sentence and the image its report belongs to."""
    img = _tensor(image_emb, "image_emb")
    owner = torch.as_tensor(np.asarray(owner_index), dtype=torch.long)
    if owner.ndim != 1 or len(owner) != len(_tensor(sentence_emb, "sentence_emb")):
        raise ParameterError("owner_index: needs one image row index per sentence embedding")
    if len(owner) and (owner.min() < 0 or owner.max() >= len(img)):
        raise ParameterError(f"owner_index: values must lie in [0, {len(img)}); index rows of image_emb")
    return alignment(img[owner], sentence_emb)
