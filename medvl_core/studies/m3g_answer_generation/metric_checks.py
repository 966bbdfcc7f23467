"""The paper's claims about deltaBLEU itself (Secs. 4 and 6), as answer sets scored on one split.

- Short answers are favoured: "It is [label]." against the same answer followed by a generic discussion sentence
  (`LONG_DISCUSSION`: longer, partially correct where the label is right).
- "not [disease]" scores like "[disease]": on the cases whose query names a disease that the case's answers do not
  give as their label (word matching's wrong answer, which responders may negate: "Not S."), "It is [S]." against
  "It is [W]." with W the most frequent training label that no answer of the case mentions at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .derm_labels import answer_text, find_mentions, query_label
from .prepare import M3GData, take
from .scores import answers, score_row

LONG_DISCUSSION = ("A biopsy or a fungal test may be needed to confirm it; please see a dermatologist in person "
                   "for treatment.")
SHORT_KEY, LONG_KEY = "dbleu_short_it_is", "dbleu_long_it_is"
NAMED_KEY, UNNAMED_KEY = "dbleu_wrong_query_match", "dbleu_wrong_unnamed"


def long_answers(labels, split, dictionary=None) -> list[str]:
    """"It is [label]." followed by LONG_DISCUSSION: a longer answer, right only where the label is."""
    return [f"{text} {LONG_DISCUSSION}" for text in answers(labels, split, dictionary)]


def wrong_query_cases(data: M3GData, split: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(case indices, the query's disease S, an unmentioned label W) of the cases whose query names a disease that is
    not the label of the case's own answers."""
    target, ranked = data.split(split), _labels_by_frequency(data)
    idx, named, unnamed = [], [], []
    for i, (query, label, refs) in enumerate(zip(target.queries, target.labels, target.references)):
        said = query_label(query, data.dictionary)
        if not said or said == label:
            continue
        mentioned = {m for r in refs for m in _all_mentions(r, data.dictionary)}
        other = next((w for w in ranked if w not in mentioned and w != said), None)
        if other is not None:
            idx.append(i), named.append(said), unnamed.append(other)
    return np.array(idx, dtype=int), named, unnamed


def _all_mentions(text: str, dictionary: dict) -> set[str]:
    """Every dictionary disease in `text`, negated or not."""
    lowered = text.lower()
    return {canon for phrase, canon in dictionary.items() if phrase.lower() in lowered} | set(find_mentions(text, dictionary))


def _labels_by_frequency(data: M3GData) -> list[str]:
    """Training labels, most frequent first (ties: alphabetical)."""
    counts = pd.Series([x for x in data.train.labels if x]).value_counts()
    return sorted(counts.index, key=lambda name: (-counts[name], name))


def metric_check_answers(data: M3GData, split: str, labels) -> dict[str, tuple[list[str], np.ndarray | None]]:
    """metric key -> (answers, case indices or None for all cases) of the two metric claims (the second only where
    some case's query names a disease other than its answers' label)."""
    target = data.split(split)
    idx, named, unnamed = wrong_query_cases(data, split)
    sets = {SHORT_KEY: (answers(labels, target, data.dictionary), None),
            LONG_KEY: (long_answers(labels, target, data.dictionary), None)}
    if len(idx):
        sets |= {NAMED_KEY: ([answer_text(s) for s in named], idx), UNNAMED_KEY: ([answer_text(w) for w in unnamed], idx)}
    return sets


def metric_check_table(data: M3GData, split: str, labels) -> pd.DataFrame:
    """The two metric claims' answers scored (official dBLEU) on their cases."""
    subset_rows = []
    for key, (texts, idx) in metric_check_answers(data, split, labels).items():
        target = data.split(split) if idx is None else take(data.split(split), idx)
        subset_rows.append({"metric key": key, "cases": target.n_cases, **score_row(_TITLES[key], texts, target)})
    return pd.DataFrame(subset_rows)


_TITLES = {SHORT_KEY: "short: It is [label].", LONG_KEY: "long: It is [label]. + a discussion sentence",
           NAMED_KEY: "It is [the query's disease] (not the answers' label)",
           UNNAMED_KEY: "It is [a label no answer mentions]"}
