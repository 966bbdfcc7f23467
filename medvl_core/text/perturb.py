"""The nine report perturbations of Zhong, Sun & Batmanghelich (Table I), on spaCy-parsed text.

Semantics (all kinds, one convention):

- A *word* is a spaCy token that is not punctuation, a symbol or whitespace (``is_punct``,
  ``is_space``, POS ``PUNCT``/``SYM``/``SPACE``). Non-words never move, for every kind; the
  whole text (all its sentences) is one word sequence. Each token position keeps its own trailing
  whitespace (``token.whitespace_``), so "effusion." stays glued to its full stop and newlines
  stay where they were; words move verbatim (case unchanged), so the multiset of words is exact.
- ``shuffle_all``: a random permutation of all words.
- ``swap_adjacent``: every non-overlapping pair of adjacent words is swapped; the pairing phase
  (pairs from word 0: (0,1),(2,3),...; or from word 1: (1,2),(3,4),...) is drawn from the seed.
  Phase 0 is what the authors' reference code does (it swaps every pair); the paper's Table I
  example itself could not be retrieved here.
- ``reverse``: the word order reversed (deterministic).
- ``shuffle_within_trigrams``: words split into consecutive trigrams (the last may be shorter),
  words permuted inside each trigram.
- ``shuffle_trigrams``: the order of those trigrams permuted, each trigram intact.
- ``shuffle_nouns_adjs``: nouns (NOUN, PROPN) permuted among noun positions and adjectives (ADJ)
  among adjective positions, as in ARO (Yuksekgonul et al.) and the reference code.
- ``shuffle_all_but_nouns_adjs``: every other word permuted among their positions; nouns and
  adjectives fixed.
- ``shuffle_nouns_verbs_adjs``: nouns, adjectives and verbs (VERB and AUX: copulas such as "is"
  are Penn ``VB*`` like in the reference code) permuted jointly among all their positions.
- ``antonym_adjs``: each ADJ with a WordNet antonym (:func:`medvl_core.text.pos.antonym`: a direct
  antonym, else its satellite head's) replaced by it, keeping the case style ("Small" -> "Large",
  "SMALL" -> "LARGE"); adjectives with none stay. Deterministic (the seed is not used).

Randomness comes only from ``random.Random(f"{kind}:{seed}")``: the result depends on
(text, kind, seed) alone. When a random draw reproduces the original text but a change is possible,
further draws are taken (then, as a last resort, the first single swap that changes it).
When a kind cannot change a text at all (one word, one noun, identical words, a palindrome, no
adjective with an antonym), :func:`perturb`/:func:`apply` raise :class:`PerturbationUnchanged`
and :func:`perturb_all` returns ``None`` for that kind, so callers can skip it.
"""

from __future__ import annotations

import itertools
import operator
import random
from collections.abc import Iterable, Iterator

from .. import assets
from ..errors import ParameterError
from .pos import antonym

