"""The run's evidence for the poster's claims that the demo can pose (papers/vlm_feature_probing/claims.yaml),
one `eval.claims.Evidence` per metric key, for the one claims engine (`compare.show_claims` judges them).

Two kinds of evidence, both on this run's features:

- per-item correctness of the poster's cross-validated linear probe: `out_of_fold` repeats the CV part of
  `eval.probing.linear_probe` (the same held-out split, folds and probe) and keeps each CV item's prediction by the
  fold model that did not see it; accuracies are the mean of that 0/1 correctness (pooled over the folds, so
  they differ slightly from the recorded mean of the fold accuracies `svc_accuracy_*`);
- the share of the feature variance that a grouping of the images explains (`explained_variance`, on
  L2-normalised features: the cosine geometry the poster's UMAP sees), for "X affected the feature distribution
  more than Y".

The two sides of each claim are measured on the same items (the split depends only on the labels and the seed).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ...eval.claims import Evidence
from ...eval.probing import make_probe
from .poster import slug

MALIGNANCY = {"glioma": "malignant", "meningioma": "benign", "pituitary": "benign",  # BrainMR's four classes
              "no_tumor": "no tumour", "notumor": "no tumour", "no tumor": "no tumour"}
NO_TUMOUR = "no tumour"


@dataclass
class OutOfFold:
    """The CV items of a linear probe (`rest`: indices of the 80% not held out), each one's out-of-fold
    prediction and its fold."""

    rest: np.ndarray
    predicted: np.ndarray
    fold: np.ndarray

    def correct(self, labels) -> np.ndarray:
        """0/1 per CV item: the out-of-fold prediction equals the item's label."""
        return (self.predicted == np.asarray(labels)[self.rest]).astype(float)


def out_of_fold(features, labels, seed: int = 0, test_size: float = 0.2, folds: int = 5) -> OutOfFold:
    """The CV part of `eval.probing.linear_probe` (poster split: stratified random hold-out, stratified K-fold on
    the rest, standardised LinearSVC with C = 100 / N per fold), keeping every CV item's prediction."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, train_test_split

    x, y = np.asarray(features, dtype=np.float64), np.asarray(labels)
    rest, _ = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y, random_state=seed)
    predicted, fold = np.empty(len(rest), dtype=y.dtype), np.empty(len(rest), dtype=int)
    for k, (train, val) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(y[rest], y[rest])):
        with warnings.catch_warnings():  # liblinear's max_iter is part of the protocol (as in linear_probe)
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            model = make_probe(len(train), seed).fit(x[rest][train], y[rest][train])
        predicted[val], fold[val] = model.predict(x[rest][val]), k
    return OutOfFold(rest, predicted, fold)


def explained_variance(features, groups) -> float:
    """Share of the total variance of the L2-normalised features that lies between the groups' means (eta^2)."""
    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    _, group = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    centred = x - x.mean(0)
    sums = np.zeros((group.max() + 1, x.shape[1]))
    np.add.at(sums, group, centred)
    between = float(np.sum(sums**2 / np.bincount(group)[:, None]))
    total = float(np.sum(centred**2))
    return between / total if total > 0 else 0.0


def majority_rate(labels) -> float:
    """Share of the most frequent label (the accuracy of always guessing it)."""
    _, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return float(counts.max() / counts.sum())


def claim_evidence(features: dict, data: dict, models: dict[str, str], seed: int = 0) -> dict[str, Evidence]:
    """Evidence per metric key named by a testable claim of claims.yaml, from this run's features.

    `features[(model, dataset)]` is (X, class names) as the notebook builds it, `data[dataset]` the opened
    dataset (its background factors by `column`), `models` {tag: model name} with tags "medical" (the demo's
    medical image-text model) and "encoder" (the non-medical encoder it is built on). Keys (tag: medical unless
    said): `oof_accuracy_<medical|encoder>` (mean over the datasets of the out-of-fold accuracy);
    `oof_tumour_presence_accuracy_medical` / `majority_tumour_presence` and `oof_malignancy_accuracy_medical` /
    `majority_malignancy` (BrainMR, read off the 4-class probe); `plane_r2_<tag>` / `malignancy_r2_<tag>`
    (BrainMR, where the plane is recorded); `oof_word_accuracy_medical` / `majority_word` and
    `oof_calipers_accuracy_medical` / `majority_calipers` (BreastUS factor probes);
    `oof_microbe_subclass_accuracy_medical` / `majority_microbe_subclass` (HiCervix microbe group). A key whose
    model, dataset or factor the run lacks is left out (its claim is then not testable here).
    """
    by_slug = {slug(name): name for name in data}
    evidence: dict[str, Evidence] = {}
    for tag in ("medical", "encoder"):
        model = models.get(tag)
        names = [n for n in data if (model, n) in features] if model else []
        if names:
            evidence[f"oof_accuracy_{tag}"] = _mean_over_datasets(
                [(out_of_fold(*features[(model, n)], seed), features[(model, n)][1]) for n in names],
                f"oof_accuracy_{tag}")
        if model and (model, by_slug.get("brainmr")) in features:
            evidence.update(_plane_and_malignancy(features[(model, by_slug["brainmr"])], data[by_slug["brainmr"]], tag))
    medical = models.get("medical")
    if medical and (medical, by_slug.get("brainmr")) in features:
        evidence.update(_tumour_probes(*features[(medical, by_slug["brainmr"])], seed))
    if medical and (medical, by_slug.get("breastus")) in features:
        name = by_slug["breastus"]
        for factor in ("word", "calipers"):
            if factor in data[name].confounders:
                evidence.update(_factor_probe(features[(medical, name)][0], data[name].column(factor), factor, seed))
    if medical and (medical, by_slug.get("hicervix")) in features:
        evidence.update(_microbe_probe(*features[(medical, by_slug["hicervix"])], data[by_slug["hicervix"]], seed))
    return evidence


