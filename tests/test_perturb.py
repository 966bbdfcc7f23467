"""Report perturbations of Zhong et al. Table I: properties per kind, unchanged detection, seeds, batch."""

from __future__ import annotations

import itertools
import re
from collections import Counter

import pytest

from medvl_core.errors import ParameterError
from medvl_core.text.perturb import (
    PERTURBATIONS,
    PerturbationUnchanged,
    apply,
    parse,
    perturb,
    perturb_all,
)

SENTENCE = "There is a small left pleural effusion and mild cardiomegaly."
WORDS = SENTENCE.rstrip(".").split()
NOUNS = {"effusion", "cardiomegaly"}
ADJS = {"small", "left", "pleural", "mild"}
VERBS = {"is"}
REORDERINGS = [kind for kind in PERTURBATIONS if kind != "antonym_adjs"]


def words_of(text: str) -> list[str]:
    """The words of a one-sentence test text (no inner punctuation) in order."""
    assert text.endswith(".") and text.count(".") == 1
    return text.rstrip(".").split(" ")


def test_nine_kinds_in_table_order():
    assert PERTURBATIONS == (
        "shuffle_all",
        "swap_adjacent",
        "reverse",
        "shuffle_within_trigrams",
        "shuffle_trigrams",
        "shuffle_nouns_adjs",
        "shuffle_all_but_nouns_adjs",
        "shuffle_nouns_verbs_adjs",
        "antonym_adjs",
    )


def test_tags_of_the_example_are_what_the_tests_assume():
    doc = parse([SENTENCE])[0]
    pos = {tok.text: tok.pos_ for tok in doc}
    assert {w for w in WORDS if pos[w] in ("NOUN", "PROPN")} == NOUNS
    assert {w for w in WORDS if pos[w] == "ADJ"} == ADJS
    assert {w for w in WORDS if pos[w] in ("VERB", "AUX")} == VERBS


@pytest.mark.parametrize("kind", REORDERINGS)
def test_reorderings_keep_words_and_punctuation(kind):
    out = perturb(SENTENCE, kind, seed=3)
    assert out != SENTENCE
    assert Counter(words_of(out)) == Counter(WORDS)


def test_reverse_is_determined():
    assert perturb(SENTENCE, "reverse", seed=5) == "cardiomegaly mild and effusion pleural left small a is There."


def test_antonym_adjs_is_determined():
    expected = "There is a large right pleural effusion and intense cardiomegaly."
    assert perturb(SENTENCE, "antonym_adjs", seed=5) == expected


def test_antonym_keeps_case_and_leaves_adjectives_without_antonym():
    assert perturb("Small effusion. Heart size is normal.", "antonym_adjs") == "Large effusion. Heart size is abnormal."
    with pytest.raises(PerturbationUnchanged):
        perturb("Pleural effusion.", "antonym_adjs")


def test_swap_adjacent_moves_each_word_at_most_one_place():
    for seed in range(4):
        out = words_of(perturb(SENTENCE, "swap_adjacent", seed=seed))
        moved = [abs(out.index(w) - i) for i, w in enumerate(WORDS)]
        assert max(moved) == 1 and sum(moved) >= 8


def test_shuffle_within_trigrams_keeps_each_trigram_block():
    for seed in range(4):
        out = words_of(perturb(SENTENCE, "shuffle_within_trigrams", seed=seed))
        for s in range(0, len(WORDS), 3):
            assert sorted(out[s : s + 3]) == sorted(WORDS[s : s + 3])


def test_shuffle_trigrams_keeps_each_trigram_intact():
    trigrams = [WORDS[s : s + 3] for s in range(0, len(WORDS), 3)]
    orders = {tuple(w for t in perm for w in t) for perm in itertools.permutations(trigrams)}
    for seed in range(4):
        out = words_of(perturb(SENTENCE, "shuffle_trigrams", seed=seed))
        assert tuple(out) in orders and out != WORDS


