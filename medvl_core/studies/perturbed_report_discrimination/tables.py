"""Zhong et al.'s fine-tuning tables and recorded metrics: Table I (the perturbations on the paper's sentence),
Table II (image classification after fine-tuning each variant's image side), Table III (NLI) and the stable
metric keys of Tables II-IV."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ...data.splits import split_of, tag_split
from ...errors import ParameterError
from ...eval.metrics import constant_accuracy
from ...eval.selection import require_validation
from ...text.perturb import PERTURBATIONS
from ...train import TrainConfig
from .arms import VARIANTS, metric_name
from .discrimination import OVERALL
from .prepare import PerturbedStudy, ReportSplit


def classification_arrays(split: ReportSplit, labels: Sequence[str]) -> tuple[torch.Tensor, np.ndarray]:
    """(image inputs as one tensor, (N, L) targets) of a split for `labels`: uncertain (-1) -> 1 (CheXpert's
    U-Ones), 0/1 kept, not stated stays NaN (left out of fine-tuning losses and metrics); a test split's targets keep
    their split tag, so selection functions refuse them."""
    missing = [label for label in labels if label not in split.label_names]
    if missing:
        raise ParameterError(f"labels {missing} are not in this dataset's labels {split.label_names}")
    columns = split.labels[:, [split.label_names.index(label) for label in labels]].astype(np.float32)
    images = split.images
    if not torch.is_tensor(images):
        images = torch.stack([images[i] for i in range(len(images))])
    targets = np.where(columns == -1, 1.0, columns).astype(np.float32)
    return images, (tag_split(targets, split_of(split.labels)) if split_of(split.labels) else targets)


def nli_table(results: dict) -> pd.DataFrame:
    """Table III layout from {variant: finetune_text_classifier result}: accuracy overall and per NLI label."""
    rows = {variant: {"accuracy": r["accuracy"], **{f"accuracy ({k})": v for k, v in r["per_label"].items()},
                      "n_test": r["n_test"]} for variant, r in results.items()}
    return pd.DataFrame(rows).T


def classification_table(results: dict, Y_test: np.ndarray | None = None, labels: Sequence[str] = ()) -> pd.DataFrame:
    """Table II layout from {variant: eval.finetune.label_table frame}: rows = variants (+ all-negative and
    all-positive references when `Y_test` is given), columns = per-label accuracy, their Average, per-label AUROC."""
    rows = {}
    for variant, frame in results.items():
        indexed = frame.set_index("label")
        accuracy = {f"{label} accuracy": indexed.loc[label, "accuracy"] for label in indexed.index}
        rows[variant] = {**accuracy, "Average accuracy": float(np.mean(list(accuracy.values()))),
                         **{f"{label} AUROC": indexed.loc[label, "auroc"] for label in indexed.index},
                         **({f"{label} threshold": indexed.loc[label, "threshold"] for label in indexed.index}
                            if "threshold" in indexed else {})}
    if Y_test is not None:
        for name, guess in (("all-negative", 0.0), ("all-positive", 1.0)):
            accuracy = {f"{label} accuracy": constant_accuracy(Y_test[:, j], guess) for j, label in enumerate(labels)}
            rows[name] = {**accuracy, "Average accuracy": float(np.mean(list(accuracy.values()))),
                          **{f"{label} AUROC": 0.5 for label in labels}}
    return pd.DataFrame(rows).T


def study_metrics(table4: pd.DataFrame, nli: pd.DataFrame | None = None,
                  classification: pd.DataFrame | None = None, per_kind: pd.DataFrame | None = None) -> dict:
    """Stable metric keys, rounded to 4 decimals: discrimination_accuracy_<variant> (+ _ci_low/_ci_high),
    discrimination_chance, nli_accuracy_<variant>, <label>_accuracy_<row> (e.g. pleural_effusion_accuracy_ours,
    average_accuracy_all_negative), discrimination_<kind>_<variant> per kind; and claim_nli_accuracy_<variant>
    unrounded (the NLI claim's evidence must equal it)."""
    metrics = {}
    for variant, row in table4.iterrows():
        stem = metric_name(variant)
        metrics[f"discrimination_accuracy_{stem}"] = round(float(row["accuracy"]), 4)
        metrics[f"discrimination_accuracy_{stem}_ci_low"] = round(float(row["ci_low"]), 4)
        metrics[f"discrimination_accuracy_{stem}_ci_high"] = round(float(row["ci_high"]), 4)
    metrics["discrimination_chance"] = round(float(table4["chance"].iloc[0]), 4)
    for kind, row in (per_kind.drop(index=OVERALL, errors="ignore").iterrows() if per_kind is not None else ()):
        for variant in VARIANTS:
            if variant in row:
                metrics[f"discrimination_{kind}_{metric_name(variant)}"] = round(float(row[variant]), 4)
    for variant, row in (nli.iterrows() if nli is not None else ()):
        metrics[f"nli_accuracy_{metric_name(variant)}"] = round(float(row["accuracy"]), 4)
        metrics[f"claim_nli_accuracy_{metric_name(variant)}"] = float(row["accuracy"])  # the claims' evidence, unrounded
    for variant, row in (classification.iterrows() if classification is not None else ()):
        stem = metric_name(variant) if variant in VARIANTS else variant.replace("-", "_")
        for column, value in row.items():
            if column.endswith(" accuracy"):
                label = column.removesuffix(" accuracy").lower().replace(" ", "_")
                metrics[f"{label}_accuracy_{stem}"] = round(float(value), 4)
    return metrics


def table_ii_scores(fits: dict, study: PerturbedStudy, labels: Sequence[str], config: TrainConfig) -> dict:
    """{variant: {"test": sigmoid scores (N, L) on the labelled held-out set, "val": on its validation set (None
    without one)}}: each variant's image side fine-tuned once (copy + linear head) on the training labels."""
    from ...eval.finetune import image_classifier_scores
    from ...models.multiscale import ImageEmbedder

    X_train, Y_train = classification_arrays(study.train, labels)
    X_test, _ = classification_arrays(study.classify_test, labels)
    X_val = classification_arrays(study.classify_val, labels)[0] if study.classify_val is not None else X_test[:0]
    out = {}
    for variant, (model, _) in fits.items():
        scores = image_classifier_scores(ImageEmbedder(model), X_train, Y_train, torch.cat([X_val, X_test]), labels,
                                         config)
        out[variant] = {"val": scores[:len(X_val)] if len(X_val) else None, "test": scores[len(X_val):]}
    return out


def accuracy_thresholds(Y_val: np.ndarray, scores_val: np.ndarray | None, n_labels: int) -> np.ndarray:
    """Per label, the threshold that maximises accuracy on VALIDATION data (the midpoint between adjacent distinct
    scores; 0.5 without validation data or stated labels); refuses test-split data."""
    if scores_val is None:
        return np.full(n_labels, 0.5)
    require_validation(Y_val, scores_val, what="accuracy_thresholds")
    return np.array([_best_accuracy_threshold(np.asarray(Y_val)[:, j], np.asarray(scores_val)[:, j])
                     for j in range(n_labels)])


def _best_accuracy_threshold(y: np.ndarray, s: np.ndarray) -> float:
    """The accuracy-maximising cut of one label's stated scores (ties: the lowest such cut)."""
    stated = ~np.isnan(y)
    y, s = y[stated], s[stated]
    if not len(y):
        return 0.5
    values = np.unique(s)
    cuts = np.concatenate([[values[0] - 1e-6], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-6]])
    accuracy = [((s >= c) == y).mean() for c in cuts]
    return float(cuts[int(np.argmax(accuracy))])


