"""Sentence splitting and seedable sentence sampling."""

import numpy as np
import pytest

from medvl_core.errors import ParameterError
from medvl_core.text.sentences import sample_sentences, split_sentences

REPORT = (
    "The heart is normal in size. A 2.5 cm nodule is seen in the right upper lobe.  "
    "Findings discussed with Dr. Smith at 3 p.m. on the ward. No pneumothorax! Is there an effusion? No."
)


def test_basic_split_keeps_abbreviations_and_decimals():
    assert split_sentences(REPORT) == [
        "The heart is normal in size.",
        "A 2.5 cm nodule is seen in the right upper lobe.",
        "Findings discussed with Dr. Smith at 3 p.m. on the ward.",
        "No pneumothorax!",
        "Is there an effusion?",
        "No.",
    ]


def test_numbered_lists_inline_and_on_lines():
    assert split_sentences("1. No effusion. 2. Mild cardiomegaly.") == ["1. No effusion.", "2. Mild cardiomegaly."]
    assert split_sentences("Impression:\n1. foo bar\n2) baz") == ["Impression:", "1. foo bar", "2) baz"]
    assert split_sentences("Measuring 2. The heart is normal.") == ["Measuring 2.", "The heart is normal."]


def test_openi_deidentification_tokens():
    text = "Normal chest x-XXXX. XXXX XXXX are normal. Called to Dr. XXXX. at bedside."
    assert split_sentences(text) == ["Normal chest x-XXXX.", "XXXX XXXX are normal.", "Called to Dr. XXXX. at bedside."]


def test_whitespace_blank_lines_and_empties():
    assert split_sentences("  Lungs  are\nclear.\n\nHeart normal  ") == ["Lungs are clear.", "Heart normal"]
    assert split_sentences("") == [] and split_sentences("   ") == [] and split_sentences(None) == []
    assert split_sentences("... .") == []
    with pytest.raises(ParameterError):
        split_sentences(3)


def test_sample_is_seeded_ordered_and_distinct():
    sentences = [f"Sentence number {i}." for i in range(10)]
    text = " ".join(sentences)
    a, b = sample_sentences(text, n=4, rng=7), sample_sentences(text, n=4, rng=7)
    assert a == b and len(a) == 4 and len(set(a)) == 4
    assert [sentences.index(s) for s in a] == sorted(sentences.index(s) for s in a)
    draws = {tuple(sample_sentences(sentences, n=3, rng=seed)) for seed in range(20)}
    assert len(draws) > 5


def test_sample_all_when_fewer_and_generator_accepted():
    assert sample_sentences("One. Two.", n=3, rng=0) == ["One.", "Two."]
    assert sample_sentences(["a", "", "b"], n=5) == ["a", "b"]
    gen = np.random.default_rng(1)
    first = sample_sentences(["a", "b", "c", "d"], n=2, rng=gen)
    assert len(first) == 2 and set(first) <= {"a", "b", "c", "d"}
    assert sample_sentences("One. Two.", n=0) == []
    with pytest.raises(ParameterError):
        sample_sentences("One.", n=-1)
    with pytest.raises(ParameterError):
        sample_sentences("One.", n=1, rng="seed")


def test_repeated_sentences_count_once():
    text = "No pneumothorax. Mild cardiomegaly. No pneumothorax."
    assert sample_sentences(text, n=5) == ["No pneumothorax.", "Mild cardiomegaly."]
    assert len(set(sample_sentences(text + " Small effusion.", n=2, rng=3))) == 2
