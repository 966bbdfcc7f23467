"""The run's evidence for the paper's claims (papers/m3g_answer_generation/claims.yaml), one `Evidence` per metric key.

deltaBLEU is a corpus statistic: each case's sufficient statistics (matched and total n-grams, hypothesis and closest
reference length; `eval.deltableu.delta_bleu` on that case alone, official mode as `scores.score`) are summed over the
cases of a resample and turned into the official score, so a resample of the test cases scores exactly as the same
cases would as a corpus (`Evidence.function`, rounded to 2 decimals as the recorded metric). Per-case quantities
(label changes between two initialisations, neighbours that disagree, wrong labels) are `Evidence.values`; the
silhouette of the image / label-text split resamples the embedded points and Fig. S2's distances the labels. The
verdicts come from `eval.claims.judge` (via `compare.show_claims`); nothing here decides one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import ParameterError
from ...eval.claims import Evidence
from ...eval.deltableu import bleu_from_stats, delta_bleu
from ...eval.metrics.silhouette import distance_matrix, silhouettes
from .claude import diagnosis_of
from .claude_arm import CLAUDE_METRICS, CLAUDE_TABLE4_SCENARIO, claude_texts
from .clip import ClipFit
from .knn import KnnSetting, neighbour_disagreement, predict_labels
from .prepare import M3GData, M3GSplit, take
from .scores import POSTPROCESSING, answers, knn_metric_keys, post_metric_keys, split_language
from .seeds import label_disagreement

MAX_ORDER = 4


def case_stats(hypotheses, split: M3GSplit) -> np.ndarray:
    """(n cases, 2 x 4 + 2): each case's matched n-grams, total n-grams (orders 1-4), hyp_len and ref_len, official mode."""
    lang = split_language(split)
    tokenize = "zh" if lang == "zh" else "13a"
    hypotheses = list(hypotheses)
    if len(hypotheses) != split.n_cases:
        raise ParameterError(f"{len(hypotheses)} answers for the {split.n_cases} cases of split {split.name!r}")
    rows = []
    for hyp, refs, weights in zip(hypotheses, split.references, split.weights, strict=True):
        r = delta_bleu([hyp], [refs], [weights], mode="official", languages=(lang,), tokenize=tokenize)
        rows.append([*r.counts, *r.totals, r.hyp_len, r.ref_len])
    return np.asarray(rows, dtype=float)


def corpus_dbleu(stats: np.ndarray) -> float:
    """The official deltaBLEU (0-100) of summed case statistics (`case_stats` columns)."""
    return bleu_from_stats(list(stats[:MAX_ORDER]), list(stats[MAX_ORDER:2 * MAX_ORDER]), stats[2 * MAX_ORDER],
                           stats[2 * MAX_ORDER + 1]).score


def dbleu_evidence(hypotheses, split: M3GSplit, label: str = "", cases=None) -> Evidence:
    """The official dBLEU of the answers as a statistic of the cases (rounded to 2 decimals, as recorded).

    `hypotheses`: one answer per case, or one such list per training seed; `cases`: the indices of the split's
    cases they answer (None: all)."""
    per_seed = [hypotheses] if len(hypotheses) and isinstance(hypotheses[0], str) else list(hypotheses)
    target = split if cases is None else take(split, cases)
    return Evidence.function([_corpus_score(case_stats(h, target)) for h in per_seed], target.n_cases, label)


def _corpus_score(stats: np.ndarray):
    """fn(case indices) -> the official dBLEU of those cases' summed statistics, 2 decimals."""
    return lambda idx: round(corpus_dbleu(stats[idx].sum(0)), 2)


def clip_best(metrics: dict, keys) -> float:
    """The highest official dBLEU among the CLIP rows named by `keys` (Tables 2 and 3 on the reported split)."""
    values = [metrics[k] for k in keys if metrics.get(k) is not None]
    if not values:
        raise ParameterError(f"none of {list(keys)} is recorded; score Tables 2 and 3 first")
    return max(values)


def label_change(labels, other_labels) -> np.ndarray:
    """Per case, 1.0 where two models' labels differ (Sec. 6: retraining, initialised differently, changes labels)."""
    if len(labels) != len(other_labels):
        raise ParameterError(f"{len(labels)} vs {len(other_labels)} labels; compare the same cases")
    return np.array([float(a != b) for a, b in zip(labels, other_labels)])


