"""Natural language inference pairs: MedNLI / RadNLI JSONL files and an embedded synthetic set from report sentences.

Real data (data_cards/mednli-radnli.md): one JSON object per line with ``sentence1`` (premise),
``sentence2`` (hypothesis) and ``gold_label``; pairs whose gold label is not one of
:data:`NLI_LABELS` (e.g. "-" when annotators disagreed) are dropped with one counted warning.

Synthetic set (:func:`synthetic_nli`), built only from the sentences it is given:

- Usable sentences mention at least one *topic* (cardiac, lung, pleural, bone, devices, other),
  read from the report labeler's mentions plus anatomy words ("Lungs are clear" -> lung). Section
  headers, sentences of fewer than three words and whole-study statements ("No acute
  cardiopulmonary abnormality", "no active disease") are left out: they would make neutral pairs ambiguous.
- Premise: 2-3 usable sentences with pairwise disjoint topics (so the premise cannot contradict itself).
- Entailment: hypothesis = one premise sentence, verbatim or rewritten by a paraphrase template.
- Contradiction: hypothesis = one premise sentence flipped: a negation removed from a negated
  sentence ("No X" -> "X", "is not" -> "is", "without" -> "with"), or, in an affirmative sentence,
  a negation inserted ("There is X" -> "There is no X", "is" -> "is not"), left <-> right swapped,
  or adjectives replaced by their WordNet antonyms (``text.perturb`` ``antonym_adjs``). Laterality and
  antonym flips are never applied under a negation ("no left effusion" -> "no right effusion" is not a contradiction).
- Neutral: hypothesis = a sentence whose topics are disjoint from every premise sentence's.

It is a sanity check of the fine-tuning pipeline, not a clinical NLI benchmark: the rules are
lexical, so a model can solve it from negation words, laterality and topic overlap alone.
"""

from __future__ import annotations

import json
import random
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import DataFormatError, ParameterError
from ..text.labeler import mentions
from ..text.perturb import PerturbationUnchanged, perturb
from .base import RecordDataset
from .registry import register
from .splits import canonical_split

NLI_LABELS = ("entailment", "neutral", "contradiction")
JSONL_KEYS = ("sentence1", "sentence2", "gold_label")
CARD = "data_cards/mednli-radnli.md"
PREMISE_SIZES = (2, 3)
ATTEMPTS_PER_PAIR = 40
FLIP_KINDS = ("negation", "laterality", "antonym")

TOPIC_OF_OBSERVATION = {
    "Enlarged Cardiomediastinum": "cardiac", "Cardiomegaly": "cardiac",
    "Lung Opacity": "lung", "Lung Lesion": "lung", "Edema": "lung", "Consolidation": "lung",
    "Pneumonia": "lung", "Atelectasis": "lung",
    "Pneumothorax": "pleural", "Pleural Effusion": "pleural", "Pleural Other": "pleural",
    "Fracture": "bone", "Support Devices": "devices", "Other": "other",
}  # fmt: skip
TOPIC_WORDS = {
    "cardiac": re.compile(r"\b(heart|cardiac|cardio\w*|mediastin\w*|aort\w*|hilar|hila)\b", re.I),
    "lung": re.compile(r"\b(lungs?|pulmonary|cardiopulmonary|airspace|parenchym\w*|opacit\w*|infiltrat\w*)\b", re.I),
    "pleural": re.compile(r"\b(pleura\w*|pneumothora\w*|costophrenic)\b", re.I),
    "bone": re.compile(r"\b(osseous|bon(?:e|es|y)|spine|spinal|ribs?|vertebra\w*|fractur\w*)\b", re.I),
}
HEADER = re.compile(r"^\s*[A-Z][A-Z /()-]*:")
NEGATION = re.compile(r"\b(no|not|without|negative for|free of|absence of|nor|none|never)\b|n't", re.I)
LATERALITY = re.compile(r"\b(left|right)\b", re.I)

