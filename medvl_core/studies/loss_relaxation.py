"""Jang et al. (loss relaxation): contrastive fine-tuning arms, zero-shot evaluation and the paper's ablation tables.

Two profiles share one code path. `trainable="projections"` (the CPU demo) freezes both pretrained
towers, caches their pooled outputs once and trains the projections and temperature; each epoch a report's
n sampled sentences are joined into one text and encoded by the frozen text tower (`models.cache.
EpochTextFeatures`, distinct texts encoded once and cached); SLIP and UniCLIP use cached augmented views.
`trainable="last"|"all"` (the paper's protocol, GPU) fine-tunes the towers on pixels and token ids with
the paper's augmentations and per-epoch sentence sampling (`data.pairs.ImageTextPairs`). Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from ..config import seed_everything
from ..data import open_dataset
from ..data.pairs import CachedPairs, sentence_index
from ..data.transforms import PaperAugmentation
from ..errors import MedvlError
from ..eval.metrics import (
    binary_metrics,
    bootstrap_ci,
    choose_thresholds,
    ensemble,
    macro_auroc,
    paired_bootstrap_pvalue,
)
from ..eval.zeroshot import ZeroShotClassifier, report_alignment, sentence_alignment
from ..losses import ContrastiveObjective
from ..models.cache import EpochTextFeatures, image_tower_features, image_view_features, text_tower_features
from ..models.dual_encoder import DualEncoder
from ..train import TrainConfig, train


@dataclass(frozen=True)
class Variant:
    """One arm of the ablation: sentence sampling (n or None = whole report) and relaxation (t, alpha) or None."""

    name: str
    sentences_per_report: int | None = None
    relax: tuple[float, float] | None = None
    framework: str = "clip"


def ablation_variants(sentences_per_report: int = 3, threshold: float = 0.5, alpha: float = 10.0,
                      framework: str = "clip") -> list[Variant]:
    """Table 6's four arms of one framework: baseline, + sentence sampling, + loss relaxation, + both (CLIP's arms
    are named without a prefix, the others' "SLIP: baseline" etc.)."""
    relax = (float(threshold), float(alpha))
    prefix = "" if framework == "clip" else f"{FRAMEWORK_NAMES[framework]}: "
    return [Variant(f"{prefix}baseline", None, None, framework),
            Variant(f"{prefix}+ sentence sampling", sentences_per_report, None, framework),
            Variant(f"{prefix}+ loss relaxation", None, relax, framework),
            Variant(f"{prefix}+ both", sentences_per_report, relax, framework)]


FRAMEWORK_NAMES = {"clip": "CLIP", "slip": "SLIP", "uniclip": "UniCLIP"}


@dataclass
class Split:
    """One split: its dataset, labels, report sentences (unique strings + owners) and cached tower features."""

    dataset: object
    labels: np.ndarray
    texts: list[str] | None = None
    sentences: list[str] | None = None
    owners: list[list[int]] | None = None
    image_features: torch.Tensor | None = None
    sentence_features: torch.Tensor | None = None
    view_features: torch.Tensor | None = None  # (N, V, D) cached augmented views (SLIP, UniCLIP)
    view_params: torch.Tensor | None = None  # (N, V, P) their augmentation parameters


@dataclass
class StudyData:
    """Towers, label names and the train / validate / report-test / held-out test splits of a study."""

    image_encoder: torch.nn.Module
    text_encoder: torch.nn.Module
    label_names: list[str]
    train: Split
    validate: Split
    reports_test: Split
    test: Split
    cached: bool
    sampling_rounds: int = 2  # cached demo: distinct sentence draws per report (epoch e uses draw e mod rounds)


def _report_split(name, split, options) -> Split:
    """A split with reports: dataset, labels, unique sentences and which report owns which."""
    dataset = open_dataset(name, split=split, **options)
    texts = open_dataset(name, split=split, images=False, **options)
    reports = [texts[i]["text"] for i in range(len(texts))]
    unique, owners = sentence_index(reports)
    return Split(dataset, dataset.label_matrix(), reports, unique, owners)


HELD_OUT_OPTIONS = {"synth-cxr": {"split": "test", "test_set": "chexpert"}}  # its CheXpert-style test set


