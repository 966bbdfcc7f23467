"""Zhong et al.'s study: four pre-training variants from one code path, and perturbed report discrimination.

Variants (loss weights): ConVIRT = global only; GLoRIA = global + alpha local; ours w/o local = global +
beta perturbation; ours = all three. The CPU demo trains on cached frozen image grids and a small text
transformer over frozen MiniLM input embeddings (`models.multiscale.build_multiscale(cached=True)`); the
paper's profile trains both towers on pixels and token ids. Every epoch each training report brings
`n_perturbations` perturbed versions of itself, of kinds drawn from those that change it (seeded by
(seed, epoch, index)); perturbations are computed once per text set and cached on disk.

Discrimination (Table IV, zero-shot): for each held-out image, the candidates are its original report and
each perturbation that changes it; the model picks the candidate with the highest cosine of GLOBAL image and
text embeddings (image-text, as the paper states; the reference code compared text with text).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..config import cache_dir, seed_everything
from ..data import open_dataset
from ..errors import DataFormatError, ParameterError
from ..io import atomic_write_json
from ..losses import LossWeights, MultiScaleObjective
from ..models.multiscale import NOT_A_WORD, MultiScaleEncoder, build_multiscale, image_grid_features
from ..text import perturb as perturb_module
from ..text.perturb import PERTURBATIONS, perturb_all
from ..train import TrainConfig, train

VARIANTS = ("ConVIRT", "GLoRIA", "ours w/o local", "ours")
HELD_OUT_OPTIONS = {"synth-cxr": {"split": "test", "test_set": "chexpert"}}  # its CheXpert-style labelled test set


def variant_weights(variant: str, alpha: float = 0.1, beta: float = 0.1) -> LossWeights:
    """Loss weights of a variant: local term alpha (GLoRIA, ours), perturbation term beta (ours w/o local, ours)."""
    if variant not in VARIANTS:
        raise ParameterError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    local = alpha if variant in ("GLoRIA", "ours") else 0.0
    return LossWeights(local=local, perturbation=beta if variant in ("ours w/o local", "ours") else 0.0)


# --- data ------------------------------------------------------------------------------------------


def cached_perturbations(texts: Sequence[str], seed: int = 0) -> list[dict]:
    """`text.perturb.perturb_all(texts, seed=seed)`, stored once per (texts, seed, perturb.py source) as JSON under
    the cache."""
    texts = list(texts)
    code = Path(perturb_module.__file__).read_text(encoding="utf-8")  # a changed perturbation invalidates the cache
    digest = hashlib.sha256("\n\x00".join([str(seed), code, *texts]).encode()).hexdigest()[:16]
    path = cache_dir("perturbations") / f"{len(texts)}-{digest}.json"
    if not path.is_file():
        atomic_write_json(path, perturb_all(texts, seed=seed))
    # always the file's content: the JSON is key-sorted, and the kinds' order decides which ones PerturbedPairs
    # draws, so a first (computing) run must see the same order as every later (reading) one
    return json.loads(path.read_text(encoding="utf-8"))


class PixelImages:
    """`images[i]` -> the preprocessed (3, H, W) pixels of a dataset's item i (decoded images kept in memory)."""

    def __init__(self, dataset, preprocess):
        self.dataset, self.preprocess, self._images = dataset, preprocess, {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        if index not in self._images:
            self._images[index] = self.dataset[index]["image"]
        return self.preprocess(self._images[index])


@dataclass
class ReportSplit:
    """Images (cached grids (N, R, C) or PixelImages), reports, their perturbations and labels of one split."""

    images: object
    texts: list[str]
    perturbed: list[dict]
    labels: np.ndarray
    label_names: list[str]


@dataclass
class PerturbedStudy:
    """Towers, the training and held-out report splits, and the labelled classification test set."""

    image_tower: torch.nn.Module
    text_tower: torch.nn.Module
    train: ReportSplit
    test: ReportSplit
    classify_test: ReportSplit
    cached: bool


def _images(dataset, image_tower, cached: bool):
    """Cached frozen-tower grids, or lazily preprocessed pixels."""
    return image_grid_features(image_tower, dataset) if cached else PixelImages(dataset, image_tower.preprocess)


def report_split(name: str, split: str, image_tower, cached: bool = True, seed: int = 0,
                 max_reports: int | None = None, **options) -> ReportSplit:
    """Open a split with reports (empty reports dropped; first `max_reports` kept) and perturb every report."""
    dataset = open_dataset(name, split=split, **options)
    texts = open_dataset(name, split=split, images=False, **options)
    by_id = {texts.records[i]["id"]: texts[i].get("text") for i in range(len(texts))}  # matched by id, not position
    keep = [i for i, r in enumerate(dataset.records) if isinstance(by_id.get(r["id"]), str) and by_id[r["id"]].strip()]
    keep = keep[:max_reports] if max_reports else keep
    if not keep:
        raise DataFormatError(f"{name} split {split!r} has no image with a report; check the dataset under the data root")
    dataset.records = [dataset.records[i] for i in keep]
    reports = [by_id[r["id"]] for r in dataset.records]
    return ReportSplit(_images(dataset, image_tower, cached), reports, cached_perturbations(reports, seed),
                       dataset.label_matrix(), list(dataset.label_names))


def prepare_perturbed_study(image_tower, text_tower, name: str = "synth-cxr", cached: bool = True, seed: int = 0,
                            max_train: int | None = None, max_test: int | None = None, **options) -> PerturbedStudy:
    """Train and held-out report splits of `name` (perturbed) and its labelled test set for classification."""
    train_split = report_split(name, "train", image_tower, cached, seed, max_train, **options)
    test_split = report_split(name, "test", image_tower, cached, seed, max_test, **options)
    held_out = open_dataset(name, **{"split": "test", **HELD_OUT_OPTIONS.get(name, {})}, **options)
    classify = ReportSplit(_images(held_out, image_tower, cached), [], [], held_out.label_matrix(),
                           list(held_out.label_names))
    return PerturbedStudy(image_tower, text_tower, train_split, test_split, classify, cached)


class TokenCache:
    """`tokens(texts)` -> `tokenize(texts)` padded per batch, each distinct text tokenised only once (reports and
    their perturbations recur every epoch)."""

    def __init__(self, tokenize, pad_id: int = 0):
        self.tokenize, self.pad_id, self.rows = tokenize, int(pad_id), {}

    def __call__(self, texts: Sequence[str]) -> dict:
        new = [text for text in dict.fromkeys(texts) if text not in self.rows]
        if new:
            batch = self.tokenize(new)
            for i, text in enumerate(new):
                n = int(batch["attention_mask"][i].sum())
                self.rows[text] = (batch["input_ids"][i, :n], batch["word_ids"][i, :n])
        length = max(len(self.rows[text][0]) for text in texts)
        out = {"input_ids": torch.full((len(texts), length), self.pad_id, dtype=torch.long),
               "attention_mask": torch.zeros(len(texts), length, dtype=torch.long),
               "word_ids": torch.full((len(texts), length), NOT_A_WORD, dtype=torch.long)}
        for i, text in enumerate(texts):
            ids, words = self.rows[text]
            out["input_ids"][i, :len(ids)], out["attention_mask"][i, :len(ids)], out["word_ids"][i, :len(ids)] = ids, 1, words
        return out


class PerturbedPairs(Dataset):
    """Training items: image input, its report and `n_perturbations` perturbed versions (absent ones masked).

    The kinds are drawn each epoch (`set_epoch`) from those that change the report, deterministically from
    (seed, epoch, index); `collate` tokenises a batch once: the B reports first, then each image's K versions.
    """

    def __init__(self, split: ReportSplit, tokenize, n_perturbations: int = 2, seed: int = 0):
        if n_perturbations < 0:
            raise ParameterError(f"n_perturbations={n_perturbations} must be >= 0")
        self.split, self.tokenize, self.k, self.seed, self.epoch = split, tokenize, int(n_perturbations), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.split.texts)

    def versions(self, index: int) -> tuple[list[str], list[bool]]:
        """The K perturbed texts of report `index` this epoch (the report itself where absent) and their validity."""
        original = self.split.texts[index]
        available = [text for kind, text in self.split.perturbed[index].items() if text is not None]
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        picked = [available[i] for i in rng.permutation(len(available))[: self.k]]
        return picked + [original] * (self.k - len(picked)), [True] * len(picked) + [False] * (self.k - len(picked))

    def __getitem__(self, index: int) -> dict:
        versions, valid = self.versions(index)
        return {"image": self.split.images[index], "texts": [self.split.texts[index], *versions], "valid": valid}

    def collate(self, items: list[dict]) -> dict:
        """dict(images, input_ids, attention_mask, word_ids, perturbation_mask (B, K))."""
        texts = [item["texts"][0] for item in items] + [t for item in items for t in item["texts"][1:]]
        tokens = self.tokenize(texts)
        return {"images": torch.stack([torch.as_tensor(item["image"]) for item in items]), **tokens,
                "perturbation_mask": torch.tensor([item["valid"] for item in items], dtype=torch.bool)
                .reshape(len(items), self.k)}