# (pattern, replacement) rules, tried in order; only the first match of the first rule that matches is changed
REMOVE_NEGATION = (
    (re.compile(r"\b(no) evidence of\b", re.I), "evidence of"),
    (re.compile(r"\b(there (?:is|are)) no\b", re.I), r"\1"),
    (re.compile(r"\b(is|are|was|were|does|do) not\b", re.I), r"\1"),
    (re.compile(r"\bwithout\b", re.I), "with"),
    (re.compile(r"\bnegative for\b", re.I), "positive for"),
    (re.compile(r"\bno\s+", re.I), ""),
)
ADD_NEGATION = (
    (re.compile(r"\b(there (?:is|are))\s+(?:an? |some )?", re.I), r"\1 no "),
    (re.compile(r"\b(is|are)\b", re.I), r"\1 not"),
    (re.compile(r"\bappears\b", re.I), "does not appear"),
    (re.compile(r"\bappear\b", re.I), "do not appear"),
)
PARAPHRASES = (
    (re.compile(r"^No evidence of (.+)$"), r"No \1"),
    (re.compile(r"^No (?!evidence\b)(.+)$"), r"There is no \1"),
    (re.compile(r"^There (?:is|are) no (.+)$"), r"No \1"),
    (re.compile(r"\b(is|are) within normal limits\b"), r"\1 normal"),
    (re.compile(r"\b(is|are) (?:normal|unremarkable)\b"), r"\1 within normal limits"),
    (re.compile(r"^The (\w+) (is|are)\b"), r"\1 \2"),
)


@dataclass(frozen=True)
class NLIPair:
    """A premise (sentence1), a hypothesis (sentence2) and one of NLI_LABELS."""

    sentence1: str
    sentence2: str
    label: str


# ---------------------------------------------------------------- JSONL files


def read_nli_jsonl(path) -> list[NLIPair]:
    """NLI pairs of a MedNLI/RadNLI-style JSONL file; pairs without a valid gold label are dropped with a warning."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataFormatError(f"{path}: NLI file not found; download MedNLI/RadNLI as described in {CARD}")
    pairs, dropped = [], 0
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            pair = _parse_line(path, number, line)
            if pair is None:
                dropped += 1
            else:
                pairs.append(pair)
    if dropped:
        warnings.warn(f"{path}: dropped {dropped} pair(s) whose gold_label is not one of {NLI_LABELS} "
                      "(e.g. '-' where annotators disagreed)", stacklevel=2)
    return pairs


def _parse_line(path: Path, number: int, line: str) -> NLIPair | None:
    """One JSONL line as an NLIPair; None when its gold label is not an NLI label."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}, line {number}: not valid JSON ({err.msg}); fix or remove that line") from None
    if not isinstance(record, dict):
        raise DataFormatError(f"{path}, line {number}: expected a JSON object, got {type(record).__name__}")
    for key in JSONL_KEYS:
        if not isinstance(record.get(key), str):
            problem = "missing key" if key not in record else "non-string value for key"
            raise DataFormatError(f"{path}, line {number}: {problem} {key!r}; each line needs {', '.join(JSONL_KEYS)}")
    label = record["gold_label"].strip().lower()
    return NLIPair(record["sentence1"], record["sentence2"], label) if label in NLI_LABELS else None


# ---------------------------------------------------------------- registry: nli-jsonl

SPLIT_FILES = {  # canonical split -> the official file names (MedNLI and RadNLI call 'val' 'dev')
    "train": ("mli_train_v1.jsonl", "train.jsonl"),
    "val": ("mli_dev_v1.jsonl", "radnli_dev_v1.jsonl", "dev.jsonl"),
    "test": ("mli_test_v1.jsonl", "radnli_test_v1.jsonl", "test.jsonl"),
}


@register("nli-jsonl", "MedNLI / RadNLI premise-hypothesis pairs from a folder of JSONL files (PhysioNet)")
def open_nli_jsonl(root: Path, split: str = "train", file=None) -> RecordDataset:
    """Items {id, sentence1, sentence2, label} of the split's JSONL file in `root` (or of `file`)."""
    path = Path(file).expanduser() if file is not None else _split_file(Path(root), split)
    pairs = read_nli_jsonl(path)
    records = [{"id": f"{path.stem}:{i}", "sentence1": p.sentence1, "sentence2": p.sentence2, "label": p.label}
               for i, p in enumerate(pairs)]
    return RecordDataset(records, name="nli-jsonl")


def _split_file(root: Path, split: str) -> Path:
    """The one known JSONL file of `split` in `root`."""
    names = SPLIT_FILES[canonical_split(split, dataset="nli-jsonl")]
    found = [root / name for name in names if (root / name).is_file()]
    if len(found) != 1:
        why = "none of" if not found else "several of"
        raise DataFormatError(f"{root}: {why} {', '.join(names)} found for split {split!r}; "
                              f"pass file=PATH (layout in {CARD})")
    return found[0]


# ---------------------------------------------------------------- synthetic set: sentence rules


