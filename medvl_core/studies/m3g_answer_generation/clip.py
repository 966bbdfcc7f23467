"""Label-CLIP training on (case image, label text) pairs with Table 5's recipe, and the image-tower features it uses.

One linear projection per side (+ temperature) trained with the shared CLIP loss and training engine; the image tower
is trained with the projections (`train_tower=True`, the paper) or frozen with augmented views cached through it
(`aug_views`, the CPU demo); every image of a case is one training item labelled with its case's label.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ...config import seed_everything
from ...data.base import RecordDataset
from ...data.monai_augment import MonaiAugment, view_seed
from ...data.pairs import FeaturePairs
from ...errors import ParameterError
from ...losses import ContrastiveObjective
from ...models.cache import image_view_features
from ...models.dual_encoder import DualEncoder
from ...models.modules import device_of
from ...train import TrainConfig, train
from .prepare import M3GData, image_records

INFERENCE_VIEW_SEED = 7919  # offset of the seed of the one augmented view per image at inference (Table 3, row 1)


@dataclass
class ClipFit:
    """A trained label-CLIP model and how it was trained."""

    model: DualEncoder
    global_batch_size: int  # requested
    effective_batch_size: int  # capped by the number of training items
    n_items: int
    history: list = field(default_factory=list)
    steps: int = 0
    augment: MonaiAugment | None = None  # the training augmentation (None: none)
    trained_tower: bool = False  # image tower trained with the projections (else frozen, cached features)
    aug_views: int = 0  # cached augmented views per training image (frozen tower with augmentation)
    seed: int = 0
    features: dict = field(default_factory=dict, repr=False)  # (split, augmented) -> trained-tower features


class ViewFeaturePairs(torch.utils.data.Dataset):
    """Frozen-tower training pairs with augmentation: each epoch one of V cached augmented views per image."""

    def __init__(self, views: torch.Tensor, text_features: torch.Tensor, seed: int = 0):
        self.views, self.text_features, self.seed, self.epoch = views, text_features, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose views `__getitem__` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.views)

    def view_of(self, index: int) -> int:
        """The view item `index` shows in this epoch, drawn from (seed, epoch, index)."""
        return int(np.random.default_rng([self.seed, self.epoch, int(index), 3]).integers(self.views.shape[1]))

    def __getitem__(self, index: int) -> dict:
        return {"image_features": self.views[index, self.view_of(index)], "text_features": self.text_features[index]}


class PixelLabelPairs(torch.utils.data.Dataset):
    """Pairs for training the image tower: an image, freshly augmented from (seed, epoch, index), and its label features."""

    def __init__(self, images: RecordDataset, text_features: torch.Tensor, preprocess, augment=None, seed: int = 0):
        self.images, self.text_features, self.preprocess = images, text_features, preprocess
        self.augment, self.seed, self.epoch = augment, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws `__getitem__` uses."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        image = self.images[index]["image"]
        if self.augment is not None:
            image = self.augment(image, view_seed(self.seed, self.epoch, index))
        return {"images": self.preprocess(image), "text_features": self.text_features[index]}


def make_augment(augmentations) -> MonaiAugment | None:
    """The MONAI augmentation named by the `augmentations` list (empty or None: no augmentation)."""
    return MonaiAugment(augmentations) if augmentations else None


def fit_label_clip(data: M3GData, global_batch_size: int, config: TrainConfig, embed_dim: int = 128, seed: int = 0,
                   projection_layers: int = 1, train_tower: bool = False, augment: MonaiAugment | None = None,
                   aug_views: int = 4, init_seed: int | None = None) -> ClipFit:
    """Train label-CLIP with the CLIP loss on the training images: projections (+ the image tower when `train_tower`).

    With a frozen tower and `augment`, `aug_views` augmented views per image are cached through it and each epoch
    draws one; a trained tower sees a fresh view every epoch. The text tower stays frozen (the paper's label
    embeddings are fixed API outputs). `init_seed` (None: `seed`) seeds only the initial weights: the same training
    run initialised differently (Sec. 6); views, batch order and augmentation draws still come from `seed`.
    """
    if projection_layers != 1:
        raise ParameterError(f"projection_layers={projection_layers}: DualEncoder has one linear projection per side "
                             "(Table 5: 1)")
    rows, label_index = data.training_items()
    if len(rows) < 2:
        raise ParameterError(f"only {len(rows)} labelled training images; CLIP training needs at least 2")
    seed_everything(seed if init_seed is None else init_seed)
    tower = copy.deepcopy(data.image_encoder) if train_tower else data.image_encoder
    model = DualEncoder(tower, data.text_encoder, embed_dim=embed_dim).set_trainable("all" if train_tower else "projections")
    model.text.requires_grad_(False)
    pairs = _training_pairs(data, rows, label_index, model, train_tower, augment, aug_views, seed)
    effective = min(int(global_batch_size), len(rows))
    result = train(model, pairs, ContrastiveObjective("clip"),
                   replace(config, global_batch_size=effective, seed=seed))
    views = aug_views if augment is not None and not train_tower else 0
    return ClipFit(model.eval(), int(global_batch_size), effective, len(rows), result.history, result.steps, augment,
                   bool(train_tower), views, seed)


def _training_pairs(data: M3GData, rows, label_index, model, train_tower: bool, augment, aug_views: int, seed: int):
    """The training dataset: pixels (trained tower), cached augmented views, or cached plain features."""
    labels = data.label_features[label_index]
    if train_tower:
        return PixelLabelPairs(image_records(data.train.dataset, rows), labels, model.preprocess, augment, seed)
    if augment is not None:
        if aug_views < 1:
            raise ParameterError(f"aug_views={aug_views}: a frozen tower with augmentations needs >= 1 cached view")
        return ViewFeaturePairs(_train_views(data, augment, aug_views, seed)[rows], labels, seed)
    return FeaturePairs(data.train.image_features[rows], data.label_features, [[i] for i in label_index], None, seed)


def tower_features(fit: ClipFit | None, data: M3GData, split: str, augmented: bool = False, seed: int = 0) -> torch.Tensor:
    """Image-tower features of a split: cached frozen ones or the fit's trained tower; one augmented view each if asked."""
    target = data.split(split)
    if augmented and (fit is None or fit.augment is None):
        raise ParameterError("augmentation at inference needs a fit trained with augmentations (augmentations=[...])")
    if fit is not None and fit.trained_tower:
        key = (split, augmented)
        if key not in fit.features:
            fit.features[key] = _encode(fit.model.visual, image_records(target.dataset),
                                        fit.augment if augmented else None, seed + INFERENCE_VIEW_SEED)
        return fit.features[key]
    if not augmented:
        return target.image_features
    if split == "train" and fit.aug_views:  # the gallery at inference: the first cached training view of each image
        return _train_views(data, fit.augment, fit.aug_views, fit.seed)[:, 0]
    views, _ = image_view_features(data.image_encoder, image_records(target.dataset), fit.augment, 1,
                                   seed + INFERENCE_VIEW_SEED, progress=False)
    return views[:, 0]


def _train_views(data: M3GData, augment, n_views: int, seed: int) -> torch.Tensor:
    """(n train images, n_views, D) frozen-tower features of augmented views of every training image (cached)."""
    views, _ = image_view_features(data.image_encoder, image_records(data.train.dataset), augment, n_views, seed,
                                   progress=False)
    return views


@torch.no_grad()
def _encode(tower, images: RecordDataset, augment, seed: int, batch_size: int = 64) -> torch.Tensor:
    """Pooled features of every image through a (trained) tower in eval mode; augmented from (seed, index) if asked."""
    tower.eval()
    device, chunks = device_of(tower), []
    for start in range(0, len(images), batch_size):
        pixels = []
        for i in range(start, min(start + batch_size, len(images))):
            image = images[i]["image"]
            pixels.append(tower.preprocess(augment(image, view_seed(seed, 0, i, 1)) if augment else image))
        chunks.append(tower(torch.stack(pixels).to(device)).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, tower.embed_dim)
