"""Evidence for the paper's claims (papers/meems/claims.yaml), one `eval.claims.Evidence` per metric key.

Every key is a statistic per head seed, its point the mean over the seeds (recorded under the same key):
the heads of all seeds predict the same test images, so the engine resamples test images and seeds
(unit `both`). Classification keys come from each seed's per-image test predictions (AUC of the scores,
F1 / FNR / FPR at argmax, per-class AUCs, the single-label argmax confusion); embedding keys from each
seed's 14-label MEEMS embedding of (up to 1,000) training images (the images Fig. 5 shows), as silhouettes
in the 3-D PCA space of Fig. 5 or in the embedding's own space. Which claim uses which key: claims.yaml.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from ...eval.claims import Evidence
from ...eval.metrics import LabelStatistic, SilhouetteStatistic, argmax_onehot, distance_matrix, f1, rate
from .data import MeemsData
from .figures import primary_label
from .heads import HeadInputs, HeadsResult, embeddings
from .paper_metrics import binarised
from .projection import pca
from .tasks import MODELS, task_targets

PREFIX = "seeds_"  # every key: the mean over the head seeds
NAMED_CLASSES = ("Pneumothorax", "Enlarged Cardiomediastinum")  # the classes Sec. 5.4 names
MINORITY_BELOW = 0.05  # training prevalence under which a class is a minority class (the notebook's `minority` flag)
DOMINANT_FINDINGS = 2  # Sec. 5.4 names the two dominant Finding labels (MIMIC-CXR: Atelectasis, Cardiomegaly)
FIG5_IMAGES = 1000  # Fig. 5: "a sample of 1,000 images from the training set" (the notebook's first 1,000)
SHUFFLES = 3  # random recolourings of the training images: the silhouette of colours unrelated to the embedding


def claim_evidence(per_seed: list[tuple[int, HeadsResult]], data: MeemsData, inputs: HeadInputs,
                   seed: int = 0) -> dict[str, Evidence]:
    """Evidence for every testable claim from the head seeds the notebook trained: [(seed, HeadsResult)]."""
    probs = [result.probs for _, result in per_seed]
    emb = [embeddings(result.models[("multilabel", "MEEMS")], inputs, "train", True)[:FIG5_IMAGES]
           for _, result in per_seed]
    prevalence = data.train.labels.mean(0)
    rare = (data.test.rare, data.rare_label) if data.test.rare is not None and data.rare_label else None
    return {**classification_evidence(probs, data.test.labels, data.label_names, prevalence, rare),
            **embedding_evidence(emb, data.train.labels[:FIG5_IMAGES], data.label_names, seed, prevalence)}


def evidence_metrics(evidence: dict[str, Evidence]) -> dict:
    """{key: point} to record: exactly the values the claims are judged on."""
    return {key: ev.point() for key, ev in evidence.items()}


def evidence_table(evidence: dict[str, Evidence], seeds) -> pd.DataFrame:
    """One row per key: what it measures, on how many items, its value per seed, the mean (the point) and SD."""
    rows = {}
    for key, ev in evidence.items():
        per_seed = [s.point() for s in ev.per_seed]
        rows[key] = {"measures": ev.label, "items": ev.n_items, **{f"seed {s}": v for s, v in zip(seeds, per_seed)},
                     "mean": ev.point(), "SD": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan")}
    return pd.DataFrame.from_dict(rows, orient="index")


def _key(name: str) -> str:
    return PREFIX + name


def _slug(label: str) -> str:
    return label.lower().replace(" ", "_")


# --- the test images: per-image predictions of each seed's heads ---------------------------------------------

def classification_evidence(probs: list[dict], labels: np.ndarray, label_names, train_prevalence,
                  rare: tuple | None = None) -> dict[str, Evidence]:
    """Classification evidence on the shared test images; probs: per seed, {(task, model, "test"): (N, L)}.

    rare: (rare-stratum flags of the test images, its label) where the data have a hidden stratum.
    """
    names = list(label_names)
    yb = task_targets(labels, "binary")
    y = np.asarray(task_targets(labels, "multilabel"), dtype=np.float64)
    n = len(y)
    Yb = binarised(yb, yb, "binary")[0]
    minority = np.asarray(train_prevalence) < MINORITY_BELOW
    finding = np.array([name != "No Finding" for name in names])
    pb = {m: [binarised(yb, p[("binary", m, "test")], "binary")[1] for p in probs] for m in MODELS}
    pm = {m: [np.asarray(p[("multilabel", m, "test")], dtype=np.float64) for p in probs] for m in MODELS}
    out = {}
    for m in MODELS:
        tag = m.lower()
        out[_key(f"binary_auc_{tag}")] = Evidence.scores(Yb, pb[m], "macro_auroc", label=f"binary AUC, {m}")
        argmax = [argmax_onehot(p)[:, 1:] for p in pb[m]]  # the Finding column at argmax
        out[_key(f"binary_f1_argmax_{tag}")] = Evidence.function(
            [partial(_counted, Yb[:, 1:], pred, "f1") for pred in argmax], n, label=f"binary F1 at argmax, {m}")
        at_half = [p[:, 1:] >= 0.5 for p in pb[m]]  # the operating point of tables.fnr_fpr_table
        for which in ("fnr", "fpr"):
            out[_key(f"binary_{which}_argmax_{tag}")] = Evidence.function(
                [partial(_counted, yb, pred, which) for pred in at_half], n, label=f"binary {which.upper()}, {m}")
        out[_key(f"multilabel_auc_{tag}")] = Evidence.scores(y, pm[m], "macro_auroc", label=f"14-label AUC, {m}")
        out[_key(f"multilabel_f1_argmax_{tag}")] = Evidence.function(
            [partial(_counted, y, argmax_onehot(p), "f1") for p in pm[m]], n, label=f"14-label F1 at argmax, {m}")
        for group, mask in (("minority", minority), ("other", ~minority)):
            out[_key(f"{group}_auc_{tag}")] = Evidence.scores(y[:, mask], [p[:, mask] for p in pm[m]], "macro_auroc",
                                                              label=f"{group}-class AUC, {m}")
        for name in NAMED_CLASSES:
            if name in names:
                j = names.index(name)
                out[_key(f"{_slug(name)}_auc_{tag}")] = Evidence.scores(y[:, j], [p[:, j] for p in pm[m]], "auroc",
                                                                        label=f"{name} AUC, {m}")
        if rare is not None and rare[1] in names:
            j = names.index(rare[1])
            y_rare = y[:, j].copy()
            y_rare[(y_rare == 1) & ~np.asarray(rare[0], dtype=bool)] = np.nan  # rare positives vs all negatives
            out[_key(f"rare_stratum_auc_{tag}")] = Evidence.scores(y_rare, [p[:, j] for p in pm[m]], "auroc",
                                                                   label=f"rare-stratum AUC, {m}")
        single = [_single_label(y, p) for p in pm[m]]
        out[_key(f"no_finding_recall_{tag}")] = Evidence.function(
            [partial(_class_recall, s, names.index("No Finding")) for s in single], n,
            label=f"No Finding -> No Finding (single-label argmax), {m}")
        out[_key(f"predicted_label_entropy_{tag}")] = Evidence.function(
            [partial(_predicted_entropy, s, len(names)) for s in single], n,
            label=f"entropy of the single-label argmax predictions, bits, {m}")
    seeds = range(len(probs))
    out[_key("auc_gain_min_task")] = Evidence([_Combined(
        [LabelStatistic(Yb, pb["MEEMS"][s], "macro_auroc"), LabelStatistic(Yb, pb["baseline"][s], "macro_auroc"),
         LabelStatistic(y, pm["MEEMS"][s], "macro_auroc"), LabelStatistic(y, pm["baseline"][s], "macro_auroc")],
        _min_gain) for s in seeds], "smaller AUC gain of MEEMS over the baseline, binary or 14-label")
    out[_key("share_finding_classes_meems_better")] = Evidence([_Combined(
        [LabelStatistic(y[:, finding], pm["MEEMS"][s][:, finding], "auroc"),
         LabelStatistic(y[:, finding], pm["baseline"][s][:, finding], "auroc")], _share_better) for s in seeds],
        "share of the Finding classes with a higher MEEMS AUC")
    dominant = _dominant_findings(train_prevalence, names)
    out[_key("dominant_label_overprediction_min_model")] = Evidence.function(
        [partial(_min_overprediction, [_single_label(y, pm[m][s]) for m in MODELS], dominant) for s in seeds], n,
        label="argmax share minus true share of the dominant Finding labels (single-label images), smaller model")
    return out


class _Combined:
    """A statistic of several label statistics on the same resamples (e.g. a difference of two AUCs)."""

    def __init__(self, parts: list[LabelStatistic], combine):
        self.parts, self.combine, self.n = parts, combine, parts[0].n

    def point(self) -> float:
        return float(self.combine(*(np.asarray(s.point(), dtype=np.float64) for s in self.parts)))

    def on(self, chunk) -> np.ndarray:
        return np.asarray(self.combine(*(s.on(chunk) for s in self.parts)), dtype=np.float64)


def _min_gain(binary_meems, binary_baseline, labels_meems, labels_baseline):
    """The smaller over the two tasks of (MEEMS AUC - baseline AUC): above 0 only when MEEMS leads on both."""
    return np.minimum(binary_meems - binary_baseline, labels_meems - labels_baseline)


def _share_better(meems, baseline):
    """Share of the classes (with an AUC on the resample) where MEEMS's AUC exceeds the baseline's."""
    ok = np.isfinite(meems) & np.isfinite(baseline)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum((meems > baseline) & ok, axis=-1) / np.sum(ok, axis=-1)


def _counted(y: np.ndarray, pred: np.ndarray, which: str, idx: np.ndarray) -> float:
    """F1 (mean over the columns with positives), FNR or FPR (one column) of boolean predictions on the items idx.

    The values of eval.metrics.column_f1 / error_rates, from how often each item was drawn.
    """
    counts = np.bincount(idx, minlength=len(y)).astype(np.float64)
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    tp, fn = counts @ (y * pred), counts @ (y * (1 - pred))
    fp, tn = counts @ ((1 - y) * pred), counts @ ((1 - y) * (1 - pred))
    if which == "fnr":
        return float(rate(fn, tp + fn)[0])
    if which == "fpr":
        return float(rate(fp, fp + tn)[0])
    scores = np.where(tp + fn > 0, f1(tp, fp, fn), np.nan)
    return float(np.nanmean(scores)) if np.isfinite(scores).any() else float("nan")


def _single_label(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows with exactly one positive label, their true class, their argmax class): Fig. 8's confusion."""
    rows = np.flatnonzero(np.nan_to_num(y).sum(1) == 1)
    return rows, y[rows].argmax(1), p[rows].argmax(1)