@lru_cache(maxsize=50000)
def _observations(sentence: str) -> frozenset[str]:
    """Observations the report labeler finds in a sentence (any status)."""
    return frozenset(m.observation for m in mentions(sentence))


def topics(sentence: str) -> frozenset[str]:
    """Topics a sentence is about (labeler observations grouped, plus anatomy words)."""
    found = {TOPIC_OF_OBSERVATION[name] for name in _observations(sentence) if name in TOPIC_OF_OBSERVATION}
    found |= {topic for topic, pattern in TOPIC_WORDS.items() if pattern.search(sentence)}
    return frozenset(found)


def is_usable(sentence: str) -> bool:
    """Whether a sentence can enter the synthetic set: a finding sentence, not a header or whole-study statement."""
    if HEADER.match(sentence) or len(sentence.split()) < 3 or "No Finding" in _observations(sentence):
        return False
    return bool(topics(sentence))


def _first_rule(sentence: str, rules) -> str | None:
    """The sentence rewritten by the first matching rule (first occurrence only), else None."""
    for pattern, replacement in rules:
        new, count = pattern.subn(replacement, sentence, count=1)
        if count and new != sentence:
            return _capitalise(new)
    return None


def _capitalise(text: str) -> str:
    """Upper-case the first character."""
    return text[:1].upper() + text[1:]


def negation_flip(sentence: str) -> str | None:
    """Remove the first negation of a negated sentence, or insert one into an affirmative one."""
    return _first_rule(sentence, REMOVE_NEGATION if NEGATION.search(sentence) else ADD_NEGATION)


def laterality_flip(sentence: str) -> str | None:
    """Every left <-> right swapped (case kept), for an affirmative sentence that has one."""
    if NEGATION.search(sentence) or not LATERALITY.search(sentence):
        return None
    swap = {"left": "right", "right": "left"}
    return LATERALITY.sub(lambda m: _same_case(swap[m.group(0).lower()], m.group(0)), sentence)


def _same_case(word: str, template: str) -> str:
    """`word` capitalised or upper-cased like `template`."""
    if template.isupper():
        return word.upper()
    return _capitalise(word) if template[:1].isupper() else word


@lru_cache(maxsize=50000)
def antonym_flip(sentence: str) -> str | None:
    """Adjectives replaced by WordNet antonyms (text.perturb antonym_adjs), for an affirmative sentence."""
    if NEGATION.search(sentence):
        return None
    try:
        return perturb(sentence, "antonym_adjs")
    except PerturbationUnchanged:
        return None


def _candidate_flips(sentence: str, kinds: Sequence[str]) -> list[str]:
    """Flip kinds that may apply, decided without parsing (antonym_adjs needs spaCy, so it is tried last)."""
    out = [kind for kind in ("negation", "laterality") if kind in kinds and _flip(sentence, kind) is not None]
    # antonym_adjs would also swap left/right; leave laterality sentences to the laterality flip
    if "antonym" in kinds and not NEGATION.search(sentence) and laterality_flip(sentence) is None:
        out.append("antonym")
    return out


def _flip(sentence: str, kind: str) -> str | None:
    """One flip kind applied to a sentence (None when it does not apply or changes nothing)."""
    text = {"negation": negation_flip, "laterality": laterality_flip, "antonym": antonym_flip}[kind](sentence)
    return text if text != sentence else None


def paraphrase(sentence: str) -> str | None:
    """The sentence rewritten by the first paraphrase template that applies (meaning kept), else None."""
    body, stop = (sentence[:-1], ".") if sentence.endswith(".") else (sentence, "")
    new = _first_rule(body, PARAPHRASES)
    return new + stop if new is not None else None


# ---------------------------------------------------------------- synthetic set: pairs


