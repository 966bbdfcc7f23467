"""Jang et al.'s arms: every (variant, seed) trained by `eval.contrastive_fit` and scored zero-shot, with image-text
alignment (Table 5) and training histories; the one-seed Fig. 4 sweeps over t and n (`Sweep`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ...eval.contrastive_fit import (
    FRAMEWORK_NAMES,
    Variant,
    fit_variant,
    image_embeddings,
    new_model,
    validation_scores,
    zero_shot_probabilities,
)
from ...eval.metrics import ensemble, macro_auroc
from ...eval.report_study import Split, StudyData
from ...eval.selection import require_validation
from ...eval.zeroshot import report_alignment, sentence_alignment
from ...models.cache import EpochTextFeatures
from ...models.dual_encoder import DualEncoder
from ...train import TrainConfig

FRAMEWORKS = ("clip", "slip", "uniclip")
ARMS = {"none": "baseline", "relax": "+ loss relaxation", "aug": "+ sentence sampling", "both": "+ both"}


def arm_name(framework: str, arm: str) -> str:
    """The AblationResult variant name of (framework, arm key of ARMS)."""
    return ("" if framework == "clip" else f"{FRAMEWORK_NAMES[framework]}: ") + ARMS[arm]


@torch.no_grad()
def sentence_embeddings(model: DualEncoder, split: Split, study: StudyData) -> torch.Tensor:
    """Normalised embeddings of a report split's unique sentences."""
    if study.cached:
        return model.project_text_features(split.sentence_features)
    return model.encode_text(split.sentences)


@torch.no_grad()
def alignment_scores(model: DualEncoder, split: Split, study: StudyData) -> dict:
    """Sentence-level and report-level mean image-text cosine (Table 5 style) on a report split, and per image
    (`per_image`: its report's cosine, its mean cosine with the other images' reports, the sum and number of its
    sentences' cosines) for the claims' bootstrap and the alignment margin."""
    images = image_embeddings(model, split, study)
    owner = np.concatenate([[i] * len(o) for i, o in enumerate(split.owners)])
    flat = np.concatenate(split.owners)
    sentences = sentence_embeddings(model, split, study)
    if study.cached:  # the whole report through the frozen text tower, as the no-sampling arm is trained
        whole = EpochTextFeatures(study.text_encoder, split.texts, None, seed=0, epochs=1, progress=False)
        reports = model.project_text_features(whole(0))
    else:
        reports = model.encode_text([" ".join(split.sentences[i] for i in o) for o in split.owners])
    sentence_cos = (images[torch.as_tensor(owner, dtype=torch.long)] * sentences[flat]).sum(dim=1).double().cpu().numpy()
    cosines = (images @ reports.T).double().cpu().numpy()
    per_image = {"report": np.diag(cosines).copy(),
                 "other_reports": (cosines.sum(axis=1) - np.diag(cosines)) / max(len(cosines) - 1, 1),
                 "sentence_sum": np.bincount(owner, weights=sentence_cos, minlength=len(split.owners)),
                 "sentence_n": np.bincount(owner, minlength=len(split.owners)).astype(float)}
    return {"sentence": sentence_alignment(images, sentences[flat], owner), "report": report_alignment(images, reports),
            "per_image": per_image}


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

    def best_variant(self, Y_val: np.ndarray) -> str:
        """The variant whose seed ensemble has the highest validation macro AUROC (the test set is never looked at)."""
        require_validation(Y_val, what="best_variant")
        return max(self.variants, key=lambda v: macro_auroc(Y_val, self.ensemble(v, "val")))

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


@dataclass
class Sweep:
    """A Fig. 4 sweep: `table` (the swept value and its validation Avg. 5 AUROC) and each point's validation
    probabilities (`val_probs`, swept value -> (N, L)), from which the claims' evidence is resampled."""

    column: str
    table: pd.DataFrame
    val_probs: dict


def threshold_sweep(study: StudyData, thresholds, config: TrainConfig, seed: int = 0, embed_dim: int = 128,
                    alpha: float = 10.0, sentences_per_report: int | None = 3, trainable: str = "projections",
                    augment=None) -> Sweep:
    """Fig. 4 (left): validation Avg. 5 AUROC of CLIP + both for each relaxation threshold t (one seed)."""
    variants = [Variant(f"t={t}", sentences_per_report, (float(t), float(alpha))) for t in thresholds]
    return _validation_sweep(study, "t", [float(t) for t in thresholds], variants, config, seed, embed_dim, trainable,
                             augment)


def sentences_sweep(study: StudyData, counts, config: TrainConfig, seed: int = 0, embed_dim: int = 128,
                    threshold: float = 0.5, alpha: float = 10.0, trainable: str = "projections",
                    augment=None) -> Sweep:
    """Fig. 4 (right): validation Avg. 5 AUROC of CLIP + both for each number of sampled sentences n (one seed)."""
    variants = [Variant(f"n={n}", int(n), (float(threshold), float(alpha))) for n in counts]
    return _validation_sweep(study, "n", [int(n) for n in counts], variants, config, seed, embed_dim, trainable, augment)


def _validation_sweep(study, column, values, variants, config, seed, embed_dim, trainable, augment) -> Sweep:
    """Train each variant once; tabulate its validation Avg. 5 AUROC against `column` and keep its probabilities."""
    rows, probs = [], {}
    for value, variant in zip(values, variants, strict=True):
        model, _ = fit_variant(study, variant, seed, config, embed_dim, trainable, augment)
        rows.append({column: value, "validation Avg. 5 AUC": validation_scores(model, study)["val_auroc_5"]})
        probs[value] = zero_shot_probabilities(model, study.validate, study)
    return Sweep(column, pd.DataFrame(rows), probs)
