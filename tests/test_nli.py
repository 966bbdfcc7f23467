"""NLI data: MedNLI/RadNLI JSONL parsing and errors, the nli-jsonl dataset, the synthetic NLI set's rules."""

from __future__ import annotations

import difflib
import json
from collections import Counter

import pytest

from medvl_core.data import DATASETS, open_dataset
from medvl_core.data.nli import (
    NLI_LABELS,
    NLIPair,
    is_usable,
    laterality_flip,
    negation_flip,
    nli_split,
    paraphrase,
    read_nli_jsonl,
    synthetic_nli,
    topics,
)
from medvl_core.errors import DataFormatError, ParameterError
from medvl_core.text.pos import antonym

SENTENCES = [
    "No pleural effusion or pneumothorax.",
    "There is a small left pleural effusion.",
    "Large right pleural effusion.",
    "There is no pneumothorax.",
    "Heart size is normal.",
    "The heart is mildly enlarged.",
    "The cardiomediastinal silhouette is within normal limits.",
    "Moderate cardiomegaly is present.",
    "The lungs are clear.",
    "There is a focal consolidation in the right lower lobe.",
    "Patchy opacity in the left lung base may represent atelectasis.",
    "No focal airspace consolidation.",
    "Mild pulmonary edema.",
    "There is no evidence of pneumonia.",
    "Degenerative changes of the thoracic spine.",
    "No acute osseous abnormality.",
    "Healed fracture of the left seventh rib.",
    "A right internal jugular catheter is seen with tip in the SVC.",
    "Sternotomy wires are intact.",
    "The aorta is tortuous.",
    "Calcified granuloma in the right upper lobe.",
    "Stable right hilar prominence.",
    "FINDINGS:",
    "No acute cardiopulmonary abnormality.",
    "Comparison made to prior study.",
]
NEGATION_TOKENS = {"no", "not", "a", "an", "some", "without", "with", "negative", "positive", "does", "do", "appear", "appears"}
PARAPHRASE_TOKENS = {"there", "is", "are", "no", "the", "within", "normal", "limits"}


def write_jsonl(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def record(s1="Patient has a fever.", s2="Patient is febrile.", label="entailment", **extra):
    return json.dumps({"sentence1": s1, "sentence2": s2, "gold_label": label, **extra})


# ---------------------------------------------------------------- JSONL


def test_reads_pairs_and_drops_invalid_gold_labels_with_count(tmp_path):
    path = write_jsonl(tmp_path / "mli_dev_v1.jsonl", [
        record(pairID="a"), "", record("A", "B", "Contradiction"), record("C", "D", "-"),
        record("E", "F", "neutral"), record("G", "H", ""),
    ])
    with pytest.warns(UserWarning, match="dropped 2 pair"):
        pairs = read_nli_jsonl(path)
    assert pairs == [NLIPair("Patient has a fever.", "Patient is febrile.", "entailment"),
                     NLIPair("A", "B", "contradiction"), NLIPair("E", "F", "neutral")]


def test_malformed_line_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [record(), '{"sentence1": "x", '])
    with pytest.raises(DataFormatError, match=r"bad\.jsonl, line 2: not valid JSON"):
        read_nli_jsonl(path)


def test_missing_key_names_key_and_line(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [record(), record(), json.dumps({"sentence1": "a", "sentence2": "b"})])
    with pytest.raises(DataFormatError, match=r"line 3: missing key 'gold_label'"):
        read_nli_jsonl(path)


def test_missing_file_points_to_the_data_card(tmp_path):
    with pytest.raises(DataFormatError, match="mednli-radnli.md"):
        read_nli_jsonl(tmp_path / "nope.jsonl")


def test_nli_jsonl_dataset_finds_the_split_file(tmp_path):
    write_jsonl(tmp_path / "radnli_test_v1.jsonl", [record(), record("A", "B", "neutral")])
    assert "nli-jsonl" in DATASETS
    ds = open_dataset("nli-jsonl", root=tmp_path, split="test")
    assert len(ds) == 2
    assert ds[1] == {"id": "radnli_test_v1:1", "sentence1": "A", "sentence2": "B", "label": "neutral"}
    with pytest.raises(DataFormatError, match="pass file=PATH"):
        open_dataset("nli-jsonl", root=tmp_path, split="train")
    with pytest.raises(ParameterError, match="unknown split"):
        open_dataset("nli-jsonl", root=tmp_path, split="holdout")


# ---------------------------------------------------------------- sentence rules


def test_negation_flips_both_ways():
    assert negation_flip("No pleural effusion or pneumothorax.") == "Pleural effusion or pneumothorax."
    assert negation_flip("There is no pneumothorax.") == "There is pneumothorax."
    assert negation_flip("There is no evidence of pneumonia.") == "There is evidence of pneumonia."
    assert negation_flip("There is a small left pleural effusion.") == "There is no small left pleural effusion."
    assert negation_flip("Heart size is normal.") == "Heart size is not normal."


