"""Fine-tuning evaluations of Zhong et al. (Tables II and III): an image classifier and a sentence-pair (NLI) classifier.

Both copy the caller's encoder (it is never modified), put a fresh head on the copy, fine-tune all
trainable parameters with the shared engine (``medvl_core.train.train``) and evaluate on the test set.

- Text: ``text_model(list_of_str) -> (N, D)`` (a ``TextEncoder`` from ``build_text_encoder`` is also
  accepted: it is tokenized first). Premise u and hypothesis v are encoded by the same tower and the
  head is an MLP on [u, v, |u - v|, u * v] (InferSent / Sentence-BERT), trained with cross-entropy.
- Image: ``image_model(X_batch) -> (B, D)``; a linear multi-label head trained with binary
  cross-entropy; NaN labels ("not stated") are left out of the loss and of every metric.

Determinism: the head is initialised from ``config.seed`` (without touching the global RNG) and
``train`` seeds everything else from it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..data.nli import NLI_LABELS, NLIPair
from ..errors import ParameterError
from ..models.encoders import TextEncoder
from ..models.modules import device_of
from ..train import TrainConfig
from ..train import train as train_model
from .metrics import auroc, classification_summary

HEAD_HIDDEN = 512
THRESHOLD = 0.5


# ---------------------------------------------------------------- shared pieces


def _seeded_head(seed: int, build) -> nn.Module:
    """`build()` with parameters drawn from `seed`, leaving the global torch RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


@torch.no_grad()
def _output_width(module: nn.Module, forward, probe) -> int:
    """Width of `forward(probe)`'s last axis, run with `module` in eval mode (its mode is restored)."""
    was_training = module.training
    module.eval()
    try:
        return int(forward(probe).shape[-1])
    finally:
        module.train(was_training)


def _embed_texts(text_model: nn.Module, texts: Sequence[str]) -> torch.Tensor:
    """(N, D) embeddings: a TextEncoder is tokenized first, any other model is called on the list of strings."""
    if isinstance(text_model, TextEncoder):
        tokens = text_model.tokenize(list(texts))
        device = device_of(text_model)
        return text_model(tokens["input_ids"].to(device), tokens["attention_mask"].to(device))
    return text_model(list(texts))


# ---------------------------------------------------------------- text: sentence-pair classifier


class PairClassifier(nn.Module):
    """Shared text tower + MLP on [u, v, |u-v|, u*v] -> label logits."""

    def __init__(self, text_model: nn.Module, dim: int, n_labels: int, seed: int):
        super().__init__()
        self.text_model = text_model
        self.head = _seeded_head(seed, lambda: nn.Sequential(
            nn.Linear(4 * dim, HEAD_HIDDEN), nn.ReLU(), nn.Linear(HEAD_HIDDEN, n_labels)))

    def forward(self, premises: Sequence[str], hypotheses: Sequence[str]) -> torch.Tensor:
        """(N, n_labels) logits; both sides go through the tower in one call."""
        both = _embed_texts(self.text_model, list(premises) + list(hypotheses)).float()
        u, v = both[: len(premises)], both[len(premises):]
        return self.head(torch.cat([u, v, (u - v).abs(), u * v], dim=1))


def _pair_records(pairs: Sequence[NLIPair], labels: Sequence[str], name: str) -> list[tuple[str, str, int]]:
    """(premise, hypothesis, label index) triples; unknown labels are an error."""
    index = {label: i for i, label in enumerate(labels)}
    if not pairs:
        raise ParameterError(f"finetune_text_classifier: {name} is empty; pass at least one NLIPair")
    bad = sorted({p.label for p in pairs} - set(index))
    if bad:
        raise ParameterError(f"finetune_text_classifier: {name} has labels {bad} not in labels={tuple(labels)}")
    return [(p.sentence1, p.sentence2, index[p.label]) for p in pairs]


def _collate_pairs(batch) -> dict:
    """Lists of premises and hypotheses and a label tensor."""
    premises, hypotheses, ys = zip(*batch, strict=True)
    return {"premises": list(premises), "hypotheses": list(hypotheses), "y": torch.tensor(ys)}


def _pair_loss(model, batch) -> torch.Tensor:
    """Cross-entropy of the pair logits."""
    logits = model(batch["premises"], batch["hypotheses"])
    return nn.functional.cross_entropy(logits, batch["y"].to(logits.device))


@torch.no_grad()
def _predict_pairs(model: PairClassifier, records, batch_size: int) -> np.ndarray:
    """Predicted label indices, in eval mode."""
    model.eval()
    out = []
    for start in range(0, len(records), batch_size):
        batch = _collate_pairs(records[start : start + batch_size])
        out.append(model(batch["premises"], batch["hypotheses"]).argmax(dim=1).cpu())
    return torch.cat(out).numpy()


