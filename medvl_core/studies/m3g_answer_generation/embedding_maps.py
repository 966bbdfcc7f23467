"""Fig. S2 (PCA of the training label embeddings, look-alike conditions close) and the image / label-text clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...worlds.synth_derm_conditions import BY_NAME
from .clip import ClipFit, tower_features
from .knn import image_embeddings, label_embeddings, pca_reduce
from .prepare import M3GData


def label_pca(data: M3GData, n_components: int = 2, seed: int = 0) -> pd.DataFrame:
    """Fig. S2: PCA of the training label texts' tower embeddings (label, pc1, pc2)."""
    (points,) = pca_reduce(data.label_features.numpy(), data.label_features.numpy(), n_components=n_components, seed=seed)
    return pd.DataFrame({"label": data.label_names, "pc1": points[:, 0], "pc2": points[:, 1]})


def similar_pairs(labels) -> list[tuple[str, str]]:
    """Pairs of SynthDerm conditions that the world declares look-alikes ("confusers"), among `labels`."""
    present = set(labels)
    return sorted({tuple(sorted((a, b))) for a in present if a in BY_NAME for b in BY_NAME[a].confusers if b in present})


def closeness(frame: pd.DataFrame, pairs) -> dict:
    """Mean distance in the PCA plane between the given pairs vs between all other pairs, and its ratio."""
    names = list(frame["label"])
    points = frame[["pc1", "pc2"]].to_numpy()
    dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
    index = {n: i for i, n in enumerate(names)}
    chosen = {(index[a], index[b]) for a, b in pairs} | {(index[b], index[a]) for a, b in pairs}
    mask = ~np.eye(len(names), dtype=bool)
    similar = [dist[i, j] for i, j in chosen]
    others = [dist[i, j] for i, j in zip(*np.nonzero(mask)) if (i, j) not in chosen]
    if not similar or not others:
        return {"n_pairs": len(pairs), "similar": float("nan"), "others": float("nan"), "ratio": float("nan")}
    return {"n_pairs": len(pairs), "similar": round(float(np.mean(similar)), 4), "others": round(float(np.mean(others)), 4),
            "ratio": round(float(np.mean(similar) / np.mean(others)), 3)}


def modality_pca(fit: ClipFit, data: M3GData, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Training image and label-text embeddings of a fit in one PCA plane, and how far apart the two clouds are.

    Stats: silhouette of the image/text split (in the plane and in the joint space, cosine), centroid distance in
    the plane over the mean within-cloud distance to its centroid (> 1: separate clusters).
    """
    from sklearn.metrics import silhouette_score

    rows, label_index = data.training_items()
    images = image_embeddings(fit.model, tower_features(fit, data, "train", False, seed))[rows]
    texts = label_embeddings(fit.model, data)
    joint = np.concatenate([images, texts])
    kind = np.array(["image"] * len(images) + ["label text"] * len(texts))
    (plane,) = pca_reduce(joint, joint, n_components=2, seed=seed)
    centres = {k: plane[kind == k].mean(axis=0) for k in ("image", "label text")}
    spread = np.mean([np.linalg.norm(plane[kind == k] - c, axis=1).mean() for k, c in centres.items()])
    stats = {"silhouette_pca": round(float(silhouette_score(plane, kind)), 3),
             "silhouette_joint_cosine": round(float(silhouette_score(joint, kind, metric="cosine")), 3),
             "centroid_distance_over_spread": round(float(np.linalg.norm(centres["image"] - centres["label text"])
                                                          / spread), 3)}
    frame = pd.DataFrame({"kind": kind, "pc1": plane[:, 0], "pc2": plane[:, 1],
                          "label": list(np.asarray(data.label_names)[label_index]) + list(data.label_names)})
    return frame, stats
