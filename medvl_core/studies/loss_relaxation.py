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
from ..data.check import screen
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
    zero_shot_sets: dict = field(default_factory=dict)  # name -> ZeroShotSet: the paper's other test sets
    skipped: dict = field(default_factory=dict)  # "dataset/split" -> bad items dropped (bad_items="skip")
    _prompts: dict = field(default_factory=dict)

    def prompt_features(self, names=None) -> dict:
        """Frozen text-tower features of the zero-shot prompts ("{label}", "no {label}") of `names` (default: the
        study's labels), each prompt encoded once per study."""
        from ..eval.zeroshot import prompt_pairs

        pos, neg = prompt_pairs(self.label_names if names is None else names)
        missing = [t for t in dict.fromkeys(pos + neg) if t not in self._prompts]
        if missing:
            self._prompts.update(zip(missing, text_tower_features(self.text_encoder, missing, progress=False)))
        return self._prompts


@dataclass
class ZeroShotSet:
    """One of the paper's zero-shot test sets: its images, the Table 9 labels its rule keeps, and those it drops."""

    name: str
    split: Split
    label_names: list[str]  # as Table 9 prints them
    prompt_names: list[str]  # as the prompts spell them
    positives: dict[str, int]  # kept label -> positives in this set
    dropped: dict[str, int]  # Table 9 label failing the rule -> positives
    rule: str
    paper_n: int


def paper_test_labels(name: str) -> dict:
    """The paper's label list and selection rule of a zero-shot test set (papers/loss_relaxation/test_labels.yaml)."""
    import yaml

    from ..papers import get_paper

    path = get_paper("loss_relaxation").folder / "test_labels.yaml"
    sets = yaml.safe_load(path.read_text())["sets"]
    if name not in sets:
        raise MedvlError(f"zero_shot_sets: {name!r} is not one of the paper's test sets ({', '.join(sets)}; {path})")
    return sets[name]


def _open_i_test(spec: dict) -> tuple[object, np.ndarray, list[str]]:
    """Open-i's frontal report pairs with >= min_text_chars of Findings+Impression, labelled by our labeler on
    that text (the paper used the CheXpert labeler) over Table 9's 13 CheXpert observations."""
    from ..data.labels import CHEXPERT_LABELS
    from ..text.labeler import label_reports

    dataset = open_dataset("open-i", split="all", unit="report")
    subset = dataset.subset([i for i, r in enumerate(dataset.records) if len(r["text"].strip()) >= spec["min_text_chars"]])
    records = subset.records
    spelled = [spec.get("prompt_names", {}).get(n, n) for n in spec["labels"]]
    lookup = {c.lower(): i for i, c in enumerate(CHEXPERT_LABELS)}
    columns = [lookup[n.lower()] for n in spelled]
    labels = np.nan_to_num(label_reports([r["text"] for r in records]), nan=0.0)
    return subset, labels[:, columns].clip(0, 1), spelled


def _native_test(name: str, spec: dict) -> tuple[object, np.ndarray, list[str]]:
    """PadChest's radiologist-labelled frontal images / VinDr-CXR's test set, labelled in their own vocabulary."""
    from ..data.cxr import native_labels

    options = {"padchest": {"split": "all", "labelled_by": "physician"}, "vindr-cxr": {"split": "test"}}[name]
    dataset = open_dataset(name, **options)
    return dataset, native_labels(dataset, spec["labels"]), list(spec["labels"])


def zero_shot_set(name: str, image_encoder=None, progress: bool = False, bad_items: str = "error") -> ZeroShotSet:
    """Open a paper test set (open-i, padchest, vindr-cxr) under $MEDVL_DATA, keep the Table 9 labels its rule keeps
    (more than min_positives positives, and at least one negative) and cache image-tower features if given."""
    spec = paper_test_labels(name)
    dataset, labels, spelled = _open_i_test(spec) if name == "open-i" else _native_test(name, spec)
    dataset, kept = screen(dataset, bad_items)
    labels = labels[kept]
    counts = labels.sum(axis=0).astype(int)
    keep = (counts > spec["min_positives"]) & (counts < len(labels))
    if not keep.any():
        raise MedvlError(f"zero_shot_sets: no label of {name} passes the paper's rule ({spec['rule']}) on the "
                         f"{len(labels)} images found; check the dataset under $MEDVL_DATA/{name}")
    split = Split(dataset, labels[:, keep])
    if image_encoder is not None:
        split.image_features = image_tower_features(image_encoder, dataset, progress=progress)
    table9 = list(spec["labels"])
    return ZeroShotSet(name, split, [t for t, k in zip(table9, keep) if k], [s for s, k in zip(spelled, keep) if k],
                       {t: int(c) for t, c, k in zip(table9, counts, keep) if k},
                       {t: int(c) for t, c, k in zip(table9, counts, keep) if not k}, spec["rule"], spec["n_images"])


