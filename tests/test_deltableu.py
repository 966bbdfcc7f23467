"""deltaBLEU: equality with sacreBLEU at weight 1, hand-computed weighted cases, the official scorer's quirks."""

import math
import random
from collections import Counter

import numpy as np
import pytest
import sacrebleu

from medvl_core.errors import ParameterError
from medvl_core.eval.deltableu import DeltaBleuResult, delta_bleu

WORDS = ("the a skin rash is it eczema psoriasis not likely , . red itchy patch of on arm leg "
         "see doctor Tinea Contact dermatitis 2 - ( ) ; : ! ?").split()
REAL_HYPS = [
    "It is eczema.",
    "This looks like psoriasis; see a dermatologist.",
    "Likely contact dermatitis, avoid the irritant & use 1% hydrocortisone.",
    "",
    "Tinea corporis (ringworm). Use an antifungal cream for 2-4 weeks.",
    "It is urticaria.",
]
REAL_REFS = [
    ["eczema", "It is atopic dermatitis (eczema).", "Looks like Eczema to me, moisturize twice a day."],
    ["Psoriasis.", "plaque psoriasis"],
    ["Contact dermatitis.", "It is allergic contact dermatitis; stop using the new soap.", "dermatitis", "Eczema?"],
    ["It is a wart."],
    ["Ringworm - tinea corporis. Antifungal cream (clotrimazole) for 2-4 weeks.", "tinea"],
    ["Hives, i.e. urticaria; take an antihistamine.", "urticaria", "It is urticaria!"],
]


def _sentence(rng: random.Random, longest: int = 20) -> str:
    """A random sentence over a small vocabulary (many shared n-grams)."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, longest)))


def _corpus(rng: random.Random, n: int):
    """n random cases with 1-5 references each."""
    hyps = [_sentence(rng) for _ in range(n)]
    refs = [[_sentence(rng) for _ in range(rng.randint(1, 5))] for _ in range(n)]
    return hyps, refs


def _streams(refs):
    """Per-case reference lists -> sacreBLEU's reference streams, padded with None."""
    k = max(map(len, refs))
    return [[case[j] if j < len(case) else None for case in refs] for j in range(k)]


def _assert_same(ours: DeltaBleuResult, theirs) -> None:
    """Our result equals sacreBLEU's BLEUScore to 1e-6."""
    assert ours.score == pytest.approx(theirs.score, abs=1e-6)
    assert ours.bp == pytest.approx(theirs.bp, abs=1e-12)
    assert (ours.hyp_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)
    assert list(ours.counts) == list(theirs.counts) and list(ours.totals) == list(theirs.totals)
    assert list(ours.precisions) == pytest.approx(list(theirs.precisions), abs=1e-9)
    assert ours.ratio == pytest.approx(theirs.ratio)


# ------------------------------------------------------------- an independent oracle of the official scorer


def _oracle_tokens(text: str) -> list[str]:
    """13a tokens via sacreBLEU (the oracle only re-implements the counting)."""
    return sacrebleu.BLEU(tokenize="13a").tokenizer(text.rstrip()).split()


def _oracle_official(hyps, refs, weights):
    """Official MEDIQA-M3G deltaBLEU written naively from the documented rules (space-joined n-gram strings)."""
    correct, total, hyp_len, ref_len = [0.0] * 4, [0.0] * 4, 0, 0
    for hyp, case, ws in zip(hyps, refs, weights):
        h = _oracle_tokens(hyp.lower())  # only the hypothesis is lowercased
        rs = [_oracle_tokens(r) for r in case]
        hyp_len += len(h)
        ref_len += sorted((abs(len(h) - len(r)), len(r)) for r in rs)[0][1]
        grams = [Counter(" ".join(t[i:i + n]) for n in range(1, 5) for i in range(len(t) - n + 1)) for t in [h, *rs]]
        for g, c in grams[0].items():
            ceiling = max(r[g] for r in grams[1:])
            if ceiling:
                correct[len(g.split()) - 1] += max(w for r, w in zip(grams[1:], ws) if r[g]) * min(c, ceiling)
            total[len(g.split()) - 1] += max(ws) * c
    logs, smooth, order = [], 1.0, 4
    for n in range(4):
        if total[n] == 0:
            break
        order = n + 1
        smooth *= 2 if correct[n] <= 0 else 1
        logs.append(math.log(100 * correct[n] / total[n] if correct[n] > 0 else 100 / (smooth * total[n])))
    bp = 1.0 if hyp_len >= ref_len else (math.exp(1 - ref_len / hyp_len) if hyp_len else 0.0)
    return bp * math.exp(sum(logs) / order) if logs else 0.0


# ------------------------------------------------------------- equality with sacreBLEU at weight 1


@pytest.mark.parametrize("lowercase", [False, True])
def test_equals_sacrebleu_on_random_corpora(lowercase):
    rng = random.Random(7)
    for _ in range(150):
        hyps, refs = _corpus(rng, rng.randint(1, 12))
        ours = delta_bleu(hyps, refs, lowercase=lowercase)
        _assert_same(ours, sacrebleu.corpus_bleu(hyps, _streams(refs), lowercase=lowercase))
        ones = [[1.0] * len(case) for case in refs]
        assert delta_bleu(hyps, refs, ones, lowercase=lowercase).score == pytest.approx(ours.score, abs=1e-6)


