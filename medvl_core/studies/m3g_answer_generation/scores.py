"""Answers from predicted labels, their deltaBLEU rows, and the metric keys and values read off score tables.

The headline "dBLEU" is the official competition scorer on the answers (one language, the split's; `official_scorer`
has the scorer's rules); "dBLEU weighted" (competition reference weights, sacreBLEU 2.x rules) and "dBLEU unweighted"
(plain sacreBLEU corpus BLEU) are labelled extras.
"""

from __future__ import annotations

import pandas as pd

from ...errors import ParameterError
from ...eval.deltableu import delta_bleu
from ...eval.metrics import accuracy
from ...eval.selection import require_validation
from .derm_labels import answer_text
from .prepare import M3GData, M3GSplit

HEADLINE = "dBLEU"  # the official scorer's deltaBLEU
EXTRA_SCORES = {"weighted": "dBLEU weighted", "unweighted": "dBLEU unweighted"}  # metric infix -> column
SCORE_COLUMNS = (HEADLINE, "BP", "ratio", "hyp_len", "ref_len", *EXTRA_SCORES.values())
POSTPROCESSING = {  # Table 4 arms: (template "It is <label>.", query word-matching)
    "label only": (False, False),
    "It is [label].": (True, False),
    "query matching": (False, True),
    "It is [label]. + query matching": (True, True),
}
POSTPROCESSING_METRICS = dict(zip(POSTPROCESSING, ("dbleu_post_label_only", "dbleu_post_it_is", "dbleu_post_query_match",
                                                   "dbleu_post_it_is_query_match")))
LENGTH_COLUMNS = {"BP": "bp", "ratio": "ratio", "hyp_len": "hyp_len", "ref_len": "ref_len"}  # column -> metric prefix


def answers(labels, split: M3GSplit, dictionary: dict | None = None, template: bool = True,
            query_match: bool = False) -> list[str]:
    """Answer text per case from predicted labels (see `derm_labels.answer_text`)."""
    return [answer_text(label, query, dictionary, template, query_match) for label, query in zip(labels, split.queries)]


def split_language(split: M3GSplit) -> str:
    """The language of the split's queries and references (the submission's one content_<lang>)."""
    return getattr(split.dataset, "lang", "en") or "en"


def score(hypotheses, split: M3GSplit) -> dict:
    """Official deltaBLEU (headline) with its BP, ratio and lengths, plus weighted and unweighted deltaBLEU."""
    hypotheses, lang = list(hypotheses), split_language(split)
    tokenize = "zh" if lang == "zh" else "13a"
    official = delta_bleu(hypotheses, split.references, split.weights, mode="official", languages=(lang,),
                          tokenize=tokenize)
    weighted = delta_bleu(hypotheses, split.references, split.weights, mode="weighted", tokenize=tokenize)
    unweighted = delta_bleu(hypotheses, split.references, None, mode="weighted", tokenize=tokenize)
    return {HEADLINE: round(official.score, 2), "BP": round(official.bp, 3), "ratio": round(official.ratio, 3),
            "hyp_len": official.hyp_len, "ref_len": official.ref_len,
            EXTRA_SCORES["weighted"]: round(weighted.score, 2), EXTRA_SCORES["unweighted"]: round(unweighted.score, 2)}


def score_row(setting: str, hypotheses, split: M3GSplit, labels=None, truth=None, **extra) -> dict:
    """One table row: setting, split, extra columns, the deltaBLEU columns and label accuracy vs truth."""
    row = {"setting": setting, "split": split.name, **extra, **score(hypotheses, split)}
    if labels is not None and truth is not None:
        row["label accuracy"] = round(accuracy(labels, truth), 3)
    return row


def control_rows(setting: str, labels: dict, data: M3GData, truth: dict) -> list[dict]:
    """Score rows of a control arm from its predicted labels per split, answered as "It is [label]."."""
    return [score_row(setting, answers(labels[s], data.split(s)), data.split(s), labels[s], truth[s]) for s in labels]


def post_metric_keys(stem: str = "") -> dict[str, str]:
    """Table 4 arm -> metric key of one solution's row ('dbleu_<stem>post_<arm>'; stem '' = the batch-256 CLIP row)."""
    return {arm: key.replace("dbleu_", f"dbleu_{stem}", 1) for arm, key in POSTPROCESSING_METRICS.items()}


def knn_metric_keys(settings) -> dict[str, str]:
    """Table 3 setting name -> 'dbleu_image_<gallery>[_pca][_aug]'."""
    return {s.name: f"dbleu_image_{s.gallery}" + ("_pca" if s.pca else "") + ("_aug" if s.augment else "")
            for s in settings}


def length_metrics(table: pd.DataFrame, split: str, keys: dict[str, str]) -> dict[str, float]:
    """BP, ratio, hyp_len and ref_len of the rows named in `keys` (setting -> 'dbleu_<stem>') as '<column>_<stem>'."""
    out = {}
    if table.empty:
        return out
    for column, prefix in LENGTH_COLUMNS.items():
        values = dbleu_by_setting(table, split, column)
        cast = int if prefix.endswith("_len") else float
        out.update({f"{prefix}_{key[len('dbleu_'):]}": cast(values[setting]) for setting, key in keys.items()
                    if setting in values})
    return out


def dbleu_by_setting(table: pd.DataFrame, split: str, column: str = HEADLINE) -> dict[str, float]:
    """setting -> `column` (default the official dBLEU) on `split` from a table of score rows."""
    rows = table[table["split"] == split]
    return dict(zip(rows["setting"], rows[column].astype(float)))


def dbleu_metrics(table: pd.DataFrame, split: str, keys: dict[str, str]) -> dict[str, float]:
    """Metrics of the rows named in `keys` (setting -> 'dbleu_<stem>'): official, 'dbleu_weighted_<stem>', ...unweighted."""
    out = {}
    if table.empty:
        return out
    for column, infix in [(HEADLINE, ""), *((c, f"{name}_") for name, c in EXTRA_SCORES.items())]:
        values = dbleu_by_setting(table, split, column)
        out.update({_metric_key(key, infix): values[setting] for setting, key in keys.items() if setting in values})
    return out


def _metric_key(key: str, infix: str) -> str:
    """'dbleu_<stem>' with the extra's infix after 'dbleu_' ('dbleu_weighted_<stem>')."""
    if not key.startswith("dbleu_"):
        raise ParameterError(f"metric key {key!r} must start with 'dbleu_'")
    return "dbleu_" + infix + key[len("dbleu_"):]


def best_row(table: pd.DataFrame, split: str = "val") -> str:
    """The setting with the highest dBLEU on `split` (ties -> first); a selection, so never on the test split."""
    require_validation(what="best_row (choosing a setting)", split=split)
    scores = dbleu_by_setting(table, split)
    if not scores:
        raise ParameterError(f"no rows for split {split!r}; score it first (eval_splits)")
    return max(scores, key=scores.get)