def _report_split(name, split, options, bad_items: str = "error", skipped: dict | None = None) -> Split:
    """A split with reports: dataset, labels, unique sentences and which report owns which; bad items (unreadable
    images, missing/empty/section-less reports) fail here or are dropped, per `bad_items` (`data.check.screen`)."""
    dataset, kept = screen(open_dataset(name, split=split, **options), bad_items)
    texts = open_dataset(name, split=split, images=False, **options)
    reports = [texts[i]["text"] for i in kept]
    if skipped is not None:
        skipped[f"{name}/{split}"] = len(texts) - len(kept)
    unique, owners = sentence_index(reports)
    return Split(dataset, dataset.label_matrix(), reports, unique, owners)


def _image_split(name, options, bad_items: str, skipped: dict) -> Split:
    """A labelled image split (validation or held-out test) after the `bad_items` policy."""
    opened = open_dataset(name, **options)
    dataset, kept = screen(opened, bad_items)
    skipped[f"{name}/{options['split']}"] = len(opened) - len(kept)
    return Split(dataset, dataset.label_matrix())


HELD_OUT_OPTIONS = {"synth-cxr": {"split": "test", "test_set": "chexpert"}}  # its CheXpert-style test set


def prepare_study(image_encoder, text_encoder, labels=None, name: str = "synth-cxr", test_name: str | None = None,
                  cache: bool = True, progress: bool = True, cached_views: int = 0, sampling_rounds: int = 2,
                  validation_name: str | None = None, zero_shot_sets=(), bad_items: str = "error",
                  **options) -> StudyData:
    """Open train/validate/test (with reports) of `name` and the held-out zero-shot test set of `test_name`.

    `test_name` defaults to `name`; SynthCXR's held-out set is its CheXpert-style test set, a real dataset's
    is its "test" split. Model selection uses `name`'s validation split, or `validation_name`'s (e.g. "chexpert":
    its radiologist-labelled valid set, as the paper). Frozen-tower features are cached when `cache`;
    `cached_views` > 0 also caches that many augmented views of each training image (`data.transforms.PaperAugmentation`).
    `zero_shot_sets` names the paper's other test sets (open-i, padchest, vindr-cxr; see `zero_shot_set`).
    Every image and report is opened once before training: `bad_items="error"` fails listing all bad items,
    "skip" drops them (counted in `StudyData.skipped`).
    """
    skipped: dict[str, int] = {}
    splits = {s: _report_split(name, s, options, bad_items, skipped) for s in ("train", "validate", "test")}
    if validation_name:
        splits["validate"] = _image_split(validation_name, {"split": "validate"}, bad_items, skipped)
    test_name = test_name or name
    held_out_options = {"split": "test", **HELD_OUT_OPTIONS.get(test_name, {})}
    splits["held_out"] = _image_split(test_name, {**held_out_options, **(options if test_name == name else {})},
                                      bad_items, skipped)
    held_out = splits["held_out"].dataset
    label_names = list(held_out.label_names)
    if labels is not None:
        keep = [label_names.index(label) for label in labels]
        for split in splits.values():
            split.labels = split.labels[:, keep]
        label_names = list(labels)
    if cache:
        for split in splits.values():
            split.image_features = image_tower_features(image_encoder, split.dataset, progress=progress)
        # only sentence-level alignment (on the report test split) uses single sentences; training encodes epoch texts
        report_test = splits["test"]
        report_test.sentence_features = text_tower_features(text_encoder, report_test.sentences, progress=progress)
        if cached_views:
            train = splits["train"]
            train.view_features, train.view_params = image_view_features(
                image_encoder, train.dataset, PaperAugmentation(), cached_views, progress=progress)
    sets = {n: zero_shot_set(n, image_encoder if cache else None, progress, bad_items) for n in zero_shot_sets}
    return StudyData(image_encoder, text_encoder, label_names, splits["train"], splits["validate"], splits["test"],
                     splits["held_out"], cache, int(sampling_rounds), sets, skipped)


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
            raise MedvlError(f"{variant.framework} needs cached image views: prepare_study(..., cached_views=2)")
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
    config = replace(config, seed=seed, keep_best=True, monitor="val_auroc_5", monitor_mode="max")
    result = train(model, pairs, ContrastiveObjective(variant.framework, relax=variant.relax), config,
                   collate_fn=collate, val_fn=lambda m, epoch: validation_scores(m, study))
    return model.eval(), result


