"""Zhong et al.'s claims over seeds: pre-training and the Table II fine-tunes rerun per seed, each claim's
per-seed difference with its mean, SD and verdict."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...train import TrainConfig
from .arms import train_variants
from .discrimination import table_iv
from .prepare import PerturbedStudy
from .tables import table_ii


def seed_results(study: PerturbedStudy, config: TrainConfig, finetune_config: TrainConfig, labels: Sequence[str],
                 seeds: Sequence[int], fits: dict | None = None, n_boot: int = 200, **options) -> dict:
    """{seed: {variant: {"table_iv": overall accuracy, "table_ii": Average accuracy}}}: pre-training and the Table II
    fine-tunes rerun per seed; `fits` (trained with config.seed) are reused for that seed."""
    by_seed = {}
    for seed in seeds:
        seeded = dataclasses.replace(config, seed=int(seed))
        trained = fits if fits is not None and int(seed) == config.seed else train_variants(study, seeded, **options)
        overall = table_iv(trained, study.test, n_boot, int(seed))["accuracy"]
        average = table_ii(trained, study, labels, dataclasses.replace(finetune_config, seed=int(seed)))["Average accuracy"]
        by_seed[int(seed)] = {v: {"table_iv": float(overall[v]), "table_ii": float(average[v])} for v in trained}
    return by_seed


CLAIMS = (
    ("perturbation loss raises Table IV (ours w/o local > ConVIRT)", "table_iv", "ours w/o local", "ConVIRT"),
    ("perturbation loss raises Table IV (ours > GLoRIA)", "table_iv", "ours", "GLoRIA"),
    ("local loss adds on top in Table IV (ours > ours w/o local)", "table_iv", "ours", "ours w/o local"),
    ("Table II average: ours > ours w/o local", "table_ii", "ours", "ours w/o local"),
    ("Table II average: ours w/o local > GLoRIA", "table_ii", "ours w/o local", "GLoRIA"),
    ("Table II average: GLoRIA > ConVIRT", "table_ii", "GLoRIA", "ConVIRT"),
)


def claims_table(by_seed: dict, chance: float | None = None) -> pd.DataFrame:
    """Per claim of the paper: mean and SD over seeds of the difference (better - worse), seeds where it holds, and a
    verdict: agrees (mean > SD), disagrees (mean < -SD), unresolved (within the seed spread)."""
    rows = []
    for claim, table, better, worse in CLAIMS:
        diffs = np.array([r[better][table] - r[worse][table] for r in by_seed.values()])
        rows.append(_claim_row(claim, diffs))
    if chance is not None:
        for variant in ("ConVIRT", "GLoRIA"):
            diffs = np.array([r[variant]["table_iv"] - chance for r in by_seed.values()])
            rows.append(_claim_row(f"baseline {variant} at or above chance in Table IV", diffs, at_least=True))
    return pd.DataFrame(rows).set_index("claim")


def _claim_row(claim: str, diffs: np.ndarray, at_least: bool = False) -> dict:
    """One claims-table row from per-seed differences (which should be > 0, or >= 0 with `at_least`)."""
    mean, sd = float(diffs.mean()), float(diffs.std(ddof=1)) if len(diffs) > 1 else math.nan
    holds = (diffs >= 0) if at_least else (diffs > 0)
    spread = sd if math.isfinite(sd) else 0.0
    if at_least:
        verdict = "agrees" if mean >= 0 and holds.all() else ("disagrees" if mean < -spread else "unresolved")
    else:
        verdict = "agrees" if mean > spread else ("disagrees" if mean < -spread else "unresolved (within seed spread)")
    return {"claim": claim, "mean difference": mean, "SD over seeds": sd,
            "seeds where it holds": f"{int(holds.sum())}/{len(diffs)}", "this run": verdict}


def seed_summary(by_seed: dict) -> pd.DataFrame:
    """Rows = variants, columns = mean and SD over seeds of Table IV overall and Table II average accuracy."""
    long = pd.DataFrame([{"seed": s, "variant": v, **vals} for s, r in by_seed.items() for v, vals in r.items()])
    summary = long.groupby("variant", sort=False)[["table_iv", "table_ii"]].agg(["mean", "std"])
    summary.columns = [f"{table} {stat}" for table, stat in summary.columns]
    return summary
