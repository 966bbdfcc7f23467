"""Jang et al.'s claims as evidence for the one claims engine (`eval.claims`, papers/loss_relaxation/claims.yaml):
per metric key, the statistic the claim is judged on, per seed over the same test items, built from the per-image
probabilities, alignments and histories the run already holds. `claim_evidence` returns them; the notebook records
each one's point value under its key and `compare.show_claims` judges the claims.

Keys (all prefixed `claim_`; fw is clip / slip / uniclip, arm none / aug / relax / both, tag wo / w):
- `claim_test_auroc_{fw}_{arm}`: test macro AUROC over all labels, per seed (Table 1's "Avg. total").
- `claim_test_auroc5_{fw}_{single|ensemble}_{tag}`: test mean AUROC of the five competition labels (Table 2): per
  seed, or of the seed ensemble (mean of the seeds' probabilities) as one "seed".
- `claim_test_auroc_{pleural_effusion|other4}_{fw}_{relax|aug}`: test AUROC of Pleural Effusion, and the mean of
  the other four competition labels, per seed (Table 6's per-pathology reading).
- `claim_align_{fw}_{tag}_{sentence|report}`, `claim_align_gap_{fw}_{tag}` (|report - sentence|): Table 5's
  alignment on the report test split, resampled by image.
- `claim_fig4_val_auroc5_{t|n}_{paper|best_other}`: a Fig. 4 sweep's validation Avg. 5 AUROC at the paper's
  choice (t = 0.5, n = 3) and the highest of the other swept values (re-picked on every resample); one seed.
- `claim_fig5_uniclip_{tag}_val_auroc5_epochs`: Fig. 5's validation Avg. 5 AUROC, mean over epochs (items) and seeds.
- `claim_fig5_uniclip_epoch_seconds_ratio` (only with `timing=True`): mean epoch seconds with the method over
  without, epochs as items.
"""

from __future__ import annotations

import warnings

import numpy as np

from ...eval.claims import Evidence
from ...eval.contrastive_fit import COMPETITION
from ...eval.metrics.bootstrap import LabelStatistic, ResampleChunk
from ...eval.report_study import StudyData
from .arms import ARMS, FRAMEWORKS, AblationResult, Sweep, arm_name
from .tables import competition_columns

PAPER_CHOICE = {"t": 0.5, "n": 3}  # the values the paper settled on after its Fig. 4 sweeps (Discussion)


class BestOf:
    """The highest of several statistics of the same items (NaN ones ignored), on all items and on each resample."""

    def __init__(self, stats):
        self.stats, self.n = list(stats), stats[0].n

    def point(self) -> float:
        return float(np.nanmax([s.point() for s in self.stats]))

    def on(self, chunk: ResampleChunk) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples stay NaN and are dropped
            return np.nanmax(np.stack([s.on(chunk) for s in self.stats]), axis=0)


def claim_evidence(result: AblationResult, study: StudyData, sweeps=(), frameworks=FRAMEWORKS,
                   timing: bool = False) -> dict[str, Evidence]:
    """One Evidence per metric key a claim of claims.yaml names (see the module docstring), for the frameworks this
    run trained. `sweeps`: the Fig. 4 `Sweep`s (t, n); `timing`: add the epoch-time ratio (off for the frozen-tower
    demo, whose wall-clock seconds on a shared CPU are no reproducible metric)."""
    Y = study.test.labels
    five = competition_columns(study.label_names)
    pe = study.label_names.index("Pleural Effusion")
    other4 = [j for j in five if j != pe]
    evidence = {}
    for fw in frameworks:
        for arm in ARMS:
            probs = list(result.test_probs[arm_name(fw, arm)].values())
            evidence[f"claim_test_auroc_{fw}_{arm}"] = Evidence.scores(Y, probs, "macro_auroc")
            if arm in ("relax", "aug"):
                evidence[f"claim_test_auroc_pleural_effusion_{fw}_{arm}"] = Evidence.scores(
                    Y[:, [pe]], [p[:, [pe]] for p in probs], "macro_auroc")
                evidence[f"claim_test_auroc_other4_{fw}_{arm}"] = Evidence.scores(
                    Y[:, other4], [p[:, other4] for p in probs], "macro_auroc")
        for tag, arm in (("wo", "none"), ("w", "both")):
            variant = arm_name(fw, arm)
            probs = list(result.test_probs[variant].values())
            evidence[f"claim_test_auroc5_{fw}_single_{tag}"] = Evidence.scores(Y[:, five], [p[:, five] for p in probs])
            evidence[f"claim_test_auroc5_{fw}_ensemble_{tag}"] = Evidence.scores(Y[:, five], [result.ensemble(variant)[:, five]])
            evidence.update(alignment_evidence(result, variant, fw, tag))
    if "uniclip" in frameworks:
        evidence.update(fig5_evidence(result, "uniclip", timing))
    for sweep in sweeps:
        evidence.update(fig4_evidence(sweep, study))
    return {key: ev for key, ev in evidence.items() if ev is not None}


