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


# Clinical opposites of frequent report adjectives (None: no clinical opposite in a chest X-ray report), to audit
# WordNet's antonyms; a WordNet antonym that differs from the clinical opposite is counted as clinically wrong.
CLINICAL_OPPOSITES = {
    "normal": "abnormal", "abnormal": "normal", "clear": "opacified", "focal": "diffuse", "diffuse": "focal",
    "stable": "changed", "right": "left", "left": "right", "acute": "chronic", "chronic": "acute",
    "unremarkable": "abnormal", "degenerative": None, "mild": "severe", "severe": "mild", "small": "large",
    "large": "small", "moderate": None, "pleural": None, "pulmonary": None, "upper": "lower", "lower": "upper",
    "bilateral": "unilateral", "enlarged": "normal", "minimal": "extensive", "calcified": None, "visible": None,
    "new": "old", "prior": None, "previous": None, "active": "inactive", "definite": "equivocal", "intact": "fractured",
}


def antonym_audit(tagged: list[list[tuple[str, str]]]) -> tuple[dict, list[dict]]:
    """WordNet antonyms of the tagged adjectives against CLINICAL_OPPOSITES: (summary counts, per-adjective rows)."""
    counts = Counter(word.lower() for sentence in tagged for word, pos in sentence if pos == "ADJ")
    rows = []
    for word, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        wordnet = antonym(word)
        if wordnet is None or word not in CLINICAL_OPPOSITES:
            continue
        clinical = CLINICAL_OPPOSITES[word]
        rows.append({"adjective": word, "count": n, "WordNet antonym": wordnet, "clinical opposite": clinical or "none",
                     "clinically wrong": wordnet != clinical})
    wrong = {r["adjective"] for r in rows if r["clinically wrong"]}
    replaced = sum(n for w, n in counts.items() if antonym(w))
    texts_wrong = sum(any(pos == "ADJ" and w.lower() in wrong for w, pos in s) for s in tagged)
    summary = {"replaced_adjective_tokens": replaced, "audited_tokens": sum(r["count"] for r in rows),
               "clinically_wrong_tokens": sum(r["count"] for r in rows if r["clinically wrong"]),
               "texts_with_clinically_wrong_antonym": texts_wrong, "n_texts": len(tagged)}
    return summary, rows