def finetune_text_classifier(text_model: nn.Module, train: Sequence[NLIPair], test: Sequence[NLIPair],
                             config: TrainConfig, labels: Sequence[str] = NLI_LABELS) -> dict:
    """Fine-tune a copy of `text_model` + pair head on `train`; accuracy, per_label, confusion, n_test (and history) on `test`,
    with the per-pair label indices y_true and y_pred (in `test`'s order)."""
    labels = tuple(labels)
    train_records = _pair_records(train, labels, "train")
    test_records = _pair_records(test, labels, "test")
    tower = copy.deepcopy(text_model)
    dim = _output_width(tower, lambda texts: _embed_texts(tower, texts), [train_records[0][0]])
    model = PairClassifier(tower, dim, len(labels), config.seed)
    result = train_model(model, train_records, _pair_loss, config, collate_fn=_collate_pairs)
    y_pred = _predict_pairs(result.model, test_records, config.global_batch_size)
    y_true = np.array([y for _, _, y in test_records])
    return {**classification_summary(y_true, y_pred, labels), "history": result.history, "y_true": y_true,
            "y_pred": y_pred}


# ---------------------------------------------------------------- image: multi-label classifier


class MultiLabelClassifier(nn.Module):
    """Image tower + linear head -> one logit per label."""

    def __init__(self, image_model: nn.Module, dim: int, n_labels: int, seed: int):
        super().__init__()
        self.image_model = image_model
        self.head = _seeded_head(seed, lambda: nn.Linear(dim, n_labels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_labels) logits."""
        return self.head(self.image_model(x).float())


def masked_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged over the stated (non-NaN) targets; 0 (with gradient) when none are stated."""
    stated = ~torch.isnan(targets)
    losses = nn.functional.binary_cross_entropy_with_logits(logits, torch.nan_to_num(targets), reduction="none")
    return (losses * stated).sum() / stated.sum().clamp(min=1)


def _image_loss(model, batch) -> torch.Tensor:
    """Masked BCE of one (images, labels) batch."""
    x, y = batch
    logits = model(x.to(device_of(model)))
    return masked_bce(logits, y.to(logits.device))


def _label_matrix(Y, n: int, names: Sequence[str], what: str) -> torch.Tensor:
    """Labels as an (n, L) float tensor of 0 / 1 / NaN; raise on a mismatch."""
    y = np.asarray(Y, dtype=np.float32)
    y = y[:, None] if y.ndim == 1 else y
    if y.ndim != 2 or y.shape != (n, len(names)):
        raise ParameterError(f"image_classifier_scores: {what} has shape {y.shape}, expected ({n}, {len(names)}) "
                             "(one row per image, one column per label name)")
    if (~np.isnan(y) & (y != 0) & (y != 1)).any():
        raise ParameterError(f"image_classifier_scores: {what} must hold 0, 1 or NaN; map uncertain (-1) labels first")
    return torch.from_numpy(y)


@torch.no_grad()
def _predict_images(model: nn.Module, X: torch.Tensor, batch_size: int) -> np.ndarray:
    """Sigmoid scores (N, L) in eval mode."""
    model.eval()
    device = device_of(model)
    outs = [torch.sigmoid(model(X[i : i + batch_size].to(device))).float().cpu() for i in range(0, len(X), batch_size)]
    return torch.cat(outs).numpy()


def label_table(Y: np.ndarray, scores: np.ndarray, label_names: Sequence[str]) -> pd.DataFrame:
    """Per label: accuracy at 0.5, AUROC, positives and n_test over the stated (non-NaN) entries."""
    rows = []
    for j, name in enumerate(label_names):
        stated = ~np.isnan(Y[:, j])
        y, s = Y[stated, j], scores[stated, j]
        rows.append({"label": name, "accuracy": float(((s >= THRESHOLD) == y).mean()) if len(y) else float("nan"),
                     "auroc": auroc(y, s), "positives": int(y.sum()), "n_test": int(stated.sum())})
    return pd.DataFrame(rows)


def image_classifier_scores(image_model: nn.Module, X_train: torch.Tensor, Y_train: np.ndarray, X_test: torch.Tensor,
                            label_names: Sequence[str], config: TrainConfig) -> np.ndarray:
    """Fine-tune a copy of `image_model` + linear head (masked BCE) on the training labels; sigmoid scores (N_test, L)."""
    label_names = list(label_names)
    y_train = _label_matrix(Y_train, len(X_train), label_names, "Y_train")
    if len(X_train) == 0 or len(X_test) == 0:
        raise ParameterError("image_classifier_scores: X_train and X_test need at least one image each")
    tower = copy.deepcopy(image_model)
    dim = _output_width(tower, tower, torch.as_tensor(X_train[:1]).to(device_of(tower)))
    model = MultiLabelClassifier(tower, dim, len(label_names), config.seed)
    result = train_model(model, TensorDataset(torch.as_tensor(X_train), y_train), _image_loss, config)
    return _predict_images(result.model, torch.as_tensor(X_test), config.global_batch_size)


__all__ = ["finetune_text_classifier", "image_classifier_scores", "PairClassifier",
           "MultiLabelClassifier", "masked_bce", "label_table"]
