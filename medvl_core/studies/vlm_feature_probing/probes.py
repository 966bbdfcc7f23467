"""The poster's probes: the linear-probe protocol of `eval.probing` run over every (model, dataset) feature
matrix (the poster's random split and, ours, group-disjoint splits), the confounder probes and the subclass
probes within each level-1 class. Each frame keeps the `eval.probing.ProbeResult`s behind its rows (with the CV
items' out-of-fold predictions) in `frame.attrs["probes"]`, read with `fitted_probes`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...errors import ParameterError
from ...eval.probing import ProbeResult, confounder_probe, linear_probe, probe_row

SPLITS = {"random": "the poster's split: stratified random 20% test + 5-fold CV",
          "group": "ours: patient/slide-disjoint 20% test + 5-fold group CV"}


def fitted_probes(frame: pd.DataFrame) -> dict[tuple, ProbeResult]:
    """The ProbeResults behind a `probe_results` / `confounder_results` / `subclass_results` frame, keyed
    (model, dataset, split) / (model, dataset, confounder) / (model, dataset, parent) ({} when the frame has
    none, e.g. one rebuilt by pandas without its attrs)."""
    return frame.attrs.get("probes", {})


def _with_probes(frame: pd.DataFrame, probes: dict) -> pd.DataFrame:
    frame.attrs["probes"] = probes
    return frame


def probe_results(features: dict, seed: int = 0, progress: bool = True, groups: dict | None = None):
    """Long form: `linear_probe` of every {(model, dataset): (X, y)}, one row each (see `probe_row`).

    With `groups` ({dataset: patient/slide ids}) each pair is probed a second time on group-disjoint splits;
    column `split` says which ("random" = the poster's protocol, "group" = ours; skipped with fewer groups than folds).
    The ProbeResults: `fitted_probes(frame)[(model, dataset, split)]`.
    """
    from tqdm.auto import tqdm

    rows, probes = [], {}
    for (model, dataset), (x, y) in tqdm(features.items(), desc="linear probes", disable=not progress):
        probes[(model, dataset, "random")] = result = linear_probe(x, y, seed)
        rows.append({"model": model, "dataset": dataset, "split": "random", **probe_row(result, y)})
        if groups and dataset in groups:
            try:
                result = linear_probe(x, y, seed, groups=groups[dataset])
            except ValueError:  # fewer groups than folds: no group-disjoint split possible
                continue
            probes[(model, dataset, "group")] = result
            rows.append({"model": model, "dataset": dataset, "split": "group", **probe_row(result, y)})
    return _with_probes(pd.DataFrame(rows), probes)


CONFOUNDER_COLUMNS = ["model", "dataset", "confounder", "cv_accuracy_mean", "chance_accuracy", "lift over chance"]


def confounder_results(features: dict, datasets: dict, seed: int = 0) -> pd.DataFrame:
    """`confounder_probe` for every (model, dataset) feature matrix and each of the dataset's `confounders`.

    `features[(model, name)]` is (X, classes); `datasets[name].column(c)` gives confounder c's values.
    Columns always include CONFOUNDER_COLUMNS (empty frame when no dataset records confounders); a confounder
    with fewer than two values seen 5 times (e.g. a patient id with 2-4 images each) is left out. The
    ProbeResults: `fitted_probes(frame)[(model, dataset, confounder)]`.
    """
    rows, probes = [], {}
    for (model, name), (x, _) in features.items():
        for c in datasets[name].confounders:
            try:
                result, row = confounder_probe(x, datasets[name].column(c), seed=seed)
            except (ParameterError, ValueError):  # too few images per value (e.g. 2-4 per patient): not probed
                continue
            probes[(model, name, c)] = result
            rows.append({"model": model, "dataset": name, "confounder": c, **row})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return _with_probes(pd.DataFrame(columns=CONFOUNDER_COLUMNS), probes)
    frame["lift over chance"] = frame["cv_accuracy_mean"] - frame["chance_accuracy"]
    return _with_probes(frame, probes)


def _hierarchy(dataset, y, parent_keys) -> tuple[np.ndarray, np.ndarray] | None:
    """(parent, fine) labels of a hierarchical dataset: level-1 group and class (HiCervix), or class and recorded
    `subtype` (BreakHis); None for a flat one."""
    record = dataset.records[0]
    key = next((k for k in parent_keys if k in record), None)
    if key:
        return np.asarray(dataset.column(key)).astype(str), np.asarray(y).astype(str)
    if "subtype" in record:
        return np.asarray(y).astype(str), np.asarray(dataset.column("subtype")).astype(str)
    return None


def subclass_results(features: dict, datasets: dict, parent_keys=("level1", "level_1"), seed: int = 0) -> pd.DataFrame:
    """Within each parent class of a hierarchical dataset, the probe predicting the fine class (poster: HiCervix's
    microbe subclass within its level-1 group; BreakHis's tumour subtypes within benign / malignant). One row per
    (model, dataset, parent) with CV accuracy, chance and lift; parents with one fine class or too few images are
    skipped. The ProbeResults: `fitted_probes(frame)[(model, dataset, parent)]`."""
    rows, probes = [], {}
    for (model, name), (x, y) in features.items():
        levels = _hierarchy(datasets[name], y, parent_keys)
        if levels is None:
            continue
        parents, fine = levels
        for parent in sorted(set(parents)):
            keep = parents == parent
            try:
                result = linear_probe(np.asarray(x)[keep], fine[keep], seed)
            except ValueError:  # one fine class, or fewer images than folds
                continue
            probes[(model, name, parent)], row = result, probe_row(result, fine[keep])
            rows.append({"model": model, "dataset": name, "parent": parent, **row,
                         "lift over chance": row["cv_accuracy_mean"] - row["chance_accuracy"]})
    return _with_probes(pd.DataFrame(rows), probes)


def pixel_features(dataset, size: int = 32) -> np.ndarray:
    """Raw pixels of every image (grey, `size` px square, flattened): the reference that shows how strongly each
    factor is drawn into the images themselves."""
    return np.stack([np.asarray(dataset[i]["image"].convert("L").resize((size, size)), np.float32).ravel() / 255
                     for i in range(len(dataset))])


def factor_silhouettes(features: dict, datasets: dict, factors: dict[str, list[str]]) -> pd.DataFrame:
    """Cosine silhouette of the images grouped by each factor, per (model, dataset): which factor the feature
    space's neighbourhoods follow (1 = tight separate clusters, 0 = none, the UMAP's cosine geometry).

    `factors` {dataset: [column, ...]} ("class_name" = the class); `features[(model, dataset)]` = (X, classes).
    Columns model, dataset, factor, levels, silhouette.
    """
    from sklearn.metrics import silhouette_score

    rows = []
    for (model, name), (x, _) in features.items():
        for factor in factors.get(name, []):
            labels = np.asarray(datasets[name].column(factor)).astype(str)
            rows.append({"model": model, "dataset": name, "factor": factor, "levels": len(set(labels)),
                         "silhouette": float(silhouette_score(np.asarray(x, np.float64), labels, metric="cosine"))})
    return pd.DataFrame(rows, columns=["model", "dataset", "factor", "levels", "silhouette"])