def _weights(single: tuple, idx: np.ndarray) -> np.ndarray:
    """How often each single-label row was drawn in idx."""
    rows = single[0]
    return np.bincount(idx, minlength=int(rows.max()) + 1 if len(rows) else 0)[rows].astype(np.float64)


def _class_recall(single: tuple, k: int, idx: np.ndarray) -> float:
    """Share of the single-label images of class k whose argmax is k (a diagonal cell of Fig. 8)."""
    w, true, pred = _weights(single, idx), single[1], single[2]
    total = w[true == k].sum()
    return float(w[(true == k) & (pred == k)].sum() / total) if total else float("nan")


def _predicted_entropy(single: tuple, n_classes: int, idx: np.ndarray) -> float:
    """Entropy (bits) of the argmax classes of the single-label images: how spread the predictions are."""
    q = np.bincount(single[2], weights=_weights(single, idx), minlength=n_classes)
    if not q.sum():
        return float("nan")
    q = q[q > 0] / q.sum()
    return float(-(q * np.log2(q)).sum())


def _dominant_findings(train_prevalence, names) -> np.ndarray:
    """Indices of the most prevalent training labels other than No Finding (Sec. 5.4: the dominant Finding labels)."""
    order = [j for j in np.argsort(-np.asarray(train_prevalence), kind="stable") if names[j] != "No Finding"]
    return np.array(order[:DOMINANT_FINDINGS])


