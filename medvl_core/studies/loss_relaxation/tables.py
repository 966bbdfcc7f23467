"""Jang et al.'s tables from the arms: Table 6's ablation, the flat metrics of Tables 1-6 (keys t<table>_...;
papers/loss_relaxation/beside.yaml maps them to the cells), Table 4's bootstrap CIs, Table 7's label sharing,
the zero-shot test sets and Fig. 4 (right) from the trained arms."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import MedvlError
from ...eval.contrastive_fit import COMPETITION, FRAMEWORK_NAMES
from ...eval.metrics import binary_metrics, bootstrap_ci, choose_thresholds, macro_auroc, paired_bootstrap_pvalue
from ...eval.report_study import StudyData
from ...eval.selection import require_validation
from .arms import ARMS, FRAMEWORKS, AblationResult, arm_name


def competition_columns(label_names) -> list[int]:
    """Column indices of the five CheXpert competition labels among `label_names`."""
    missing = [c for c in COMPETITION if c not in label_names]
    if missing:
        raise MedvlError(f"the study's labels lack the competition labels {missing}; keep them in `labels`")
    return [list(label_names).index(c) for c in COMPETITION]


def _mean_std(values) -> str:
    """'mean +- std' of a list of floats, 3 decimals."""
    return f"{np.mean(values):.3f} +- {np.std(values):.3f}"


def ablation_table(result: AblationResult, Y: np.ndarray) -> pd.DataFrame:
    """Zero-shot macro AUROC per variant: mean +- std over seeds and the seeds' ensemble (Table 6 layout)."""
    rows = [{"variant": "untrained (random projections)", "macro AUROC (seeds)": f"{macro_auroc(Y, result.untrained_test):.3f}",
             "ensemble macro AUROC": np.nan}]
    for variant, per_seed in result.test_probs.items():
        rows.append({"variant": variant, "macro AUROC (seeds)": _mean_std([macro_auroc(Y, p) for p in per_seed.values()]),
                     "ensemble macro AUROC": round(macro_auroc(Y, result.ensemble(variant)), 3)})
    return pd.DataFrame(rows)


def _per_seed_auroc(result: AblationResult, variant: str, split: str, Y: np.ndarray) -> pd.DataFrame:
    """Per-label AUROC of each seed's model (rows seeds)."""
    from ...eval.metrics import auroc_per_label

    probs = result.val_probs[variant] if split == "val" else result.test_probs[variant]
    return pd.DataFrame([auroc_per_label(Y, p, result.label_names) for p in probs.values()], index=list(probs))