def wrong_labels(labels, truth) -> np.ndarray:
    """Per case, 1.0 where the predicted label is not the true condition."""
    return np.array([float(a != t) for a, t in zip(labels, truth, strict=True)])


def per_case_values(fit: ClipFit, data: M3GData, split: str, knn: KnnSetting, labels, seed: int = 0, truth=None,
                    reinit: ClipFit | None = None) -> dict[str, np.ndarray]:
    """Per-case values of Sec. 6's claims for the model `fit` whose labels under `knn` are `labels`: neighbours that
    disagree with the vote, wrong labels (when `truth` is known), label changes against `reinit` (the same training
    run with other initial weights, when given)."""
    out = {"knn_neighbour_disagreement": neighbour_disagreement(fit, data, split, knn, seed)}
    if truth is not None:
        out["knn_top1_wrong"] = wrong_labels(labels, truth)
    if reinit is not None:
        out["knn_label_change_reinit"] = label_change(labels, predict_labels(reinit, data, split, knn, seed))
    return out


def seed_per_case(runs, data: M3GData, split: str, knn: KnnSetting, truth=None) -> dict[str, np.ndarray]:
    """Per-case values of Sec. 6's claims over the seed runs: one row per seed of neighbours that disagree with the
    vote and wrong labels (when `truth` is known), and the share of seed pairs whose labels differ (one row)."""
    rows = [per_case_values(r.fits[r.batch_size], data, split, knn, r.clip_labels[split], r.seed, truth) for r in runs]
    out = {key: np.stack([row[key] for row in rows]) for key in rows[0]}
    if len(runs) > 1:
        out["knn_label_change_seeds"] = label_disagreement([r.clip_labels[split] for r in runs])
    return out


def case_means(per_case: dict) -> dict[str, float]:
    """The recorded metric of each per-case quantity: its mean over the cases that have one (NaN left out)."""
    return {key: float(np.nanmean(np.asarray(values, dtype=float))) for key, values in per_case.items()}


def silhouette_evidence(points: pd.DataFrame, label: str = "modality_silhouette_pca") -> Evidence:
    """The silhouette of the image / label-text split in `modality_pca`'s plane, resampling the points (3 decimals).

    With repeated points it is sklearn's `silhouette_score` of the resampled rows (`eval.metrics.silhouette`)."""
    d = distance_matrix(points[["pc1", "pc2"]].to_numpy(dtype=float))
    kind = pd.factorize(points["kind"])[0]

    def silhouette(idx):
        counts = np.bincount(idx, minlength=len(kind)).astype(float)
        s = silhouettes(d, kind, counts[None])[0]
        if np.isnan(s).all():
            return float("nan")  # one kind only: undefined
        return round(float(np.sum(np.where(counts > 0, counts * s, 0.0)) / counts.sum()), 3)

    return Evidence.function([silhouette], len(kind), label)


def label_distance_evidence(labels_2d: pd.DataFrame, pairs) -> dict[str, Evidence]:
    """Fig. S2: mean PCA-plane distance of look-alike pairs and of all other pairs, resampling the labels (4 decimals)."""
    names = list(labels_2d["label"])
    index = {n: i for i, n in enumerate(names)}
    points = labels_2d[["pc1", "pc2"]].to_numpy(dtype=float)
    dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
    similar = np.zeros_like(dist, dtype=bool)
    for a, b in pairs:
        similar[index[a], index[b]] = similar[index[b], index[a]] = True

    def mean_distance(look_alike: bool):
        def fn(idx):
            distinct = idx[:, None] != idx[None]
            chosen = distinct & (similar[np.ix_(idx, idx)] == look_alike)
            return round(float(dist[np.ix_(idx, idx)][chosen].mean()), 4) if chosen.any() else float("nan")
        return fn

    return {"label_pca_distance_similar_pairs": Evidence.function([mean_distance(True)], len(names), "look-alike pairs"),
            "label_pca_distance_other_pairs": Evidence.function([mean_distance(False)], len(names), "other pairs")}