def _mean_over_datasets(oofs: list, label: str) -> Evidence:
    """Mean over datasets of each dataset's out-of-fold accuracy, as a function of the pooled CV items."""
    correct = np.concatenate([oof.correct(y) for oof, y in oofs])
    dataset = np.concatenate([np.full(len(oof.rest), i) for i, (oof, _) in enumerate(oofs)])

    def mean_accuracy(idx: np.ndarray) -> float:
        n = np.bincount(dataset[idx], minlength=len(oofs))
        hits = np.bincount(dataset[idx], weights=correct[idx], minlength=len(oofs))
        return float(np.mean(hits[n > 0] / n[n > 0]))

    return Evidence.function([mean_accuracy], len(correct), label)


def _malignancy(classes) -> np.ndarray:
    """BrainMR class names -> no tumour / benign / malignant (glioma malignant; meningioma, pituitary benign)."""
    return np.array([MALIGNANCY.get(str(c).lower(), str(c)) for c in classes])


def _tumour_probes(x, y, seed: int) -> dict[str, Evidence]:
    """Tumour presence and malignancy read off the 4-class probe's out-of-fold predictions (BrainMR)."""
    oof = out_of_fold(x, y, seed)
    true, predicted = _malignancy(np.asarray(y)[oof.rest]), _malignancy(oof.predicted)
    presence = ((predicted == NO_TUMOUR) == (true == NO_TUMOUR)).astype(float)
    tumour = true != NO_TUMOUR
    return {"oof_tumour_presence_accuracy_medical": Evidence.values([presence], "tumour presence (medical)"),
            "majority_tumour_presence": Evidence.constant(majority_rate(true == NO_TUMOUR), "majority rate"),
            "oof_malignancy_accuracy_medical": Evidence.values([(predicted == true)[tumour].astype(float)],
                                                               "malignancy among tumours (medical)"),
            "majority_malignancy": Evidence.constant(majority_rate(true[tumour]), "majority rate")}


def _plane_and_malignancy(feature_pair, dataset, tag: str) -> dict[str, Evidence]:
    """Variance share of the anatomical plane and of malignancy in the BrainMR features (where the plane is
    recorded; the real BrainMR set does not record it)."""
    if "plane" not in dataset.confounders:
        return {}
    x, y = np.asarray(feature_pair[0]), feature_pair[1]
    plane, malignancy = np.asarray(dataset.column("plane")).astype(str), _malignancy(y)
    return {f"plane_r2_{tag}": Evidence.function([lambda idx: explained_variance(x[idx], plane[idx])], len(x),
                                                 f"plane R2 ({tag})"),
            f"malignancy_r2_{tag}": Evidence.function([lambda idx: explained_variance(x[idx], malignancy[idx])],
                                                      len(x), f"malignancy R2 ({tag})")}


def _factor_probe(x, values, factor: str, seed: int) -> dict[str, Evidence]:
    """The poster's probe predicting a background factor (as `eval.probing.confounder_probe`: values seen fewer
    than 5 times left out), out of fold, beside the factor's majority rate on the same items."""
    values = np.array(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values],
                      dtype=object)
    names, counts = np.unique(values[values != ""], return_counts=True)
    keep = np.isin(values, names[counts >= 5])
    labels = values[keep].astype(str)
    oof = out_of_fold(np.asarray(x)[keep], labels, seed)
    return {f"oof_{factor}_accuracy_medical": Evidence.values([oof.correct(labels)], f"{factor} probe (medical)"),
            f"majority_{factor}": Evidence.constant(majority_rate(labels[oof.rest]), "majority rate")}


def _microbe_probe(x, y, dataset, seed: int) -> dict[str, Evidence]:
    """The fine-class probe within the microbe level-1 group (as `probes.subclass_results`), out of fold."""
    key = next((k for k in ("level1", "level_1") if k in dataset.records[0]), None)
    if key is None:
        return {}
    keep = np.array([str(v).lower() == "microbe" for v in dataset.column(key)])
    if keep.sum() < 10:
        return {}
    labels = np.asarray(y)[keep]
    oof = out_of_fold(np.asarray(x)[keep], labels, seed)
    return {"oof_microbe_subclass_accuracy_medical": Evidence.values([oof.correct(labels)], "microbe subclass (medical)"),
            "majority_microbe_subclass": Evidence.constant(majority_rate(labels[oof.rest]), "majority rate")}
