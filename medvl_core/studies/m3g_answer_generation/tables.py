"""The paper's CLIP tables on this run: Table 2 (batch sizes), Table 3 (kNN settings), Table 4 (post-processing),
the scale markers (oracle and constant answers) and example cases."""

from __future__ import annotations

import pandas as pd

from ...train import TrainConfig
from .clip import ClipFit, fit_label_clip
from .derm_labels import answer_text
from .knn import KnnSetting, predict_labels
from .prepare import M3GData, M3GSplit, truth_labels
from .scores import POSTPROCESSING, answers, score_row

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
