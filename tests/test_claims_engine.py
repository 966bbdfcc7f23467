"""The one verdict engine: hand-built cases for each verdict, Holm, the resampling units and claims.yaml checks."""

from __future__ import annotations

import numpy as np
import pytest

from medvl_core.errors import MedvlError
from medvl_core.eval.claims import (
    CONTRADICTED,
    NOT_RESOLVED,
    NOT_TESTABLE,
    REPRODUCED,
    Evidence,
    format_p,
    holm,
    judge,
    resampled_differences,
)
from medvl_core.papers import Claim, parse_claims, parse_published


def claim(cid="c", a="a", b="b", comparison="greater", margin=0.0, unit="items", testable=True, reason=""):
    return Claim(cid, "a quote", "Sec. 1", (), a, b, comparison, margin, "ours: test", unit, testable, reason, "")


def correct(n, accuracy, rng):
    """Per-item 0/1 correctness with exactly this accuracy, in random order."""
    v = np.zeros(n)
    v[: int(round(accuracy * n))] = 1
    return rng.permutation(v)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_clear_gain_is_reproduced_and_clear_loss_contradicted(rng):
    good, bad = Evidence.values([correct(400, 0.9, rng)]), Evidence.values([correct(400, 0.6, rng)])
    up, down = judge([claim("up"), claim("down", a="b", b="a")], {"a": good, "b": bad}, n_resamples=500)
    assert up.verdict == REPRODUCED and up.diff == pytest.approx(0.3)
    assert up.low > 0 and up.p_floor and format_p(up) == "< 0.002"
    assert down.verdict == CONTRADICTED and down.high < 0


def test_equal_models_are_not_resolved_with_a_detectable_effect(rng):
    v = correct(200, 0.7, rng)
    (j,) = judge([claim()], {"a": Evidence.values([v]), "b": Evidence.values([rng.permutation(v)])}, n_resamples=500)
    assert j.verdict == NOT_RESOLVED
    assert j.low < 0 < j.high or j.diff == 0
    assert 0.05 < j.detectable < 0.3  # about 2.8 SE of a difference of two accuracies on 200 items


def test_missing_evidence_is_not_testable_with_the_reason():
    (j,) = judge([claim(testable=False, reason="needs radiologists' readings")], {})
    assert j.verdict == NOT_TESTABLE and "radiologists" in j.reason
    (k,) = judge([claim()], {"a": Evidence.constant(1.0)})
    assert k.verdict == NOT_TESTABLE and "no evidence for b" in k.reason


def test_a_number_as_b_compares_with_that_reference(rng):
    (j,) = judge([claim(b=0.5)], {"a": Evidence.values([correct(300, 0.8, rng)])}, n_resamples=300)
    assert j.verdict == REPRODUCED and j.b == 0.5 and j.diff == pytest.approx(0.3)


def test_at_least_needs_the_margin_itself(rng):
    ev = {"a": Evidence.values([correct(1000, 0.75, rng)]), "b": Evidence.constant(0.70)}
    (small,) = judge([claim(comparison="at_least", margin=0.01)], ev, n_resamples=500)
    (large,) = judge([claim(comparison="at_least", margin=0.10)], ev, n_resamples=500)
    assert small.verdict == REPRODUCED
    assert large.verdict == CONTRADICTED  # 0.05 is clearly below the claimed 0.10


def test_equal_within_margin_reproduced_and_outside_contradicted(rng):
    base = correct(2000, 0.70, rng)
    near, far = Evidence.values([base]), Evidence.values([correct(2000, 0.90, rng)])
    ev = {"a": near, "b": Evidence.values([rng.permutation(base)]), "c": far}
    same, apart = judge([claim("same", comparison="equal", margin=0.05),
                         claim("apart", b="c", comparison="equal", margin=0.05)], ev, n_resamples=500)
    assert same.verdict == REPRODUCED
    assert apart.verdict == CONTRADICTED


