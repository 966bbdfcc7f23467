"""The MEEMS tables: the paper's tables, per-class AUCs, operating points, FNR / FPR, the rare stratum, run metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...eval.metrics import (
    LabelStatistic,
    auroc_ci,
    auroc_per_label,
    choose_thresholds,
    confusion_counts,
    error_rates,
    micro_auroc,
    percentile_interval,
    resample_chunks,
)
from ...papers import published
from .data import RARE_LABEL, MeemsData, validation_split
from .heads import HeadsResult
from .paper_metrics import paper_scores, reference_scores
from .tasks import MODELS, TASKS, task_targets


def auc_table(Y, probs: dict, label_names, train_prevalence=None, minority_below: float = 0.05) -> pd.DataFrame:
    """Per-class AUC of each model, then macro and micro rows; `minority` flags classes rarer than `minority_below`."""
    table = pd.DataFrame({name: auroc_per_label(Y, P, label_names) for name, P in probs.items()})
    y = np.asarray(Y, dtype=np.float64)
    table.insert(0, "n positive", np.nansum(y, axis=0).astype(int))
    if train_prevalence is not None:
        table.insert(1, "minority", pd.Series(np.asarray(train_prevalence) < minority_below, index=table.index,
                                              dtype=object))
    models = list(probs)
    table.loc["macro"] = {m: table[m].iloc[: len(label_names)].mean() for m in models}
    table.loc["micro"] = {m: micro_auroc(Y, probs[m]) for m in models}
    return table


def minority_summary(table: pd.DataFrame, models) -> pd.DataFrame:
    """Macro AUC of each model over minority vs other classes (rows of `auc_table` with a `minority` flag)."""
    classes = table.drop(index=["macro", "micro"])
    rows = {}
    for flag, name in ((True, "minority classes"), (False, "other classes")):
        part = classes[classes["minority"] == flag]
        rows[f"{name} ({len(part)})"] = {m: part[m].mean() for m in models}
    return pd.DataFrame(rows).T


def rare_stratum_table(Y, probs: dict, rare: np.ndarray, label_names, label: str = RARE_LABEL,
                       n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """AUC of `label` with 95% bootstrap CIs for all positives, the common and the rare stratum, each against all negatives.

    Columns: n positive, n negative, then per model AUC / low / high. Without rare-stratum flags (a real
    dataset) the table is empty.
    """
    columns = ["n positive", "n negative", *(f"{k} {m}" for m in probs for k in ("AUC", "low", "high"))]
    if rare is None or label not in list(label_names):
        return pd.DataFrame(columns=columns).rename_axis("group")
    j = list(label_names).index(label)
    y = np.asarray(Y, dtype=np.float64)[:, j]
    negatives, positives = y == 0, y == 1
    groups = {"all positives": positives, "common stratum": positives & ~rare, "rare stratum": positives & rare}
    rows = {}
    for group, mask in groups.items():
        keep = negatives | mask
        row = {"n positive": int(mask.sum()), "n negative": int(negatives.sum())}
        for name, P in probs.items():
            ci = auroc_ci(y[keep], np.asarray(P)[:, j][keep], n_resamples, seed)
            row.update({f"AUC {name}": ci["point"], f"low {name}": ci["low"], f"high {name}": ci["high"]})
        rows[group] = row
    return pd.DataFrame(rows).T[columns].rename_axis("group")


def stratum_gaps(Y, probs: dict, rare: np.ndarray, label_names, label: str = RARE_LABEL, n_resamples: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """AUC differences with 95% paired bootstrap CIs (test images resampled): each model's common minus rare
    stratum AUC (what the stratum costs it) and, on the rare stratum, MEEMS minus the baseline.

    Each stratum's AUC is its positives against all negatives of `label`, as in `rare_stratum_table`.
    """
    if rare is None or label not in list(label_names):
        return pd.DataFrame(columns=["difference", "low", "high"]).rename_axis("comparison")
    y = np.asarray(Y, dtype=np.float64)[:, list(label_names).index(label)]
    rare = np.asarray(rare, dtype=bool)
    strata = {"common": np.where((y == 1) & rare, np.nan, y), "rare": np.where((y == 1) & ~rare, np.nan, y)}
    j = list(label_names).index(label)
    stat = {(m, k): LabelStatistic(v, np.asarray(P)[:, j], "auroc") for m, P in probs.items() for k, v in strata.items()}
    pairs = {f"{m}: common - rare stratum": ((m, "common"), (m, "rare")) for m in probs}
    if "MEEMS" in probs and "baseline" in probs:
        pairs["rare stratum: MEEMS - baseline"] = (("MEEMS", "rare"), ("baseline", "rare"))
    draws = {k: [] for k in pairs}
    for chunk in resample_chunks(len(y), n_resamples, seed):
        for k, (a, b) in pairs.items():
            draws[k].append(stat[a].on(chunk) - stat[b].on(chunk))
    rows = {}
    for k, (a, b) in pairs.items():
        low, high = percentile_interval(np.concatenate(draws[k]), 0.05)
        rows[k] = {"difference": float(stat[a].point() - stat[b].point()), "low": low, "high": high}
    return pd.DataFrame(rows).T.rename_axis("comparison")


def fnr_fpr_table(Y, probs: dict, thresholds: dict | None = None) -> pd.DataFrame:
    """Binary FNR / FPR of each model at argmax (P >= 0.5) and at its validation threshold, plus the all-positive reference."""
    y = np.asarray(Y, dtype=np.float64)[:, 0]
    rows = {}
    for name, P in probs.items():
        p = np.asarray(P)[:, 0]
        at_argmax = error_rates(confusion_counts(y, p >= 0.5))
        row = {"FNR (argmax)": at_argmax["fnr"], "FPR (argmax)": at_argmax["fpr"]}
        if thresholds is not None:
            at_t = error_rates(confusion_counts(y, p >= float(np.asarray(thresholds[name])[0])))
            row.update({"FNR (validation threshold)": at_t["fnr"], "FPR (validation threshold)": at_t["fpr"]})
        rows[name] = row
    rows["all positive (reference)"] = {k: (0.0 if k.startswith("FNR") else 1.0) for k in next(iter(rows.values()))}
    return pd.DataFrame(rows).T


def training_summary(result: HeadsResult) -> pd.DataFrame:
    """Epochs run, best epoch and early stopping of every head."""
    rows = [{"task": task, "model": name, "epochs run": len(fit.history), "best epoch": fit.best_epoch,
             "stopped early": fit.stopped_early} for (task, name), fit in result.histories.items()]
    return pd.DataFrame(rows)


def thresholds_by_model(result: HeadsResult, data: MeemsData, task: str) -> dict:
    """F1-optimal validation thresholds of each model for one task."""
    y_val = task_targets(validation_split(data, "thresholds_by_model").labels, task)
    return {m: choose_thresholds(y_val, result.probs[(task, m, "val")], "f1") for m in MODELS}


def paper_table(result: HeadsResult, data: MeemsData, task: str) -> pd.DataFrame:
    """The paper's table (AUC, micro AUC, F1 at argmax) for both models, our validation-threshold F1, and trivial references."""
    y = task_targets(data.test.labels, task)
    thresholds = thresholds_by_model(result, data, task)
    rows = {m: paper_scores(y, result.probs[(task, m, "test")], task, thresholds[m]) for m in MODELS}
    references = reference_scores(y, task)
    rows.update({f"{k} (reference)": v for k, v in references.items() if not k.startswith("_")})
    table = pd.DataFrame(rows).T.rename(columns={"auc": "AUC", "auc_micro": "AUC (micro)", "f1": "F1 (argmax)",
                                                 "f1_columns": "F1 (mean of columns, argmax)",
                                                 "f1_threshold": "F1 (validation threshold)"})
    return table.astype(float)