def _min_overprediction(singles: list[tuple], dominant: np.ndarray, idx: np.ndarray) -> float:
    """The smaller over models of (share of argmax predictions on the dominant labels - their true share)."""
    gaps = []
    for single in singles:
        w = _weights(single, idx)
        if not w.sum():
            return float("nan")
        gaps.append((w[np.isin(single[2], dominant)].sum() - w[np.isin(single[1], dominant)].sum()) / w.sum())
    return float(min(gaps))


# --- the training images' embeddings (Fig. 5) -------------------------------------------------------------------

EMBEDDING_KEYS = {  # key (without the prefix) -> what it measures, MEEMS 14-label embedding of the training images
    "no_finding_silhouette_pca3_meems": "silhouette of the No Finding images (No Finding vs Finding), 3-D PCA",
    "majority_label_silhouette_meems": "silhouette of the majority-class colours (Fig. 5 colours), 3-D PCA",
    "majority_label_silhouette_shuffled_meems": "the same with the colours shuffled over the images, 3-D PCA",
    "minority_label_silhouette_meems": "silhouette of the minority-class colours (Fig. 5 colours), 3-D PCA",
    "binary_partition_silhouette_meems": "silhouette of No Finding vs Finding, all images, own space",
    "label_partition_silhouette_meems": "silhouette of the Fig. 5 colours, all images, own space",
}

