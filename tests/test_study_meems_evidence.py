"""MEEMS claim evidence: each key's point equals the run's own metric of the same quantity, every testable claim
of claims.yaml finds its keys, and the engine judges them."""

from __future__ import annotations

import numpy as np
import pytest

from medvl_core.eval.claims import NOT_TESTABLE, REPRODUCED, judge
from medvl_core.eval.metrics import single_label_confusion
from medvl_core.papers import paper_claims
from medvl_core.studies.meems.evidence import (
    MINORITY_BELOW,
    classification_evidence,
    embedding_evidence,
    evidence_metrics,
)
from medvl_core.studies.meems.figures import primary_label
from medvl_core.studies.meems.paper_metrics import paper_scores
from medvl_core.studies.meems.projection import pca
from medvl_core.studies.meems.tables import auc_table, fnr_fpr_table, minority_summary, rare_stratum_table

NAMES = ["No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Pneumothorax", "Pleural Effusion", "Fracture"]


def world(n=160, seeds=2, seed=0):
    """Labels, a rare stratum of Pleural Effusion, and per seed the probabilities of two models (MEEMS the better)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, len(NAMES))) < [0, 0.03, 0.3, 0.2, 0.4, 0.2]).astype(np.float32)
    labels[:, 0] = labels[:, 1:].sum(1) == 0
    rare = (labels[:, 4] == 1) & (rng.random(n) < 0.4)
    probs = []
    for _ in range(seeds):
        seed_probs = {}
        for model, noise in (("MEEMS", 0.6), ("baseline", 1.2)):
            finding = 1 - labels[:, :1]
            seed_probs[("binary", model, "test")] = 1 / (1 + np.exp(-(2 * finding - 1 + rng.normal(0, noise, (n, 1)))))
            seed_probs[("multilabel", model, "test")] = 1 / (1 + np.exp(-(2 * labels - 1.5 + rng.normal(0, noise, labels.shape))))
        probs.append(seed_probs)
    return labels, rare, probs


def test_classification_points_equal_the_tables_of_the_run():
    labels, rare, probs = world()
    prevalence = labels.mean(0)
    ev = classification_evidence(probs, labels, NAMES, prevalence, (rare, "Pleural Effusion"))
    for m in ("MEEMS", "baseline"):
        tag = m.lower()
        binary = [paper_scores(1 - labels[:, :1], p[("binary", m, "test")], "binary") for p in probs]
        multi = [paper_scores(labels, p[("multilabel", m, "test")], "multilabel") for p in probs]
        rates = [fnr_fpr_table(1 - labels[:, :1], {m: p[("binary", m, "test")]}).loc[m] for p in probs]
        assert ev[f"seeds_binary_auc_{tag}"].point() == pytest.approx(np.mean([b["auc"] for b in binary]), abs=1e-12)
        assert ev[f"seeds_binary_f1_argmax_{tag}"].point() == pytest.approx(np.mean([b["f1"] for b in binary]), abs=1e-12)
        assert ev[f"seeds_multilabel_auc_{tag}"].point() == pytest.approx(np.mean([x["auc"] for x in multi]), abs=1e-12)
        assert ev[f"seeds_multilabel_f1_argmax_{tag}"].point() == pytest.approx(np.mean([x["f1"] for x in multi]),
                                                                                abs=1e-12)
        assert ev[f"seeds_binary_fnr_argmax_{tag}"].point() == pytest.approx(np.mean([r["FNR (argmax)"] for r in rates]))
        assert ev[f"seeds_binary_fpr_argmax_{tag}"].point() == pytest.approx(np.mean([r["FPR (argmax)"] for r in rates]))
        minority = [minority_summary(auc_table(labels, {m: p[("multilabel", m, "test")]}, NAMES, prevalence), [m])[m]
                    for p in probs]
        assert ev[f"seeds_minority_auc_{tag}"].point() == pytest.approx(np.mean([x.iloc[0] for x in minority]))
        assert ev[f"seeds_other_auc_{tag}"].point() == pytest.approx(np.mean([x.iloc[1] for x in minority]))
        stratum = [rare_stratum_table(labels, {m: p[("multilabel", m, "test")]}, rare, NAMES, "Pleural Effusion",
                                      n_resamples=10).loc["rare stratum", f"AUC {m}"] for p in probs]
        assert ev[f"seeds_rare_stratum_auc_{tag}"].point() == pytest.approx(np.mean(stratum))
        confusion = [single_label_confusion(labels, p[("multilabel", m, "test")])[0] for p in probs]
        assert ev[f"seeds_no_finding_recall_{tag}"].point() == pytest.approx(
            np.mean([c[0, 0] / c[0].sum() for c in confusion]))
    gains = [min(paper_scores(1 - labels[:, :1], p[("binary", "MEEMS", "test")], "binary")["auc"]
                 - paper_scores(1 - labels[:, :1], p[("binary", "baseline", "test")], "binary")["auc"],
                 paper_scores(labels, p[("multilabel", "MEEMS", "test")], "multilabel")["auc"]
                 - paper_scores(labels, p[("multilabel", "baseline", "test")], "multilabel")["auc"]) for p in probs]
    assert ev["seeds_auc_gain_min_task"].point() == pytest.approx(np.mean(gains))
    assert 0 <= ev["seeds_share_finding_classes_meems_better"].point() <= 1
    assert all(e.n_items == len(labels) and e.n_seeds == 2 for e in ev.values())
    assert evidence_metrics(ev)["seeds_binary_auc_meems"] == ev["seeds_binary_auc_meems"].point()


def test_without_a_stratum_or_the_named_classes_those_keys_are_absent():
    labels, _, probs = world()
    keep = [0, 2, 5]
    probs = [{k: p if k[0] == "binary" else p[:, keep] for k, p in seed.items()} for seed in probs]
    ev = classification_evidence(probs, labels[:, keep], ["No Finding", "Cardiomegaly", "Fracture"],
                                 labels[:, keep].mean(0))
    assert not {"seeds_rare_stratum_auc_meems", "seeds_pneumothorax_auc_meems"} & set(ev)


def test_embedding_evidence_is_fig5s_space_and_colours():
    from sklearn.metrics import silhouette_samples

    labels, _, _ = world(n=120)
    rng = np.random.default_rng(2)
    emb = [rng.normal(size=(120, 6)) + 3 * labels[:, :1] for _ in range(2)]  # No Finding apart
    ev = embedding_evidence(emb, labels, NAMES, seed=0)
    e = emb[0] / np.linalg.norm(emb[0], axis=1, keepdims=True)
    x3 = pca(e, 3, 0)
    nf = labels[:, 0].astype(int)
    first = ev["seeds_no_finding_silhouette_pca3_meems"].per_seed[0].point()
    assert first == pytest.approx(silhouette_samples(x3, nf)[nf == 1].mean(), abs=1e-5) and first > 0.3
    colour = primary_label(labels, NAMES, labels.mean(0))
    minority = np.array([labels.mean(0)[NAMES.index(c)] < MINORITY_BELOW for c in colour])
    by_colour = silhouette_samples(x3, colour)
    assert ev["seeds_majority_label_silhouette_meems"].per_seed[0].point() == pytest.approx(
        by_colour[~minority].mean(), abs=1e-5)
    assert ev["seeds_label_partition_silhouette_meems"].per_seed[0].point() == pytest.approx(
        silhouette_samples(e, colour).mean(), abs=1e-5)
    assert all(v.n_items == 120 and v.n_seeds == 2 for v in ev.values())


def test_every_testable_claim_finds_its_evidence_and_is_judged():
    labels, rare, probs = world()
    ev = classification_evidence(probs, labels, NAMES, labels.mean(0), (rare, "Pleural Effusion"))
    rng = np.random.default_rng(3)
    ev.update(embedding_evidence([rng.normal(size=(80, 5)) + 3 * labels[:80, :1] for _ in range(2)], labels[:80],
                                 NAMES, 0))
    claims = paper_claims("meems")
    for claim in claims:
        if claim.testable:
            assert claim.a in ev and (not isinstance(claim.b, str) or claim.b in ev), claim.id
    judged = {j.claim.id: j for j in judge(claims, ev, n_resamples=100)}
    assert judged["attention_interpretability"].verdict == NOT_TESTABLE
    assert all(j.verdict != NOT_TESTABLE for j in judged.values() if j.claim.testable)
    (auc,) = judge([c for c in claims if c.id == "binary_auc"], ev, n_resamples=300)
    assert auc.verdict == REPRODUCED and auc.seeds == 2  # MEEMS has half the baseline's noise here
