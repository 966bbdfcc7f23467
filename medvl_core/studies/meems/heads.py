"""MEEMS and image-only baseline heads: their inputs, training with the shared engine, predictions, embeddings.

Each image's MEEMS input is its pooled image features and the captioner's hidden state after a greedy
caption; the embedder + MLP classifier and the image-only baseline (the same heads on image features
alone, or a CNN fine-tuned on pixels) are trained for both tasks, once per head seed for the claims.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import Dataset

from ...config import seed_everything
from ...eval.metrics import auroc_per_label
from ...models.captioner import ShowAttendTell
from ...models.modules import device_of
from ...train import TrainConfig, train
from .captions import generate_captions
from .data import MeemsData, validation_split
from .networks import ImageOnlyClassifier, MeemsClassifier
from .pixels import PixelObjective, PixelPairs, PixelValidation, predict_pixels
from .tasks import MODELS, TASKS, head_loss, head_probabilities, task_targets


class _HeadPairs(Dataset):
    """(image features, caption hidden state, target) items."""

    def __init__(self, features: torch.Tensor, hidden: torch.Tensor, targets: torch.Tensor):
        self.features, self.hidden, self.targets = features, hidden, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> dict:
        return {"features": self.features[i], "hidden": self.hidden[i], "target": self.targets[i]}


class HeadObjective:
    """loss_fn for the heads (MEEMS when the model takes the caption state, else the baseline)."""

    def __init__(self, task: str, use_caption: bool):
        self.task, self.use_caption = task, use_caption

    def __call__(self, model, batch) -> torch.Tensor:
        hidden = batch["hidden"] if self.use_caption else None
        return head_loss(model(batch["features"], hidden), batch["target"], self.task)


class HeadValidation:
    """val_fn: validation loss and macro AUROC of the heads."""

    def __init__(self, objective: HeadObjective, features, hidden, targets: torch.Tensor):
        self.objective, self.batch = objective, {"features": features, "hidden": hidden, "target": targets}

    def __call__(self, model, epoch: int) -> dict:
        batch = {k: v.to(device_of(model)) for k, v in self.batch.items()}
        loss = float(self.objective(model, batch))
        hidden = batch["hidden"] if self.objective.use_caption else None
        probs = head_probabilities(model(batch["features"], hidden), self.objective.task)
        y = self.batch["target"].numpy()
        return {"val_loss": loss, "val_auroc": float(np.nanmean(auroc_per_label(y, probs).to_numpy()))}


@dataclass
class HeadInputs:
    """Pooled image features, caption hidden states and greedy captions of train / val / test."""

    features: dict
    hidden: dict
    captions: dict | None = None


def head_inputs(data: MeemsData, captioner: ShowAttendTell, max_length: int = 31) -> HeadInputs:
    """Pooled features and greedy-caption hidden states for the three classification splits."""
    splits = {"train": data.train, "val": data.validate, "test": data.test}
    generated = {k: generate_captions(captioner, s.grids, data.vocab, max_length) for k, s in splits.items()}
    return HeadInputs({k: s.pooled for k, s in splits.items()}, {k: g[1] for k, g in generated.items()},
                      {k: g[0] for k, g in generated.items()})


def fit_head(data: MeemsData, inputs: HeadInputs, task: str, use_caption: bool, config: TrainConfig,
             sizes: dict | None = None, dropout: float = 0.2):
    """Train MEEMS (use_caption) or the image-only baseline for `task`; returns (model in eval mode, TrainResult)."""
    seed_everything(config.seed)
    sizes = {"embed_hidden": 256, "embed_dim": 64, "classifier_hidden": 32, **(sizes or {})}
    val = validation_split(data, "fit_head (early stopping)")
    y = {k: torch.as_tensor(task_targets(s.labels, task), dtype=torch.float32)
         for k, s in (("train", data.train), ("val", val))}
    caption_dim = inputs.hidden["train"].shape[1] if use_caption else 0
    model = MeemsClassifier(inputs.features["train"].shape[1], caption_dim, y["train"].shape[1] + (task == "binary"),
                            dropout=dropout, **sizes)
    objective = HeadObjective(task, use_caption)
    pairs = _HeadPairs(inputs.features["train"], inputs.hidden["train"], y["train"])
    validation = HeadValidation(objective, inputs.features["val"], inputs.hidden["val"], y["val"])
    result = train(model, pairs, objective, config, val_fn=validation)
    return model.eval(), result


@torch.no_grad()
def predict(model: MeemsClassifier, inputs: HeadInputs, split: str, task: str, use_caption: bool) -> np.ndarray:
    """Probabilities of a trained head on one split ("val" or "test")."""
    model.eval()
    device = device_of(model)
    hidden = inputs.hidden[split].to(device) if use_caption else None
    return head_probabilities(model(inputs.features[split].to(device), hidden), task)


@torch.no_grad()
def embeddings(model: MeemsClassifier, inputs: HeadInputs, split: str, use_caption: bool) -> np.ndarray:
    """The embedder's output (N, embed_dim) on one split."""
    device = device_of(model)
    hidden = inputs.hidden[split].to(device) if use_caption else None
    return model.embed(inputs.features[split].to(device), hidden).cpu().numpy()


