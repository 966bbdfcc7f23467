"""Zhong et al.'s study: four pre-training variants from one code path, and perturbed report discrimination.

Variants (loss weights): ConVIRT = global only; GLoRIA = global + alpha local; ours w/o local = global +
beta perturbation; ours = all three. The CPU demo trains small adapters over cached frozen features of
pretrained towers (image grids; the text tower's contextual token features, computed once per report and per
perturbation: `models.multiscale.build_multiscale(cached=True)`); the paper's profile trains both towers on
pixels and token ids. Each training report brings its perturbations (all nine kinds by default, K = 9; a kind
that cannot change a report is dropped for that report and counted); perturbations are cached on disk.

Discrimination (Table IV, zero-shot): for each held-out image, the candidates are its original report and
each perturbation that changes it; the model picks the candidate with the highest cosine of GLOBAL image and
text embeddings (image-text, as the paper states; the reference code compared text with text). Ties share the
credit (k candidates tied at the top, the original among them: 1/k).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..config import cache_dir, dataset_dir, seed_everything
from ..data import open_dataset
from ..errors import DataFormatError, ParameterError
from ..io import atomic_write_json
from ..losses import LossWeights, MultiScaleObjective
from ..models.multiscale import FrozenTokenFeatures, MultiScaleEncoder, build_multiscale, image_grid_features
from ..text import perturb as perturb_module
from ..text.perturb import PERTURBATIONS, perturb_all
from ..train import TrainConfig, train

VARIANTS = ("ConVIRT", "GLoRIA", "ours w/o local", "ours")
HELD_OUT_OPTIONS = {"synth-cxr": {"split": "test", "test_set": "chexpert"}}  # its CheXpert-style labelled test set
OVERALL = "overall (all candidates)"


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
    # always the file's content (key-sorted JSON), so a first (computing) run and every later (reading) one see the
    # kinds in the same order
    return json.loads(path.read_text(encoding="utf-8"))


def first_words(text: str, max_words: int | None) -> str:
    """The text cut after its first `max_words` whitespace-separated words (None: unchanged)."""
    if not max_words:
        return text
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:int(max_words)])


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

    def dropped(self) -> dict:
        """Per kind, the reports it cannot change (that negative is dropped for them)."""
        return {kind: sum(p.get(kind) is None for p in self.perturbed) for kind in PERTURBATIONS}


@dataclass
class PerturbedStudy:
    """Towers, the training and held-out report splits, the labelled classification test set and, in the cached
    profile, the frozen text features shared by every model."""

    image_tower: torch.nn.Module
    text_tower: torch.nn.Module
    train: ReportSplit
    test: ReportSplit
    classify_test: ReportSplit
    cached: bool
    features: FrozenTokenFeatures | None = None


def dataset_options(name: str, options) -> dict:
    """Loader options of `name` (a dict or [name, value] pairs); for a synthetic world with generator knobs, a world
    folder of its own under the data root (the default folder keeps the default knobs)."""
    options = {str(k): v for k, v in (options.items() if isinstance(options, dict) else options or [])}
    if name.startswith("synth-") and options and "root" not in options:
        digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
        options["root"] = dataset_dir(f"{name}-{digest}")
    return options


def _images(dataset, image_tower, cached: bool):
    """Cached frozen-tower grids, or lazily preprocessed pixels."""
    return image_grid_features(image_tower, dataset) if cached else PixelImages(dataset, image_tower.preprocess)


def _with_reports(name: str, split: str, **options):
    """(image dataset, report per record) of a split; records without a non-empty report dropped."""
    dataset = open_dataset(name, split=split, **options)
    texts = open_dataset(name, split=split, images=False, **options)
    by_id = {_report_key(texts.records[i]): texts[i].get("text") for i in range(len(texts))}  # by id, not position
    keep = [r for r in dataset.records if isinstance(by_id.get(_report_key(r)), str) and by_id[_report_key(r)].strip()]
    if not keep:
        raise DataFormatError(f"{name} split {split!r} has no image with a report; check the dataset under the data root")
    dataset.records = keep
    return dataset, [by_id[_report_key(r)] for r in keep]


def _report_key(record: dict) -> str:
    """The report an item belongs to: its `uid` (Open-I items per image), else its `id`."""
    return record.get("uid", record["id"])


def _split(dataset, reports, image_tower, cached, seed, max_reports, max_words) -> ReportSplit:
    """A ReportSplit of the first `max_reports` records, reports cut to `max_words` words, then perturbed."""
    if max_reports:
        dataset.records, reports = dataset.records[:max_reports], reports[:max_reports]
    reports = [first_words(text, max_words) for text in reports]
    return ReportSplit(_images(dataset, image_tower, cached), reports, cached_perturbations(reports, seed),
                       dataset.label_matrix(), list(dataset.label_names))


def held_out_by_count(records: list[dict], n_held_out: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, held-out) record indices: reports (uid) in a seeded order fill the held-out set until it has exactly
    `n_held_out` pairs; no report is on both sides (the rest of a report cut at the boundary is dropped)."""
    uids = list(dict.fromkeys(r.get("uid", r["id"]) for r in records))
    order = [uids[i] for i in np.random.default_rng(seed).permutation(len(uids))]
    held, held_uids = [], set()
    by_uid = {}
    for i, r in enumerate(records):
        by_uid.setdefault(r.get("uid", r["id"]), []).append(i)
    for uid in order:
        if len(held) >= n_held_out:
            break
        held += by_uid[uid][: n_held_out - len(held)]
        held_uids.add(uid)
    if len(held) < n_held_out:
        raise ParameterError(f"n_held_out={n_held_out} but the dataset has only {len(records)} image-report pairs")
    train_ids = [i for i, r in enumerate(records) if r.get("uid", r["id"]) not in held_uids]
    return train_ids, sorted(held)


