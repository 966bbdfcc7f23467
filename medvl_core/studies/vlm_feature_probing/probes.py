"""The poster's probes: the linear-probe protocol of `eval.probing` run over every (model, dataset) feature
matrix (the poster's random split and, ours, group-disjoint splits), the confounder probes and the subclass
probes within each level-1 class."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import ParameterError
from ...eval.probing import confounder_probe, linear_probe, probe_row

SPLITS = {"random": "the poster's split: stratified random 20% test + 5-fold CV",
          "group": "ours: patient/slide-disjoint 20% test + 5-fold group CV"}


def probe_results(features: dict, seed: int = 0, progress: bool = True, groups: dict | None = None):
    """Long form: `linear_probe` of every {(model, dataset): (X, y)}, one row each (see `probe_row`).

    With `groups` ({dataset: patient/slide ids}) each pair is probed a second time on group-disjoint splits;
    column `split` says which ("random" = the poster's protocol, "group" = ours; skipped with fewer groups than folds).
    """
    from tqdm.auto import tqdm

    rows = []
    for (model, dataset), (x, y) in tqdm(features.items(), desc="linear probes", disable=not progress):
        rows.append({"model": model, "dataset": dataset, "split": "random", **probe_row(linear_probe(x, y, seed), y)})
        if groups and dataset in groups:
            try:
                result = linear_probe(x, y, seed, groups=groups[dataset])
            except ValueError:  # fewer groups than folds: no group-disjoint split possible
                continue
            rows.append({"model": model, "dataset": dataset, "split": "group", **probe_row(result, y)})
    return pd.DataFrame(rows)


CONFOUNDER_COLUMNS = ["model", "dataset", "confounder", "cv_accuracy_mean", "chance_accuracy", "lift over chance"]


def confounder_results(features: dict, datasets: dict, seed: int = 0) -> pd.DataFrame:
    """`confounder_probe` for every (model, dataset) feature matrix and each of the dataset's `confounders`.

    `features[(model, name)]` is (X, classes); `datasets[name].column(c)` gives confounder c's values.
    Columns always include CONFOUNDER_COLUMNS (empty frame when no dataset records confounders); a confounder
    with fewer than two values seen 5 times (e.g. a patient id with 2-4 images each) is left out.
    """
    rows = []
    for (model, name), (x, _) in features.items():
        for c in datasets[name].confounders:
            try:
                rows.append({"model": model, "dataset": name, "confounder": c,
                             **confounder_probe(x, datasets[name].column(c), seed=seed)})
            except (ParameterError, ValueError):  # too few images per value (e.g. 2-4 per patient): not probed
                continue
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=CONFOUNDER_COLUMNS)
    frame["lift over chance"] = frame["cv_accuracy_mean"] - frame["chance_accuracy"]
    return frame


def subclass_results(features: dict, datasets: dict, parent_keys=("level1", "level_1"), seed: int = 0) -> pd.DataFrame:
    """Within each level-1 class of a hierarchical dataset, the probe predicting the fine class (poster: HiCervix's
    microbe subclass). One row per (model, dataset, parent) with CV accuracy, chance and lift; parents with one fine
    class or too few images are skipped."""
    rows = []
    for (model, name), (x, y) in features.items():
        key = next((k for k in parent_keys if k in datasets[name].records[0]), None)
        parents = np.asarray(datasets[name].column(key)) if key else np.array([])
        for parent in sorted(set(parents)):
            keep = parents == parent
            try:
                row = probe_row(linear_probe(np.asarray(x)[keep], np.asarray(y)[keep], seed), np.asarray(y)[keep])
            except ValueError:  # one fine class, or fewer images than folds
                continue
            rows.append({"model": model, "dataset": name, "parent": parent, **row,
                         "lift over chance": row["cv_accuracy_mean"] - row["chance_accuracy"]})
    return pd.DataFrame(rows)
