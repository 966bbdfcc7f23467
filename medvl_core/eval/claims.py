"""One verdict engine for every paper's claims: a paired bootstrap of our difference a - b.

Scheme. Each metric of ours is `Evidence`: per seed, a statistic of the test items (an AUROC of scores, a
mean of per-item values, any function of the items). A claim's two sides share the test items, so one set
of resamples serves both (paired). With unit 'items' the test items are resampled and each side is the
mean over its seeds on the same resample; with 'seeds' the seeds are resampled (paired by seed) and all
items kept; with 'both' each resample draws items and then seeds. The difference's 95% percentile CI and a
two-sided bootstrap p (the share of resamples on the far side of the claim's boundary, doubled) follow;
p is Holm-corrected across the claims judged together, with at least 4 m / 0.05 resamples for m claims (so that
the smallest possible p, 2 / B, survives the correction). Verdicts:

- reproduced: the difference lies on the paper's side of the boundary and the Holm-corrected p < 0.05;
- contradicted: it lies on the other side with Holm-corrected p < 0.05;
- not resolved: neither; the row gives the smallest effect this run could have detected (80% power);
- not testable here: the demo lacks what the claim needs (the claim's `reason`).

The boundary is 0 for 'greater', the margin for 'at_least'; for 'equal' (|a - b| <= margin) the test is
two one-sided tests against +-margin (reproduced) or a test that the difference leaves the band (contradicted).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import MedvlError, ParameterError
from ..papers import Claim
from .metrics.bootstrap import LabelStatistic, MeanStatistic, ResampleChunk, resample_chunks

REPRODUCED, CONTRADICTED, NOT_RESOLVED, NOT_TESTABLE = "reproduced", "contradicted", "not resolved", "not testable here"
VERDICTS = (REPRODUCED, CONTRADICTED, NOT_RESOLVED, NOT_TESTABLE)
LEVEL = 0.05
DETECTABLE_Z = 1.959964 + 0.841621  # two-sided 5% test at 80% power


class FunctionStatistic:
    """Any statistic of the test items: fn(item indices) -> float, evaluated on each resample."""

    def __init__(self, fn: Callable[[np.ndarray], float], n: int):
        self.fn, self.n = fn, int(n)

    def point(self) -> float:
        return float(self.fn(np.arange(self.n)))

    def on(self, chunk: ResampleChunk) -> np.ndarray:
        return np.array([float(self.fn(idx)) for idx in chunk.idx])


class ConstantStatistic:
    """A fixed reference (chance, a prevalence): the same value on every resample."""

    def __init__(self, value: float, n: int | None = None):
        self.value, self.n = float(value), n

    def point(self) -> float:
        return self.value

    def on(self, chunk: ResampleChunk) -> np.ndarray:
        return np.full(len(chunk.idx), self.value)


@dataclass
class Evidence:
    """One metric of ours as the engine needs it: its statistic per seed over the same test items."""

    per_seed: list
    label: str = ""

    def __post_init__(self):
        if not self.per_seed:
            raise ParameterError(f"Evidence {self.label!r}: no seeds; pass one statistic per seed")
        sizes = {s.n for s in self.per_seed if s.n is not None}
        if len(sizes) > 1:
            raise ParameterError(f"Evidence {self.label!r}: seeds cover different test sets {sorted(sizes)}")

    @property
    def n_items(self) -> int | None:
        return next((s.n for s in self.per_seed if s.n is not None), None)

    @property
    def n_seeds(self) -> int:
        return len(self.per_seed)

    def point(self) -> float:
        """The metric as the run records it: the mean over seeds of each seed's value on all test items."""
        return float(np.mean([s.point() for s in self.per_seed]))

    @classmethod
    def scores(cls, y, scores_by_seed: Sequence, metric="macro_auroc", label: str = "") -> Evidence:
        """A statistic of (labels, scores) per seed: 'macro_auroc', 'auroc' or a function (y, scores) -> float."""
        return cls([LabelStatistic(y, p, metric) for p in scores_by_seed], label)

    @classmethod
    def values(cls, values_by_seed: Sequence, label: str = "") -> Evidence:
        """The mean of per-item values per seed (0/1 correctness -> accuracy, per-case scores -> their mean)."""
        return cls([MeanStatistic(v) for v in values_by_seed], label)

    @classmethod
    def function(cls, fns: Sequence[Callable[[np.ndarray], float]], n_items: int, label: str = "") -> Evidence:
        """Any statistic of the test items per seed: fn(item indices) -> float."""
        return cls([FunctionStatistic(fn, n_items) for fn in fns], label)

    @classmethod
    def constant(cls, value: float, label: str = "") -> Evidence:
        """A fixed reference value (e.g. chance accuracy)."""
        return cls([ConstantStatistic(value)], label)


