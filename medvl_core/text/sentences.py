"""Radiology-aware sentence splitting and seedable sampling of report sentences.

Splits at ``.``/``!``/``?`` followed by whitespace, at blank lines, and before a numbered-list
item ("1. ", "2) ") that starts a new line or follows a sentence end. It does not split after
abbreviations ("Dr.", "vs.", "e.g.", "p.m.", ...), inside decimals ("2.5 cm"), after the number
of a list item ("1. No effusion." stays one sentence) or after an Open-I de-identification token
when the next word continues the sentence in lower case ("Dr. XXXX. at 10 a.m.").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ..errors import ParameterError

ABBREVIATIONS = frozenset(
    "dr mr mrs ms prof vs approx appt incl e.g i.e a.m p.m fig cf".split()
)
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*\n|\n(?=\s*(?:\d{1,2}[.)]|[-*\u2022])\s)")
_LIST_MARKER = re.compile(r"^\(?\d{1,2}[.)]$")
_WORDISH = re.compile(r"\w")
_LAST_TOKEN = re.compile(r"(\S+)[\"')\]]*\s*$")


def _is_false_stop(left: str, right: str) -> bool:
    """True when the boundary after `left` is an abbreviation, a list number or a de-id continuation."""
    match = _LAST_TOKEN.search(left)
    if match is None or not left.rstrip().endswith((".", "!", "?", '"', "'", ")", "]")):
        return False
    token = match.group(1)
    word = token.rstrip(".").lower()
    if word in ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.){2,}", token.lower()):
        return True
    before = left[: match.start()].rstrip(" \t")
    if _LIST_MARKER.match(token) and (before == "" or before[-1] in "\n.!?:"):
        return True
    return word.endswith("xxxx") and right[:1].islower()


def split_sentences(text: str) -> list[str]:
    """Split a report into stripped, non-empty sentences (radiology-aware, see module doc)."""
    if text is None:
        return []
    if not isinstance(text, str):
        raise ParameterError(f"split_sentences expects a string, got {type(text).__name__}")
    return list(_split(text))


@lru_cache(maxsize=65536)  # every training run re-draws sentences from the same reports: split each report once
def _split(text: str) -> tuple[str, ...]:
    """The sentences of `text` (see split_sentences), as an immutable tuple that can be cached."""
    pieces, start = [], 0
    for match in _BOUNDARY.finditer(text):
        left, right = text[start : match.start()], text[match.end() :]
        if "\n" not in match.group(0) and _is_false_stop(text[: match.start()], right):
            continue
        pieces.append(left)
        start = match.end()
    pieces.append(text[start:])
    return tuple(" ".join(p.split()) for p in pieces if _WORDISH.search(p))


def _generator(rng) -> np.random.Generator:
    """A numpy Generator from None, an int seed or an existing Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, int | np.integer):
        return np.random.default_rng(rng)
    raise ParameterError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def sample_sentences(text_or_sentences: str | Sequence[str], n: int = 3, rng=None) -> list[str]:
    """Up to `n` distinct sentences drawn without replacement, kept in report order (all if fewer).

    Repeated sentences (e.g. a finding restated in the impression) count once; `rng` is None, a seed or a Generator.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ParameterError(f"n must be a non-negative integer, got {n!r}")
    generator = _generator(rng)
    if isinstance(text_or_sentences, str):
        sentences = split_sentences(text_or_sentences)
    else:
        sentences = [" ".join(s.split()) for s in text_or_sentences if s and s.strip()]
    sentences = list(dict.fromkeys(sentences))
    if len(sentences) <= n:
        return sentences
    picked = np.sort(generator.choice(len(sentences), size=int(n), replace=False))
    return [sentences[i] for i in picked]