def embedding_evidence(embeddings_by_seed: list[np.ndarray], train_labels: np.ndarray, label_names,
                       seed: int = 0, prevalence=None) -> dict[str, Evidence]:
    """Silhouettes of each seed's MEEMS embedding of the training images (L2-normalised as in Sec. 5.2).

    In Fig. 5's 3-D PCA space: the No Finding images' mean silhouette against the Finding images, and the
    mean silhouette of the images whose Fig. 5 colour (rarest positive label) is a majority or a minority
    class, with the colours as clusters; beside the majority one, the same with the colours shuffled over
    the images (`SHUFFLES` seeded permutations, averaged): what colours unrelated to the embedding give.
    In the embedding's own space: the whole partition's silhouette by No Finding / Finding and by colour.
    prevalence: the whole training split's label prevalence (Fig. 5's colours), default these images'.
    """
    names = list(label_names)
    labels = np.asarray(train_labels)
    prevalence = labels.mean(0) if prevalence is None else np.asarray(prevalence)
    no_finding = (labels[:, names.index("No Finding")] == 1).astype(int)
    colour = primary_label(labels, names, prevalence)
    groups = np.unique(colour, return_inverse=True)[1]
    minority = np.array([prevalence[names.index(c)] < MINORITY_BELOW for c in colour])
    everyone = np.ones(len(labels), dtype=bool)
    rng = np.random.default_rng(seed)
    shuffles = [rng.permutation(groups) for _ in range(SHUFFLES)]
    stats = {k: [] for k in EMBEDDING_KEYS}
    for emb in embeddings_by_seed:
        e = np.asarray(emb, dtype=np.float64)
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        d3, dn = distance_matrix(pca(e, 3, seed)), distance_matrix(e)
        stats["no_finding_silhouette_pca3_meems"].append(SilhouetteStatistic(d3, [no_finding], no_finding == 1))
        stats["majority_label_silhouette_meems"].append(SilhouetteStatistic(d3, [groups], ~minority))
        stats["majority_label_silhouette_shuffled_meems"].append(SilhouetteStatistic(d3, shuffles, ~minority))
        stats["minority_label_silhouette_meems"].append(SilhouetteStatistic(d3, [groups], minority))
        stats["binary_partition_silhouette_meems"].append(SilhouetteStatistic(dn, [no_finding], everyone))
        stats["label_partition_silhouette_meems"].append(SilhouetteStatistic(dn, [groups], everyone))
    return {_key(k): Evidence(v, EMBEDDING_KEYS[k]) for k, v in stats.items()}