@dataclass
class Judgement:
    """A claim judged on this run (numbers None where not testable)."""

    claim: Claim
    verdict: str
    a: float | None = None
    b: float | None = None
    diff: float | None = None
    low: float | None = None
    high: float | None = None
    p: float | None = None
    p_holm: float | None = None
    p_floor: bool = False  # no resample crossed: p < 1 / resamples
    detectable: float | None = None
    resamples: int = 0
    seeds: int = 0
    reason: str = ""

    def as_dict(self) -> dict:
        """JSON-ready: the claim's id and every number (claims.json in the run folder)."""
        keep = ("verdict", "a", "b", "diff", "low", "high", "p", "p_holm", "p_floor", "detectable", "resamples",
                "seeds", "reason")
        return {"id": self.claim.id, **{k: getattr(self, k) for k in keep}}


def resampled_differences(a: Evidence, b: Evidence, unit: str, n_resamples: int, seed: int) -> np.ndarray:
    """The difference a - b on each paired resample (NaN resamples dropped)."""
    n = a.n_items or b.n_items
    if a.n_items and b.n_items and a.n_items != b.n_items:
        raise MedvlError(f"{a.label} and {b.label} are measured on different test sets ({a.n_items} vs {b.n_items} "
                         "items); a paired test needs the same items")
    if a.n_seeds > 1 and b.n_seeds > 1 and a.n_seeds != b.n_seeds:
        raise MedvlError(f"{a.label} has {a.n_seeds} seeds and {b.label} {b.n_seeds}; pair them seed by seed")
    seeds = max(a.n_seeds, b.n_seeds)
    rng = np.random.default_rng(seed + 1)
    if unit == "seeds":
        draws = rng.integers(0, seeds, size=(n_resamples, seeds))
        return _finite(_seed_mean(_points(a), draws) - _seed_mean(_points(b), draws))
    if n is None:
        raise MedvlError(f"{a.label} vs {b.label}: neither side has test items to resample; use unit 'seeds'")
    diffs = []
    for chunk in resample_chunks(n, n_resamples, seed):
        sa, sb = _on(a, chunk), _on(b, chunk)  # seeds x chunk
        if unit == "both":
            draws = rng.integers(0, seeds, size=(sa.shape[1], seeds))
            diffs.append(_seed_mean(sa, draws) - _seed_mean(sb, draws))
        else:
            diffs.append(sa.mean(0) - sb.mean(0))
    return _finite(np.concatenate(diffs))


def _on(e: Evidence, chunk: ResampleChunk) -> np.ndarray:
    return np.stack([s.on(chunk) for s in e.per_seed])


def _points(e: Evidence) -> np.ndarray:
    return np.array([s.point() for s in e.per_seed])


