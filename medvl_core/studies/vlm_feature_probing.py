"""Takeda et al. (poster #IF250081): the poster's table orchestration, the linear-probe protocol of
`eval.probing` run over every (model, dataset) feature matrix, and the confounder probes."""

from __future__ import annotations

import pandas as pd

from ..eval.probing import confounder_probe, linear_probe, probe_row


def probe_results(features: dict, seed: int = 0, progress: bool = True):
    """Long form: `linear_probe` of every {(model, dataset): (X, y)}, one row each (see `probe_row`)."""
    from tqdm.auto import tqdm

    rows = []
    for (model, dataset), (x, y) in tqdm(features.items(), desc="linear probes", disable=not progress):
        rows.append({"model": model, "dataset": dataset, **probe_row(linear_probe(x, y, seed), y)})
    return pd.DataFrame(rows)


def probe_table(features, seed: int = 0, metric: str = "accuracy", digits: int = 3):
    """Paper layout: rows models, columns datasets, cells "mean ± std" of 5-fold CV `metric` (accuracy | macro_f1).

    `features` is {(model, dataset): (X, y)} or a `probe_results` frame; rows/columns keep first-seen order.
    """
    results = features if hasattr(features, "pivot") else probe_results(features, seed, progress=False)
    cells = results.assign(cell=[f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in
                                 zip(results[f"cv_{metric}_mean"], results[f"cv_{metric}_std"])])
    table = cells.pivot(index="model", columns="dataset", values="cell")
    table = table.reindex(index=list(dict.fromkeys(results["model"])), columns=list(dict.fromkeys(results["dataset"])))
    return table.rename_axis(index="model", columns="dataset").fillna("")


CONFOUNDER_COLUMNS = ["model", "dataset", "confounder", "cv_accuracy_mean", "chance_accuracy", "lift over chance"]


def confounder_results(features: dict, datasets: dict, seed: int = 0) -> pd.DataFrame:
    """`confounder_probe` for every (model, dataset) feature matrix and each of the dataset's `confounders`.

    `features[(model, name)]` is (X, classes); `datasets[name].column(c)` gives confounder c's values.
    Columns always include CONFOUNDER_COLUMNS (empty frame when no dataset records confounders).
    """
    rows = [{"model": model, "dataset": name, "confounder": c,
             **confounder_probe(x, datasets[name].column(c), seed=seed)}
            for (model, name), (x, _) in features.items() for c in datasets[name].confounders]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=CONFOUNDER_COLUMNS)
    frame["lift over chance"] = frame["cv_accuracy_mean"] - frame["chance_accuracy"]
    return frame


def per_dataset_metrics(results: pd.DataFrame, models: dict[str, str]) -> dict:
    """Recorded metrics `svc_accuracy_<tag>_<dataset>` / `svc_macro_f1_<tag>_<dataset>` (CV means) per model tag."""
    metrics = {}
    for tag, model in models.items():
        metrics[f"probe_model_{tag}"] = model
        for _, row in results[results["model"] == model].iterrows():
            metrics[f"svc_accuracy_{tag}_{row['dataset']}"] = round(float(row["cv_accuracy_mean"]), 4)
            metrics[f"svc_macro_f1_{tag}_{row['dataset']}"] = round(float(row["cv_macro_f1_mean"]), 4)
    return metrics