def test_laterality_flip_only_outside_negation():
    assert laterality_flip("Large right pleural effusion, left lung clear.") == "Large left pleural effusion, right lung clear."
    assert laterality_flip("Right-sided catheter.") == "Left-sided catheter."
    assert laterality_flip("No left pleural effusion.") is None
    assert laterality_flip("Heart size is normal.") is None


def test_paraphrase_templates_keep_the_content():
    assert paraphrase("No focal airspace consolidation.") == "There is no focal airspace consolidation."
    assert paraphrase("There is no pneumothorax.") == "No pneumothorax."
    assert paraphrase("Heart size is normal.") == "Heart size is within normal limits."
    assert paraphrase("Mild pulmonary edema.") is None


def test_usable_sentences_and_topics():
    assert topics("The lungs are clear.") == {"lung"}
    assert topics("No pleural effusion or pneumothorax.") == {"pleural"}
    assert not is_usable("FINDINGS:")
    assert not is_usable("No acute cardiopulmonary abnormality.")
    assert not is_usable("Comparison made to prior study.")
    assert is_usable("Heart size is normal.")


# ---------------------------------------------------------------- synthetic set


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_nli(SENTENCES, 60, seed=1)


def words(text):
    return [w.strip(".,").lower() for w in text.split()]


def premise_sentences(pair):
    return [s for s in SENTENCES if s in pair.sentence1]


def is_flip_of(source, hypothesis):
    """True when the two differ only by negation words, a left/right swap or WordNet antonyms."""
    a, b = words(source), words(hypothesis)
    changed_a, changed_b = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        if op != "equal":
            changed_a += a[i1:i2]
            changed_b += b[j1:j2]
    if not changed_a and not changed_b:
        return False
    if set(changed_a + changed_b) <= NEGATION_TOKENS:
        return True
    if len(changed_a) != len(changed_b):
        return False
    pairs = list(zip(changed_a, changed_b, strict=True))
    return all({x, y} == {"left", "right"} or antonym(x) == y for x, y in pairs)


def test_synthetic_set_is_balanced_and_deterministic(synthetic):
    assert len(synthetic) == 60
    assert Counter(p.label for p in synthetic) == {label: 20 for label in NLI_LABELS}
    assert len(set(synthetic)) == 60
    assert synthetic_nli(SENTENCES, 60, seed=1) == synthetic
    assert synthetic_nli(SENTENCES, 60, seed=2) != synthetic
    assert Counter(p.label for p in synthetic_nli(SENTENCES, 10, seed=0, flips=("negation",))) == {
        "entailment": 4, "neutral": 3, "contradiction": 3}


def test_premises_are_two_or_three_known_sentences_with_disjoint_topics(synthetic):
    for pair in synthetic:
        parts = premise_sentences(pair)
        assert 2 <= len(parts) <= 3
        assert " ".join(sorted(parts, key=pair.sentence1.index)) == pair.sentence1
        seen = set()
        for part in parts:
            assert not seen & topics(part)
            seen |= topics(part)


def test_entailment_hypothesis_is_contained_in_the_premise(synthetic):
    for pair in (p for p in synthetic if p.label == "entailment"):
        if pair.sentence2 not in premise_sentences(pair):
            assert set(words(pair.sentence2)) - PARAPHRASE_TOKENS <= set(words(pair.sentence1))


def test_contradiction_flips_one_premise_sentence(synthetic):
    pairs = [p for p in synthetic if p.label == "contradiction"]
    for pair in pairs:
        assert any(is_flip_of(s, pair.sentence2) for s in premise_sentences(pair)), pair


def test_neutral_hypothesis_is_about_other_findings(synthetic):
    for pair in (p for p in synthetic if p.label == "neutral"):
        assert pair.sentence2 in SENTENCES and pair.sentence2 not in pair.sentence1
        assert not topics(pair.sentence2) & set().union(*map(topics, premise_sentences(pair)))


def test_synthetic_errors():
    with pytest.raises(ParameterError, match="usable sentences"):
        synthetic_nli(SENTENCES[:3], 9)
    with pytest.raises(ParameterError, match="n_pairs"):
        synthetic_nli(SENTENCES, 2)
    with pytest.raises(ParameterError, match="flips"):
        synthetic_nli(SENTENCES, 9, flips=("shuffle",))
    with pytest.raises(ParameterError, match="distinct"):
        synthetic_nli(SENTENCES[:6], 3000, flips=("negation",))


def test_nli_split_is_stratified_and_deterministic(synthetic):
    train, test = nli_split(synthetic, test_fraction=0.25, seed=0)
    assert Counter(p.label for p in test) == {label: 5 for label in NLI_LABELS}
    assert sorted(train + test, key=repr) == sorted(synthetic, key=repr)
    assert nli_split(synthetic, 0.25, seed=0) == (train, test)
    with pytest.raises(ParameterError, match="test_fraction"):
        nli_split(synthetic, 1.0)
