"""Part-of-speech tagging with the bundled spaCy pipeline and WordNet antonyms for adjectives."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from .. import assets

CONTENT_POS = ("NOUN", "ADJ", "VERB")


def tag(texts, batch_size: int = 64) -> list[list[tuple[str, str]]]:
    """(word, coarse POS) pairs per text, parsed once in batches with nlp.pipe."""
    nlp = assets.spacy_pipeline()
    return [[(tok.text, tok.pos_) for tok in doc] for doc in nlp.pipe(list(texts), batch_size=batch_size)]


def pos_counts(tagged: list[list[tuple[str, str]]]) -> Counter:
    """Counts of coarse POS tags over tagged texts."""
    return Counter(pos for sentence in tagged for _, pos in sentence)


@lru_cache(maxsize=20000)
def antonym(adjective: str) -> str | None:
    """WordNet antonym of an adjective: a direct one first, else the head's antonym for satellites."""
    wn = assets.wordnet()
    word = adjective.lower()
    synsets = wn.synsets(word, pos="a") + wn.synsets(word, pos="s")
    for synset in synsets:
        for lemma in synset.lemmas():
            if lemma.name().lower() == word and lemma.antonyms():
                return _name(lemma.antonyms()[0])
    for synset in synsets:
        for head in synset.similar_tos() if synset.pos() == "s" else ():
            for lemma in head.lemmas():
                if lemma.antonyms():
                    return _name(lemma.antonyms()[0])
    return None


def _name(lemma) -> str:
    """A WordNet lemma's surface form."""
    return lemma.name().replace("_", " ")


def antonym_coverage(tagged: list[list[tuple[str, str]]], top: int = 10) -> dict:
    """Share of adjective tokens with a WordNet antonym, share of texts with none, most frequent such adjectives."""
    adjectives = Counter(word.lower() for sentence in tagged for word, pos in sentence if pos == "ADJ")
    swappable = {word: antonym(word) for word in adjectives if antonym(word)}
    total = sum(adjectives.values())
    unchangeable = [not any(pos == "ADJ" and word.lower() in swappable for word, pos in s) for s in tagged]
    ranked = sorted(swappable, key=lambda w: (-adjectives[w], w))[:top]
    return {
        "coverage": sum(adjectives[w] for w in swappable) / total if total else 0.0,
        "texts_without_antonym": sum(unchangeable) / len(tagged) if tagged else 0.0,
        "top": [{"adjective": w, "count": adjectives[w], "antonym": swappable[w]} for w in ranked],
    }