def test_auroc_evidence_pools_seeds_on_shared_resamples(rng):
    y = rng.integers(0, 2, size=(300, 2))
    strong = [y + rng.normal(0, 0.5, y.shape) for _ in range(3)]
    weak = [y + rng.normal(0, 3.0, y.shape) for _ in range(3)]
    a, b = Evidence.scores(y, strong, label="strong"), Evidence.scores(y, weak, label="weak")
    assert a.n_seeds == 3 and a.n_items == 300
    (j,) = judge([claim(unit="both")], {"a": a, "b": b}, n_resamples=300)
    assert j.verdict == REPRODUCED and j.seeds == 3
    assert j.a == pytest.approx(np.mean([s.point() for s in a.per_seed]))


def test_seed_unit_resamples_seeds_only():
    a = Evidence.function([lambda idx, k=k: 0.8 + 0.01 * k for k in range(5)], n_items=10)
    b = Evidence.function([lambda idx, k=k: 0.7 + 0.01 * k for k in range(5)], n_items=10)
    d = resampled_differences(a, b, "seeds", 200, seed=0)
    assert d == pytest.approx(np.full(200, 0.1))  # paired by seed: every seed gains exactly 0.1


def test_paired_sides_must_share_the_test_set(rng):
    with pytest.raises(MedvlError, match="different test sets"):
        resampled_differences(Evidence.values([np.ones(10)], "a"), Evidence.values([np.ones(12)], "b"), "items", 10, 0)


def test_holm_adjusts_in_order_and_caps_at_one():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # never below an earlier adjusted p


def test_holm_can_turn_a_lone_gain_into_not_resolved(rng):
    v = correct(400, 0.75, rng)
    w = v.copy()
    w[np.flatnonzero(v == 1)[:30]] = 0
    w[np.flatnonzero(v == 0)[:14]] = 1  # a = b + 0.04, 44 discordant items: raw p about 0.015
    ev = {"a": Evidence.values([v]), "b": Evidence.values([w])}
    (alone,) = judge([claim()], ev, n_resamples=2000)
    many = judge([claim(f"c{i}") for i in range(40)], ev, n_resamples=2000)
    assert alone.verdict == REPRODUCED
    assert all(j.verdict == NOT_RESOLVED for j in many) and many[0].p_holm > alone.p_holm


PUB = {"citation": "x", "title": "t", "headline": {},
       "tables": {"t1": {"caption": "c", "source": "Table 1", "unit": "percent", "columns": ["Acc"],
                         "rows": [{"label": "Ours", "cells": {"Acc": {"value": 49.0}}}]}}}


def test_claims_yaml_is_validated_against_published():
    pub = parse_published("p", PUB)
    ok = {"claims": [{"id": "x", "quote": "ours  wins", "section": "Sec. 4", "published": ["t1/Ours/Acc"],
                      "a": "k1", "b": "k2"}]}
    (c,) = parse_claims(ok, pub)
    assert c.quote == "ours wins" and c.comparison == "greater" and c.unit == "items"
    bad_ref = {"claims": [{**ok["claims"][0], "published": ["t1/Theirs/Acc"]}]}
    with pytest.raises(MedvlError, match="no row 'Theirs'"):
        parse_claims(bad_ref, pub)
    with pytest.raises(MedvlError, match="needs a margin"):
        parse_claims({"claims": [{**ok["claims"][0], "comparison": "equal"}]}, pub)
    with pytest.raises(MedvlError, match="says why"):
        parse_claims({"claims": [{"id": "y", "quote": "q", "section": "s", "testable": False}]}, pub)
    with pytest.raises(MedvlError, match="unknown keys"):
        parse_claims({"claims": [{**ok["claims"][0], "verdict": "yes"}]}, pub)


def test_many_claims_get_enough_resamples_for_holm(rng):
    v = correct(300, 0.9, rng)
    ev = {"a": Evidence.values([v]), "b": Evidence.values([np.zeros(300)])}
    many = judge([claim(f"c{i}") for i in range(30)], ev, n_resamples=200)
    assert all(j.resamples == 2400 for j in many)  # 4 x 30 / 0.05
    assert all(j.verdict == REPRODUCED for j in many)  # a huge effect survives Holm over 30 claims