def correct_at_threshold(Y: np.ndarray, scores: np.ndarray, thresholds=0.5) -> np.ndarray:
    """Per image and label: 1.0 when the score at the label's threshold (chosen on validation data) gives the label,
    0.0 when not, NaN where the label is not stated."""
    return np.where(np.isnan(Y), np.nan, ((scores >= np.asarray(thresholds)) == Y).astype(float))


def table_ii_results(fits: dict, study: PerturbedStudy, labels: Sequence[str], config: TrainConfig) -> dict:
    """{variant: {"thresholds": per label (chosen on validation), "correct": (N, L) on the test set, "test": scores}}."""
    Y_test = classification_arrays(study.classify_test, labels)[1]
    Y_val = classification_arrays(study.classify_val, labels)[1] if study.classify_val is not None else None
    out = {}
    for variant, scores in table_ii_scores(fits, study, labels, config).items():
        thresholds = accuracy_thresholds(Y_val, scores["val"], len(labels))
        out[variant] = {"thresholds": thresholds, "correct": correct_at_threshold(Y_test, scores["test"], thresholds),
                        "test": scores["test"]}
    return out


def average_accuracy(correct: np.ndarray) -> float:
    """Table II's Average: the mean over labels of each label's accuracy on its stated images (NaN: none stated)."""
    stated = ~np.isnan(correct)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.mean(np.nansum(correct, axis=0) / stated.sum(axis=0)))


def table_ii(fits: dict, study: PerturbedStudy, labels: Sequence[str], config: TrainConfig,
             results: dict | None = None) -> pd.DataFrame:
    """Table II: each variant's image side fine-tuned (copy + linear head) on the training labels, thresholds chosen
    on the validation set, tested on the labelled held-out set; with the Average column, each label's threshold and
    the all-negative / all-positive references. `results`: `table_ii_results` of these fits already computed."""
    Y_test = classification_arrays(study.classify_test, labels)[1]
    results = results if results is not None else table_ii_results(fits, study, labels, config)
    frames = {v: _label_frame(Y_test, r, labels) for v, r in results.items()}
    return classification_table(frames, Y_test, labels)


def _label_frame(Y: np.ndarray, result: dict, labels: Sequence[str]) -> pd.DataFrame:
    """Per label (`eval.finetune.label_table`: AUROC, counts): accuracy at the validation-chosen threshold, the threshold."""
    from ...eval.finetune import label_table

    frame = label_table(Y, result["test"], labels)
    frame["accuracy"] = [float(np.nanmean(result["correct"][:, j])) for j in range(len(labels))]
    return frame.assign(threshold=[float(t) for t in result["thresholds"]])


def table_i(seed: int = 0) -> pd.DataFrame:
    """Table I on the paper's own sentence: the paper's example of each kind beside ours (`perturb`, seeded) and
    whether they are identical (expected for the deterministic kinds: reverse, antonyms; swap_adjacent when the
    seed draws the paper's pairing)."""
    from ...papers import published
    from ...text.perturb import PerturbationUnchanged, perturb

    rows = published("perturbed_report_discrimination").tables["table_I"].rows
    sentence = rows[0].cells["Example"].text
    body = [{"row": rows[0].label, "kind": "", "paper": sentence, "ours": sentence, "identical": True}]
    for row, kind in zip(rows[1:], PERTURBATIONS, strict=True):
        try:
            ours = perturb(sentence, kind, seed)
        except PerturbationUnchanged:
            ours = "-"
        paper = row.cells["Example"].text
        body.append({"row": row.label, "kind": kind, "paper": paper, "ours": ours, "identical": ours == paper})
    return pd.DataFrame(body).set_index("row")