def _seed_mean(stats: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Mean over drawn seeds: stats is (seeds,) or (seeds x resamples); a one-seed side is used as is."""
    if stats.shape[0] == 1:
        return stats[0] * np.ones(len(draws)) if stats.ndim == 1 else stats[0]
    if stats.ndim == 1:
        return stats[draws].mean(1)
    return stats[draws, np.arange(stats.shape[1])[:, None]].mean(1)


def _finite(d: np.ndarray) -> np.ndarray:
    return d[np.isfinite(d)]


def tail_p(diffs: np.ndarray, claim: Claim, diff: float) -> tuple[float, bool, bool]:
    """(two-sided p, on the paper's side, no resample crossed) for the claim's boundary."""
    m, B = claim.margin, len(diffs)
    if claim.comparison == "equal":
        inside = abs(diff) <= m
        crossing = (max(np.sum(diffs >= m), np.sum(diffs <= -m)) if inside
                    else np.sum(np.abs(diffs) <= m))
        k, factor = int(crossing), (1 if inside else 2)
        return min(1.0, factor * max(k, 1) / B), inside, k == 0
    paper_side = diff > m
    k = int(np.sum(diffs <= m) if paper_side else np.sum(diffs >= m))
    return min(1.0, 2 * max(k, 1) / B), paper_side, k == 0


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    p = np.asarray(p, dtype=float)
    order, m = np.argsort(p), len(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def resamples_for(n_claims: int, n_resamples: int, level: float = LEVEL) -> int:
    """Resamples enough for Holm: the smallest p a bootstrap can give (2 / B) times the claims stays below level / 2."""
    return max(int(n_resamples), math.ceil(4 * n_claims / level))


def judge(claims: Sequence[Claim], evidence: dict[str, Evidence], n_resamples: int = 1000, seed: int = 0,
          level: float = LEVEL) -> list[Judgement]:
    """Every claim judged on this run's evidence (keyed by metric key), Holm-corrected across the judged ones;
    with many claims the resamples are raised (`resamples_for`) so that a clear effect can still be reproduced."""
    n_resamples = resamples_for(sum(_has_evidence(c, evidence) for c in claims), n_resamples, level)
    judged = [_test(c, evidence, n_resamples, seed) for c in claims]
    testable = [j for j in judged if j.verdict != NOT_TESTABLE]
    for j, p_adj in zip(testable, holm([j.p for j in testable]), strict=True):
        j.p_holm = float(p_adj)
        on_side = j.verdict == REPRODUCED  # provisional marker set by _test
        j.verdict = (REPRODUCED if on_side else CONTRADICTED) if p_adj < level else NOT_RESOLVED
    return judged


def _test(claim: Claim, evidence: dict[str, Evidence], n_resamples: int, seed: int) -> Judgement:
    """One claim's difference, CI, raw p and side (verdict finalised by `judge` after Holm)."""
    a, b = evidence.get(claim.a) if claim.a else None, _side_b(claim, evidence)
    if a is None or b is None:
        missing = claim.reason or f"this run has no evidence for {claim.a if a is None else claim.b}"
        return Judgement(claim, NOT_TESTABLE, reason=missing)
    diffs = resampled_differences(a, b, claim.unit, n_resamples, seed)
    if len(diffs) < 2:
        return Judgement(claim, NOT_TESTABLE, reason="every resample was undefined (e.g. a label without positives)")
    diff = a.point() - b.point()
    p, paper_side, floor = tail_p(diffs, claim, diff)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return Judgement(claim, REPRODUCED if paper_side else CONTRADICTED, a.point(), b.point(), diff, float(low),
                     float(high), p, p_floor=floor, detectable=DETECTABLE_Z * float(np.std(diffs, ddof=1)),
                     resamples=len(diffs), seeds=max(a.n_seeds, b.n_seeds))


def _has_evidence(claim: Claim, evidence: dict[str, Evidence]) -> bool:
    return bool(claim.a) and claim.a in evidence and _side_b(claim, evidence) is not None


def _side_b(claim: Claim, evidence: dict[str, Evidence]) -> Evidence | None:
    """The claim's reference side: a metric of ours, or a fixed number written in claims.yaml."""
    if isinstance(claim.b, int | float) and not isinstance(claim.b, bool):
        return Evidence.constant(float(claim.b), label=f"{claim.b:g}")
    return evidence.get(claim.b)


def format_p(j: Judgement, holm_corrected: bool = False) -> str:
    """'p < 0.001' when no resample crossed the boundary, else p to 3 decimals; '—' when not testable."""
    p = j.p_holm if holm_corrected else j.p
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    if j.p_floor and not holm_corrected:
        return f"< {1 / j.resamples:.3g}"
    return f"{p:.3f}"


def counts(judged: Sequence[Judgement]) -> dict[str, int]:
    """How many claims got each verdict, in the fixed order of VERDICTS."""
    return {v: sum(j.verdict == v for j in judged) for v in VERDICTS}
