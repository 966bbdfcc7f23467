"""Zhong et al.'s claims as evidence for the claims engine (`eval.claims`, judged against papers/<id>/claims.yaml).

Per variant, from the per-item results the run already has: Table IV's credit per held-out image and Table II's
correctness per labelled image, per claim seed (`seeds.seed_results`; every seed uses the same test items), and the
NLI fine-tune's correctness per test pair of the main run (Table III: one seed)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...eval.claims import Evidence
from .arms import metric_name
from .tables import average_accuracy


def claim_evidence(by_seed: dict, nli: dict | None = None) -> dict[str, Evidence]:
    """One Evidence per metric key the paper's claims use, for every variant: claim_discrimination_accuracy_<v>
    (Table IV overall accuracy, mean over seeds), claim_average_accuracy_<v> (Table II Average accuracy, mean over
    seeds) and, with `nli` ({variant: finetune_text_classifier result}), claim_nli_accuracy_<v> (Table III)."""
    seeds = list(by_seed.values())
    evidence = {}
    for variant in seeds[0]:
        stem = metric_name(variant)
        evidence[f"claim_discrimination_accuracy_{stem}"] = Evidence.values(
            [by[variant]["table_iv"] for by in seeds], label=f"Table IV {variant}")
        correct = [by[variant]["table_ii"] for by in seeds]
        evidence[f"claim_average_accuracy_{stem}"] = Evidence.function(
            [_average_on(c) for c in correct], len(correct[0]), label=f"Table II Average {variant}")
    for variant, result in (nli or {}).items():
        right = (np.asarray(result["y_pred"]) == np.asarray(result["y_true"])).astype(float)
        evidence[f"claim_nli_accuracy_{metric_name(variant)}"] = Evidence.values([right], label=f"NLI {variant}")
    return evidence


def _average_on(correct: np.ndarray) -> Callable[[np.ndarray], float]:
    """Table II's Average accuracy on the images `idx` (a resample) of one seed's correctness matrix."""
    return lambda idx: average_accuracy(correct[idx])