COMPETITION = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]  # CheXpert's five


def competition_columns(label_names) -> list[int]:
    """Column indices of the five CheXpert competition labels among `label_names`."""
    missing = [c for c in COMPETITION if c not in label_names]
    if missing:
        raise MedvlError(f"the study's labels lack the competition labels {missing}; keep them in `labels`")
    return [list(label_names).index(c) for c in COMPETITION]


@torch.no_grad()
def validation_scores(model: DualEncoder, study: StudyData) -> dict:
    """Zero-shot macro AUROC on the validation split: over the 5 competition labels (the paper's model selection;
    those of them the study has, else all labels) and over all labels."""
    probs = zero_shot_probabilities(model.eval(), study.validate, study)
    five = [study.label_names.index(c) for c in COMPETITION if c in study.label_names] or list(range(probs.shape[1]))
    return {"val_auroc_5": macro_auroc(study.validate.labels[:, five], probs[:, five]),
            "val_auroc": macro_auroc(study.validate.labels, probs)}


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


class _CachedPromptModel:
    """A frozen-tower model seen by ZeroShotClassifier: prompts projected from cached text-tower features (the
    prompts are encoded by the text tower once per study, not once per evaluation)."""

    def __init__(self, model: DualEncoder, study: StudyData):
        self.model, self.study = model, study

    def encode_text(self, texts):
        prompts = self.study._prompts
        return self.model.project_text_features(torch.stack([prompts[t] for t in texts]))

    @property
    def logit_scale(self):
        return self.model.logit_scale

    def parameters(self):
        return self.model.parameters()


@torch.no_grad()
def zero_shot_probabilities(model: DualEncoder, split: Split, study: StudyData, names=None) -> np.ndarray:
    """(N, L) prompt-pair zero-shot probabilities of a split's images for `names` (default: the study's labels)."""
    names = study.label_names if names is None else names
    if study.cached:
        study.prompt_features(names)
    encoder = _CachedPromptModel(model, study) if study.cached else model
    return ZeroShotClassifier(encoder, names).probabilities(image_embeddings(model, split, study))


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
    set_probs: dict = field(default_factory=dict)  # zero-shot set -> variant -> seed -> (N, L) probabilities

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
        for set_name, zs in study.zero_shot_sets.items():
            probs = zero_shot_probabilities(model, zs.split, study, zs.prompt_names)
            result.set_probs.setdefault(set_name, {}).setdefault(variant.name, {})[seed] = probs
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


CLAIMS = {"relax": "loss relaxation raises zero-shot macro AUROC",
          "aug": "random sentence sampling raises zero-shot macro AUROC",
          "both": "sampling + relaxation ('ours') raise zero-shot macro AUROC"}