def prepare_study(image_encoder, text_encoder, labels=None, name: str = "synth-cxr", test_name: str | None = None,
                  cache: bool = True, progress: bool = True, views: int = 0, sampling_rounds: int = 2,
                  **options) -> StudyData:
    """Open train/validate/test (with reports) of `name` and the held-out zero-shot test set of `test_name`.

    `test_name` defaults to `name`; SynthCXR's held-out set is its CheXpert-style test set, a real dataset's
    is its "test" split. Frozen-tower features are cached when `cache`; `views` > 0 also caches that many
    augmented views of each training image (`data.transforms.PaperAugmentation`) for SLIP and UniCLIP.
    """
    splits = {s: _report_split(name, s, options) for s in ("train", "validate", "test")}
    test_name = test_name or name
    held_out_options = {"split": "test", **HELD_OUT_OPTIONS.get(test_name, {})}
    held_out = open_dataset(test_name, **held_out_options, **(options if test_name == name else {}))
    splits["held_out"] = Split(held_out, held_out.label_matrix())
    label_names = list(held_out.label_names)
    if labels is not None:
        keep = [label_names.index(label) for label in labels]
        for split in splits.values():
            split.labels = split.labels[:, keep]
        label_names = list(labels)
    if cache:
        for split in splits.values():
            split.image_features = image_tower_features(image_encoder, split.dataset, progress=progress)
            if split.sentences is not None:
                split.sentence_features = text_tower_features(text_encoder, split.sentences, progress=progress)
        if views:
            train = splits["train"]
            train.view_features, train.view_params = image_view_features(
                image_encoder, train.dataset, PaperAugmentation(), views, progress=progress)
    return StudyData(image_encoder, text_encoder, label_names, splits["train"], splits["validate"], splits["test"],
                     splits["held_out"], cache, int(sampling_rounds))


FRAMEWORK_HEADS = {"clip": {}, "slip": {"ssl_dim": 256, "ssl_hidden_dim": 1024},
                   "uniclip": {"aug_params": 5, "domain_similarity": True}}


def new_model(study: StudyData, seed: int, embed_dim: int = 128, trainable: str = "projections",
              framework: str = "clip") -> DualEncoder:
    """A dual encoder over copies of the study's towers (shared when frozen) with freshly seeded projections."""
    import copy

    seed_everything(seed)
    shared = trainable == "projections"
    image, text = (study.image_encoder, study.text_encoder) if shared else (
        copy.deepcopy(study.image_encoder), copy.deepcopy(study.text_encoder))
    return DualEncoder(image, text, embed_dim=embed_dim, **FRAMEWORK_HEADS[framework]).set_trainable(trainable)


def _train_pairs(study: StudyData, model: DualEncoder, variant: Variant, seed: int, augment):
    """The training dataset: cached feature pairs, or pixel/token pairs with augmentation."""
    from ..data.pairs import ImageTextPairs

    if study.cached:
        train = study.train
        if variant.framework != "clip" and train.view_features is None:
            raise MedvlError(f"{variant.framework} needs cached image views: prepare_study(..., views=2)")
        # the draws are seeded by epoch (the same for every training seed), so arms and seeds share encoded texts
        texts = EpochTextFeatures(study.text_encoder, train.texts, variant.sentences_per_report, seed=0,
                                  epochs=study.sampling_rounds, progress=False)
        with_views = variant.framework != "clip"
        return CachedPairs(train.image_features, texts, train.view_features if with_views else None,
                           train.view_params if with_views else None)
    return ImageTextPairs(study.train.dataset, model.preprocess, model.tokenize, variant.sentences_per_report,
                          augment=augment, seed=seed, cache_images=True, slip=variant.framework != "clip")


def fit_variant(study: StudyData, variant: Variant, seed: int, config: TrainConfig, embed_dim: int = 128,
                trainable: str = "projections", augment=None):
    """Train one (variant, seed); returns (model in eval mode, TrainResult)."""
    if study.cached != (trainable == "projections"):
        raise MedvlError(f"trainable={trainable!r} needs prepare_study(cache={trainable == 'projections'})")
    model = new_model(study, seed, embed_dim, trainable, variant.framework)
    pairs = _train_pairs(study, model, variant, seed, augment)
    collate = None if study.cached else pairs.collate
    result = train(model, pairs, ContrastiveObjective(variant.framework, relax=variant.relax),
                   replace(config, seed=seed), collate_fn=collate)
    return model.eval(), result


