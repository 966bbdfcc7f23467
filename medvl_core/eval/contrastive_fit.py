"""Contrastive fine-tuning of a dual encoder on an image-report study (`eval.report_study`), selected by
zero-shot validation AUROC, and the zero-shot probabilities of a split.

An arm (`Variant`) picks the framework (CLIP, SLIP, UniCLIP), sentence sampling (n sentences per report each
epoch, or the whole report) and loss relaxation (t, alpha). Two profiles share one code path:
`trainable="projections"` trains projections and temperature over cached frozen-tower features (each epoch's
joined sentences encoded once by the frozen text tower, `models.cache.EpochTextFeatures`; SLIP and UniCLIP
use cached augmented views); `trainable="last"|"all"` fine-tunes the towers on pixels and token ids
(`data.pairs.ImageTextPairs`). Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..config import seed_everything
from ..data.pairs import CachedPairs
from ..errors import MedvlError
from ..losses import ContrastiveObjective
from ..models.cache import EpochTextFeatures
from ..models.dual_encoder import DualEncoder
from ..train import TrainConfig, train
from .metrics import macro_auroc
from .report_study import COMPETITION as COMPETITION  # the five labels, where callers look for them
from .report_study import Split, StudyData, selection_columns
from .selection import require_validation
from .zeroshot import ZeroShotClassifier

FRAMEWORK_NAMES = {"clip": "CLIP", "slip": "SLIP", "uniclip": "UniCLIP"}
FRAMEWORK_HEADS = {"clip": {}, "slip": {"ssl_dim": 256, "ssl_hidden_dim": 1024},
                   "uniclip": {"aug_params": 5, "domain_similarity": True}}


@dataclass(frozen=True)
class Variant:
    """One arm of the ablation: sentence sampling (n or None = whole report) and relaxation (t, alpha) or None."""

    name: str
    sentences_per_report: int | None = None
    relax: tuple[float, float] | None = None
    framework: str = "clip"


def ablation_variants(sentences_per_report: int = 3, threshold: float = 0.5, alpha: float = 10.0,
                      framework: str = "clip") -> list[Variant]:
    """The four arms of one framework (loss relaxation's Table 6): baseline, + sentence sampling, + loss relaxation,
    + both (CLIP's arms are named without a prefix, the others' "SLIP: baseline" etc.)."""
    relax = (float(threshold), float(alpha))
    prefix = "" if framework == "clip" else f"{FRAMEWORK_NAMES[framework]}: "
    return [Variant(f"{prefix}baseline", None, None, framework),
            Variant(f"{prefix}+ sentence sampling", sentences_per_report, None, framework),
            Variant(f"{prefix}+ loss relaxation", None, relax, framework),
            Variant(f"{prefix}+ both", sentences_per_report, relax, framework)]


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


@torch.no_grad()
def validation_scores(model: DualEncoder, study: StudyData) -> dict:
    """Zero-shot macro AUROC on the validation split: over the 5 competition labels (the paper's model selection;
    those of them the study has, else all labels) and over all labels."""
    require_validation(study.validate.labels, what="validation_scores (the epoch each run keeps)")
    probs = zero_shot_probabilities(model.eval(), study.validate, study)
    five = selection_columns(study.label_names)
    return {"val_auroc_5": macro_auroc(study.validate.labels[:, five], probs[:, five]),
            "val_auroc": macro_auroc(study.validate.labels, probs)}


@torch.no_grad()
def image_embeddings(model: DualEncoder, split: Split, study: StudyData) -> torch.Tensor:
    """Normalised image embeddings of a split (projected cached features, or encoded pixels)."""
    if study.cached:
        return model.project_image_features(split.image_features)
    return model.encode_images([split.dataset[i]["image"] for i in range(len(split.dataset))])


class _CachedPromptModel:
    """A frozen-tower model seen by ZeroShotClassifier: prompts projected from cached text-tower features (the
    prompts are encoded by the text tower once per study, not once per evaluation)."""

    def __init__(self, model: DualEncoder, prompts: dict):
        self.model, self.prompts = model, prompts

    def encode_text(self, texts):
        return self.model.project_text_features(torch.stack([self.prompts[t] for t in texts]))

    @property
    def logit_scale(self):
        return self.model.logit_scale

    def parameters(self):
        return self.model.parameters()


@torch.no_grad()
def zero_shot_probabilities(model: DualEncoder, split: Split, study: StudyData, names=None) -> np.ndarray:
    """(N, L) prompt-pair zero-shot probabilities of a split's images for `names` (default: the study's labels)."""
    names = study.label_names if names is None else names
    encoder = _CachedPromptModel(model, study.prompt_features(names)) if study.cached else model
    return ZeroShotClassifier(encoder, names).probabilities(image_embeddings(model, split, study))