def summary_metrics(result: HeadsResult, data: MeemsData) -> dict:
    """Flat, rounded headline numbers of both tasks (the paper's metrics, extras, references, stratum) for `runs.record`."""
    out = {}
    for task in TASKS:
        table = paper_table(result, data, task)
        for row, key in zip((*MODELS, "all positive (reference)"), ("meems", "baseline", "all_positive")):
            out[f"{task}_auc_{key}"] = round(float(table.loc[row, "AUC"]), 4)
            out[f"{task}_f1_argmax_{key}"] = round(float(table.loc[row, "F1 (argmax)"]), 4)
            if key != "all_positive":
                out[f"{task}_auc_micro_{key}"] = round(float(table.loc[row, "AUC (micro)"]), 4)
                out[f"{task}_f1_threshold_{key}"] = round(float(table.loc[row, "F1 (validation threshold)"]), 4)
    y = task_targets(data.test.labels, "binary")
    out["binary_prevalence_test"] = round(float(np.mean(y)), 4)
    rates = fnr_fpr_table(y, result.test_probs("binary"))
    for m in MODELS:
        out[f"binary_fnr_argmax_{m.lower()}"] = round(float(rates.loc[m, "FNR (argmax)"]), 4)
        out[f"binary_fpr_argmax_{m.lower()}"] = round(float(rates.loc[m, "FPR (argmax)"]), 4)
    out.update(stratum_metrics(result, data))
    return out


def stratum_metrics(result: HeadsResult, data: MeemsData) -> dict:
    """Rare / common stratum AUCs (with CIs) and sizes for `runs.record` (empty without a rare stratum)."""
    if data.test.rare is None or data.rare_label not in data.label_names:
        return {}
    y = task_targets(data.test.labels, "multilabel")
    table = rare_stratum_table(y, result.test_probs("multilabel"), data.test.rare, data.label_names, data.rare_label)
    out = {}
    for group, key in (("rare stratum", "rare_stratum"), ("common stratum", "common_stratum")):
        for m in MODELS:
            for col, suffix in (("AUC", ""), ("low", "_low"), ("high", "_high")):
                out[f"{key}_auc{suffix}_{m.lower()}"] = round(float(table.loc[group, f"{col} {m}"]), 4)
        out[f"{key}_n_positive"] = int(table.loc[group, "n positive"])
    out["stratum_n_negative"] = int(table.loc["rare stratum", "n negative"])
    gaps = stratum_gaps(y, result.test_probs("multilabel"), data.test.rare, data.label_names, data.rare_label)
    keys = {"baseline: common - rare stratum": "stratum_drop_baseline", "MEEMS: common - rare stratum": "stratum_drop_meems",
            "rare stratum: MEEMS - baseline": "rare_stratum_gap_meems_minus_baseline"}
    for row, key in keys.items():
        for col, suffix in (("difference", ""), ("low", "_low"), ("high", "_high")):
            out[f"{key}{suffix}"] = round(float(gaps.loc[row, col]), 4)
    return out


PUBLISHED_COLUMNS = {"AUC": "AUC", "AUC (micro)": "micro", "F1 Score": "F1"}  # published.yaml column -> short name


def published_results(table_id: str) -> str:
    """One result table of the paper as a line, read from published.yaml ('baseline AUC 0.76, F1 0.815; MEEMS ...')."""
    table = published("meems").tables[table_id]
    rows = []
    for row in table.rows:
        cells = ", ".join(f"{PUBLISHED_COLUMNS[c]} {row.cells[c].show()}" for c in table.columns if c in row.cells)
        rows.append(f"{'baseline' if row.label == 'Baseline' else row.label} {cells}")
    return "; ".join(rows)