def prepare_perturbed_study(image_tower, text_tower, name: str = "synth-cxr", cached: bool = True, seed: int = 0,
                            max_train: int | None = None, max_test: int | None = None, max_words: int | None = None,
                            n_held_out: int | None = None, max_length: int = 64, **options) -> PerturbedStudy:
    """Train and held-out report splits of `name` (perturbed) and its labelled test set for classification.

    `n_held_out`: hold out exactly that many pairs of split "all" (whole reports, seeded; the paper's 469 Open-I
    pairs) instead of the dataset's own train/test splits. `max_words`: reports cut first (the demo's budget).
    """
    if n_held_out:
        dataset, reports = _with_reports(name, "all", **options)
        train_ids, test_ids = held_out_by_count(dataset.records, int(n_held_out), seed)
        test_set = copy.copy(dataset)
        records = dataset.records
        dataset.records, reports, test_set.records, test_reports = ([records[i] for i in train_ids],
                                                                   [reports[i] for i in train_ids],
                                                                   [records[i] for i in test_ids],
                                                                   [reports[i] for i in test_ids])
    else:
        dataset, reports = _with_reports(name, "train", **options)
        test_set, test_reports = _with_reports(name, "test", **options)
    train_split = _split(dataset, reports, image_tower, cached, seed, max_train, max_words)
    test_split = _split(test_set, test_reports, image_tower, cached, seed, max_test, max_words)
    if n_held_out:  # the held-out pairs' own labels (Open-I: MeSH) serve Table II
        classify = ReportSplit(test_split.images, [], [], test_split.labels, test_split.label_names)
    else:
        held_out = open_dataset(name, **{"split": "test", **HELD_OUT_OPTIONS.get(name, {})}, **options)
        classify = ReportSplit(_images(held_out, image_tower, cached), [], [], held_out.label_matrix(),
                               list(held_out.label_names))
    features = None
    if cached:
        features = FrozenTokenFeatures(text_tower, min(int(max_length), int(text_tower.max_length)))
        features.precompute([t for split in (train_split, test_split) for t in _all_texts(split)])
    return PerturbedStudy(image_tower, text_tower, train_split, test_split, classify, cached, features)


