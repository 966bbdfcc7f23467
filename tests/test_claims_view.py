"""The claims table a notebook shows, claims.json in the run folder, and `medvl compare` / `medvl claims` reading it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medvl_core import cli
from medvl_core.compare import check_evidence, claims_frame, claims_record, judge_claims, recorded_claims
from medvl_core.errors import MedvlError
from medvl_core.eval.claims import NOT_TESTABLE, Evidence
from medvl_core.papers import paper_claims

PAPER = "perturbed_report_discrimination"


def evidence_for_every_key(paper_id: str, n: int = 200) -> dict:
    """Evidence for every metric key a claim names: a = 0.9 accuracy, b = 0.6 (a clear gain)."""
    rng = np.random.default_rng(0)
    out = {}
    for claim in paper_claims(paper_id):
        for key, acc in ((claim.a, 0.9), (claim.b, 0.6)):
            if isinstance(key, str) and key not in out:
                out[key] = Evidence.values([(rng.random(n) < acc).astype(float)], key)
    return out


@pytest.fixture(scope="module")
def judged():
    return judge_claims(PAPER, evidence_for_every_key(PAPER), n_resamples=200)


def test_frame_has_one_row_per_claim_in_the_papers_order(judged):
    frame = claims_frame(PAPER, judged)
    claims = paper_claims(PAPER)
    assert len(frame) == len(claims)
    assert frame["claim"].str.startswith("“").all()
    untestable = [i for i, c in enumerate(claims) if not c.testable and not c.a]
    assert all(frame.loc[i, "verdict"].startswith(NOT_TESTABLE) for i in untestable)
    assert not frame["paper"].str.contains(r"\(w, o").any()  # row labels keep their '/'


def test_record_round_trips_through_claims_json(judged, tmp_path):
    record = claims_record(PAPER, judged, "SynthCXR (synthetic)", n_resamples=200)
    assert sum(record["counts"].values()) == len(judged) and "Holm" in record["scheme"]
    (tmp_path / "claims.json").write_text(json.dumps(record))
    (tmp_path / "run.json").write_text(json.dumps({"paper": PAPER}))
    back = recorded_claims(PAPER, tmp_path)
    assert [j.verdict for j in back] == [j.verdict for j in judged]
    assert back[1].diff == judged[1].diff


def test_medvl_claims_counts_verdicts_per_run(judged, tmp_path, capsys):
    (tmp_path / "claims.json").write_text(json.dumps(claims_record(PAPER, judged, "x", n_resamples=200)))
    (tmp_path / "run.json").write_text(json.dumps({"paper": PAPER}))
    assert cli.main(["claims", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert PAPER in out and "reproduced" in out and "not testable here" in out


def test_claims_json_missing_names_the_rerun(tmp_path):
    with pytest.raises(MedvlError, match="medvl run perturbed_report_discrimination"):
        recorded_claims(PAPER, tmp_path)


def test_evidence_must_equal_the_recorded_metric():
    ev = {"k": Evidence.values([np.array([1.0, 0.0, 1.0, 1.0])])}
    check_evidence(ev, {"k": 0.75, "other": 1.0})
    with pytest.raises(MedvlError, match="'k' is 0.75 but the run records 0.7"):
        check_evidence(ev, {"k": 0.7})
    mean_of_rounded = {"k": Evidence.values([np.array([29.99331, 29.99331])])}  # a table's mean of rounded seed rows
    check_evidence(mean_of_rounded, {"k": 29.9933})
    with pytest.raises(MedvlError, match="29.99331 but the run records 29.996"):
        check_evidence(mean_of_rounded, {"k": 29.996})


def test_text_form_keeps_every_quote_whole(judged):
    from medvl_core.compare import claims_text

    frame = claims_frame(PAPER, judged)
    text = claims_text(frame)
    assert text.count("\n1. [") == 0 and text.startswith("1. [")
    assert all(c.quote in text for c in paper_claims(PAPER))  # nothing cut, unlike a wide DataFrame print
    assert "difference +" in text and "p " in text


def test_paper_effect_is_in_our_units_and_power_is_flagged(judged):
    from medvl_core.compare import is_powered, paper_effect
    from medvl_core.papers import published

    pub = published(PAPER)
    by_id = {j.claim.id: j for j in judged}
    effect = paper_effect(pub, by_id["abstract_outperforms_baselines"])  # Table IV: 49.00% vs 44.30% (percent)
    assert effect == pytest.approx(0.047)  # ours are fractions, so the paper's points become a fraction
    assert paper_effect(pub, by_id["intro_mednli"]) == pytest.approx(0.8579 - 0.8680)
    assert is_powered(0.02, 0.047) is True and is_powered(0.06, -0.047) is False and is_powered(None, 0.1) is None
    frame = claims_frame(PAPER, judged)
    row = frame[frame["claim"].str.contains("outperforms strong baseline")].iloc[0]
    assert row["paper's effect"] == "+0.047" and row["detectable here"].startswith("±")
    record = claims_record(PAPER, judged, "x", n_resamples=200)
    assert {c["id"]: c["paper_effect"] for c in record["claims"]}["abstract_outperforms_baselines"] == pytest.approx(0.047)