def fit_finetuned_baseline(data: MeemsData, encoder_spec: str, task: str, config: TrainConfig):
    """The paper's baseline: `encoder_spec` (e.g. torchvision:resnet50) + linear head, all layers trained on pixels."""
    from ...models.encoders import build_image_encoder

    seed_everything(config.seed)
    val = validation_split(data, "fit_finetuned_baseline (early stopping)")
    y = {k: torch.as_tensor(task_targets(s.labels, task), dtype=torch.float32)
         for k, s in (("train", data.train), ("val", val))}
    encoder = build_image_encoder(encoder_spec).train()
    model = ImageOnlyClassifier(encoder, y["train"].shape[1] + (task == "binary"))
    pairs = PixelPairs(data.train.paths, y["train"], model.preprocess)
    validation = PixelValidation(val.paths, y["val"], task)
    result = train(model, pairs, PixelObjective(task), config, val_fn=validation)
    return model.eval(), result


@dataclass
class HeadsResult:
    """Per (task, model): trained head, history, and validation / test probabilities."""

    models: dict
    histories: dict
    probs: dict  # (task, model, split) -> (N, L) probabilities

    def test_probs(self, task: str) -> dict:
        """{model: test probabilities} of one task."""
        return {m: self.probs[(task, m, "test")] for m in MODELS}


def fit_heads(data: MeemsData, inputs: HeadInputs, config: TrainConfig, sizes: dict | None = None,
              dropout: float = 0.2, tasks=TASKS, baseline_spec: str | None = None,
              baseline_config: TrainConfig | None = None, baseline_epochs: dict | None = None) -> HeadsResult:
    """Train MEEMS and the image-only baseline for each task with the same config and seed.

    The baseline is the same heads on the frozen image features, or, with `baseline_spec` (the paper: a
    ResNet-50), that CNN fine-tuned on pixels with a linear head (`baseline_config`, default `config`).
    `baseline_epochs` {task: epochs} overrides the baseline's epochs per task (paper: 20 binary, 9 14-label).
    """
    result = HeadsResult({}, {}, {})
    splits = {"val": data.validate, "test": data.test}
    for task in tasks:
        for name in MODELS:
            use_caption = name == "MEEMS"
            if use_caption or baseline_spec is None:
                model, fit = fit_head(data, inputs, task, use_caption, config, sizes, dropout)
                probs = {k: predict(model, inputs, k, task, use_caption) for k in splits}
            else:
                task_config = baseline_config or config
                if (baseline_epochs or {}).get(task):
                    task_config = replace(task_config, epochs=int(baseline_epochs[task]))
                model, fit = fit_finetuned_baseline(data, baseline_spec, task, task_config)
                probs = {k: predict_pixels(model, s.paths, task) for k, s in splits.items()}
            result.models[(task, name)], result.histories[(task, name)] = model, fit
            result.probs.update({(task, name, k): p for k, p in probs.items()})
    return result


def fit_head_seeds(data: MeemsData, inputs: HeadInputs, config: TrainConfig, seeds, sizes: dict | None = None,
                   dropout: float = 0.2, baseline_spec: str | None = None, baseline_config: TrainConfig | None = None,
                   baseline_epochs: dict | None = None):
    """Train both models' heads once per seed (the captioner is shared); returns [(seed, HeadsResult)]."""
    out = []
    for seed in seeds:
        seeded = replace(config, seed=int(seed))
        base = replace(baseline_config, seed=int(seed)) if baseline_config is not None else None
        out.append((int(seed), fit_heads(data, inputs, seeded, sizes, dropout, baseline_spec=baseline_spec,
                                         baseline_config=base, baseline_epochs=baseline_epochs)))
    return out