def alignment_evidence(result: AblationResult, variant: str, fw: str, tag: str) -> dict[str, Evidence]:
    """Table 5 per image: report-level (mean of the images' report cosines), sentence-level (all sentences' mean
    cosine: the sum over the resampled images' sentences over their number) and the gap |report - sentence|."""
    per_image = [a["per_image"] for a in result.alignment[variant].values()]
    n = len(per_image[0]["report"])

    def sentence(a):
        return lambda idx: float(a["sentence_sum"][idx].sum() / a["sentence_n"][idx].sum())

    def gap(a):
        return lambda idx: abs(float(a["report"][idx].mean()) - sentence(a)(idx))

    return {f"claim_align_{fw}_{tag}_report": Evidence.values([a["report"] for a in per_image]),
            f"claim_align_{fw}_{tag}_sentence": Evidence.function([sentence(a) for a in per_image], n),
            f"claim_align_gap_{fw}_{tag}": Evidence.function([gap(a) for a in per_image], n)}


def fig5_evidence(result: AblationResult, framework: str, timing: bool) -> dict[str, Evidence]:
    """Fig. 5: each arm's validation Avg. 5 AUROC per epoch (epochs as items, per seed) and, with `timing`, the
    ratio of mean epoch seconds with the method over without (epochs paired by index, per seed)."""
    histories = {tag: list(result.history[arm_name(framework, arm)].values()) for tag, arm in (("wo", "none"), ("w", "both"))}
    if len({len(h) for frames in histories.values() for h in frames}) != 1:
        return {}  # seeds or arms stopped at different epochs: no epoch-paired evidence
    out = {f"claim_fig5_{framework}_{tag}_val_auroc5_epochs": Evidence.values([h["val_auroc_5"].to_numpy() for h in frames])
           for tag, frames in histories.items()}
    if timing:
        def ratio(w, wo):
            return lambda idx: float(w[idx].mean() / wo[idx].mean())

        pairs = [(w["seconds"].to_numpy(), wo["seconds"].to_numpy()) for w, wo in zip(histories["w"], histories["wo"], strict=True)]
        out[f"claim_fig5_{framework}_epoch_seconds_ratio"] = Evidence.function([ratio(*p) for p in pairs], len(pairs[0][0]))
    return out


def fig4_evidence(sweep: Sweep, study: StudyData) -> dict[str, Evidence]:
    """A Fig. 4 sweep's validation Avg. 5 AUROC at the paper's choice and the best of the other swept values (one
    seed; absent when the paper's value was not swept or nothing else was)."""
    paper = PAPER_CHOICE[sweep.column]
    others = [v for v in sweep.val_probs if v != paper]
    if paper not in sweep.val_probs or not others:
        return {}
    Y = study.validate.labels
    five = [study.label_names.index(c) for c in COMPETITION if c in study.label_names] or list(range(Y.shape[1]))

    def stat(value):
        return LabelStatistic(Y[:, five], sweep.val_probs[value][:, five], "macro_auroc")

    key = f"claim_fig4_val_auroc5_{sweep.column}"
    return {f"{key}_paper": Evidence([stat(paper)]), f"{key}_best_other": Evidence([BestOf([stat(v) for v in others])])}
