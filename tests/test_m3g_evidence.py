"""M3G claim evidence: deltaBLEU resampled as a corpus of cases, the per-case claims, the silhouette and Fig. S2's
distances, and each Evidence's point equal to the metric the notebook records from the same answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import silhouette_score

from medvl_core.compare import check_evidence, judge_claims
from medvl_core.data.base import RecordDataset
from medvl_core.errors import ParameterError
from medvl_core.eval.claims import NOT_TESTABLE
from medvl_core.eval.deltableu import delta_bleu
from medvl_core.models.encoders import build_image_encoder, build_text_encoder
from medvl_core.papers import paper_claims
from medvl_core.studies.m3g_answer_generation import (
    case_means,
    claim_evidence,
    claude_answer_sets,
    clip_answer_sets,
    clip_best,
    closeness,
    dbleu_metrics,
    fit_label_clip,
    knn_metric_keys,
    label_change,
    per_case_values,
    post_metric_keys,
    postprocessing_table,
    predict_labels,
    table2_setting,
    table3_settings,
    wrong_labels,
)
from medvl_core.studies.m3g_answer_generation.evidence import (
    case_stats,
    corpus_dbleu,
    dbleu_evidence,
    label_distance_evidence,
    silhouette_evidence,
)
from medvl_core.studies.m3g_answer_generation.knn import neighbour_disagreement
from medvl_core.studies.m3g_answer_generation.prepare import M3GData, M3GSplit
from medvl_core.studies.m3g_answer_generation.scores import POSTPROCESSING, answers, score
from medvl_core.studies.m3g_answer_generation.tables import batch_size_sweep, knn_table
from medvl_core.train import TrainConfig

NAMES = [f"disease {c}" for c in "abcd"]
CONFIG = TrainConfig(epochs=3, lr=1e-2, weight_decay=0.001, device="cpu", progress=False)


def toy_data(seed=0) -> M3GData:
    """4 labels; two images per case (label centre + noise); references and queries that name diseases."""
    torch.manual_seed(seed)
    image_tower, text_tower = build_image_encoder("tiny:cnn", image_size=32), build_text_encoder("tiny:text")
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, image_tower.embed_dim)) * 2

    def split(name, n_cases):
        cls = np.arange(n_cases) % 4
        owner = np.repeat(np.arange(n_cases), 2)
        feats = centres[cls[owner]] + rng.normal(size=(len(owner), image_tower.embed_dim)) * 1.5
        labels = [NAMES[c] for c in cls]
        records = [{"id": f"{name}{i}", "text": f"Is it {NAMES[(i * 3) % 4]}?" if i % 3 == 0 else "What is it?",
                    "references": [f"It is {labels[i]}.", f"Consider {labels[i]}; a biopsy would help.", "Not sure."],
                    "reference_weights": [1.0, 0.8, 0.6]} for i in range(n_cases)]
        dataset = RecordDataset(records)
        dataset.source = f"/nonexistent/{name}.json"  # no truth.csv beside it: real data, truth unknown
        return M3GSplit(name, dataset, torch.tensor(feats, dtype=torch.float32), owner, labels)

    splits = {"train": split("train", 40), "test": split("test", 24)}
    features = torch.tensor(rng.normal(size=(4, text_tower.embed_dim)), dtype=torch.float32)
    return M3GData(splits, NAMES, features, image_tower, text_tower, {n: n for n in NAMES})


@pytest.fixture(scope="module")
def data():
    return toy_data()


@pytest.fixture(scope="module")
def fits(data):
    return {size: fit_label_clip(data, size, CONFIG, embed_dim=8) for size in (8, 16)}


def _hypotheses(data, split="test"):
    target = data.split(split)
    return [f"It is {label}." if i % 2 else ("" if i % 5 == 0 else "disease b maybe, or disease c.")
            for i, label in enumerate(target.labels)]


def test_summed_case_statistics_score_as_the_corpus(data):
    target = data.split("test")
    hyps = _hypotheses(data)
    stats = case_stats(hyps, target)
    assert stats.shape == (target.n_cases, 10)
    assert round(corpus_dbleu(stats.sum(0)), 2) == score(hyps, target)["dBLEU"]
    idx = np.random.default_rng(1).integers(0, target.n_cases, target.n_cases)  # a resample repeats cases
    corpus = delta_bleu([hyps[i] for i in idx], [target.references[i] for i in idx], [target.weights[i] for i in idx],
                        mode="official", languages=("en",))
    assert corpus_dbleu(stats[idx].sum(0)) == pytest.approx(corpus.score, abs=1e-9)
    evidence = dbleu_evidence(hyps, target, "x")
    assert evidence.n_items == target.n_cases and evidence.point() == score(hyps, target)["dBLEU"]
    with pytest.raises(ParameterError, match="answers for the"):
        case_stats(hyps[:3], target)


def test_the_official_rules_hold_when_nothing_matches():
    split = M3GSplit("test", RecordDataset([{"id": "a", "text": "", "references": ["x y z"], "reference_weights": [1.0]}]),
                     torch.zeros(1, 2), np.zeros(1, dtype=int), ["x"])
    for hyp in ("q", "q r s t u", ""):
        expected = delta_bleu([hyp], [["x y z"]], [[1.0]], mode="official", languages=("en",)).score
        assert corpus_dbleu(case_stats([hyp], split).sum(0)) == pytest.approx(expected)


def test_silhouette_evidence_is_sklearns_silhouette_of_the_resampled_points():
    rng = np.random.default_rng(0)
    points = pd.DataFrame({"pc1": np.r_[rng.normal(0, 1, 30), rng.normal(1.5, 1, 10)],
                           "pc2": rng.normal(0, 1, 40), "kind": ["image"] * 30 + ["label text"] * 10})
    evidence = silhouette_evidence(points)
    plane, kind = points[["pc1", "pc2"]].to_numpy(), points["kind"].to_numpy()
    assert evidence.point() == round(silhouette_score(plane, kind), 3)
    idx = rng.integers(0, 40, 40)
    (fn,) = [s.fn for s in evidence.per_seed]
    assert fn(idx) == round(silhouette_score(plane[idx], kind[idx]), 3)
    assert np.isnan(fn(np.arange(30)))  # one kind only


def test_label_distance_evidence_matches_closeness():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"label": list("abcdef"), "pc1": rng.normal(size=6), "pc2": rng.normal(size=6)})
    pairs = [("a", "b"), ("c", "e")]
    evidence = label_distance_evidence(frame, pairs)
    close = closeness(frame, pairs)
    assert evidence["label_pca_distance_similar_pairs"].point() == close["similar"]
    assert evidence["label_pca_distance_other_pairs"].point() == close["others"]
    (fn,) = [s.fn for s in evidence["label_pca_distance_similar_pairs"].per_seed]
    assert np.isnan(fn(np.array([0, 0, 2, 3])))  # a label drawn twice is no look-alike pair


def test_per_case_values_and_their_means(data, fits):
    fit, knn = fits[8], table3_settings(5, 4)[3]
    labels = predict_labels(fit, data, "test", knn)
    disagreement = neighbour_disagreement(fit, data, "test", knn)
    assert disagreement.shape == (24,) and ((0 <= disagreement) & (disagreement <= 1)).all()
    reinit = fit_label_clip(data, 8, CONFIG, embed_dim=8, init_seed=5)
    assert not torch.equal(reinit.model.image_projection.weight, fit.model.image_projection.weight)
    same = fit_label_clip(data, 8, CONFIG, embed_dim=8)
    assert torch.equal(same.model.image_projection.weight, fit.model.image_projection.weight)
    values = per_case_values(fit, data, "test", knn, labels, truth=data.split("test").labels, reinit=reinit)
    assert set(values) == {"knn_neighbour_disagreement", "knn_top1_wrong", "knn_label_change_reinit"}
    assert set(per_case_values(fit, data, "test", knn, labels)) == {"knn_neighbour_disagreement"}
    assert label_change(["a", "b", "c"], ["a", "x", "c"]).tolist() == [0, 1, 0]
    assert wrong_labels(["a", "b"], ["a", "c"]).tolist() == [0, 1]
    assert case_means({"x": [1.0, np.nan, 0.0]}) == {"x": 0.5}
    with pytest.raises(ParameterError, match="same cases"):
        label_change(["a"], ["a", "b"])


def test_claim_evidence_points_are_the_recorded_metrics(data, fits):
    """Built from the same answers as Tables 2-4, every Evidence point equals the metric the notebook records."""
    settings, t2 = table3_settings(5, 4), table2_setting(5, 4)
    post, fit = POSTPROCESSING["It is [label]. + query matching"], fits[16]
    table2, sweep_fits = batch_size_sweep(data, [8, 16], CONFIG, t2, ("test",), 8, 0, post)
    table3 = knn_table(data, fit, settings[1:], ("test",), 0, post)  # the augmented row needs an augmented fit
    labels = {"test": predict_labels(fit, data, "test", settings[3])}
    table4 = postprocessing_table(data, labels)
    metrics = dbleu_metrics(table2, "test", {"batch 8": "dbleu_batch_8", "batch 16": "dbleu_batch_16"})
    metrics |= dbleu_metrics(table3, "test", knn_metric_keys(settings[1:]))
    metrics |= dbleu_metrics(table4, "test", post_metric_keys()) | dbleu_metrics(table4, "test", post_metric_keys("competition_"))
    clip_keys = ["dbleu_batch_8", "dbleu_batch_16", *knn_metric_keys(settings[1:]).values()]
    metrics["dbleu_clip_best"] = clip_best(metrics, clip_keys)
    per_case = per_case_values(fit, data, "test", settings[3], labels["test"], truth=data.split("test").labels)
    metrics |= case_means(per_case)
    sets = clip_answer_sets(data, "test", fits=sweep_fits, table2_knn=t2, fit=fit, settings=settings[1:],
                            clip_labels=labels["test"], competition_labels=labels["test"], post=post)
    evidence = claim_evidence(data, "test", sets, clip_best_keys=clip_keys, per_case=per_case)
    assert {"dbleu_batch_8", "dbleu_image_image", "dbleu_post_label_only", "dbleu_competition_post_it_is",
            "dbleu_clip_best", "knn_top1_wrong", "knn_neighbour_disagreement"} <= set(evidence)
    check_evidence(evidence, metrics)  # raises when a point differs from its metric
    assert all(evidence[k].point() == metrics[k] for k in evidence)
    assert evidence["dbleu_clip_best"].point() == max(metrics[k] for k in clip_keys)
    with pytest.raises(ParameterError, match="none of"):
        clip_best({}, ["dbleu_batch_8"])


def test_claude_answers_count_only_on_every_case_of_the_reported_split(data):
    target = data.split("test")
    diagnoses = [f"It is {label}." for label in target.labels]
    claude = {"img 2-calls": diagnoses, "img 1-call": diagnoses}
    sets = claude_answer_sets(data, "test", "test", claude)
    assert set(sets) == {"dbleu_claude_img_2_calls", "dbleu_claude_img_1_call", *post_metric_keys("claude_").values()}
    assert sets["dbleu_claude_post_label_only"] == answers(target.labels, target, template=False)
    assert claude_answer_sets(data, "test", "val", claude) == {}
    assert claude_answer_sets(data, "test", "test", claude, max_cases=5) == {}
    assert claude_answer_sets(data, "test", "test", {}) == {}


def test_the_papers_claims_judge_on_evidence_of_every_testable_key(data):
    """Every testable claim of claims.yaml finds its keys in evidence of the kinds claim_evidence builds."""
    rng = np.random.default_rng(0)
    n = data.split("test").n_cases
    keys = {k for c in paper_claims("m3g_answer_generation") if c.testable for k in (c.a, c.b) if isinstance(k, str)}
    frame = pd.DataFrame({"label": NAMES, "pc1": rng.normal(size=4), "pc2": rng.normal(size=4)})
    points = pd.DataFrame({"pc1": rng.normal(size=20), "pc2": rng.normal(size=20), "kind": ["image", "label text"] * 10})
    hyps = _hypotheses(data)
    sets = {k: hyps for k in keys if k.startswith("dbleu_")}
    per_case = {k: rng.integers(0, 2, n).astype(float) for k in keys if k.startswith("knn_")}
    evidence = claim_evidence(data, "test", sets, per_case=per_case, modality_2d=points, labels_2d=frame,
                              pairs=[("disease a", "disease b")])
    assert keys <= set(evidence)
    judged = judge_claims("m3g_answer_generation", evidence, n_resamples=50)
    assert all((j.verdict == NOT_TESTABLE) == (not j.claim.testable) for j in judged)
