"""The paper's claims checked over several head seeds: the numbers behind each claim, the verdicts, plain sentences."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import MeemsData
from .heads import HeadInputs, HeadsResult, embeddings
from .tables import auc_table, minority_summary, summary_metrics
from .tasks import MODELS, task_targets


def seed_metrics(result: HeadsResult, data: MeemsData, inputs: HeadInputs) -> dict:
    """The numbers the paper's claims rest on, for one trained set of heads."""
    summary = summary_metrics(result, data)
    prevalence = data.train.labels.mean(0)
    table = auc_table(task_targets(data.test.labels, "multilabel"), result.test_probs("multilabel"), data.label_names,
                      prevalence)
    minority = minority_summary(table, MODELS)
    emb = embeddings(result.models[("multilabel", "MEEMS")], inputs, "train", True)
    out = {**summary, "no_finding_silhouette_meems": no_finding_silhouette(emb, data.train.labels[:, 0])}
    out["minority_auc_meems"], out["other_auc_meems"] = (float(minority.iloc[0]["MEEMS"]),
                                                         float(minority.iloc[1]["MEEMS"]))
    return out


def no_finding_silhouette(embedding: np.ndarray, no_finding: np.ndarray) -> float:
    """Silhouette of the No Finding vs Finding split of L2-normalised embeddings (> 0: the split forms clusters)."""
    from sklearn.metrics import silhouette_score

    e = np.asarray(embedding, dtype=np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(no_finding) == 1
    if labels.all() or not labels.any():
        return float("nan")
    return float(silhouette_score(e, labels, metric="euclidean"))


CLAIMS = (  # (claim, the comparison that tests it on one seed's numbers)
    ("MEEMS > baseline, binary AUC", lambda m: m["binary_auc_meems"] > m["binary_auc_baseline"]),
    ("MEEMS > baseline, binary F1 (argmax)", lambda m: m["binary_f1_argmax_meems"] > m["binary_f1_argmax_baseline"]),
    ("MEEMS > baseline, 14-label AUC", lambda m: m["multilabel_auc_meems"] > m["multilabel_auc_baseline"]),
    ("MEEMS > baseline, 14-label F1 (argmax)",
     lambda m: m["multilabel_f1_argmax_meems"] > m["multilabel_f1_argmax_baseline"]),
    ("MEEMS: lower FNR at higher FPR than the baseline (argmax)",
     lambda m: m["binary_fnr_argmax_meems"] < m["binary_fnr_argmax_baseline"]
     and m["binary_fpr_argmax_meems"] > m["binary_fpr_argmax_baseline"]),
    ("MEEMS beats the all-positive F1 reference (binary)",
     lambda m: m["binary_f1_argmax_meems"] > m["binary_f1_argmax_all_positive"]),
    ('MEEMS embeddings cluster "No Finding" (silhouette > 0)', lambda m: m["no_finding_silhouette_meems"] > 0),
    ("Minority classes not captured: MEEMS minority-class AUC < other classes",
     lambda m: m["minority_auc_meems"] < m["other_auc_meems"]),
    ("Hidden stratum (hypothesis): MEEMS > baseline on the rare stratum",
     lambda m: m.get("rare_stratum_auc_meems", np.nan) > m.get("rare_stratum_auc_baseline", np.nan)),
    ("Hidden stratum: MEEMS rare-stratum AUC < its common-stratum AUC",
     lambda m: m.get("rare_stratum_auc_meems", np.nan) < m.get("common_stratum_auc_meems", np.nan)),
)

CLAIM_VALUES = {  # claim -> the metrics printed beside its verdict
    0: ("binary_auc_meems", "binary_auc_baseline"), 1: ("binary_f1_argmax_meems", "binary_f1_argmax_baseline"),
    2: ("multilabel_auc_meems", "multilabel_auc_baseline"),
    3: ("multilabel_f1_argmax_meems", "multilabel_f1_argmax_baseline"),
    4: ("binary_fnr_argmax_meems", "binary_fnr_argmax_baseline"),
    5: ("binary_f1_argmax_meems", "binary_f1_argmax_all_positive"), 6: ("no_finding_silhouette_meems",),
    7: ("minority_auc_meems", "other_auc_meems"), 8: ("rare_stratum_auc_meems", "rare_stratum_auc_baseline"),
    9: ("rare_stratum_auc_meems", "common_stratum_auc_meems"),
}


def claims_table(per_seed: list[dict]) -> pd.DataFrame:
    """Per claim: how many seeds agree, the verdict (all / none / mixed), and mean ± SD of the numbers behind it."""
    rows = []
    for k, (claim, test) in enumerate(CLAIMS):
        votes = [bool(test(m)) for m in per_seed]
        values = "; ".join(f"{key} {np.mean([m.get(key, np.nan) for m in per_seed]):.3f} ± "
                           f"{np.std([m.get(key, np.nan) for m in per_seed], ddof=1) if len(per_seed) > 1 else 0:.3f}"
                           for key in CLAIM_VALUES[k])
        verdict = "agrees" if all(votes) else "disagrees" if not any(votes) else "mixed"
        rows.append({"claim": claim, "seeds agreeing": f"{sum(votes)}/{len(votes)}", "verdict": verdict,
                     "mean ± SD over seeds": values})
    return pd.DataFrame(rows).set_index("claim")


def verdict_sentences(claims: pd.DataFrame) -> list[str]:
    """One plain sentence per claim: where this run agrees with the paper, contradicts it, or is mixed over seeds."""
    words = {"agrees": "agrees with the paper", "disagrees": "CONTRADICTS the paper",
             "mixed": "is mixed over seeds (neither confirms nor contradicts)"}
    return [f"{claim}: this run {words[row.verdict]} ({row['seeds agreeing']} seeds)." for claim, row in claims.iterrows()]