# --- training ----------------------------------------------------------------------------------------


def new_model(study: PerturbedStudy, seed: int, embed_dim: int = 128, text_dim: int = 64, text_layers: int = 1,
              max_length: int = 64) -> MultiScaleEncoder:
    """A freshly seeded multi-scale encoder over the study's towers (copies when they are trained)."""
    import copy

    seed_everything(seed)
    towers = (study.image_tower, study.text_tower) if study.cached else (
        copy.deepcopy(study.image_tower), copy.deepcopy(study.text_tower))
    return build_multiscale(*towers, embed_dim=embed_dim, cached=study.cached, text_dim=text_dim,
                            text_layers=text_layers, max_length=max_length)


def fit_variant(study: PerturbedStudy, variant: str, config: TrainConfig, alpha: float = 0.1, beta: float = 0.1,
                n_perturbations: int = 2, temperature: float = 0.07, **model_options):
    """Train one variant from a model seeded with config.seed; returns (model in eval mode, TrainResult)."""
    weights = variant_weights(variant, alpha, beta)
    model = new_model(study, config.seed, **model_options)
    k = n_perturbations if weights.perturbation else 0  # no perturbed texts to encode when they are not used
    tokens = TokenCache(model.tokenize, model.tokenizer.pad_token_id or 0)
    pairs = PerturbedPairs(study.train, tokens, k, config.seed)
    result = train(model, pairs, MultiScaleObjective(weights, temperature), config, collate_fn=pairs.collate)
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