def test_equals_sacrebleu_with_effective_order_and_short_sentences():
    rng = random.Random(3)
    for _ in range(100):
        hyps = [_sentence(rng, 3) for _ in range(rng.randint(1, 4))]
        refs = [[_sentence(rng, 4) for _ in range(rng.randint(1, 3))] for _ in hyps]
        for eff in (False, True):
            ours = delta_bleu(hyps, refs, effective_order=eff)
            _assert_same(ours, sacrebleu.corpus_bleu(hyps, _streams(refs), use_effective_order=eff))


def test_equals_sacrebleu_on_real_sentences():
    for lowercase in (False, True):
        ours = delta_bleu(REAL_HYPS, REAL_REFS, lowercase=lowercase)
        _assert_same(ours, sacrebleu.corpus_bleu(REAL_HYPS, _streams(REAL_REFS), lowercase=lowercase))
    assert 0 < delta_bleu(REAL_HYPS, REAL_REFS).score < 100


def test_other_sacrebleu_tokenizer():
    hyps, refs = ["这是湿疹。", "银屑病"], [["这是湿疹", "湿疹。"], ["可能是银屑病。"]]
    _assert_same(delta_bleu(hyps, refs, tokenize="zh"), sacrebleu.corpus_bleu(hyps, _streams(refs), tokenize="zh"))


# ------------------------------------------------------------- weighting


def test_hand_computed_weighted_example():
    # unigrams: the, rash (heavy ref), is (both -> 1.0), eczema (only the 0.6 ref) -> 3.6 of 4
    # bigrams: the rash, rash is (1.0), is eczema (0.6) -> 2.6 of 3; trigrams: the rash is -> 1 of 2; 4-grams 0 of 1
    res = delta_bleu(["the rash is eczema"], [["the rash is psoriasis", "it is eczema"]], [[1.0, 0.6]])
    assert res.counts == pytest.approx((3.6, 2.6, 1.0, 0.0)) and res.totals == pytest.approx((4, 3, 2, 1))
    precisions = (90.0, 260 / 3, 50.0, 100 / (2 * 1))  # exp smoothing for the unmatched 4-gram
    assert res.precisions == pytest.approx(precisions)
    assert res.score == pytest.approx(math.exp(sum(map(math.log, precisions)) / 4))
    assert (res.bp, res.hyp_len, res.ref_len, res.ratio) == (1.0, 4, 4, 1.0)


def test_denominator_scaled_by_largest_weight():
    res = delta_bleu(["the rash is eczema"], [["the rash is psoriasis", "it is eczema"]], [[0.8, 0.6]])
    assert res.totals == pytest.approx((3.2, 2.4, 1.6, 0.8))
    assert res.counts == pytest.approx((0.8 * 3 + 0.6, 0.8 * 2 + 0.6, 0.8, 0.0))


def test_heavier_matching_reference_raises_score():
    hyps, refs = ["the rash is eczema"], [["the rash is eczema today", "it is psoriasis"]]
    heavy = delta_bleu(hyps, refs, [[1.0, 0.6]]).score
    light = delta_bleu(hyps, refs, [[0.6, 1.0]]).score
    assert heavy > light


def test_uniform_weights_other_than_one_leave_the_score_unchanged():
    hyps, refs = REAL_HYPS, REAL_REFS
    scaled = [[0.7] * len(case) for case in refs]
    assert delta_bleu(hyps, refs, scaled).score == pytest.approx(delta_bleu(hyps, refs).score, abs=1e-9)


def test_weights_accept_numpy_arrays():
    refs = [["the rash is psoriasis", "it is eczema"]]
    assert delta_bleu(["the rash is eczema"], refs, [np.array([1.0, 0.6])]).counts[0] == pytest.approx(3.6)


# ------------------------------------------------------------- official mode


def test_official_mode_uniform_without_chinese_weighted_with_it():
    rng = random.Random(11)
    hyps, refs = _corpus(rng, 20)
    ws = [[rng.choice([0.6, 0.7, 0.8, 0.9, 1.0]) for _ in case] for case in refs]
    en = delta_bleu(hyps, refs, ws, mode="official", lowercase=False, languages=("en",))
    assert en == delta_bleu(hyps, refs, None, mode="official", lowercase=False)
    assert en == delta_bleu(hyps, refs, ws, mode="official", lowercase=False, languages=["en", "es"])
    assert en.score == pytest.approx(sacrebleu.corpus_bleu(hyps, _streams(refs), use_effective_order=True).score)
    zh = delta_bleu(hyps, refs, ws, mode="official", lowercase=False, languages=("en", "zh"))
    assert zh.score == pytest.approx(delta_bleu(hyps, refs, ws, effective_order=True).score)
    assert zh.score != pytest.approx(en.score)


