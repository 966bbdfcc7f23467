"""POS tagging / antonym helpers on the bundled spaCy + WordNet."""

from medvl_core.text.pos import antonym, antonym_coverage, pos_counts, tag


def test_tag_and_counts():
    tagged = tag(["Small left pleural effusion.", "The heart is enlarged."])
    assert ("effusion", "NOUN") in tagged[0] and ("small", "ADJ") in [(w.lower(), p) for w, p in tagged[0]]
    counts = pos_counts(tagged)
    assert counts["NOUN"] >= 2 and counts["PUNCT"] == 2


def test_antonym_direct_satellite_and_none():
    assert antonym("small") in {"large", "big"}
    assert antonym("normal") == "abnormal"
    assert antonym("tiny") in {"large", "big"}  # satellite of small -> its head's antonym
    assert antonym("pleural") is None


def test_antonym_coverage_counts_tokens_and_texts():
    tagged = [[("small", "ADJ"), ("pleural", "ADJ"), ("effusion", "NOUN")], [("pleural", "ADJ"), ("fluid", "NOUN")]]
    stats = antonym_coverage(tagged)
    assert stats["coverage"] == 1 / 3 and stats["texts_without_antonym"] == 0.5
    assert stats["top"][0]["adjective"] == "small"
