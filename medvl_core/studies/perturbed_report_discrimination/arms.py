"""Zhong et al.'s arms: four pre-training variants from one code path (loss weights: ConVIRT = global only;
GLoRIA = global + alpha local; ours w/o local = global + beta perturbation; ours = all three), the training
pairs with their perturbed negatives, and the per-epoch loss terms."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ...config import seed_everything
from ...errors import ParameterError
from ...losses import LossWeights, MultiScaleObjective
from ...models.multiscale import MultiScaleEncoder, build_multiscale
from ...text.perturb import PERTURBATIONS
from ...train import TrainConfig, train
from .prepare import PerturbedStudy, ReportSplit

VARIANTS = ("ConVIRT", "GLoRIA", "ours w/o local", "ours")


def variant_weights(variant: str, alpha: float = 0.1, beta: float = 0.1) -> LossWeights:
    """Loss weights of a variant: local term alpha (GLoRIA, ours), perturbation term beta (ours w/o local, ours)."""
    if variant not in VARIANTS:
        raise ParameterError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    local = alpha if variant in ("GLoRIA", "ours") else 0.0
    return LossWeights(local=local, perturbation=beta if variant in ("ours w/o local", "ours") else 0.0)


def metric_name(variant: str) -> str:
    """Stable metric-key stem of a variant: ConVIRT -> convirt, ours w/o local -> ours_wo_local."""
    if variant not in VARIANTS:
        raise ParameterError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return variant.lower().replace(" w/o ", "_wo_").replace(" ", "_")


class PerturbedPairs(Dataset):
    """Training items: image input, its report and `n_perturbations` perturbed versions (absent ones masked).

    With K = 9 (the paper) every kind that changes the report is a negative; with fewer, the kinds are drawn each
    epoch (`set_epoch`) from those, deterministically from (seed, epoch, index). `collate` tokenises a batch once:
    the B reports first, then each image's K versions.
    """

    def __init__(self, split: ReportSplit, tokenize, n_perturbations: int = 9, seed: int = 0):
        if not 0 <= n_perturbations <= len(PERTURBATIONS):
            raise ParameterError(f"n_perturbations={n_perturbations} must be between 0 and {len(PERTURBATIONS)}")
        self.split, self.tokenize, self.k, self.seed, self.epoch = split, tokenize, int(n_perturbations), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.split.texts)

    def versions(self, index: int) -> tuple[list[str], list[bool]]:
        """The K perturbed texts of report `index` this epoch (the report itself where absent) and their validity."""
        original = self.split.texts[index]
        available = [text for kind, text in self.split.perturbed[index].items() if text is not None]
        if self.k < len(available):
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            available = [available[i] for i in rng.permutation(len(available))[: self.k]]
        picked = available[: self.k]
        return picked + [original] * (self.k - len(picked)), [True] * len(picked) + [False] * (self.k - len(picked))

    def __getitem__(self, index: int) -> dict:
        versions, valid = self.versions(index)
        return {"image": self.split.images[index], "texts": [self.split.texts[index], *versions], "valid": valid}

    def collate(self, items: list[dict]) -> dict:
        """dict(images, text_input, attention_mask, word_ids, perturbation_mask (B, K))."""
        texts = [item["texts"][0] for item in items] + [t for item in items for t in item["texts"][1:]]
        tokens = self.tokenize(texts)
        return {"images": torch.stack([torch.as_tensor(item["image"]) for item in items]), **tokens,
                "perturbation_mask": torch.tensor([item["valid"] for item in items], dtype=torch.bool)
                .reshape(len(items), self.k)}


def new_model(study: PerturbedStudy, seed: int, embed_dim: int = 128, text_dim: int = 64, text_layers: int = 1,
              max_length: int = 64, image_dim: int = 256) -> MultiScaleEncoder:
    """A freshly seeded multi-scale encoder over the study's towers (copies when they are trained)."""
    seed_everything(seed)
    towers = (study.image_tower, study.text_tower) if study.cached else (
        copy.deepcopy(study.image_tower), copy.deepcopy(study.text_tower))
    return build_multiscale(*towers, embed_dim=embed_dim, cached=study.cached, text_dim=text_dim,
                            text_layers=text_layers, max_length=max_length, image_dim=image_dim,
                            features=study.features)


def local_gamma3(local_temperature: float | None, temperature: float) -> float:
    """The local loss's logit scale: 1 / tau of the paper's L_local (its printed tau, the global one, when None);
    GLoRIA's own scale is gamma3 = 10 (local_temperature = 0.1)."""
    tau = float(temperature if local_temperature is None else local_temperature)
    if tau <= 0:
        raise ParameterError(f"local_temperature must be > 0, got {tau}")
    return 1.0 / tau


def fit_variant(study: PerturbedStudy, variant: str, config: TrainConfig, alpha: float = 0.1, beta: float = 0.1,
                n_perturbations: int = 9, temperature: float = 0.07, local_temperature: float | None = None,
                **model_options):
    """Train one variant from a model seeded with config.seed; returns (model in eval mode, TrainResult).
    `local_temperature`: tau of L_local (None: `temperature`, as the paper prints one tau)."""
    weights = variant_weights(variant, alpha, beta)
    model = new_model(study, config.seed, **model_options)
    k = n_perturbations if weights.perturbation else 0  # no perturbed texts to encode when they are not used
    pairs = PerturbedPairs(study.train, model.tokenize, k, config.seed)
    if not study.cached and len(pairs) > config.global_batch_size:  # trained towers: no 1-image batch for BatchNorm
        config = dataclasses.replace(config, drop_last=True)
    objective = MultiScaleObjective(weights, temperature, gamma3=local_gamma3(local_temperature, temperature))
    result = train(model, pairs, objective, config, collate_fn=pairs.collate)
    return model.eval(), result


def train_variants(study: PerturbedStudy, config: TrainConfig, variants: Sequence[str] = VARIANTS, **options) -> dict:
    """{variant: (model, TrainResult)} for every variant, each from the same seed."""
    return {variant: fit_variant(study, variant, config, **options) for variant in variants}


def loss_history(fits: dict) -> pd.DataFrame:
    """Per-epoch training loss terms of every variant (long format: variant, epoch, term, value)."""
    frames = []
    for variant, (_, result) in fits.items():
        history = result.history_frame()
        terms = [c for c in history.columns if c.startswith("train_")]
        long = history[terms].reset_index().melt(id_vars="epoch", var_name="term", value_name="value")
        frames.append(long.assign(variant=variant, term=long["term"].str.removeprefix("train_")))
    return pd.concat(frames, ignore_index=True)


def use_threads(n: int | None) -> int:
    """Set torch's intra-op threads (None: unchanged); returns the previous count. The demo's adapters are small
    tensors: one thread avoids the second core spin-waiting on every op."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    return previous
