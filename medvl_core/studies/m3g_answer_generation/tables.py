"""The paper's CLIP tables on this run: Table 2 (batch sizes), Table 3 (kNN settings), Table 4 (post-processing) and
its figure's panels, the scale markers (oracle and constant answers) and example cases."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...papers import get_paper, published, read_paper_yaml
from ...train import TrainConfig
from .clip import ClipFit, fit_label_clip
from .derm_labels import answer_text
from .knn import KnnSetting, predict_labels
from .prepare import M3GData, M3GSplit, truth_labels
from .scores import POSTPROCESSING, answers, post_metric_keys, score_row

PAPER_ID = "m3g_answer_generation"
TABLE4_COLUMNS = {"Word Matching": "query matching", "Sentence Structure": "It is [label].",
                  "Both": "It is [label]. + query matching"}  # paper column -> our post-processing arm
TABLE4_ROWS = {"Claude": "claude_", "CLIP competition": "competition_", "CLIP batch 256": ""}  # row -> metric stem

TRUE_CONDITION = "oracle: It is [true condition]."
RESPONSE_LABEL = "oracle: It is [label of the case's responses]."
CONSTANT = "constant: It is [most frequent training label]."
REFERENCE_METRICS = {TRUE_CONDITION: "dbleu_it_is_true_condition", RESPONSE_LABEL: "dbleu_it_is_label_oracle",
                     CONSTANT: "dbleu_constant_label"}
DEFAULT_SETTING = KnnSetting()  # image-image, no PCA, k=5


def batch_size_sweep(data: M3GData, global_batch_sizes, config: TrainConfig, setting: KnnSetting = DEFAULT_SETTING,
                     splits=("val", "test"), embed_dim: int = 128, seed: int = 0, postprocess=(True, False),
                     **recipe) -> tuple[pd.DataFrame, dict]:
    """Table 2: one label-CLIP model per batch size (`recipe`: fit_label_clip's options), scored with `setting`.

    `postprocess` = (template, query matching) of the answers (the paper's Tables 2 and 3: both).
    """
    rows, fits = [], {}
    for size in global_batch_sizes:
        fits[size] = fit = fit_label_clip(data, size, config, embed_dim, seed, **recipe)
        for name in splits:
            labels = predict_labels(fit, data, name, setting, seed)
            rows.append(score_row(f"batch {size}", answers(labels, data.split(name), data.dictionary, *postprocess),
                                  data.split(name), labels, truth_labels(data.split(name)),
                                  **{"effective batch": fit.effective_batch_size, "steps": fit.steps}))
    return pd.DataFrame(rows), fits


def knn_table(data: M3GData, fit: ClipFit, settings, splits=("val", "test"), seed: int = 0,
              postprocess=(True, False)) -> pd.DataFrame:
    """Table 3: kNN settings (image-image / image-text, with / without PCA, augmented or not) -> scored answers."""
    rows = []
    for setting in settings:
        for name in splits:
            labels = predict_labels(fit, data, name, setting, seed)
            rows.append(score_row(setting.name, answers(labels, data.split(name), data.dictionary, *postprocess),
                                  data.split(name), labels, truth_labels(data.split(name))))
    return pd.DataFrame(rows)


def postprocessing_table(data: M3GData, labels_by_split: dict, arms=tuple(POSTPROCESSING)) -> pd.DataFrame:
    """Table 4: the same predicted labels turned into answers by each post-processing arm."""
    rows = []
    for arm in arms:
        template, query_match = POSTPROCESSING[arm]
        for name, labels in labels_by_split.items():
            split = data.split(name)
            texts = answers(labels, split, data.dictionary, template, query_match)
            rows.append(score_row(arm, texts, split))
    return pd.DataFrame(rows)


def next_best_team() -> float:
    """Sec. 4: deltaBLEU of the next-best English submission in the competition (published.yaml)."""
    return published(PAPER_ID).tables["text_leaderboard"].cell("Next best submitted solution", "dBLEU").value


def table4_panels(metrics: dict, dataset: str, split: str = "test") -> tuple[dict, dict]:
    """Bars of the paper's Table 4 and ours ({panel: {row: {column: dBLEU}}}) and each panel's trivial reference."""
    table = published(PAPER_ID).tables["table4"]
    paper = {row.label: {c: row.cells[c].value for c in TABLE4_COLUMNS if c in row.cells} for row in table.rows}
    ours = {}
    for row, stem in TABLE4_ROWS.items():
        keys = post_metric_keys(stem)
        values = {c: metrics[keys[arm]] for c, arm in TABLE4_COLUMNS.items() if keys[arm] in metrics}
        if values:
            ours[row] = values
    panels = {"paper (DermaVQA test, leaderboard)": paper, f"this run ({dataset} {split}; synthetic)": ours}
    trivial = {"paper (DermaVQA test, leaderboard)": {"next-best team": next_best_team()},
               f"this run ({dataset} {split}; synthetic)": {"constant label": metrics.get("dbleu_constant_label", np.nan)}}
    return panels, trivial


def reference_answers(data: M3GData, split: str) -> dict[str, list[str]]:
    """Scale markers: the true condition (SynthDerm only), the label of the case's own responses, a constant."""
    target = data.split(split)
    out = {}
    truth = truth_labels(target)
    if truth is not None:
        out[TRUE_CONDITION] = [answer_text(t) for t in truth]
    out[RESPONSE_LABEL] = [answer_text(label or data.most_frequent_label()) for label in target.labels]
    out[CONSTANT] = [answer_text(data.most_frequent_label())] * target.n_cases
    return out


def reference_table(data: M3GData, splits=("val", "test")) -> pd.DataFrame:
    """deltaBLEU rows of the scale markers on each split."""
    return pd.DataFrame([score_row(name, texts, data.split(split))
                         for split in splits for name, texts in reference_answers(data, split).items()])


def dermavqa_scale() -> dict:
    """The scale markers measured on the real DermaVQA test split (papers/m3g_answer_generation/dermavqa_scale.yaml)."""
    return read_paper_yaml(get_paper(PAPER_ID).folder / "dermavqa_scale.yaml")


def scale_table(metrics: dict, dataset: str, split: str = "test") -> pd.DataFrame:
    """Constant answer, label oracle and our best CLIP row on this run beside the paper's scale (real DermaVQA test:
    our measurement of the markers, the paper's best CLIP and Claude scores), with ours / paper."""
    real = dermavqa_scale()["markers"]
    paper = published(PAPER_ID).tables
    best_clip = paper["table3"].cell("Aug No / PCA No / Image-Image", "dBLEU").value
    claude = paper["table1"].cell("Img (2 Calls)", "dBLEU").value
    rows = [("constant: It is [most frequent training label].", "dbleu_constant_label", real["constant"]["dbleu"]),
            ("oracle: It is [label of the case's answers].", "dbleu_it_is_label_oracle", real["label_oracle"]["dbleu"]),
            ("ours: best CLIP row (Tables 2-3)", "dbleu_clip_best", best_clip)]
    out = pd.DataFrame([{"answer": name, f"this run ({dataset} {split})": metrics.get(key, np.nan),
                         "DermaVQA test (paper's scale)": ref} for name, key, ref in rows])
    out["this run / DermaVQA"] = (out.iloc[:, 1] / out.iloc[:, 2]).round(2)
    out["DermaVQA source"] = ["measured (dermavqa_scale.yaml)"] * 2 + [f"paper, Table 3 (Claude, Table 1: {claude:.3f})"]
    return out


def example_table(split: M3GSplit, labels, hypotheses, n: int = 4, width: int = 90) -> pd.DataFrame:
    """The first `n` cases: query, predicted label, answer, truth (if known) and the first two references."""
    truth = truth_labels(split) or [""] * split.n_cases
    return pd.DataFrame([{"case": split.ids[i], "query": _short(split.queries[i].replace("\n", " / "), width),
                          "predicted": labels[i], "truth": truth[i], "answer": hypotheses[i],
                          "references": _short(" | ".join(split.references[i][:2]), width)}
                         for i in range(min(n, split.n_cases))])


def _short(text: str, width: int) -> str:
    """`text` cut to `width` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 3] + "..."
