"""Scoring a MEDIQA-M3G submission as the official scorer does: languages read from the submission (weights switched
on by 'zh' for every language), pairing by file position, and the by-id score beside it when the order differs.

Expected numbers are computed by hand below; the official scorer (wyim/MEDIQA-M3G-2024,
evaluation/nlg/scoring_multilingresp.py, run outside this repository on the same files) printed
deltableu_en 37.51166122617111 / deltableu_zh 42.711598894897634 for the en+zh submission, deltableu_en
47.2870804501588 for the en-only and the en+es submissions, and deltableu_en 7.1238944008050735 for the reordered one.
"""

from __future__ import annotations

import json
import math
import warnings

import pytest

from medvl_core.data.dermavqa import read_submission, write_submission
from medvl_core.errors import DataFormatError, ParameterError
from medvl_core.eval.deltableu import delta_bleu
from medvl_core.studies.m3g_answer_generation.official_scorer import (
    SubmissionOrderWarning,
    score_submission,
    scored_languages,
    submission_languages,
)

USERINFO = "author_id,validation_level,rank_level\nA,md_validated,level_5\nB,realid_validated,level_1\n"
REFERENCE = [{
    "encounter_id": "ENC00001", "image_ids": ["IMG_ENC00001_00001.jpg"],
    "query_title_en": "Itchy hands", "query_content_en": "Small blisters on my palms.",
    "responses": [
        {"author_id": "A", "completeness": 1.0, "contains_freq_ans": 1.0,  # weight 1.0
         "content_en": "It is eczema.", "content_zh": "这是湿疹。", "content_es": "Es eczema."},
        {"author_id": "B", "completeness": 0.5, "contains_freq_ans": 0.0,  # weight 0.6
         "content_en": "It is dyshidrotic eczema of the hands.", "content_zh": "这是手部汗疱疹。",
         "content_es": "Es eczema dishidrótico de las manos."}]}]
ANSWER = {"en": "It is dyshidrotic eczema.", "zh": "这是汗疱疹。", "es": "Es eczema dishidrótico."}
# hypothesis "it is dyshidrotic eczema ." (lowercased; the references keep "It"), closest reference length 4, BP 1
WEIGHTED_EN = (100 * 3.6 / 5 * 100 * 2.2 / 4 * 100 * 0.6 / 3 * 100 / (2 * 2)) ** 0.25  # 37.5117
UNIFORM_EN = (100 * 4 / 5 * 100 * 3 / 4 * 100 * 1 / 3 * 100 / (2 * 2)) ** 0.25  # 47.2871


def _write(folder, name, data):
    """Write JSON (UTF-8) and return the path."""
    path = folder / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def reference(tmp_path):
    """The one-case reference JSON with df_userinfo.csv beside it (as the scorer's reference folder)."""
    (tmp_path / "df_userinfo.csv").write_text(USERINFO)
    return _write(tmp_path, "reference.json", REFERENCE)


def _submission(tmp_path, langs, name="prediction.json"):
    """A one-entry submission holding the answer in `langs`."""
    entry = {"encounter_id": "ENC00001", "responses": [{f"content_{lang}": ANSWER[lang] for lang in langs}]}
    return _write(tmp_path, name, [entry])


def test_hand_computed_expectations_match_the_metric():
    refs = [[r["content_en"] for r in REFERENCE[0]["responses"]]]
    hyp = [ANSWER["en"]]
    assert delta_bleu(hyp, refs, [[1.0, 0.6]], mode="official", languages=("en", "zh")).score == \
        pytest.approx(WEIGHTED_EN, abs=1e-9)
    assert delta_bleu(hyp, refs, [[1.0, 0.6]], mode="official", languages=("en",)).score == \
        pytest.approx(UNIFORM_EN, abs=1e-9)


def test_chinese_in_the_submission_weights_english_too(tmp_path, reference):
    result = score_submission(_submission(tmp_path, ["en", "zh"]), reference)
    assert result.languages == ("en", "zh") and result.weighted
    assert result.score("en") == pytest.approx(37.51166122617111, abs=1e-9) == pytest.approx(WEIGHTED_EN)
    assert result.score("zh") == pytest.approx(42.711598894897634, abs=1e-9)
    assert result.order_matches and result.by_id == result.by_position
    assert result.score("en") < UNIFORM_EN - 9  # the old default languages=("en",) gave the uniform score


@pytest.mark.parametrize("langs", [["en"], ["en", "es"]])
def test_without_chinese_every_weight_is_one(tmp_path, reference, langs):
    result = score_submission(_submission(tmp_path, langs), reference)
    assert result.languages == tuple(langs) and not result.weighted
    assert result.score("en") == pytest.approx(47.2870804501588, abs=1e-9) == pytest.approx(UNIFORM_EN)
    with pytest.raises(ParameterError, match="'zh' was not scored"):
        result.score("zh")