def _all_texts(split: ReportSplit) -> list[str]:
    """A split's reports and every perturbation of them."""
    return split.texts + [t for p in split.perturbed for t in p.values() if t is not None]


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


# --- training ----------------------------------------------------------------------------------------


def new_model(study: PerturbedStudy, seed: int, embed_dim: int = 128, text_dim: int = 64, text_layers: int = 1,
              max_length: int = 64, image_dim: int = 256) -> MultiScaleEncoder:
    """A freshly seeded multi-scale encoder over the study's towers (copies when they are trained)."""
    seed_everything(seed)
    towers = (study.image_tower, study.text_tower) if study.cached else (
        copy.deepcopy(study.image_tower), copy.deepcopy(study.text_tower))
    return build_multiscale(*towers, embed_dim=embed_dim, cached=study.cached, text_dim=text_dim,
                            text_layers=text_layers, max_length=max_length, image_dim=image_dim,
                            features=study.features)


def fit_variant(study: PerturbedStudy, variant: str, config: TrainConfig, alpha: float = 0.1, beta: float = 0.1,
                n_perturbations: int = 9, temperature: float = 0.07, **model_options):
    """Train one variant from a model seeded with config.seed; returns (model in eval mode, TrainResult)."""
    weights = variant_weights(variant, alpha, beta)
    model = new_model(study, config.seed, **model_options)
    k = n_perturbations if weights.perturbation else 0  # no perturbed texts to encode when they are not used
    pairs = PerturbedPairs(study.train, model.tokenize, k, config.seed)
    if not study.cached and len(pairs) > config.batch_size:  # trained towers: no 1-image batch for BatchNorm
        config = dataclasses.replace(config, drop_last=True)
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


def loss_terms_figure(history: pd.DataFrame, title: str = ""):
    """One axis per loss term (global, local, perturbation), one line per variant that trains that term."""
    import matplotlib.pyplot as plt

    terms = ("global", "local", "perturbation")
    colours = dict(zip(VARIANTS, ("#1b9e77", "#d95f02", "#7570b3", "#e7298a"), strict=True))
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for ax, term in zip(axes, terms, strict=True):
        for variant, part in history[history["term"] == term].groupby("variant", sort=False):
            if (part["value"] != 0).any():
                ax.plot(part["epoch"], part["value"], marker="o", ms=3, color=colours.get(variant), label=variant)
        ax.set_title(f"L_{term[:4] if term == 'perturbation' else term}", fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.tick_params(labelsize=9)
        ax.legend(fontsize=9)
    axes[0].set_ylabel("training loss (unweighted)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


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


def original_credit(scores: pd.DataFrame) -> pd.Series:
    """Per image: 1 / (candidates tied at the top) when the original is among them, else 0 (ties shared fairly)."""
    best = scores.groupby("image")["cosine"].transform("max")
    top = scores.assign(top=scores["cosine"] == best)
    n_top = top.groupby("image")["top"].sum()
    return top[top["kind"] == "original"].set_index("image")["top"] / n_top


def bootstrap_ci(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of `values` (resampled with replacement, seeded)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (int(n_boot), len(values)))].mean(1)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))


def discrimination_accuracy(scores: pd.DataFrame) -> pd.DataFrame:
    """Per kind, share of images whose original report beats that perturbation (ties count half); overall, share
    whose original is the top candidate among all (ties shared); with chance levels."""
    original = scores[scores["kind"] == "original"].set_index("image")["cosine"]
    perturbed = scores[scores["kind"] != "original"]
    margin = original.loc[perturbed["image"]].to_numpy() - perturbed["cosine"].to_numpy()
    wins = perturbed.assign(win=np.where(margin > 0, 1.0, np.where(margin == 0, 0.5, 0.0)))
    rows = [{"kind": kind, "accuracy": wins.loc[wins["kind"] == kind, "win"].mean(),
             "chance": 0.5, "n_images": int((wins["kind"] == kind).sum())}
            for kind in PERTURBATIONS if (wins["kind"] == kind).any()]
    chance = (1.0 / scores.groupby("image").size()).mean()
    rows.append({"kind": OVERALL, "accuracy": original_credit(scores).mean(), "chance": chance,
                 "n_images": len(original)})
    return pd.DataFrame(rows)