def synthetic_nli(sentences: Sequence[str], n_pairs: int, seed: int = 0, flips: Sequence[str] = FLIP_KINDS) -> list[NLIPair]:
    """`n_pairs` NLI pairs built from report sentences, balanced over NLI_LABELS, deterministic in `seed`.

    `flips` chooses the contradiction flips (FLIP_KINDS); leaving out "antonym" avoids loading spaCy and WordNet.
    """
    if isinstance(sentences, str):
        raise ParameterError("synthetic_nli: sentences must be a list of sentences, not one string")
    if not isinstance(n_pairs, int) or n_pairs < len(NLI_LABELS):
        raise ParameterError(f"synthetic_nli: n_pairs must be an integer >= {len(NLI_LABELS)}, got {n_pairs!r}")
    unknown = set(flips) - set(FLIP_KINDS)
    if unknown or not flips:
        raise ParameterError(f"synthetic_nli: flips must be a non-empty subset of {FLIP_KINDS}, got {tuple(flips)}")
    pool = _Pool(sorted({" ".join(s.split()) for s in sentences if isinstance(s, str)}), tuple(flips))
    rng = random.Random(f"synthetic-nli:{seed}")
    pairs = []
    for i, label in enumerate(NLI_LABELS):
        pairs += _pairs_of(label, n_pairs // len(NLI_LABELS) + (i < n_pairs % len(NLI_LABELS)), pool, rng)
    rng.shuffle(pairs)
    return pairs


class _Pool:
    """Usable sentences with their topics; flips computed lazily."""

    def __init__(self, sentences: list[str], flips: tuple[str, ...]):
        self.flips = flips
        self.sentences = [s for s in sentences if is_usable(s)]
        self.topics = {s: topics(s) for s in self.sentences}
        if len(self.sentences) < max(PREMISE_SIZES) + 1:
            raise ParameterError(f"synthetic_nli: only {len(self.sentences)} usable sentences (finding sentences, "
                                 "not headers or whole-study statements); pass more report sentences")

    def premise(self, first: str, rng: random.Random) -> list[str] | None:
        """`first` plus 1-2 further sentences, all with pairwise disjoint topics, in random order."""
        chosen, covered = [first], set(self.topics[first])
        size = rng.choice(PREMISE_SIZES)
        for candidate in rng.sample(self.sentences, min(len(self.sentences), 12 * size)):
            if len(chosen) == size:
                break
            if not covered & self.topics[candidate]:
                chosen.append(candidate)
                covered |= self.topics[candidate]
        if len(chosen) < min(PREMISE_SIZES):
            return None
        rng.shuffle(chosen)
        return chosen

    def unrelated(self, premise: list[str], rng: random.Random) -> str | None:
        """A sentence whose topics are disjoint from all premise sentences'."""
        covered = set().union(*(self.topics[s] for s in premise))
        for candidate in rng.sample(self.sentences, min(len(self.sentences), 40)):
            if not covered & self.topics[candidate]:
                return candidate
        return None


def _pairs_of(label: str, count: int, pool: _Pool, rng: random.Random) -> list[NLIPair]:
    """`count` distinct pairs of one label."""
    pairs, seen = [], set()
    for _ in range(ATTEMPTS_PER_PAIR * count + 100):
        if len(pairs) == count:
            return pairs
        pair = _one_pair(label, pool, rng)
        if pair is not None and pair not in seen:
            seen.add(pair)
            pairs.append(pair)
    raise ParameterError(f"synthetic_nli: could build only {len(pairs)} distinct {label} pairs of the {count} asked "
                         "from these sentences; pass more (and more varied) report sentences or lower n_pairs")


def _one_pair(label: str, pool: _Pool, rng: random.Random) -> NLIPair | None:
    """One candidate pair of `label`, or None when this draw does not work out."""
    target = rng.choice(pool.sentences)
    premise = pool.premise(target, rng)
    if premise is None:
        return None
    if label == "neutral":
        hypothesis = pool.unrelated(premise, rng)
    elif label == "entailment":
        hypothesis = (paraphrase(target) or target) if rng.random() < 0.5 else target
    else:
        kinds = _candidate_flips(target, pool.flips)
        hypothesis = _flip(target, rng.choice(kinds)) if kinds else None
    return NLIPair(" ".join(premise), hypothesis, label) if hypothesis else None


def nli_split(pairs: Sequence[NLIPair], test_fraction: float = 0.2, seed: int = 0) -> tuple[list[NLIPair], list[NLIPair]]:
    """(train, test) split stratified by label, deterministic in `seed`."""
    if not 0 < test_fraction < 1:
        raise ParameterError(f"nli_split: test_fraction must be in (0, 1), got {test_fraction!r}")
    rng = random.Random(f"nli-split:{seed}")
    train, test = [], []
    for label in sorted({p.label for p in pairs}):
        group = [p for p in pairs if p.label == label]
        rng.shuffle(group)
        n_test = round(len(group) * test_fraction)
        test += group[:n_test]
        train += group[n_test:]
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


__all__ = ["NLI_LABELS", "NLIPair", "read_nli_jsonl", "synthetic_nli", "nli_split", "open_nli_jsonl",
           "negation_flip", "laterality_flip", "antonym_flip", "paraphrase", "topics", "is_usable"]