def test_languages_come_from_the_first_entry_and_the_references(tmp_path, reference):
    rows = [{"encounter_id": "ENC00001", "responses": [{"content_zh": ANSWER["zh"], "content_fr": "x"}]}]
    assert submission_languages(rows) == ("zh", "fr")
    assert scored_languages(rows, REFERENCE) == ("zh",)
    assert score_submission(rows, reference).languages == ("zh",)
    with pytest.raises(DataFormatError, match=r"content_\['fr'\].*nothing to score"):
        score_submission([{"encounter_id": "ENC00001", "responses": [{"content_fr": "x"}]}], reference)


def test_userinfo_false_scores_with_weight_one_like_the_scorer_without_it(tmp_path, reference):
    result = score_submission(_submission(tmp_path, ["en", "zh"]), reference, userinfo=False)
    assert result.weighted and result.score("en") == pytest.approx(UNIFORM_EN)


# ------------------------------------------------------------------ order


def _three_cases(tmp_path):
    """Three encounters (weights 1) and perfect answers written in the order 3, 1, 2."""
    def encounter(i, texts):
        return {"encounter_id": f"ENC0000{i}", "responses": [{"author_id": "A", "content_en": t} for t in texts]}

    refs = [encounter(1, ["It is psoriasis.", "Plaque psoriasis of the elbows."]),
            encounter(2, ["It is tinea corporis.", "Ringworm."]), encounter(3, ["It is vitiligo."])]
    answers = {"ENC00001": "It is psoriasis.", "ENC00002": "It is tinea corporis.", "ENC00003": "It is vitiligo."}
    rows = [{"encounter_id": k, "responses": [{"content_en": answers[k]}]} for k in ("ENC00003", "ENC00001", "ENC00002")]
    return _write(tmp_path, "reference.json", refs), _write(tmp_path, "prediction.json", rows), refs, answers


def test_reordered_submission_warns_and_gives_both_scores(tmp_path):
    reference, submission, refs, answers = _three_cases(tmp_path)
    texts = [[r["content_en"] for r in enc["responses"]] for enc in refs]
    by_position = delta_bleu([answers[k] for k in ("ENC00003", "ENC00001", "ENC00002")], texts, mode="official")
    by_id = delta_bleu(list(answers.values()), texts, mode="official")
    with pytest.warns(SubmissionOrderWarning, match=r"position 0: 'ENC00003' vs 'ENC00001'.*= 7\.12 .*52\.66 by "
                                                    r"encounter id.*order=references"):
        result = score_submission(submission, reference)
    assert not result.order_matches
    assert result.score() == pytest.approx(by_position.score) == pytest.approx(7.1238944008050735, abs=1e-9)
    assert result.by_id["en"].score == pytest.approx(by_id.score) == pytest.approx(52.664038784792666, abs=1e-9)
    assert [row["dBLEU by id"] for row in result.rows()] == [result.by_id["en"].score]
    assert "7.12 (by file position" in str(result) and "52.66 by encounter id" in str(result)


def test_rewritten_in_reference_order_matches_the_by_id_score(tmp_path):
    reference, submission, _, answers = _three_cases(tmp_path)
    with pytest.warns(UserWarning, match="pairs them by file position.*score_submission"):
        read = read_submission(submission, order=reference)
    assert read == answers  # aligned by id
    fixed = write_submission(tmp_path / "fixed.json", read, order=reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_submission(fixed, order=reference) == answers
        result = score_submission(fixed, reference)
    assert result.order_matches and result.score() == pytest.approx(52.664038784792666, abs=1e-9)


def test_missing_id_leaves_no_by_id_score(tmp_path):
    reference, _, refs, _ = _three_cases(tmp_path)
    rows = [{"encounter_id": e, "responses": [{"content_en": "It is psoriasis."}]} for e in ("ENC00001", "X", "ENC00003")]
    with pytest.warns(SubmissionOrderWarning, match="1 reference ids have no prediction"):
        result = score_submission(rows, reference)
    assert result.by_id is None and math.isfinite(result.score())
    assert "— by encounter id" in str(result)


def test_submission_errors_name_the_entry_and_the_fix(tmp_path):
    reference, _, _, _ = _three_cases(tmp_path)
    short = [{"encounter_id": "ENC00001", "responses": [{"content_en": "a"}]}]
    with pytest.raises(DataFormatError, match="1 entries but the references have 3.*write_submission"):
        score_submission(short, reference)
    uneven = [{"encounter_id": f"ENC0000{i}", "responses": [{"content_en": "a"} if i != 2 else {"content_es": "b"}]}
              for i in (1, 2, 3)]
    with pytest.raises(DataFormatError, match=r"entry 1 \(ENC00002\).*content_en.*same languages"):
        score_submission(uneven, reference)
    with pytest.raises(DataFormatError, match="entry 0 has no responses"):
        score_submission([{"encounter_id": "ENC00001"}], reference)
    with pytest.raises(ParameterError, match="submission must be"):
        score_submission({"ENC00001": "a"}, reference)
