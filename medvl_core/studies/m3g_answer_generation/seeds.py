"""Tables 2-4 over several training seeds: one run per seed, the tables' mean and SD, and Sec. 6's instability
(how often two seeds' final labels disagree per case).

A seed sets the projections' initial weights, the batch order and the augmentation draws (`TrainConfig.seed`,
`fit_label_clip(seed=...)`); the data, towers and kNN settings stay the same, so two seeds are "the same experimental
setup but initializing differently" in the paper's words (Sec. 6).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np
import pandas as pd

from ...errors import ParameterError
from ...eval.metrics import accuracy
from ...train import TrainConfig
from .knn import KnnSetting, predict_labels
from .prepare import M3GData
from .scores import SCORE_COLUMNS
from .tables import batch_size_sweep, knn_table, postprocessing_table

SUMMARY_COLUMNS = (*SCORE_COLUMNS, "label accuracy")  # averaged over seeds where a table has them


@dataclass
class SeedRun:
    """One training seed's Tables 2-4 and the labels behind them (per split)."""

    seed: int
    batch_size: int  # the model behind Tables 3 and 4
    table2: pd.DataFrame
    table3: pd.DataFrame
    table4: pd.DataFrame
    table4_competition: pd.DataFrame
    fits: dict
    clip_labels: dict
    competition_labels: dict


def seed_run(data: M3GData, seed: int, config: TrainConfig, *, batch_sizes, batch_size: int, table2_knn: KnnSetting,
             settings, best_knn: KnnSetting, splits, embed_dim: int, post, **recipe) -> SeedRun:
    """Tables 2-4 of one seed: the batch sweep, the `batch_size` model under every setting and both Table 4 rows."""
    config = replace(config, seed=seed)
    table2, fits = batch_size_sweep(data, batch_sizes, config, table2_knn, splits, embed_dim, seed, post, **recipe)
    if batch_size not in fits:
        raise ParameterError(f"global_batch_size={batch_size} must be one of global_batch_sizes={list(batch_sizes)}")
    fit = fits[batch_size]
    table3 = knn_table(data, fit, settings, splits, seed, post)
    clip = {s: predict_labels(fit, data, s, best_knn, seed) for s in splits}
    competition = {s: predict_labels(fit, data, s, settings[0], seed) for s in splits}
    return SeedRun(seed, batch_size, table2, table3, postprocessing_table(data, clip), postprocessing_table(data, competition),
                   fits, clip, competition)


def seed_runs(data: M3GData, seeds, config: TrainConfig, **options) -> list[SeedRun]:
    """`seed_run` for every seed (at least one; options as seed_run's)."""
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ParameterError(f"seeds={seeds}: give one or more distinct training seeds")
    return [seed_run(data, s, config, **options) for s in seeds]


def mean_table(tables) -> pd.DataFrame:
    """Rows (setting, split) with every score column averaged over the seeds' tables (the recorded values)."""
    return _over_seeds(tables, "mean")


def sd_table(tables) -> pd.DataFrame:
    """Rows (setting, split) with the seed SD (ddof 1; 0 for one seed) of every score column."""
    return _over_seeds(tables, "std")


def _over_seeds(tables, how: str) -> pd.DataFrame:
    """mean or std over seeds of each row's numeric score columns (4 decimals: a mean of 2-decimal scores stays exact
    enough to equal its claims evidence; mean lengths whole tokens)."""
    frame = pd.concat(list(tables), ignore_index=True)
    columns = [c for c in SUMMARY_COLUMNS if c in frame.columns]
    grouped = frame.groupby(["setting", "split"], sort=False)[columns]
    out = grouped.mean() if how == "mean" else grouped.std(ddof=1).fillna(0.0)
    return out.round({c: (0 if c.endswith("_len") and how == "mean" else 4) for c in columns}).reset_index()


def mean_sd_view(tables, split: str, columns=("dBLEU", "label accuracy")) -> pd.DataFrame:
    """The `split` rows as "mean ± SD over n seeds" for `columns` (the notebook's display)."""
    tables = list(tables)
    mean, sd = mean_table(tables), sd_table(tables)
    rows = mean["split"] == split
    view = mean.loc[rows, ["setting"]].reset_index(drop=True)
    for column in columns:
        if column in mean.columns:
            view[f"{column} (mean ± SD, {len(tables)} seeds)"] = [
                f"{m:.2f} ± {s:.2f}" for m, s in zip(mean.loc[rows, column], sd.loc[rows, column])]
    return view


def label_disagreement(labels_by_seed) -> np.ndarray:
    """Per case, the share of seed pairs whose final labels differ (Sec. 6's instability); needs two seeds or more."""
    labels = [list(x) for x in labels_by_seed]
    if len(labels) < 2:
        raise ParameterError("label disagreement needs the labels of two seeds or more")
    if len({len(x) for x in labels}) != 1:
        raise ParameterError("every seed must label the same cases")
    pairs = list(combinations(range(len(labels)), 2))
    return np.array([np.mean([labels[i][c] != labels[j][c] for i, j in pairs]) for c in range(len(labels[0]))])


def instability_table(labels_by_seed, truth=None) -> pd.DataFrame:
    """Sec. 6 measured: cases whose label differs between two seeds (share of pairs, any pair, all seeds agree)."""
    per_case = label_disagreement(labels_by_seed)
    row = {"seeds": len(list(labels_by_seed)), "cases": len(per_case),
           "label differs between two seeds (mean over seed pairs)": round(float(per_case.mean()), 3),
           "cases with any disagreement": round(float(np.mean(per_case > 0)), 3)}
    if truth is not None:
        right = np.array([[a == t for a, t in zip(x, truth)] for x in labels_by_seed], dtype=float)
        row["label = truth (mean over seeds)"] = round(float(right.mean()), 3)
    return pd.DataFrame([row])


def seed_accuracy(runs: list[SeedRun], split: str, truth) -> float | None:
    """Mean over seeds of the CLIP labels' accuracy on `split`; None without true labels (real data)."""
    if truth is None:
        return None
    return float(np.mean([accuracy(r.clip_labels[split], truth) for r in runs]))
