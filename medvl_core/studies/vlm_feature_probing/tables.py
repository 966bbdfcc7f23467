"""The poster's tables from the probe results: its models x datasets layout, the recorded metrics per model and
dataset, and the per-model summary."""

from __future__ import annotations

import pandas as pd

from .poster import slug
from .probes import probe_results


def probe_table(features, seed: int = 0, split: str = "random", digits: int = 1, test: bool = True):
    """The poster's layout: rows models, columns (dataset, Accuracy | F-score), cells "CV mean ± std | test" in %.

    `features` is {(model, dataset): (X, y)} or a `probe_results` frame; rows/columns keep first-seen order.
    F-score is the macro F1; CV over 5 folds of the 80% not held out, test on the held-out 20%.
    """
    results = features if hasattr(features, "pivot") else probe_results(features, seed, progress=False)
    results = results[results.get("split", pd.Series(["random"] * len(results), index=results.index)) == split]
    models, datasets = list(dict.fromkeys(results["model"])), list(dict.fromkeys(results["dataset"]))
    table = pd.DataFrame(index=pd.Index(models, name="model"),
                         columns=pd.MultiIndex.from_product([datasets, ["Accuracy", "F-score"]]), dtype=object)
    for row in results.itertuples(index=False):
        for label, metric in (("Accuracy", "accuracy"), ("F-score", "macro_f1")):
            table.loc[row.model, (row.dataset, label)] = _cell(row, metric, digits, test)
    return table.fillna("")


def _cell(row, metric: str, digits: int, test: bool) -> str:
    """'mean ± std | test' in percent."""
    mean, std = 100 * getattr(row, f"cv_{metric}_mean"), 100 * getattr(row, f"cv_{metric}_std")
    cell = f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{cell} | {100 * getattr(row, f'test_{metric}'):.{digits}f}" if test else cell


def per_dataset_metrics(results: pd.DataFrame, models: dict[str, str]) -> dict:
    """Recorded metrics per model tag and dataset (poster split): CV means `svc_accuracy_<tag>_<slug>`,
    `svc_macro_f1_<tag>_<slug>`, held-out `svc_test_accuracy_...`, `svc_test_macro_f1_...` (slug: `slug`)."""
    metrics, poster = {}, results[results["split"] == "random"] if "split" in results else results
    for tag, model in models.items():
        metrics[f"probe_model_{tag}"] = model
        for _, row in poster[poster["model"] == model].iterrows():
            for metric in ("accuracy", "macro_f1"):
                metrics[f"svc_{metric}_{tag}_{slug(row['dataset'])}"] = round(float(row[f"cv_{metric}_mean"]), 4)
                metrics[f"svc_test_{metric}_{tag}_{slug(row['dataset'])}"] = round(float(row[f"test_{metric}"]), 4)
    return metrics


def model_summary(results: pd.DataFrame, confounders: pd.DataFrame) -> pd.DataFrame:
    """Per model and split: mean CV / test accuracy and macro F1 over datasets, chance, and confounder lift."""
    columns = ["cv_accuracy_mean", "cv_macro_f1_mean", "test_accuracy", "test_macro_f1", "chance_accuracy"]
    summary = results.groupby(["model", "split"], sort=False)[columns].mean().unstack("split")
    summary.columns = [f"{metric} ({split})" for metric, split in summary.columns]
    if not confounders.empty:
        summary["confounder lift over chance"] = confounders.groupby("model", sort=False)["lift over chance"].mean()
    return summary