def clip_answer_sets(data: M3GData, split: str, *, fits: dict, table2_knn: KnnSetting, fit: ClipFit, settings,
                     clip_labels, competition_labels, post, seed: int = 0) -> dict[str, list[str]]:
    """metric key -> the answers its dBLEU was scored on: Table 2 (one model per batch), Table 3 (the batch-256 model
    under each setting), Table 4 (batch-256 and competition labels through each post-processing arm)."""
    target = data.split(split)
    out = {f"dbleu_batch_{size}": answers(predict_labels(f, data, split, table2_knn, seed), target, data.dictionary, *post)
           for size, f in fits.items()}
    for setting, key in zip(settings, knn_metric_keys(settings).values(), strict=True):
        out[key] = answers(predict_labels(fit, data, split, setting, seed), target, data.dictionary, *post)
    for stem, labels in (("", clip_labels), ("competition_", competition_labels)):
        for arm, key in post_metric_keys(stem).items():
            out[key] = answers(labels, target, data.dictionary, *POSTPROCESSING[arm])
    return out


def claude_answer_sets(data: M3GData, split: str, claude_split: str, claude_answers: dict,
                       max_cases: int = 0) -> dict[str, list[str]]:
    """metric key -> answers of the Claude arm (Table 1 scenarios, Table 4's Claude row), only when it answered every
    case of `split` (a claim pairs Claude with CLIP on the same cases); else empty."""
    target = data.split(split)
    if not claude_answers or claude_split != split or 0 < max_cases < target.n_cases:
        return {}
    out = {key: claude_texts(claude_answers[scenario], target, data.dictionary)  # scored as Table 1 (both steps)
           for scenario, key in CLAUDE_METRICS.items() if scenario in claude_answers}
    if CLAUDE_TABLE4_SCENARIO in claude_answers:
        names = [diagnosis_of(a) for a in claude_answers[CLAUDE_TABLE4_SCENARIO]]
        out |= {key: answers(names, target, data.dictionary, *POSTPROCESSING[arm])
                for arm, key in post_metric_keys("claude_").items()}
    return out


def seed_answer_sets(data: M3GData, split: str, runs, *, table2_knn: KnnSetting, settings, post) -> dict[str, list]:
    """metric key -> one answer list per training seed (`seeds.SeedRun`s), as `clip_answer_sets` builds them."""
    per_run = [clip_answer_sets(data, split, fits=r.fits, table2_knn=table2_knn, fit=r.fits[r.batch_size],
                                settings=settings, clip_labels=r.clip_labels[split],
                                competition_labels=r.competition_labels[split], post=post, seed=r.seed) for r in runs]
    return {key: [sets[key] for sets in per_run] for key in per_run[0]}


def claim_evidence(data: M3GData, split: str, answer_sets: dict[str, list], *, clip_best_keys=(),
                   per_case: dict | None = None, modality_2d: pd.DataFrame | None = None,
                   labels_2d: pd.DataFrame | None = None, pairs=(), cases: dict | None = None) -> dict[str, Evidence]:
    """One Evidence per metric key the claims name, on the cases of `split`.

    `answer_sets`: metric key -> answers, or one answer list per seed (`clip_answer_sets`, `seed_answer_sets`,
    `claude_answer_sets`); `cases`: metric key -> the case indices its answers cover (default all); `clip_best_keys`: the keys among
    them whose best is `dbleu_clip_best` (the highest point, first on ties); `per_case`: metric key -> per-case values
    (NaN: the case has none, left out); `modality_2d` (`modality_pca`) and `labels_2d` with look-alike `pairs`
    (`label_pca`, `similar_pairs`) add the silhouette and Fig. S2's distances.
    """
    target, cases = data.split(split), cases or {}
    evidence = {key: dbleu_evidence(texts, target, key, cases.get(key)) for key, texts in answer_sets.items()}
    best = [k for k in clip_best_keys if k in evidence]
    if best:
        evidence["dbleu_clip_best"] = evidence[max(best, key=lambda k: evidence[k].point())]
    for key, values in (per_case or {}).items():
        values = np.asarray(values, dtype=float)
        per_seed = values if values.ndim == 2 else values[None]  # one row per seed
        evidence[key] = Evidence.values([v[np.isfinite(v)] for v in per_seed], key)
    if modality_2d is not None:
        evidence["modality_silhouette_pca"] = silhouette_evidence(modality_2d)
    if labels_2d is not None and len(pairs):
        evidence |= label_distance_evidence(labels_2d, pairs)
    return evidence