def verdicts(result: AblationResult, Y: np.ndarray, n_resamples: int = 1000, seed: int = 0, level: float = 0.05,
             frameworks=("clip",)) -> pd.DataFrame:
    """The paper's claims tested on this run, per framework: the arm's seed-ensemble macro AUROC minus plain
    fine-tuning's, a bootstrap 95% CI and a two-sided paired bootstrap p-value over the test images;
    "supported" needs a gain at p < `level`, "contradicted" a loss at p < `level`."""
    rows = []
    for fw in frameworks:
        baseline = result.ensemble(arm_name(fw, "none"))
        for arm, claim in CLAIMS.items():
            if arm_name(fw, arm) not in result.test_probs:
                continue
            test = paired_bootstrap_pvalue(Y, result.ensemble(arm_name(fw, arm)), baseline, "macro_auroc",
                                           n_resamples, seed=seed)
            diff, p = test["diff"], test["p_value"]
            verdict = ("supported" if diff > 0 and p < level else
                       "contradicted" if diff < 0 and p < level else f"not shown (p >= {level})")
            rows.append({"framework": FRAMEWORK_NAMES[fw], "paper's claim": claim, "AUROC gain": round(diff, 4),
                         "95% CI": f"[{test['low']:.4f}, {test['high']:.4f}]", "p (paired bootstrap)": round(p, 4),
                         "this run": verdict})
    return pd.DataFrame(rows)


# --- the paper's tables as recorded metrics (papers/loss_relaxation/beside.yaml maps them to the cells) -----------

FRAMEWORKS = ("clip", "slip", "uniclip")
ARMS = {"none": "baseline", "relax": "+ loss relaxation", "aug": "+ sentence sampling", "both": "+ both"}


def arm_name(framework: str, arm: str) -> str:
    """The AblationResult variant name of (framework, arm key of ARMS)."""
    return ("" if framework == "clip" else f"{FRAMEWORK_NAMES[framework]}: ") + ARMS[arm]


def _per_seed_auroc(result: AblationResult, variant: str, split: str, Y: np.ndarray) -> pd.DataFrame:
    """Per-label AUROC of each seed's model (rows seeds)."""
    from ..eval.metrics import auroc_per_label

    probs = result.val_probs[variant] if split == "validate" else result.test_probs[variant]
    return pd.DataFrame([auroc_per_label(Y, p, result.label_names) for p in probs.values()], index=list(probs))


