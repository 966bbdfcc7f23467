"""Jang et al.'s claims tested on this run: each arm's seed-ensemble gain over plain fine-tuning (paired
bootstrap), and a computed reading of each Fig. 4 sweep against the paper's choice of t and n."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...eval.contrastive_fit import FRAMEWORK_NAMES
from ...eval.metrics import paired_bootstrap_pvalue
from .arms import AblationResult, arm_name

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
