"""POS tagging / antonym helpers on the bundled spaCy + WordNet, and real-panel views."""

import numpy as np

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


def test_real_panel_views_are_seeded():
    from medvl_core.data.panel import real_panel_views

    a, names, modalities = real_panel_views(n_views=2, size=64, seed=3)
    b, _, _ = real_panel_views(n_views=2, size=64, seed=3)
    assert len(a) == len(names) == len(modalities) and len(set(names)) >= 6
    assert a[0].size == (64, 64) and a[0].mode == "RGB"
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