@torch.no_grad()
def image_embeddings(model: DualEncoder, split: Split, study: StudyData) -> torch.Tensor:
    """Normalised image embeddings of a split (projected cached features, or encoded pixels)."""
    if study.cached:
        return model.project_image_features(split.image_features)
    return model.encode_images([split.dataset[i]["image"] for i in range(len(split.dataset))])


@torch.no_grad()
def sentence_embeddings(model: DualEncoder, split: Split, study: StudyData) -> torch.Tensor:
    """Normalised embeddings of a report split's unique sentences."""
    if study.cached:
        return model.project_text_features(split.sentence_features)
    return model.encode_text(split.sentences)


@torch.no_grad()
def zero_shot_probabilities(model: DualEncoder, split: Split, study: StudyData) -> np.ndarray:
    """(N, L) prompt-pair zero-shot probabilities of a split's images."""
    return ZeroShotClassifier(model, study.label_names).probabilities(image_embeddings(model, split, study))


@torch.no_grad()
def alignment_scores(model: DualEncoder, split: Split, study: StudyData) -> dict:
    """Sentence-level and report-level mean image-text cosine (Table 5 style) on a report split."""
    images = image_embeddings(model, split, study)
    owner = np.concatenate([[i] * len(o) for i, o in enumerate(split.owners)])
    flat = np.concatenate(split.owners)
    sentences = sentence_embeddings(model, split, study)
    if study.cached:  # the whole report through the frozen text tower, as the no-sampling arm is trained
        whole = EpochTextFeatures(study.text_encoder, split.texts, None, seed=0, epochs=1, progress=False)
        reports = model.project_text_features(whole(0))
    else:
        reports = model.encode_text([" ".join(split.sentences[i] for i in o) for o in split.owners])
    return {"sentence": sentence_alignment(images, sentences[flat], owner), "report": report_alignment(images, reports)}


@dataclass
class AblationResult:
    """Per (variant, seed): validation/test probabilities, alignment and training history."""

    label_names: list[str]
    val_probs: dict = field(default_factory=dict)
    test_probs: dict = field(default_factory=dict)
    alignment: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)  # variant -> its last seed's trained model
    untrained_test: np.ndarray | None = None

    @property
    def variants(self) -> list[str]:
        return list(self.test_probs)

    def best_variant(self, Y: np.ndarray) -> str:
        """The variant whose seed ensemble has the highest test macro AUROC."""
        return max(self.variants, key=lambda v: macro_auroc(Y, self.ensemble(v)))

    def ensemble(self, variant: str, split: str = "test") -> np.ndarray:
        """Mean of the seeds' probabilities."""
        probs = self.test_probs if split == "test" else self.val_probs
        return ensemble(list(probs[variant].values()))


def run_ablation(study: StudyData, variants, seeds, config: TrainConfig, embed_dim: int = 128,
                 trainable: str = "projections", augment=None, progress: bool = True) -> AblationResult:
    """Train every (variant, seed) and collect zero-shot probabilities, alignment and histories."""
    from tqdm.auto import tqdm

    result = AblationResult(study.label_names)
    untrained = new_model(study, seeds[0], embed_dim, trainable).eval()
    result.untrained_test = zero_shot_probabilities(untrained, study.test, study)
    runs = [(variant, seed) for variant in variants for seed in seeds]
    for variant, seed in tqdm(runs, desc="ablation runs", disable=not progress):
        model, fit = fit_variant(study, variant, seed, config, embed_dim, trainable, augment)
        for name, value in (("val_probs", zero_shot_probabilities(model, study.validate, study)),
                            ("test_probs", zero_shot_probabilities(model, study.test, study)),
                            ("alignment", alignment_scores(model, study.reports_test, study)),
                            ("history", fit.history_frame())):
            getattr(result, name).setdefault(variant.name, {})[seed] = value
        result.models[variant.name] = model
    return result


def _mean_std(values) -> str:
    """'mean +- std' of a list of floats, 3 decimals."""
    return f"{np.mean(values):.3f} +- {np.std(values):.3f}"