PERTURBATIONS = (
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

NOUN_POS = ("NOUN", "PROPN")
ADJ_POS = ("ADJ",)
VERB_POS = ("VERB", "AUX")
RANDOM_TRIES = 20
_NON_WORD_POS = ("PUNCT", "SYM", "SPACE")


class PerturbationUnchanged(ValueError):
    """The perturbation kind cannot change this text (see the module doc for when)."""


def parse(texts: Iterable[str], batch_size: int = 64) -> list:
    """spaCy Docs of the texts, parsed once in batches with ``nlp.pipe``."""
    if isinstance(texts, str):
        raise ParameterError("parse expects a list of texts, got a single string; wrap it in a list")
    texts = list(texts)
    for text in texts:
        if not isinstance(text, str):
            raise ParameterError(f"texts to perturb must be strings, got {type(text).__name__}")
    return list(assets.spacy_pipeline().pipe(texts, batch_size=batch_size))


def perturb(text: str, kind: str, seed: int = 0) -> str:
    """The text perturbed by `kind`; raises PerturbationUnchanged when the kind cannot change it."""
    _check_kind(kind)
    if not isinstance(text, str):
        raise ParameterError(f"perturb expects a string, got {type(text).__name__}")
    return apply(parse([text])[0], kind, seed)


def perturb_all(texts: Iterable[str], kinds: Iterable[str] = PERTURBATIONS, seed: int = 0) -> list[dict]:
    """Per text, {kind: perturbed text, or None where the kind cannot change it}; parses once."""
    kinds = tuple(kinds)
    for kind in kinds:
        _check_kind(kind)
    _check_seed(seed)
    return [{kind: _apply_or_none(doc, kind, seed) for kind in kinds} for doc in parse(texts)]


def apply(doc, kind: str, seed: int = 0) -> str:
    """Perturb an already parsed spaCy Doc; raises PerturbationUnchanged when the kind cannot change it."""
    _check_kind(kind)
    _check_seed(seed)
    words = word_positions(doc)
    texts = [doc[i].text for i in words]
    if kind == "antonym_adjs":
        new = [_antonym_or_same(doc[i]) for i in words]
        if new == texts:
            raise PerturbationUnchanged(f"antonym_adjs cannot change {doc.text!r}: no adjective with a WordNet antonym")
        return _rebuild(doc, words, new)
    rng = random.Random(f"{kind}:{seed}")
    for order in _candidates(kind, doc, words, rng):
        new = [texts[j] for j in order]
        if new != texts:
            return _rebuild(doc, words, new)
    raise PerturbationUnchanged(f"{kind} cannot change {doc.text!r}: no reordering of its movable words differs")


def word_positions(doc) -> list[int]:
    """Token indices of the words (not punctuation, symbols or whitespace) of a Doc."""
    return [tok.i for tok in doc if not (tok.is_punct or tok.is_space or tok.pos_ in _NON_WORD_POS)]


def _apply_or_none(doc, kind: str, seed: int) -> str | None:
    """apply(), with None where the kind cannot change the text."""
    try:
        return apply(doc, kind, seed)
    except PerturbationUnchanged:
        return None


def _check_kind(kind) -> None:
    """Raise ParameterError naming the nine kinds when `kind` is not one of them."""
    if kind not in PERTURBATIONS:
        raise ParameterError(f"unknown perturbation {kind!r}; choose one of: {', '.join(PERTURBATIONS)}")


def _check_seed(seed) -> None:
    """Raise ParameterError unless the seed is an integer."""
    try:
        operator.index(seed)
    except TypeError:
        raise ParameterError(f"perturbation seed must be an integer, got {seed!r}") from None


def _rebuild(doc, words: list[int], new: list[str]) -> str:
    """The Doc's text with the words at `words` replaced by `new`, each position keeping its whitespace."""
    replaced = dict(zip(words, new, strict=True))
    return "".join(replaced.get(tok.i, tok.text) + tok.whitespace_ for tok in doc)


def _antonym_or_same(token) -> str:
    """An adjective's WordNet antonym in the token's case style, else the token's text."""
    if token.pos_ not in ADJ_POS:
        return token.text
    opposite = antonym(token.text)
    return _match_case(opposite, token.text) if opposite else token.text


def _match_case(word: str, template: str) -> str:
    """`word` upper-cased or capitalised like `template`."""
    if len(template) > 1 and template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _candidates(kind: str, doc, words: list[int], rng: random.Random) -> Iterator[list[int]]:
    """Candidate word orders for a reordering kind, the seeded one first."""
    n = len(words)
    if kind == "reverse":
        yield list(range(n))[::-1]
    elif kind == "swap_adjacent":
        for phase in rng.sample((0, 1), 2):
            yield _swap_pairs(n, phase)
    else:
        units, groups = _units_and_groups(kind, doc, words)
        yield from _group_permutations(units, groups, [doc[i].text for i in words], rng)


def _swap_pairs(n: int, phase: int) -> list[int]:
    """Word order with every pair (phase, phase+1), (phase+2, phase+3), ... swapped."""
    order = list(range(n))
    for i in range(phase, n - 1, 2):
        order[i], order[i + 1] = order[i + 1], order[i]
    return order


def _units_and_groups(kind: str, doc, words: list[int]) -> tuple[list[tuple[int, ...]], list[list[int]]]:
    """Movable units (tuples of word indices) and the groups of units permuted among themselves."""
    n = len(words)
    singles = [(j,) for j in range(n)]
    if kind == "shuffle_all":
        return singles, [list(range(n))]
    if kind == "shuffle_within_trigrams":
        return singles, [list(range(s, min(s + 3, n))) for s in range(0, n, 3)]
    if kind == "shuffle_trigrams":
        trigrams = [tuple(range(s, min(s + 3, n))) for s in range(0, n, 3)]
        return trigrams, [list(range(len(trigrams)))]
    pos = [doc[i].pos_ for i in words]
    if kind == "shuffle_nouns_adjs":
        return singles, [_with_pos(pos, NOUN_POS), _with_pos(pos, ADJ_POS)]
    if kind == "shuffle_all_but_nouns_adjs":
        return singles, [[j for j, p in enumerate(pos) if p not in NOUN_POS + ADJ_POS]]
    return singles, [_with_pos(pos, NOUN_POS + ADJ_POS + VERB_POS)]  # shuffle_nouns_verbs_adjs


def _with_pos(pos: list[str], classes: tuple[str, ...]) -> list[int]:
    """Indices of the words whose coarse POS is in `classes`."""
    return [j for j, p in enumerate(pos) if p in classes]


def _group_permutations(units, groups, texts, rng: random.Random) -> Iterator[list[int]]:
    """Seeded random permutations within groups, then single swaps; nothing when no group can change."""
    unit_text = [tuple(texts[j] for j in unit) for unit in units]
    if not any(len({unit_text[u] for u in group}) > 1 for group in groups):
        return
    for _ in range(RANDOM_TRIES):
        assign = list(range(len(units)))
        for group in groups:
            for slot, source in zip(group, rng.sample(group, len(group)), strict=True):
                assign[slot] = source
        yield _flatten(units, assign)
    for group in groups:
        for a, b in itertools.combinations(group, 2):
            assign = list(range(len(units)))
            assign[a], assign[b] = b, a
            yield _flatten(units, assign)


def _flatten(units, assign: list[int]) -> list[int]:
    """Word order obtained by putting unit assign[k] in unit slot k."""
    return [j for slot in range(len(units)) for j in units[assign[slot]]]
