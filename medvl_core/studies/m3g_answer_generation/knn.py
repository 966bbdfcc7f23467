"""kNN label vote: the k nearest training images ("image-image") or label texts ("image-text") of every query image,
optionally in a PCA space fitted on the training side, pooled over a case's images (majority, ties -> most similar)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import ParameterError
from ...eval.knn import cosine_topk
from ...models.dual_encoder import DualEncoder
from ...models.modules import device_of
from .clip import ClipFit, tower_features
from .prepare import M3GData

GALLERIES = ("image", "text")


@dataclass(frozen=True)
class KnnSetting:
    """Where neighbours come from ('image' or 'text'), PCA components (None = no PCA), k, and whether the image
    embeddings are made from augmented views (the competition run's mistake, Table 3 row 1)."""

    gallery: str = "image"
    pca: int | None = None
    k: int = 5
    augment: bool = False

    def __post_init__(self):
        if self.gallery not in GALLERIES:
            raise ParameterError(f"gallery={self.gallery!r}; use one of {GALLERIES}")
        if self.k < 1 or (self.pca is not None and self.pca < 1):
            raise ParameterError(f"k={self.k} and pca={self.pca} must be >= 1 (pca=None turns PCA off)")

    @property
    def name(self) -> str:
        return (f"image-{self.gallery}, k={self.k}" + (f", PCA {self.pca}" if self.pca else ", no PCA")
                + (", augmented at inference" if self.augment else ""))


def table3_settings(k: int = 5, pca: int = 16) -> list[KnnSetting]:
    """Table 3's five rows in the paper's order (augmented PCA image-image, then text/image x no PCA/PCA)."""
    return [KnnSetting("image", pca, k, augment=True), KnnSetting("text", None, k), KnnSetting("text", pca, k),
            KnnSetting("image", None, k), KnnSetting("image", pca, k)]


def table2_setting(k: int = 5, pca: int = 16) -> KnnSetting:
    """The retrieval Table 2 was scored with: PCA image-image (its batch-256 row equals Table 3's PCA image-image row)."""
    return KnnSetting("image", pca, k)


@torch.no_grad()
def image_embeddings(model: DualEncoder | None, features: torch.Tensor) -> np.ndarray:
    """Projected, normalised image embeddings of tower features (the features themselves when model is None)."""
    if model is None:
        return features.numpy()
    return model.project_image_features(features.to(device_of(model))).cpu().numpy()


@torch.no_grad()
def label_embeddings(model: DualEncoder, data: M3GData) -> np.ndarray:
    """Projected, normalised embeddings of the training label texts."""
    return model.project_text_features(data.label_features.to(device_of(model))).cpu().numpy()


def pca_reduce(fit_on: np.ndarray, *arrays: np.ndarray, n_components: int, seed: int = 0) -> list[np.ndarray]:
    """Fit PCA on `fit_on` (components capped by its rank) and project every array."""
    from sklearn.decomposition import PCA

    n = min(int(n_components), fit_on.shape[0] - 1, fit_on.shape[1])
    pca = PCA(n, random_state=seed).fit(fit_on)
    return [pca.transform(a) for a in arrays]


def case_vote(queries: np.ndarray, owner: np.ndarray, n_cases: int, gallery: np.ndarray, gallery_labels,
              k: int = 5, fallback: str = "") -> list[str]:
    """Per case, the majority label of the k nearest gallery items of all its images (ties -> most similar).

    A case without images gets `fallback`.
    """
    idx, sim = cosine_topk(queries, gallery, k)
    labels = np.asarray(gallery_labels)[idx]
    out = []
    for case in range(n_cases):
        rows = owner == case
        votes, sims = labels[rows].ravel(), sim[rows].ravel()
        if votes.size == 0:
            out.append(fallback)
            continue
        counts = Counter(votes.tolist())
        best = max(counts.values())
        out.append(str(max((v for v in counts if counts[v] == best), key=lambda v: sims[votes == v].max())))
    return out


def predict_labels(fit: ClipFit | None, data: M3GData, split: str, setting: KnnSetting, seed: int = 0) -> list[str]:
    """Predicted label per case of `split` (fit=None: kNN on frozen image features, image gallery only)."""
    queries, gallery, names, target = _retrieval_space(fit, data, split, setting, seed)
    return case_vote(queries, target.owner, target.n_cases, gallery, names, setting.k, data.most_frequent_label())


def neighbour_disagreement(fit: ClipFit | None, data: M3GData, split: str, setting: KnnSetting,
                           seed: int = 0) -> np.ndarray:
    """Per case, the share of the k neighbours retrieved for its images whose label is not the case's vote (Sec. 6:
    "the retrieved images seldom agreed with each other"); NaN for a case without images."""
    queries, gallery, names, target = _retrieval_space(fit, data, split, setting, seed)
    votes = case_vote(queries, target.owner, target.n_cases, gallery, names, setting.k, data.most_frequent_label())
    idx, _ = cosine_topk(queries, gallery, setting.k)
    retrieved = np.asarray(names)[idx]
    return np.array([float(np.mean(retrieved[target.owner == case] != vote)) if np.any(target.owner == case)
                     else float("nan") for case, vote in enumerate(votes)])


def _retrieval_space(fit: ClipFit | None, data: M3GData, split: str, setting: KnnSetting, seed: int):
    """(query embeddings, gallery embeddings, gallery label names, the split) of a kNN setting, PCA applied."""
    model = None if fit is None else fit.model
    if model is None and setting.gallery == "text":
        raise ParameterError("image-text kNN needs a trained label-CLIP model (fit_label_clip)")
    rows, label_index = data.training_items()
    train_images = image_embeddings(model, tower_features(fit, data, "train", setting.augment, seed))[rows]
    gallery = train_images if setting.gallery == "image" else label_embeddings(model, data)[label_index]
    queries = image_embeddings(model, tower_features(fit, data, split, setting.augment, seed))
    if setting.pca:
        fit_on = train_images if setting.gallery == "image" else np.concatenate([train_images, gallery])
        queries, gallery = pca_reduce(fit_on, queries, gallery, n_components=setting.pca, seed=seed)
    return queries, gallery, np.asarray(data.label_names)[label_index], data.split(split)