def ablation_table(result: AblationResult, Y: np.ndarray) -> pd.DataFrame:
    """Zero-shot macro AUROC per variant: mean +- std over seeds and the seeds' ensemble (Table 6 layout)."""
    rows = [{"variant": "untrained (random projections)", "macro AUROC (seeds)": f"{macro_auroc(Y, result.untrained_test):.3f}",
             "ensemble macro AUROC": np.nan}]
    for variant, per_seed in result.test_probs.items():
        rows.append({"variant": variant, "macro AUROC (seeds)": _mean_std([macro_auroc(Y, p) for p in per_seed.values()]),
                     "ensemble macro AUROC": round(macro_auroc(Y, result.ensemble(variant)), 3)})
    return pd.DataFrame(rows)


def per_label_table(result: AblationResult, Y: np.ndarray) -> pd.DataFrame:
    """Per-label zero-shot AUROC (columns: variants' ensembles; rows: labels with both classes + macro)."""
    from ..eval.metrics import auroc_per_label

    table = pd.DataFrame({v: auroc_per_label(Y, result.ensemble(v), result.label_names) for v in result.variants})
    table = table.dropna(how="all")
    table.loc["macro"] = table.mean()
    return table.round(3)


def operating_point_table(result: AblationResult, Y_val: np.ndarray, Y: np.ndarray, variant: str,
                          n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Macro AUROC, F1 and MCC (thresholds chosen on validation) with bootstrap 95% CIs (Table 4 layout)."""
    probs, val = result.ensemble(variant), result.ensemble(variant, "validate")
    rows = [{"metric": "macro AUROC", **bootstrap_ci(Y, probs, "macro_auroc", n_resamples, seed=seed)}]
    for metric in ("f1", "mcc"):
        thresholds = choose_thresholds(Y_val, val, metric)

        def macro(y, p, thresholds=thresholds, metric=metric):
            return float(binary_metrics(y, p, thresholds).loc["macro", metric])

        rows.append({"metric": f"macro {metric.upper()} (val threshold)", **bootstrap_ci(Y, probs, macro, n_resamples, seed=seed)})
    return pd.DataFrame(rows).round(3)


def significance_table(result: AblationResult, Y: np.ndarray, baseline: str = "baseline",
                       n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Paired bootstrap of each variant's ensemble macro AUROC against the baseline's."""
    rows = []
    for variant in result.variants:
        if variant != baseline:
            test = paired_bootstrap_pvalue(Y, result.ensemble(variant), result.ensemble(baseline), "macro_auroc",
                                           n_resamples, seed=seed)
            rows.append({"variant": variant, "vs": baseline, **test})
    return pd.DataFrame(rows).round(4)


def alignment_table(result: AblationResult) -> pd.DataFrame:
    """Sentence- and report-level alignment per variant, mean +- std over seeds (Table 5 layout)."""
    rows = []
    for variant, per_seed in result.alignment.items():
        rows.append({"variant": variant, "sentence-level": _mean_std([a["sentence"] for a in per_seed.values()]),
                     "report-level": _mean_std([a["report"] for a in per_seed.values()])})
    return pd.DataFrame(rows)


CLAIMS = {"+ loss relaxation": "loss relaxation raises zero-shot macro AUROC",
          "+ sentence sampling": "random sentence sampling raises zero-shot macro AUROC",
          "+ both": "both together raise zero-shot macro AUROC"}


def verdicts(result: AblationResult, Y: np.ndarray, n_resamples: int = 1000, seed: int = 0,
             level: float = 0.05, baseline: str = "baseline") -> pd.DataFrame:
    """The paper's claims tested on this run: each arm's seed-ensemble macro AUROC minus the baseline's, with a
    two-sided paired bootstrap p-value over the test images; "supported" needs diff > 0 and p < `level`."""
    tests = significance_table(result, Y, baseline, n_resamples, seed).set_index("variant")
    rows = []
    for arm, claim in CLAIMS.items():
        if arm not in tests.index:
            continue
        diff, p = float(tests.loc[arm, "diff"]), float(tests.loc[arm, "p_value"])
        verdict = ("supported" if diff > 0 and p < level else
                   "contradicted" if diff < 0 and p < level else f"not shown (p >= {level})")
        rows.append({"paper's claim": claim, "AUROC gain": round(diff, 4),
                     "95% CI": f"[{tests.loc[arm, 'low']:.4f}, {tests.loc[arm, 'high']:.4f}]",
                     "p (paired bootstrap)": round(p, 4), "this run": verdict})
    return pd.DataFrame(rows)