def discrimination_table(fits: dict, split: ReportSplit) -> pd.DataFrame:
    """Per kind (our extra) + overall: rows = kinds, columns = variants' accuracies, plus chance and image counts."""
    tables = {variant: discrimination_accuracy(discrimination_scores(model, split)) for variant, (model, _) in fits.items()}
    first = next(iter(tables.values()))
    table = pd.DataFrame({variant: t.set_index("kind")["accuracy"] for variant, t in tables.items()})
    return table.assign(chance=first.set_index("kind")["chance"], n_images=first.set_index("kind")["n_images"])


def table_iv(fits: dict, split: ReportSplit, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Table IV layout: one row per method, overall accuracy with its 95% bootstrap CI over images, chance, n."""
    rows = {}
    for variant, (model, _) in fits.items():
        scores = discrimination_scores(model, split)
        credit = original_credit(scores)
        low, high = bootstrap_ci(credit, n_boot, seed)
        rows[variant] = {"accuracy": credit.mean(), "ci_low": low, "ci_high": high,
                         "chance": (1.0 / scores.groupby("image").size()).mean(), "n_images": len(credit)}
    return pd.DataFrame(rows).T


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


def classification_table(results: dict, Y_test: np.ndarray | None = None, labels: Sequence[str] = ()) -> pd.DataFrame:
    """Table II layout from {variant: finetune_image_classifier frame}: rows = variants (+ all-negative and
    all-positive references when `Y_test` is given), columns = per-label accuracy, their Average, per-label AUROC."""
    rows = {}
    for variant, frame in results.items():
        indexed = frame.set_index("label")
        accuracy = {f"{label} accuracy": indexed.loc[label, "accuracy"] for label in indexed.index}
        rows[variant] = {**accuracy, "Average accuracy": float(np.mean(list(accuracy.values()))),
                         **{f"{label} AUROC": indexed.loc[label, "auroc"] for label in indexed.index}}
    if Y_test is not None:
        for name, guess in (("all-negative", 0.0), ("all-positive", 1.0)):
            accuracy = {f"{label} accuracy": _constant_accuracy(Y_test[:, j], guess) for j, label in enumerate(labels)}
            rows[name] = {**accuracy, "Average accuracy": float(np.mean(list(accuracy.values()))),
                          **{f"{label} AUROC": 0.5 for label in labels}}
    return pd.DataFrame(rows).T


def _constant_accuracy(y: np.ndarray, guess: float) -> float:
    """Accuracy of always predicting `guess` over the stated (non-NaN) labels."""
    stated = y[np.isfinite(y)]
    return float(np.mean(stated == guess)) if len(stated) else float("nan")


def study_metrics(table4: pd.DataFrame, nli: pd.DataFrame | None = None,
                  classification: pd.DataFrame | None = None, per_kind: pd.DataFrame | None = None) -> dict:
    """Stable metric keys, rounded to 4 decimals: discrimination_accuracy_<variant> (+ _ci_low/_ci_high),
    discrimination_chance, nli_accuracy_<variant>, <label>_accuracy_<row> (e.g. pleural_effusion_accuracy_ours,
    average_accuracy_all_negative), discrimination_<kind>_<variant> per kind."""
    metrics = {}
    for variant, row in table4.iterrows():
        stem = metric_name(variant)
        metrics[f"discrimination_accuracy_{stem}"] = round(float(row["accuracy"]), 4)
        metrics[f"discrimination_accuracy_{stem}_ci_low"] = round(float(row["ci_low"]), 4)
        metrics[f"discrimination_accuracy_{stem}_ci_high"] = round(float(row["ci_high"]), 4)
    metrics["discrimination_chance"] = round(float(table4["chance"].iloc[0]), 4)
    for kind, row in (per_kind.drop(index=OVERALL, errors="ignore").iterrows() if per_kind is not None else ()):
        for variant in VARIANTS:
            if variant in row:
                metrics[f"discrimination_{kind}_{metric_name(variant)}"] = round(float(row[variant]), 4)
    for variant, row in (nli.iterrows() if nli is not None else ()):
        metrics[f"nli_accuracy_{metric_name(variant)}"] = round(float(row["accuracy"]), 4)
    for variant, row in (classification.iterrows() if classification is not None else ()):
        stem = metric_name(variant) if variant in VARIANTS else variant.replace("-", "_")
        for column, value in row.items():
            if column.endswith(" accuracy"):
                label = column.removesuffix(" accuracy").lower().replace(" ", "_")
                metrics[f"{label}_accuracy_{stem}"] = round(float(value), 4)
    return metrics


# --- the paper's claims over seeds ---------------------------------------------------------------------


def table_ii(fits: dict, study: PerturbedStudy, labels: Sequence[str], config: TrainConfig) -> pd.DataFrame:
    """Table II: each variant's image side fine-tuned (copy + linear head) on the training labels, tested on the
    labelled held-out set; with the Average column and the all-negative / all-positive references."""
    from ..eval.finetune import finetune_image_classifier
    from ..models.multiscale import ImageEmbedder

    X_train, Y_train = classification_arrays(study.train, labels)
    X_test, Y_test = classification_arrays(study.classify_test, labels)
    results = {variant: finetune_image_classifier(ImageEmbedder(model), X_train, Y_train, X_test, Y_test, labels, config)
               for variant, (model, _) in fits.items()}
    return classification_table(results, Y_test, labels)


def seed_results(study: PerturbedStudy, config: TrainConfig, finetune_config: TrainConfig, labels: Sequence[str],
                 seeds: Sequence[int], fits: dict | None = None, n_boot: int = 200, **options) -> dict:
    """{seed: {variant: {"table_iv": overall accuracy, "table_ii": Average accuracy}}}: pre-training and the Table II
    fine-tunes rerun per seed; `fits` (trained with config.seed) are reused for that seed."""
    by_seed = {}
    for seed in seeds:
        seeded = dataclasses.replace(config, seed=int(seed))
        trained = fits if fits is not None and int(seed) == config.seed else train_variants(study, seeded, **options)
        overall = table_iv(trained, study.test, n_boot, int(seed))["accuracy"]
        average = table_ii(trained, study, labels, dataclasses.replace(finetune_config, seed=int(seed)))["Average accuracy"]
        by_seed[int(seed)] = {v: {"table_iv": float(overall[v]), "table_ii": float(average[v])} for v in trained}
    return by_seed


def majority_accuracy(pairs) -> float:
    """Accuracy of always predicting the most frequent NLI label of `pairs` (the constant-guess reference)."""
    counts = pd.Series([p.label for p in pairs]).value_counts()
    return float(counts.iloc[0] / counts.sum()) if len(counts) else float("nan")


CLAIMS = (
    ("perturbation loss raises Table IV (ours w/o local > ConVIRT)", "table_iv", "ours w/o local", "ConVIRT"),
    ("perturbation loss raises Table IV (ours > GLoRIA)", "table_iv", "ours", "GLoRIA"),
    ("local loss adds on top in Table IV (ours > ours w/o local)", "table_iv", "ours", "ours w/o local"),
    ("Table II average: ours > ours w/o local", "table_ii", "ours", "ours w/o local"),
    ("Table II average: ours w/o local > GLoRIA", "table_ii", "ours w/o local", "GLoRIA"),
    ("Table II average: GLoRIA > ConVIRT", "table_ii", "GLoRIA", "ConVIRT"),
)


def claims_table(by_seed: dict, chance: float | None = None) -> pd.DataFrame:
    """Per claim of the paper: mean and SD over seeds of the difference (better - worse), seeds where it holds, and a
    verdict: agrees (mean > SD), disagrees (mean < -SD), unresolved (within the seed spread)."""
    rows = []
    for claim, table, better, worse in CLAIMS:
        diffs = np.array([r[better][table] - r[worse][table] for r in by_seed.values()])
        rows.append(_claim_row(claim, diffs))
    if chance is not None:
        for variant in ("ConVIRT", "GLoRIA"):
            diffs = np.array([r[variant]["table_iv"] - chance for r in by_seed.values()])
            rows.append(_claim_row(f"baseline {variant} at or above chance in Table IV", diffs, at_least=True))
    return pd.DataFrame(rows).set_index("claim")


def _claim_row(claim: str, diffs: np.ndarray, at_least: bool = False) -> dict:
    """One claims-table row from per-seed differences (which should be > 0, or >= 0 with `at_least`)."""
    mean, sd = float(diffs.mean()), float(diffs.std(ddof=1)) if len(diffs) > 1 else math.nan
    holds = (diffs >= 0) if at_least else (diffs > 0)
    spread = sd if math.isfinite(sd) else 0.0
    if at_least:
        verdict = "agrees" if mean >= 0 and holds.all() else ("disagrees" if mean < -spread else "unresolved")
    else:
        verdict = "agrees" if mean > spread else ("disagrees" if mean < -spread else "unresolved (within seed spread)")
    return {"claim": claim, "mean difference": mean, "SD over seeds": sd,
            "seeds where it holds": f"{int(holds.sum())}/{len(diffs)}", "this run": verdict}


def seed_summary(by_seed: dict) -> pd.DataFrame:
    """Rows = variants, columns = mean and SD over seeds of Table IV overall and Table II average accuracy."""
    long = pd.DataFrame([{"seed": s, "variant": v, **vals} for s, r in by_seed.items() for v, vals in r.items()])
    summary = long.groupby("variant", sort=False)[["table_iv", "table_ii"]].agg(["mean", "std"])
    summary.columns = [f"{table} {stat}" for table, stat in summary.columns]
    return summary


# --- Table I -----------------------------------------------------------------------------------------


def table_i(seed: int = 0) -> pd.DataFrame:
    """Table I on the paper's own sentence: the paper's example of each kind beside ours (`perturb`, seeded) and
    whether they are identical (expected for the deterministic kinds: reverse, antonyms; swap_adjacent when the
    seed draws the paper's pairing)."""
    from ..papers import published
    from ..text.perturb import PerturbationUnchanged, perturb

    rows = published("perturbed_report_discrimination").tables["table_I"].rows
    sentence = rows[0].cells["Example"].text
    body = [{"row": rows[0].label, "kind": "", "paper": sentence, "ours": sentence, "identical": True}]
    for row, kind in zip(rows[1:], PERTURBATIONS, strict=True):
        try:
            ours = perturb(sentence, kind, seed)
        except PerturbationUnchanged:
            ours = "-"
        paper = row.cells["Example"].text
        body.append({"row": row.label, "kind": kind, "paper": paper, "ours": ours, "identical": ours == paper})
    return pd.DataFrame(body).set_index("row")


def use_threads(n: int | None) -> int:
    """Set torch's intra-op threads (None: unchanged); returns the previous count. The demo's adapters are small
    tensors: one thread avoids the second core spin-waiting on every op."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    return previous


def variant_agreement(fits: dict, split: ReportSplit, a: str = "ours", b: str = "ours w/o local") -> dict:
    """How far two variants' Table IV decisions differ: images whose top candidate differs, mean |cosine difference|
    over all (image, candidate) rows, and images the original wins under one variant only."""
    first, second = (discrimination_scores(fits[v][0], split) for v in (a, b))
    top = [s.loc[s.groupby("image")["cosine"].idxmax(), ["image", "kind"]].set_index("image")["kind"] for s in (first, second)]
    wins = [original_credit(s) > 0 for s in (first, second)]
    return {"n_images": len(top[0]), "top_candidate_differs": int((top[0] != top[1]).sum()),
            "mean_abs_cosine_difference": float((first["cosine"] - second["cosine"]).abs().mean()),
            f"original_wins_only_{metric_name(a)}": int((wins[0] & ~wins[1]).sum()),
            f"original_wins_only_{metric_name(b)}": int((wins[1] & ~wins[0]).sum())}
