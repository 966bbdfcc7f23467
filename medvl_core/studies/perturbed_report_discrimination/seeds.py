"""Zhong et al.'s runs over seeds: pre-training and the Table II fine-tunes rerun per seed, each keeping its per-item
results (Table IV credit per held-out image, Table II correctness per labelled image), and their summary over seeds."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...train import TrainConfig
from .arms import metric_name, train_variants
from .discrimination import discrimination_scores, original_credit
from .prepare import PerturbedStudy
from .tables import average_accuracy, table_ii_results


def seed_results(study: PerturbedStudy, config: TrainConfig, finetune_config: TrainConfig, labels: Sequence[str],
                 seeds: Sequence[int], fits: dict | None = None, table2: dict | None = None, **options) -> dict:
    """{seed: {variant: {"table_iv": credit per held-out image (N,), "table_ii": correctness per labelled image and
    label (N, L) at thresholds chosen on the validation set, 1 / 0 and NaN where not stated}}}: pre-training and
    the Table II fine-tunes rerun per seed on the same test items; `fits` (trained with config.seed) are reused, and
    with them `table2`, their `table_ii_results` when already computed (with finetune_config)."""
    by_seed = {}
    for seed in seeds:
        seeded = dataclasses.replace(config, seed=int(seed))
        trained = fits if fits is not None and int(seed) == config.seed else train_variants(study, seeded, **options)
        credit = {v: original_credit(discrimination_scores(model, study.test)).sort_index().to_numpy(dtype=float)
                  for v, (model, _) in trained.items()}  # Table IV first (it puts the models in eval mode), as before
        reused = table2 is not None and trained is fits
        second = table2 if reused else table_ii_results(trained, study, labels,
                                                         dataclasses.replace(finetune_config, seed=int(seed)))
        by_seed[int(seed)] = {v: {"table_iv": credit[v], "table_ii": second[v]["correct"]} for v in trained}
    return by_seed


def seed_summary(by_seed: dict) -> pd.DataFrame:
    """Rows = variants, columns = mean and SD over seeds of Table IV overall and Table II average accuracy."""
    long = pd.DataFrame([{"seed": s, "variant": v, "table_iv": float(np.mean(r["table_iv"])),
                          "table_ii": average_accuracy(r["table_ii"])} for s, by in by_seed.items() for v, r in by.items()])
    summary = long.groupby("variant", sort=False)[["table_iv", "table_ii"]].agg(["mean", "std"])
    summary.columns = [f"{table} {stat}" for table, stat in summary.columns]
    return summary


def seed_metrics(summary: pd.DataFrame) -> dict:
    """Metric keys over seeds per variant: claims_table_iv_mean_ / _sd_ and claims_table_ii_mean_ (4 decimals), and the
    claims' evidence unrounded, claim_discrimination_accuracy_ (Table IV) and claim_average_accuracy_ (Table II)."""
    metrics = {}
    for variant, row in summary.iterrows():
        stem = metric_name(variant)
        metrics[f"claims_table_iv_mean_{stem}"] = round(float(row["table_iv mean"]), 4)
        metrics[f"claims_table_iv_sd_{stem}"] = round(float(row["table_iv std"]), 4)
        metrics[f"claims_table_ii_mean_{stem}"] = round(float(row["table_ii mean"]), 4)
        metrics[f"claim_discrimination_accuracy_{stem}"] = float(row["table_iv mean"])
        metrics[f"claim_average_accuracy_{stem}"] = float(row["table_ii mean"])
    return metrics
