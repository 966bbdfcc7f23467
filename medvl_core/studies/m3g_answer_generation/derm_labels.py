"""Disease labels from dermatology answers (rule-based) and the M3G post-processing of a label into an answer.

The WangLab CLIP solution (MEDIQA-M3G 2024) needs one disease label per training case; the paper asked an
LLM for it. This module does it offline with a label dictionary (lower-case name or alias -> canonical
name): every non-negated dictionary phrase in a response is a mention, a response's label is its first
mention, and a case's label is the majority over its responses (ties -> the earlier response).

A mention is negated when a negation cue ("not", "no", "isn't", "rule out", "unlikely", ...) occurs among
the few words before it in its clause (clauses end at . ; , ! ? and "but"), so "Not psoriasis, it is
eczema." names eczema only. For real DermaVQA, `build_label_dictionary` collects the short label phrases
that responders write ("Eczema.", "Consider tinea corporis.", "Psoriasis or eczema") from the training
responses.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from ...errors import ParameterError

ANSWER_TEMPLATE = "It is {diagnosis}."  # Sec. 4.3: the answer sentence of both solutions (Claude and CLIP)
NEGATION_CUES = ("not", "no", "isn't", "isnt", "is not", "without", "rule out", "ruled out", "rules out",
                 "exclude", "excluded", "unlikely", "never", "nor", "instead of", "rather than")
NEGATION_WINDOW = 3  # words before a mention searched for a negation cue
CLAUSE_END = re.compile(r"[.;,!?\n]|\bbut\b", re.IGNORECASE)
LABEL_CUES = ("i think it is", "i think it's", "it is", "it's", "this is", "that is", "looks like", "look like",
              "seems like", "consider", "considered", "typical", "probably", "possibly", "likely", "could be",
              "may be", "maybe", "might be", "should be", "suspect", "suspected", "differential diagnosis",
              "diagnosis", "dx")
GENERIC_PHRASES = frozenset({"yes", "no", "ok", "okay", "thanks", "thank you", "unknown", "unclear", "not sure",
                             "see a doctor", "see a dermatologist", "biopsy", "same as above"})


# ------------------------------------------------------------------ mentions

def _alias_pattern(dictionary: Mapping[str, str]) -> re.Pattern:
    """One regex matching any dictionary phrase as whole words, longest phrases first."""
    if not dictionary:
        raise ParameterError("label dictionary is empty; pass name/alias -> canonical name pairs "
                             "(e.g. synth_derm_conditions.label_dictionary() or build_label_dictionary(...))")
    phrases = sorted({p.lower().strip() for p in dictionary if p.strip()}, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(p) for p in phrases) + r")(?![\w-])", re.IGNORECASE)


def _is_negated(text: str, start: int) -> bool:
    """True when a negation cue is among the NEGATION_WINDOW words before `start` in the same clause."""
    before = CLAUSE_END.split(text[:start])[-1].lower()
    window = " ".join(re.findall(r"[\w']+", before)[-NEGATION_WINDOW:])
    return any(re.search(rf"(?<![\w']){re.escape(cue)}(?![\w'])", window) for cue in NEGATION_CUES)


def find_mentions(text: str, dictionary: Mapping[str, str], pattern: re.Pattern | None = None) -> list[str]:
    """Canonical names of the non-negated dictionary phrases in `text`, in order of appearance."""
    lookup = {k.lower().strip(): v for k, v in dictionary.items()}
    pattern = pattern or _alias_pattern(dictionary)
    return [lookup[m.group(1).lower()] for m in pattern.finditer(text) if not _is_negated(text, m.start())]


def extract_label(responses: Sequence[str], dictionary: Mapping[str, str]) -> str:
    """The case's disease: majority over responses of each response's first mention ('' when none names one)."""
    if isinstance(responses, str):
        raise ParameterError("extract_label takes a list of response strings, got one string; wrap it in a list")
    pattern = _alias_pattern(dictionary)
    firsts = [mentions[0] for mentions in (find_mentions(r, dictionary, pattern) for r in responses) if mentions]
    if not firsts:
        return ""
    counts = Counter(firsts)
    best = max(counts.values())
    return next(label for label in firsts if counts[label] == best)


def extract_labels(cases: Iterable[Sequence[str]], dictionary: Mapping[str, str]) -> list[str]:
    """`extract_label` for every case's responses."""
    return [extract_label(responses, dictionary) for responses in cases]


# ------------------------------------------------------------------ dictionary from responses

def label_phrases(response: str, max_words: int = 5) -> list[str]:
    """Short label phrases a response states: clauses like 'Eczema', 'Consider X', 'X or Y', cue words removed."""
    phrases = []
    for clause in re.split(r"[.;!?\n()]+", response.lower()):
        clause = re.sub(r"[^\w\s'-]", " ", clause).strip()
        for cue in LABEL_CUES:
            if clause.startswith(cue + " "):
                clause = clause[len(cue) + 1:].strip()
                break
        for part in re.split(r"\s+or\s+|\s*/\s*", clause):
            part = re.sub(r"^(a|an|the)\s+", "", part.strip())
            if part and len(part.split()) <= max_words and part not in GENERIC_PHRASES and not _is_negated(part, 0) \
                    and re.search(r"[a-z]", part) and not re.match(r"(not|no)\b", part):
                phrases.append(part)
    return phrases


def build_label_dictionary(cases: Iterable[Sequence[str]], min_cases: int = 2, max_words: int = 5) -> dict[str, str]:
    """Label dictionary (phrase -> itself) of the short label phrases stated in at least `min_cases` cases."""
    if min_cases < 1 or max_words < 1:
        raise ParameterError(f"min_cases={min_cases} and max_words={max_words} must be >= 1")
    counts = Counter()
    for responses in cases:
        counts.update({p for r in responses for p in label_phrases(r, max_words)})
    return {phrase: phrase for phrase, n in sorted(counts.items()) if n >= min_cases}


# ------------------------------------------------------------------ post-processing

def query_label(query: str, dictionary: Mapping[str, str]) -> str:
    """The first dictionary disease the query names without negating it ('' when none)."""
    mentions = find_mentions(query, dictionary)
    return mentions[0] if mentions else ""


def answer_text(label: str, query: str = "", dictionary: Mapping[str, str] | None = None, template: bool = True,
                query_match: bool = False) -> str:
    """The answer for a predicted label: the query's own dictionary disease first (if `query_match`), then
    "It is <label>." (if `template`) or the bare label."""
    if query_match:
        if dictionary is None:
            raise ParameterError("query_match=True needs the training label dictionary (dictionary=...)")
        label = query_label(query, dictionary) or label
    if not label:
        raise ParameterError("empty label: every case needs a predicted label before post-processing")
    return ANSWER_TEMPLATE.format(diagnosis=label) if template else label