def auroc_columns(result: AblationResult, variant: str, split: str, Y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-seed AUROC of the five competition labels, their mean ("avg5") and the mean of all labels ("avgtotal")."""
    per = _per_seed_auroc(result, variant, split, Y)
    columns = {label: per[label].to_numpy() for label in COMPETITION}
    columns["avg5"] = per[COMPETITION].mean(axis=1).to_numpy()
    columns["avgtotal"] = per.mean(axis=1).to_numpy()
    return columns


def _operating_point(Y_val, P_val, Y, P, five) -> dict:
    """Mean AUROC, F1 and MCC over the five labels; F1/MCC at the validation-optimal threshold of each label."""
    out = {"auc": macro_auroc(Y[:, five], P[:, five])}
    for metric in ("f1", "mcc"):
        thresholds = choose_thresholds(Y_val[:, five], P_val[:, five], metric)
        out[metric] = float(binary_metrics(Y[:, five], P[:, five], thresholds).loc["macro", metric])
    return out


def operating_points(result: AblationResult, variant: str, Y_val, Y, five) -> dict:
    """Table 2's cells of one arm: single models (mean over seeds) and the seed ensemble."""
    seeds = [_operating_point(Y_val, result.val_probs[variant][s], Y, result.test_probs[variant][s], five)
             for s in result.test_probs[variant]]
    single = {k: float(np.mean([r[k] for r in seeds])) for k in seeds[0]}
    ens = _operating_point(Y_val, result.ensemble(variant, "val"), Y, result.ensemble(variant), five)
    return {"single": single, "ensemble": ens}


def best_with_ours(result: AblationResult, Y_val: np.ndarray, frameworks, ensemble: bool) -> str:
    """The "w/ ours" arm with the highest validation Avg. 5 AUROC (seed mean, or of the seed ensemble)."""
    require_validation(Y_val, what="best_with_ours")
    five = competition_columns(result.label_names)

    def score(variant):
        if ensemble:
            return macro_auroc(Y_val[:, five], result.ensemble(variant, "val")[:, five])
        return float(np.mean(auroc_columns(result, variant, "val", Y_val)["avg5"]))

    return max((arm_name(f, "both") for f in frameworks), key=score)


def paper_metrics(result: AblationResult, study: StudyData, frameworks=FRAMEWORKS) -> dict:
    """Flat metrics for Tables 1-6 (keys t<table>_...): validation ablation (6), test zero-shot (1, 3), operating
    points (2), the best ensemble's point estimates (4; `ensemble_ci_table` adds CIs) and alignment (5). Values
    are seed means unless 'ensemble'."""
    Y_val, Y = study.validate.labels, study.test.labels
    five = competition_columns(study.label_names)
    m = {}
    for fw in frameworks:
        for arm in ARMS:
            variant = arm_name(fw, arm)
            for col, values in auroc_columns(result, variant, "val", Y_val).items():
                m[f"t6_{fw}_{arm}_{col.lower().replace(' ', '_')}"] = round(float(np.mean(values)), 4)
        for tag, arm in (("wo", "none"), ("w", "both")):
            variant = arm_name(fw, arm)
            test = auroc_columns(result, variant, "test", Y)
            m[f"t1_{fw}_{tag}_avg5"], m[f"t1_{fw}_{tag}_avgtotal"] = (round(float(np.mean(test[k])), 4)
                                                                      for k in ("avg5", "avgtotal"))
            for kind, values in operating_points(result, variant, Y_val, Y, five).items():
                for metric, value in values.items():
                    m[f"t2_{fw}_{kind}_{tag}_{metric}"] = round(value, 4)
            align = result.alignment[variant]
            for level in ("sentence", "report"):
                m[f"t5_{fw}_{tag}_{level}"] = round(float(np.mean([a[level] for a in align.values()])), 4)
        for tag, arm in (("wo", "none"), ("w", "both")):
            m.update(zero_shot_set_metrics(result, study, arm_name(fw, arm), f"t1_{fw}_{tag}"))
    single = best_with_ours(result, Y_val, frameworks, ensemble=False)
    m["t3_best_single"] = single
    fw_single = best_fw(single, frameworks)
    m.update({f"t3_{k}": m[f"t{t}_{fw_single}_{kk}"] for k, t, kk in (
        ("chexpert5_auc", 1, "w_avg5"), ("chexpert13_auc", 1, "w_avgtotal"),
        ("chexpert5_f1", 2, "single_w_f1"), ("chexpert5_mcc", 2, "single_w_mcc"))})
    m.update({f"t3_{k.removeprefix(f't1_{fw_single}_w_')}": v for k, v in m.items()
              if k.startswith(f"t1_{fw_single}_w_") and k.split("_")[-2] in SET_KEYS.values()})
    best = best_with_ours(result, Y_val, frameworks, ensemble=True)
    m["t4_best_ensemble"] = best
    for metric in ("auc", "f1", "mcc"):  # the point estimates; ensemble_ci_table adds CIs and p-values
        m[f"t4_{metric}"] = m[f"t2_{best_fw(best, frameworks)}_ensemble_w_{metric}"]
    return m


SET_KEYS = {"open-i": "openi", "padchest": "padchest", "vindr-cxr": "vindr"}  # metric key of each test set


def zero_shot_set_metrics(result: AblationResult, study: StudyData, variant: str, prefix: str) -> dict:
    """Seed-mean macro AUROC of one arm on each zero-shot set: `{prefix}_{set}_avgtotal` over the labels its rule
    keeps, and `_avg5` over the five competition labels where the set has them (Open-i)."""
    out = {}
    for name, zs in study.zero_shot_sets.items():
        per_seed = result.set_probs[name][variant].values()
        key = f"{prefix}_{SET_KEYS[name]}"
        out[f"{key}_avgtotal"] = round(float(np.mean([macro_auroc(zs.split.labels, p) for p in per_seed])), 4)
        five = [zs.prompt_names.index(c.lower()) for c in COMPETITION if c.lower() in zs.prompt_names]
        if len(five) == len(COMPETITION):
            out[f"{key}_avg5"] = round(float(np.mean([macro_auroc(zs.split.labels[:, five], p[:, five])
                                                      for p in per_seed])), 4)
    return out


def zero_shot_set_table(study: StudyData) -> pd.DataFrame:
    """Per test set: images found (paper's n beside), Table 9 labels kept by the paper's rule, and those dropped."""
    rows = [{"test set": name, "images": len(zs.split.labels), "paper images": zs.paper_n,
             "labels kept": len(zs.label_names), "labels dropped (positives)": ", ".join(
                 f"{k} ({v})" for k, v in zs.dropped.items()) or "none", "rule (paper)": zs.rule}
            for name, zs in study.zero_shot_sets.items()]
    return pd.DataFrame(rows)


def best_fw(variant: str, frameworks=FRAMEWORKS) -> str:
    """The framework key of a 'w/ ours' variant name."""
    return next(f for f in frameworks if arm_name(f, "both") == variant)


def ensemble_ci_table(result: AblationResult, study: StudyData, variant: str, n_resamples: int = 1000,
                      seed: int = 0, frameworks=FRAMEWORKS) -> pd.DataFrame:
    """Table 4 for our runs: the ensemble's five-label AUROC, F1 and MCC with bootstrap 95% CIs, and paired
    bootstrap p-values against every framework's plain fine-tuning ensemble."""
    Y_val, Y = study.validate.labels, study.test.labels
    five = competition_columns(study.label_names)
    P, P_val = result.ensemble(variant)[:, five], result.ensemble(variant, "val")[:, five]
    y, y_val = Y[:, five], Y_val[:, five]
    rows = [{"metric": "mean AUC", **bootstrap_ci(y, P, "macro_auroc", n_resamples, seed=seed)}]
    for metric in ("f1", "mcc"):
        thresholds = choose_thresholds(y_val, P_val, metric)

        def macro(yy, pp, thresholds=thresholds, metric=metric):
            return float(binary_metrics(yy, pp, thresholds).loc["macro", metric])

        rows.append({"metric": f"Mean {metric.upper()}", **bootstrap_ci(y, P, macro, n_resamples, seed=seed)})
    table = pd.DataFrame(rows).set_index("metric")
    for fw in frameworks:
        other = result.ensemble(arm_name(fw, "none"))[:, five]
        test = paired_bootstrap_pvalue(y, P, other, "macro_auroc", n_resamples, seed=seed)
        table.loc["mean AUC", f"p vs {FRAMEWORK_NAMES[fw]}_ensemble"] = test["p_value"]
    return table.round(4)


def label_sharing(labels: np.ndarray, max_n: int = 5) -> dict[int, float]:
    """Table 7: for n = 1..max_n, the mean number of reports that contain each combination of n positive labels,
    over the combinations that occur (NaN / uncertain / negative mentions are not positive)."""
    from collections import Counter
    from itertools import combinations

    positive = [tuple(np.flatnonzero(np.nan_to_num(row, nan=0.0) == 1)) for row in np.asarray(labels)]
    shared = {}
    for n in range(1, max_n + 1):
        counts = Counter(combo for labels_of in positive for combo in combinations(labels_of, n))
        shared[n] = float(np.mean(list(counts.values()))) if counts else 0.0
    return shared


def paper_label_sharing() -> tuple[dict[int, float], int]:
    """The paper's Table 7 (n -> average number of MIMIC-CXR reports per combination of n labels) and the number of
    MIMIC-CXR reports it counts (Table 8), both from published.yaml."""
    from ...papers import published, published_cell

    pub = published("loss_relaxation")
    shared = {n: published_cell(pub, f"table_7/Avg. # of report/n = {n}").value for n in range(1, 6)}
    return shared, int(published_cell(pub, "table_8/MIMIC-CXR/# of Reports").value)


def label_sharing_table(sources: dict) -> pd.DataFrame:
    """Table 7 for several report sets (name -> (`label_sharing` result, number of reports)): the average number of
    reports per combination of n positive labels, and the same per 1,000 reports (the count grows with the corpus;
    per 1,000 reports sets of different sizes compare)."""
    rows = {}
    for name, (shared, n_reports) in sources.items():
        rows[(name, "avg. # of reports")] = {f"n = {n}": v for n, v in shared.items()}
        rows[(name, "per 1,000 reports")] = {f"n = {n}": 1000 * v / n_reports for n, v in shared.items()}
    return pd.DataFrame(rows).T.rename_axis(["reports", "statistic"]).round(2)


def sentences_table(metrics: dict, frameworks, sentences_per_report: int) -> pd.DataFrame:
    """Fig. 4 (right) from the trained arms: validation Avg. 5 AUROC with relaxation, n sampled sentences vs the
    whole report (`paper_metrics` keys t6_<framework>_both/relax_avg5)."""
    return pd.DataFrame({f"n = {sentences_per_report}": [metrics[f"t6_{fw}_both_avg5"] for fw in frameworks],
                         "n = all (whole report)": [metrics[f"t6_{fw}_relax_avg5"] for fw in frameworks]},
                        index=[FRAMEWORK_NAMES[fw] for fw in frameworks]).rename_axis(
        "validation Avg. 5 AUROC, with relaxation")


def positives_table(study: StudyData) -> pd.DataFrame:
    """Images and positives of each competition label in the validation (model selection) and held-out test sets."""
    five = competition_columns(study.label_names)
    rows = {name: {"images": len(split.labels), **dict(zip(COMPETITION, np.nansum(split.labels[:, five] == 1, axis=0)
                                                                   .astype(int).tolist()))}
            for name, split in (("validation", study.validate), ("test", study.test))}
    return pd.DataFrame(rows).T.rename_axis("positives")


def report_statistics(texts, n: int = 3) -> dict[str, float]:
    """What sentence sampling draws from: sentences per report, the share of reports with more than `n` (those
    whose text drawing n sentences changes), the share of sentence occurrences repeated verbatim in another report, and the
    share stating a finding (positive or uncertain, `text.labeler`)."""
    from collections import Counter

    from ...data.labels import CHEXPERT_LABELS
    from ...data.pairs import sentence_index
    from ...text.labeler import label_reports

    sentences, owners = sentence_index(texts)
    reports_with = Counter(j for own in owners for j in own)
    occurrences = np.array([j for own in owners for j in own])
    labels = np.delete(label_reports(sentences), CHEXPERT_LABELS.index("No Finding"), axis=1)
    finding = np.nan_to_num(np.abs(labels), nan=0.0).max(axis=1) > 0
    counts = np.array([len(own) for own in owners])
    return {"reports": len(texts), "sentences_per_report": float(counts.mean()),
            "more_than_n_share": float(np.mean(counts > n)),
            "repeated_share": float(np.mean([reports_with[j] > 1 for j in occurrences])),
            "finding_share": float(finding[occurrences].mean())}


def alignment_table(result: AblationResult, frameworks) -> pd.DataFrame:
    """Table 5 per arm (seed means): sentence- and report-level cosine, each image's mean cosine with the other
    images' reports, and the report-level margin (own report minus others)."""
    rows = []
    for fw in frameworks:
        for arm in (a for a in ARMS if arm_name(fw, a) in result.alignment):
            per_seed = result.alignment[arm_name(fw, arm)].values()
            own = np.mean([a["report"] for a in per_seed])
            other = np.mean([a["per_image"]["other_reports"].mean() for a in per_seed])
            rows.append({"framework": FRAMEWORK_NAMES[fw], "arm": ARMS[arm],
                         "sentence": np.mean([a["sentence"] for a in per_seed]), "report": own,
                         "other reports": other, "margin": own - other})
    return pd.DataFrame(rows).set_index(["framework", "arm"]).round(3)