@pytest.mark.parametrize(
    ("kind", "groups"),
    [
        ("shuffle_nouns_adjs", [NOUNS, ADJS]),
        ("shuffle_all_but_nouns_adjs", [set(WORDS) - NOUNS - ADJS]),
        ("shuffle_nouns_verbs_adjs", [NOUNS | ADJS | VERBS]),
    ],
)
def test_pos_restricted_kinds_move_only_their_classes(kind, groups):
    movable = set().union(*groups)
    for seed in range(6):
        out = words_of(perturb(SENTENCE, kind, seed=seed))
        assert out != WORDS
        for before, after in zip(WORDS, out, strict=True):
            if before not in movable:
                assert after == before
            else:
                assert any(before in g and after in g for g in groups)


def test_whitespace_and_punctuation_stay_in_place_in_a_report():
    report = "No acute process.\n\nHeart size is normal, lungs are clear."
    skeleton = re.sub(r"\w+", "w", report)
    for kind, out in perturb_all([report], seed=1)[0].items():
        assert out is not None and out != report
        assert re.sub(r"\w+", "w", out) == skeleton
        if kind != "antonym_adjs":
            assert Counter(re.findall(r"\w+", out)) == Counter(re.findall(r"\w+", report))


def test_unchanged_texts_are_reported():
    with pytest.raises(PerturbationUnchanged) as info:
        perturb("Effusion.", "shuffle_nouns_adjs")
    assert isinstance(info.value, ValueError)
    assert perturb_all(["Effusion.", ""]) == [dict.fromkeys(PERTURBATIONS)] * 2
    for kind in ("shuffle_all", "shuffle_nouns_adjs", "swap_adjacent", "reverse"):
        with pytest.raises(PerturbationUnchanged):
            perturb("effusion effusion.", kind)
    with pytest.raises(PerturbationUnchanged):
        perturb("Effusion and edema.", "shuffle_trigrams")  # one trigram


def test_retries_when_a_draw_reproduces_the_text():
    # two nouns: half of the random draws are the identity; every seed must still change the text
    for seed in range(20):
        assert perturb("Effusion and edema.", "shuffle_nouns_adjs", seed=seed) == "edema and Effusion."


def test_deterministic_for_a_seed_and_varies_across_seeds():
    for kind in ("shuffle_all", "shuffle_nouns_verbs_adjs", "shuffle_trigrams"):
        assert perturb(SENTENCE, kind, seed=7) == perturb(SENTENCE, kind, seed=7)
        assert len({perturb(SENTENCE, kind, seed=s) for s in range(8)}) > 2
    assert len({perturb(SENTENCE, "swap_adjacent", seed=s) for s in range(8)}) == 2


def test_batch_equals_single_calls_and_reuses_docs():
    texts = [SENTENCE, "Effusion.", "No acute process.\n\nHeart size is normal, lungs are clear."]
    batch = perturb_all(texts, seed=4)
    docs = parse(texts)
    for text, doc, row in zip(texts, docs, batch, strict=True):
        assert list(row) == list(PERTURBATIONS)
        for kind, out in row.items():
            try:
                single = perturb(text, kind, seed=4)
            except PerturbationUnchanged:
                single = None
            assert out == single
            if out is not None:
                assert apply(doc, kind, seed=4) == out
    assert perturb_all(texts[:1], kinds=["reverse"]) == [{"reverse": perturb(SENTENCE, "reverse")}]


def test_unknown_kind_and_bad_arguments():
    with pytest.raises(ParameterError) as info:
        perturb(SENTENCE, "shuffle_words")
    assert all(kind in str(info.value) for kind in PERTURBATIONS)
    with pytest.raises(ParameterError):
        perturb_all([SENTENCE], kinds=["reverse", "nope"])
    with pytest.raises(ParameterError):
        perturb_all(SENTENCE)
    with pytest.raises(ParameterError):
        perturb(SENTENCE, "shuffle_all", seed="a")