def test_official_mode_with_weights_needs_the_submission_languages():
    hyps, refs, ws = ["It is dyshidrotic eczema."], [["It is eczema.", "It is dyshidrotic eczema of the hands."]], [[1.0, 0.6]]
    with pytest.raises(ParameterError, match=r"languages=.*content_<lang> keys the submission holds.*score_submission"):
        delta_bleu(hyps, refs, ws, mode="official")
    assert delta_bleu(hyps, refs, ws).score > 0  # the weighted mode always applies the weights: no languages needed
    assert delta_bleu(hyps, refs, ws, mode="official", languages="zh").score == pytest.approx(
        delta_bleu(hyps, refs, ws, mode="official", languages=["en", "zh"]).score)


def test_official_mode_matches_an_independent_oracle():
    rng = random.Random(5)
    for _ in range(60):
        hyps, refs = _corpus(rng, rng.randint(1, 8))
        hyps = [h.capitalize() for h in hyps]
        ws = [[rng.choice([0.6, 0.7, 0.8, 0.9, 1.0]) for _ in case] for case in refs]
        ours = delta_bleu(hyps, refs, ws, mode="official", languages=["en", "zh"])
        assert ours.score == pytest.approx(_oracle_official(hyps, refs, ws), abs=1e-6)


def test_official_lowercase_quirk_lowercases_the_hypothesis_only():
    hyp, ref = ["the rash is red"], [["The Rash is red"]]
    official = delta_bleu(hyp, ref, mode="official")  # lowercase=True, as the official scorer calls it
    assert official.counts[0] == 2  # "The", "Rash" stay capitalised in the reference
    assert delta_bleu(hyp, ref, lowercase=True).counts[0] == 4
    assert delta_bleu(["The Rash is red"], [["the rash is red"]], mode="official").score == pytest.approx(100)
    assert delta_bleu(hyp, ref, mode="official", lowercase=False).counts[0] == 2


def test_official_mode_keeps_smoothed_score_without_any_match():
    hyps, refs = ["red patch on arm"], [["it is eczema"]]
    assert delta_bleu(hyps, refs).score == 0.0  # sacreBLEU 2.x shortcut
    expected = math.exp(sum(math.log(100 / (2 ** (n + 1) * (4 - n))) for n in range(4)) / 4)  # BP = 1 (4 >= 3)
    assert delta_bleu(hyps, refs, mode="official").score == pytest.approx(expected)


# ------------------------------------------------------------- edges, errors, result


def test_empty_hypothesis():
    res = delta_bleu([""], [["it is eczema"]])
    assert (res.score, res.bp, res.hyp_len, res.ref_len, res.ratio) == (0.0, 0.0, 0, 3, 0.0)
    assert delta_bleu([""], [["it is eczema"]], mode="official").score == 0.0
    hyps, refs = ["", "it is eczema"], [["eczema"], ["it is eczema", "eczema"]]
    _assert_same(delta_bleu(hyps, refs), sacrebleu.corpus_bleu(hyps, _streams(refs)))


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"references": [["a"]]}, "references"),
    ({"references": ["a b", "c"]}, r"references\[0\]"),
    ({"references": [["a"], []]}, r"references\[1\]"),
    ({"references": [["a"], [None]]}, r"references\[1\]\[0\]"),
    ({"weights": [[1.0]]}, "weights"),
    ({"weights": [[1.0], [1.0]]}, r"weights\[1\]"),
    ({"weights": [[1.0], [0.0, -1.0]]}, r"weights\[1\]"),
    ({"weights": [[float("nan")], [1.0, 1.0]]}, r"weights\[0\]"),
    ({"hypotheses": ["a", 3]}, r"hypotheses\[1\]"),
    ({"hypotheses": "a b"}, "hypotheses"),
    ({"mode": "strict"}, "mode"),
    ({"tokenize": "nope"}, "tokenize"),
    ({"max_order": 0}, "max_order"),
    ({"lowercase": "yes"}, "lowercase"),
    ({"languages": 3}, "languages"),
])
def test_errors_name_the_parameter(kwargs, name):
    args = {"hypotheses": ["a b", "c"], "references": [["a"], ["c", "d"]]} | kwargs
    with pytest.raises(ParameterError, match=name):
        delta_bleu(**args)


def test_empty_corpus_is_an_error():
    with pytest.raises(ParameterError, match="hypotheses is empty"):
        delta_bleu([], [])


def test_result_fields():
    res = delta_bleu(REAL_HYPS, REAL_REFS)
    assert isinstance(res, DeltaBleuResult)
    assert isinstance(res.score, float) and isinstance(res.hyp_len, int) and isinstance(res.ref_len, int)
    assert len(res.precisions) == len(res.counts) == len(res.totals) == 4
    assert res.ratio == pytest.approx(res.hyp_len / res.ref_len)
    assert res.bp == pytest.approx(math.exp(1 - res.ref_len / res.hyp_len) if res.ratio < 1 else 1.0)
    assert str(res).startswith(f"dBLEU = {res.score:.2f}") and "BP = " in str(res)
    assert len(delta_bleu(["a b c"], [["a b c"]], max_order=2).precisions) == 2