# --- evaluation --------------------------------------------------------------------------------------


@torch.no_grad()
def image_embeddings(model: MultiScaleEncoder, images, batch_size: int = 128) -> torch.Tensor:
    """Normalised global embeddings (N, D) of cached grids or PixelImages."""
    device, chunks = next(model.parameters()).device, []
    for start in range(0, len(images), batch_size):
        rows = range(start, min(start + batch_size, len(images)))
        batch = images[start:rows.stop] if torch.is_tensor(images) else torch.stack([images[i] for i in rows])
        chunks.append(model.encode_images(batch.to(device)).float().cpu())
    return torch.cat(chunks)


@torch.no_grad()
def text_embeddings(model: MultiScaleEncoder, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Normalised global embeddings (N, D) of strings."""
    texts = list(texts)
    return torch.cat([model.encode_text(texts[i:i + batch_size]).float().cpu() for i in range(0, len(texts), batch_size)])


def discrimination_scores(model: MultiScaleEncoder, split: ReportSplit) -> pd.DataFrame:
    """One row per (image, candidate): kind ("original" or a perturbation kind) and image-text cosine."""
    model.eval()
    images = image_embeddings(model, split.images)
    rows = [(i, "original", text) for i, text in enumerate(split.texts)]
    rows += [(i, kind, text) for i, versions in enumerate(split.perturbed) for kind, text in versions.items()
             if text is not None]
    texts = text_embeddings(model, [text for _, _, text in rows])
    index = torch.tensor([i for i, _, _ in rows])
    cosine = (images[index] * texts).sum(-1).numpy()
    return pd.DataFrame({"image": index.numpy(), "kind": [kind for _, kind, _ in rows], "cosine": cosine})


def discrimination_accuracy(scores: pd.DataFrame) -> pd.DataFrame:
    """Table IV: per kind, share of images whose original report beats that perturbation (ties count half);
    overall, share whose original is the top candidate among all (ties shared); with chance levels."""
    original = scores[scores["kind"] == "original"].set_index("image")["cosine"]
    perturbed = scores[scores["kind"] != "original"]
    margin = original.loc[perturbed["image"]].to_numpy() - perturbed["cosine"].to_numpy()
    wins = perturbed.assign(win=np.where(margin > 0, 1.0, np.where(margin == 0, 0.5, 0.0)))
    rows = [{"kind": kind, "accuracy": wins.loc[wins["kind"] == kind, "win"].mean(),
             "chance": 0.5, "n_images": int((wins["kind"] == kind).sum())}
            for kind in PERTURBATIONS if (wins["kind"] == kind).any()]
    best = scores.groupby("image")["cosine"].transform("max")
    top = scores.assign(top=scores["cosine"] == best)
    n_top = top.groupby("image")["top"].sum()
    original_top = top[top["kind"] == "original"].set_index("image")["top"]
    overall = (original_top / n_top).mean()
    chance = (1.0 / scores.groupby("image").size()).mean()
    rows.append({"kind": "overall (all candidates)", "accuracy": overall, "chance": chance, "n_images": len(original)})
    return pd.DataFrame(rows)


def discrimination_table(fits: dict, split: ReportSplit) -> pd.DataFrame:
    """Table IV layout: rows = kinds + overall, columns = variants' accuracies, plus chance and image counts."""
    tables = {variant: discrimination_accuracy(discrimination_scores(model, split)) for variant, (model, _) in fits.items()}
    first = next(iter(tables.values()))
    table = pd.DataFrame({variant: t.set_index("kind")["accuracy"] for variant, t in tables.items()})
    return table.assign(chance=first.set_index("kind")["chance"], n_images=first.set_index("kind")["n_images"])


def classification_arrays(split: ReportSplit, labels: Sequence[str]) -> tuple[torch.Tensor, np.ndarray]:
    """(image inputs as one tensor, (N, L) targets) of a split for `labels`: uncertain (-1) -> 1 (CheXpert's
    U-Ones), 0/1 kept, not stated stays NaN (left out of fine-tuning losses and metrics)."""
    missing = [label for label in labels if label not in split.label_names]
    if missing:
        raise ParameterError(f"labels {missing} are not in this dataset's labels {split.label_names}")
    columns = split.labels[:, [split.label_names.index(label) for label in labels]].astype(np.float32)
    images = split.images
    if not torch.is_tensor(images):
        images = torch.stack([images[i] for i in range(len(images))])
    return images, np.where(columns == -1, 1.0, columns).astype(np.float32)


def metric_name(variant: str) -> str:
    """Stable metric-key stem of a variant: ConVIRT -> convirt, ours w/o local -> ours_wo_local."""
    if variant not in VARIANTS:
        raise ParameterError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return variant.lower().replace(" w/o ", "_wo_").replace(" ", "_")


def nli_table(results: dict) -> pd.DataFrame:
    """Table III layout from {variant: finetune_text_classifier result}: accuracy overall and per NLI label."""
    rows = {variant: {"accuracy": r["accuracy"], **{f"accuracy ({k})": v for k, v in r["per_label"].items()},
                      "n_test": r["n_test"]} for variant, r in results.items()}
    return pd.DataFrame(rows).T


def classification_table(results: dict) -> pd.DataFrame:
    """Table II layout from {variant: finetune_image_classifier frame}: rows = variants, columns = label accuracy
    (and AUROC)."""
    rows = {}
    for variant, frame in results.items():
        indexed = frame.set_index("label")
        rows[variant] = {**{f"{label} accuracy": indexed.loc[label, "accuracy"] for label in indexed.index},
                         **{f"{label} AUROC": indexed.loc[label, "auroc"] for label in indexed.index}}
    return pd.DataFrame(rows).T


def study_metrics(discrimination: pd.DataFrame, nli: pd.DataFrame | None = None,
                  classification: pd.DataFrame | None = None) -> dict:
    """Stable metric keys: discrimination_accuracy_<variant> (overall), nli_accuracy_<variant>,
    <label>_accuracy_<variant> (e.g. pleural_effusion_accuracy_ours), rounded to 4 decimals."""
    overall = discrimination.loc["overall (all candidates)"]
    metrics = {f"discrimination_accuracy_{metric_name(v)}": round(float(overall[v]), 4)
               for v in VARIANTS if v in discrimination.columns}
    metrics["discrimination_chance"] = round(float(overall["chance"]), 4)
    for variant, row in (nli.iterrows() if nli is not None else ()):
        metrics[f"nli_accuracy_{metric_name(variant)}"] = round(float(row["accuracy"]), 4)
    for variant, row in (classification.iterrows() if classification is not None else ()):
        for column, value in row.items():
            if column.endswith(" accuracy"):
                label = column.removesuffix(" accuracy").lower().replace(" ", "_")
                metrics[f"{label}_accuracy_{metric_name(variant)}"] = round(float(value), 4)
    return metrics
