"""The run's evidence for the poster's claims that the demo can pose (papers/vlm_feature_probing/claims.yaml),
one `eval.claims.Evidence` per metric key, for the one claims engine (`compare.show_claims` judges them).

Two kinds of evidence, both on this run's features, neither fitting anything:

- per-item correctness of the poster's cross-validated linear probes the notebook already ran
  (`probes.probe_results`, `confounder_results`, `subclass_results`): each `eval.probing.ProbeResult` keeps its
  CV items' out-of-fold predictions (by the fold model that did not see the item); accuracies are the mean of
  that 0/1 correctness (pooled over the folds, so they differ slightly from the recorded mean of the fold
  accuracies `svc_accuracy_*`);
- the share of the feature variance that a grouping of the images explains (`explained_variance`, on
  L2-normalised features: the cosine geometry the poster's UMAP sees), for "X affected the feature distribution
  more than Y".

The two sides of each claim are measured on the same items (the split depends only on the labels and the seed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...eval.claims import Evidence
from ...eval.probing import ProbeResult
from .poster import slug
from .probes import fitted_probes

MALIGNANCY = {"glioma": "malignant", "meningioma": "benign", "pituitary": "benign",  # BrainMR's four classes
              "no_tumor": "no tumour", "notumor": "no tumour", "no tumor": "no tumour"}
NO_TUMOUR = "no tumour"


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


def claim_evidence(features: dict, data: dict, models: dict[str, str], results: pd.DataFrame,
                   confounders: pd.DataFrame | None = None, subclasses: pd.DataFrame | None = None) -> dict[str, Evidence]:
    """Evidence per metric key named by a testable claim of claims.yaml, from this run's features and probes.

    `features[(model, dataset)]` is (X, class names) as the notebook builds it, `data[dataset]` the opened
    dataset (its background factors by `column`), `models` {tag: model name} with tags "medical" (the demo's
    medical image-text model) and "encoder" (the non-medical encoder it is built on); `results`,
    `confounders` and `subclasses` are the frames of `probes.probe_results` / `confounder_results` /
    `subclass_results` on those features (their ProbeResults' out-of-fold predictions are read, nothing is
    refitted). Keys (tag: medical unless said): `oof_accuracy_<medical|encoder>` (mean over the datasets of the
    out-of-fold accuracy, poster split); `oof_tumour_presence_accuracy_medical` / `majority_tumour_presence` and
    `oof_malignancy_accuracy_medical` / `majority_malignancy` (BrainMR, read off the 4-class probe);
    `plane_r2_<tag>` / `malignancy_r2_<tag>` (BrainMR, where the plane is recorded); `oof_word_accuracy_medical`
    / `majority_word` and `oof_calipers_accuracy_medical` / `majority_calipers` (BreastUS confounder probes);
    `oof_microbe_subclass_accuracy_medical` / `majority_microbe_subclass` (HiCervix microbe subclass probe);
    `oof_subtype_accuracy_medical` / `majority_subtype` (BreakHis subtype probes within benign and malignant). A
    key whose model, dataset, factor or probe the run lacks is left out (its claim is then not testable here).
    """
    by_slug = {slug(name): name for name in data}
    probes = fitted_probes(results)
    factor_probes = fitted_probes(confounders) if confounders is not None else {}
    subclass_probes = fitted_probes(subclasses) if subclasses is not None else {}
    evidence: dict[str, Evidence] = {}
    for tag in ("medical", "encoder"):
        model = models.get(tag)
        fits = [probes[(model, n, "random")] for n in data if (model, n, "random") in probes] if model else []
        if fits:
            evidence[f"oof_accuracy_{tag}"] = _mean_over_datasets(fits, f"oof_accuracy_{tag}")
        if model and (model, by_slug.get("brainmr")) in features:
            evidence.update(_plane_and_malignancy(features[(model, by_slug["brainmr"])], data[by_slug["brainmr"]], tag))
    medical = models.get("medical")
    if medical and (medical, by_slug.get("brainmr"), "random") in probes:
        evidence.update(_tumour_probes(probes[(medical, by_slug["brainmr"], "random")]))
    for factor in ("word", "calipers"):
        if medical and (medical, by_slug.get("breastus"), factor) in factor_probes:
            evidence.update(_factor_probe(factor_probes[(medical, by_slug["breastus"], factor)], factor))
    fits = [subclass_probes[(medical, by_slug.get("breakhis"), p)] for p in ("benign", "malignant")
            if (medical, by_slug.get("breakhis"), p) in subclass_probes]
    if fits:
        evidence.update(_subtype_probes(fits))
    if medical and (medical, by_slug.get("hicervix"), "microbe") in subclass_probes:
        fit = subclass_probes[(medical, by_slug["hicervix"], "microbe")]
        evidence.update({
            "oof_microbe_subclass_accuracy_medical": Evidence.values([fit.cv_correct()], "microbe subclass (medical)"),
            "majority_microbe_subclass": Evidence.constant(majority_rate(fit.cv_true), "majority rate")})
    return evidence


def _mean_over_datasets(fits: list[ProbeResult], label: str) -> Evidence:
    """Mean over datasets of each dataset's out-of-fold accuracy, as a function of the pooled CV items."""
    correct = np.concatenate([fit.cv_correct() for fit in fits])
    dataset = np.concatenate([np.full(len(fit.cv_index), i) for i, fit in enumerate(fits)])

    def mean_accuracy(idx: np.ndarray) -> float:
        n = np.bincount(dataset[idx], minlength=len(fits))
        hits = np.bincount(dataset[idx], weights=correct[idx], minlength=len(fits))
        return float(np.mean(hits[n > 0] / n[n > 0]))

    return Evidence.function([mean_accuracy], len(correct), label)


def _malignancy(classes) -> np.ndarray:
    """BrainMR class names -> no tumour / benign / malignant (glioma malignant; meningioma, pituitary benign)."""
    return np.array([MALIGNANCY.get(str(c).lower(), str(c)) for c in classes])


def _tumour_probes(fit: ProbeResult) -> dict[str, Evidence]:
    """Tumour presence and malignancy read off the 4-class probe's out-of-fold predictions (BrainMR)."""
    true, predicted = _malignancy(fit.cv_true), _malignancy(fit.cv_predicted)
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


def _factor_probe(fit: ProbeResult, factor: str) -> dict[str, Evidence]:
    """The poster's probe predicting a background factor (`eval.probing.confounder_probe`: images without a
    value and values seen fewer than 5 times left out), out of fold, beside the factor's majority rate on the
    same items."""
    return {f"oof_{factor}_accuracy_medical": Evidence.values([fit.cv_correct()], f"{factor} probe (medical)"),
            f"majority_{factor}": Evidence.constant(majority_rate(fit.cv_true), "majority rate")}


def _subtype_probes(fits: list[ProbeResult]) -> dict[str, Evidence]:
    """Subtype probes within each class pooled (BreakHis): out-of-fold correctness of every CV item beside the
    item-weighted majority rate of the subtypes within its class."""
    majority = sum(majority_rate(fit.cv_true) * len(fit.cv_true) for fit in fits) / sum(len(f.cv_true) for f in fits)
    return {"oof_subtype_accuracy_medical": Evidence.values([np.concatenate([f.cv_correct() for f in fits])],
                                                            "subtype within class (medical)"),
            "majority_subtype": Evidence.constant(float(majority), "majority rate")}