def auroc_columns(result: AblationResult, variant: str, split: str, Y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-seed AUROC of the five competition labels, their mean ("avg5") and the mean of all labels ("avgtotal")."""
    per = _per_seed_auroc(result, variant, split, Y)
    columns = {label: per[label].to_numpy() for label in COMPETITION}
    columns["avg5"] = per[COMPETITION].mean(axis=1).to_numpy()
    columns["avgtotal"] = per.mean(axis=1).to_numpy()
    return columns


def _operating_point(Y_val, P_val, Y, P, five) -> dict:
    """Mean AUROC, F1 and MCC over the five labels; F1/MCC at the validation-optimal threshold of each label."""
    out = {"auc": macro_auroc(Y[:, five], P[:, five])}
    for metric in ("f1", "mcc"):
        thresholds = choose_thresholds(Y_val[:, five], P_val[:, five], metric)
        out[metric] = float(binary_metrics(Y[:, five], P[:, five], thresholds).loc["macro", metric])
    return out


def operating_points(result: AblationResult, variant: str, Y_val, Y, five) -> dict:
    """Table 2's cells of one arm: single models (mean over seeds) and the seed ensemble."""
    seeds = [_operating_point(Y_val, result.val_probs[variant][s], Y, result.test_probs[variant][s], five)
             for s in result.test_probs[variant]]
    single = {k: float(np.mean([r[k] for r in seeds])) for k in seeds[0]}
    ens = _operating_point(Y_val, result.ensemble(variant, "validate"), Y, result.ensemble(variant), five)
    return {"single": single, "ensemble": ens}


def best_with_ours(result: AblationResult, Y_val: np.ndarray, frameworks, ensemble: bool) -> str:
    """The "w/ ours" arm with the highest validation Avg. 5 AUROC (seed mean, or of the seed ensemble)."""
    five = competition_columns(result.label_names)

    def score(variant):
        if ensemble:
            return macro_auroc(Y_val[:, five], result.ensemble(variant, "validate")[:, five])
        return float(np.mean(auroc_columns(result, variant, "validate", Y_val)["avg5"]))

    return max((arm_name(f, "both") for f in frameworks), key=score)


def paper_metrics(result: AblationResult, study: StudyData, frameworks=FRAMEWORKS) -> dict:
    """Flat metrics for Tables 1-6 (keys t<table>_...): validation ablation (6), test zero-shot (1, 3), operating
    points (2), the best ensemble's point estimates (4; `ensemble_ci_table` adds CIs) and alignment (5). Values
    are seed means unless 'ensemble'."""
    Y_val, Y = study.validate.labels, study.test.labels
    five = competition_columns(study.label_names)
    m = {}
    for fw in frameworks:
        for arm in ARMS:
            variant = arm_name(fw, arm)
            for col, values in auroc_columns(result, variant, "validate", Y_val).items():
                m[f"t6_{fw}_{arm}_{col.lower().replace(' ', '_')}"] = round(float(np.mean(values)), 4)
        for tag, arm in (("wo", "none"), ("w", "both")):
            variant = arm_name(fw, arm)
            test = auroc_columns(result, variant, "test", Y)
            m[f"t1_{fw}_{tag}_avg5"], m[f"t1_{fw}_{tag}_avgtotal"] = (round(float(np.mean(test[k])), 4)
                                                                      for k in ("avg5", "avgtotal"))
            for kind, values in operating_points(result, variant, Y_val, Y, five).items():
                for metric, value in values.items():
                    m[f"t2_{fw}_{kind}_{tag}_{metric}"] = round(value, 4)
            align = result.alignment[variant]
            for level in ("sentence", "report"):
                m[f"t5_{fw}_{tag}_{level}"] = round(float(np.mean([a[level] for a in align.values()])), 4)
        for tag, arm in (("wo", "none"), ("w", "both")):
            m.update(zero_shot_set_metrics(result, study, arm_name(fw, arm), f"t1_{fw}_{tag}"))
    single = best_with_ours(result, Y_val, frameworks, ensemble=False)
    m["t3_best_single"] = single
    fw_single = best_fw(single, frameworks)
    m.update({f"t3_{k}": m[f"t{t}_{fw_single}_{kk}"] for k, t, kk in (
        ("chexpert5_auc", 1, "w_avg5"), ("chexpert13_auc", 1, "w_avgtotal"),
        ("chexpert5_f1", 2, "single_w_f1"), ("chexpert5_mcc", 2, "single_w_mcc"))})
    m.update({f"t3_{k.removeprefix(f't1_{fw_single}_w_')}": v for k, v in m.items()
              if k.startswith(f"t1_{fw_single}_w_") and k.split("_")[-2] in SET_KEYS.values()})
    best = best_with_ours(result, Y_val, frameworks, ensemble=True)
    m["t4_best_ensemble"] = best
    for metric in ("auc", "f1", "mcc"):  # the point estimates; ensemble_ci_table adds CIs and p-values
        m[f"t4_{metric}"] = m[f"t2_{best_fw(best, frameworks)}_ensemble_w_{metric}"]
    return m


SET_KEYS = {"open-i": "openi", "padchest": "padchest", "vindr-cxr": "vindr"}  # metric key of each test set


def zero_shot_set_metrics(result: AblationResult, study: StudyData, variant: str, prefix: str) -> dict:
    """Seed-mean macro AUROC of one arm on each zero-shot set: `{prefix}_{set}_avgtotal` over the labels its rule
    keeps, and `_avg5` over the five competition labels where the set has them (Open-i)."""
    out = {}
    for name, zs in study.zero_shot_sets.items():
        per_seed = result.set_probs[name][variant].values()
        key = f"{prefix}_{SET_KEYS[name]}"
        out[f"{key}_avgtotal"] = round(float(np.mean([macro_auroc(zs.split.labels, p) for p in per_seed])), 4)
        five = [zs.prompt_names.index(c.lower()) for c in COMPETITION if c.lower() in zs.prompt_names]
        if len(five) == len(COMPETITION):
            out[f"{key}_avg5"] = round(float(np.mean([macro_auroc(zs.split.labels[:, five], p[:, five])
                                                      for p in per_seed])), 4)
    return out


def zero_shot_set_table(study: StudyData) -> pd.DataFrame:
    """Per test set: images found (paper's n beside), Table 9 labels kept by the paper's rule, and those dropped."""
    rows = [{"test set": name, "images": len(zs.split.labels), "paper images": zs.paper_n,
             "labels kept": len(zs.label_names), "labels dropped (positives)": ", ".join(
                 f"{k} ({v})" for k, v in zs.dropped.items()) or "none", "rule (paper)": zs.rule}
            for name, zs in study.zero_shot_sets.items()]
    return pd.DataFrame(rows)


def best_fw(variant: str, frameworks=FRAMEWORKS) -> str:
    """The framework key of a 'w/ ours' variant name."""
    return next(f for f in frameworks if arm_name(f, "both") == variant)


def ensemble_ci_table(result: AblationResult, study: StudyData, variant: str, n_resamples: int = 1000,
                      seed: int = 0, frameworks=FRAMEWORKS) -> pd.DataFrame:
    """Table 4 for our runs: the ensemble's five-label AUROC, F1 and MCC with bootstrap 95% CIs, and paired
    bootstrap p-values against every framework's plain fine-tuning ensemble."""
    Y_val, Y = study.validate.labels, study.test.labels
    five = competition_columns(study.label_names)
    P, P_val = result.ensemble(variant)[:, five], result.ensemble(variant, "validate")[:, five]
    y, y_val = Y[:, five], Y_val[:, five]
    rows = [{"metric": "mean AUC", **bootstrap_ci(y, P, "macro_auroc", n_resamples, seed=seed)}]
    for metric in ("f1", "mcc"):
        thresholds = choose_thresholds(y_val, P_val, metric)

        def macro(yy, pp, thresholds=thresholds, metric=metric):
            return float(binary_metrics(yy, pp, thresholds).loc["macro", metric])

        rows.append({"metric": f"Mean {metric.upper()}", **bootstrap_ci(y, P, macro, n_resamples, seed=seed)})
    table = pd.DataFrame(rows).set_index("metric")
    for fw in frameworks:
        other = result.ensemble(arm_name(fw, "none"))[:, five]
        test = paired_bootstrap_pvalue(y, P, other, "macro_auroc", n_resamples, seed=seed)
        table.loc["mean AUC", f"p vs {FRAMEWORK_NAMES[fw]}_ensemble"] = test["p_value"]
    return table.round(4)


def label_sharing(labels: np.ndarray, max_n: int = 5) -> dict[int, float]:
    """Table 7: for n = 1..max_n, the mean number of reports that contain each combination of n positive labels,
    over the combinations that occur (NaN / uncertain / negative mentions are not positive)."""
    from collections import Counter
    from itertools import combinations

    positive = [tuple(np.flatnonzero(np.nan_to_num(row, nan=0.0) == 1)) for row in np.asarray(labels)]
    shared = {}
    for n in range(1, max_n + 1):
        counts = Counter(combo for labels_of in positive for combo in combinations(labels_of, n))
        shared[n] = float(np.mean(list(counts.values()))) if counts else 0.0
    return shared


def sampled_example(report: dict, n: int = 3, seed: int = 0) -> dict:
    """Fig. 2 on a real report: its Findings + Impression text, the sentences, and one draw of n of them."""
    from ..data.openi import report_text
    from ..data.pairs import epoch_text
    from ..text.sentences import split_sentences

    text = report_text(report)
    return {"report (Findings + Impression)": text, "sentences": split_sentences(text),
            f"{n} sampled sentences (one epoch's positive text)": epoch_text(text, n, seed, 0, 0)}


def threshold_sweep(study: StudyData, thresholds, config: TrainConfig, seed: int = 0, embed_dim: int = 128,
                    alpha: float = 10.0, sentences_per_report: int | None = 3, trainable: str = "projections",
                    augment=None) -> pd.DataFrame:
    """Fig. 4 (left): validation Avg. 5 AUROC of CLIP + both for each relaxation threshold t (one seed)."""
    variants = [Variant(f"t={t}", sentences_per_report, (float(t), float(alpha))) for t in thresholds]
    return _validation_sweep(study, "t", [float(t) for t in thresholds], variants, config, seed, embed_dim, trainable,
                             augment)


def sentences_sweep(study: StudyData, counts, config: TrainConfig, seed: int = 0, embed_dim: int = 128,
                    threshold: float = 0.5, alpha: float = 10.0, trainable: str = "projections",
                    augment=None) -> pd.DataFrame:
    """Fig. 4 (right): validation Avg. 5 AUROC of CLIP + both for each number of sampled sentences n (one seed)."""
    variants = [Variant(f"n={n}", int(n), (float(threshold), float(alpha))) for n in counts]
    return _validation_sweep(study, "n", [int(n) for n in counts], variants, config, seed, embed_dim, trainable, augment)


PAPER_CHOICE = {"t": 0.5, "n": 3}  # the values the paper settled on after its Fig. 4 sweeps (Discussion)


def sweep_reading(sweep: pd.DataFrame, column: str, paper_value, seed_sd: float) -> str:
    """One computed sentence on a Fig. 4 sweep: the best value here against the paper's choice, and whether
    the gap exceeds the seed SD of the same arm (each sweep point is one seed)."""
    score = "validation Avg. 5 AUC"
    best = sweep.loc[sweep[score].idxmax()]
    chosen = sweep[sweep[column] == paper_value]
    if chosen.empty:
        return f"Best {column} here: {best[column]:g} ({best[score]:.3f}); the paper's {column} = {paper_value:g} was not swept."
    gap = float(best[score] - chosen[score].iloc[0])
    verdict = ("agrees with the paper's choice" if best[column] == paper_value else
               f"beats the paper's choice by {gap:.3f}, " + ("more than" if gap > seed_sd else "within") +
               f" the seed SD of that arm ({seed_sd:.3f})")
    return (f"Best {column} here: {best[column]:g} ({best[score]:.3f}) vs the paper's {column} = {paper_value:g} "
            f"({chosen[score].iloc[0]:.3f}): {verdict}.")


def _validation_sweep(study, column, values, variants, config, seed, embed_dim, trainable, augment) -> pd.DataFrame:
    """Train each variant once and tabulate its validation Avg. 5 AUROC against `column`."""
    rows = []
    for value, variant in zip(values, variants, strict=True):
        model, _ = fit_variant(study, variant, seed, config, embed_dim, trainable, augment)
        rows.append({column: value, "validation Avg. 5 AUC": validation_scores(model, study)["val_auroc_5"]})
    return pd.DataFrame(rows)


def sentences_table(metrics: dict, frameworks, sentences_per_report: int) -> pd.DataFrame:
    """Fig. 4 (right) from the trained arms: validation Avg. 5 AUROC with relaxation, n sampled sentences vs the
    whole report (`paper_metrics` keys t6_<framework>_both/relax_avg5)."""
    return pd.DataFrame({f"n = {sentences_per_report}": [metrics[f"t6_{fw}_both_avg5"] for fw in frameworks],
                         "n = all (whole report)": [metrics[f"t6_{fw}_relax_avg5"] for fw in frameworks]},
                        index=[FRAMEWORK_NAMES[fw] for fw in frameworks]).rename_axis(
        "validation Avg. 5 AUROC, with relaxation")


def curves_without_and_with(result: AblationResult, framework: str) -> dict[str, dict[str, np.ndarray]]:
    """Fig. 5: per quantity (train_loss, val_auroc_5), the seed-mean curve of plain fine-tuning ("w/o ours") and of
    both parts of the method ("w/ ours") of one framework."""
    arms = {"w/o ours": arm_name(framework, "none"), "w/ ours": arm_name(framework, "both")}
    curve = training_curves(result, list(arms.values()))
    return {column: {label: curve.loc[curve["variant"] == variant, column].to_numpy() for label, variant in arms.items()}
            for column in ("train_loss", "val_auroc_5")}


def training_curves(result: AblationResult, variants) -> pd.DataFrame:
    """Fig. 5: per epoch, each variant's mean (over seeds) training loss and validation Avg. 5 AUROC."""
    frames = []
    for variant in variants:
        per_seed = pd.concat(list(result.history[variant].values()))
        mean = per_seed.groupby(level=0)[["train_loss", "val_auroc_5"]].mean()
        frames.append(mean.assign(variant=variant))
    return pd.concat(frames).reset_index()
