"""Takeda et al. (poster #IF250081): the poster's table orchestration, the linear-probe protocol of
`eval.probing` run over every (model, dataset) feature matrix, the confounder and subclass probes, and the
small medical image-text model the demo probes beside the non-medical one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..eval.probing import confounder_probe, linear_probe, probe_row

POSTER_COLUMNS = {  # the poster's dataset column: its slug in metric keys, the stand-in and the real loader
    "BrainMR": ("brainmr", "mr", "brain-mr"), "SARS-COV-2 CT": ("sarscov2ct", "ct", "sars-cov-2-ct"),
    "PneumoniaMNIST": ("pneumoniamnist", "xray", "pneumoniamnist"), "BreastUS": ("breastus", "ultrasound", "breast-us"),
    "BreakHis": ("breakhis", "histology", "breakhis"), "HiCervix": ("hicervix", "cytology", "hicervix"),
    "DeepDR": ("deepdr", "fundus", "deepdr"), "ISIC2019": ("isic2019", "dermoscopy", "isic2019"),
}
POSTER_N = {"BrainMR": (2870, 4), "SARS-COV-2 CT": (2481, 2), "PneumoniaMNIST": (4708, 2), "BreastUS": (780, 3),
            "BreakHis": (7909, 2), "HiCervix": (28160, 29), "DeepDR": (1200, 5), "ISIC2019": (25331, 9)}


def poster_column(dataset: str) -> str:
    """The poster's column a dataset entry stands in for (stand-in name, real name or NAME:ROOT), else the entry."""
    name = dataset.partition(":")[0]
    return next((col for col, (_, synth, real) in POSTER_COLUMNS.items() if name in (synth, real)), dataset)


def slug(dataset: str) -> str:
    """The metric-key slug of a dataset entry: the poster column's (so stand-in and real data share keys)."""
    column = poster_column(dataset)
    return POSTER_COLUMNS[column][0] if column in POSTER_COLUMNS else "".join(c for c in dataset.lower() if c.isalnum())


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


def dataset_table(data: dict) -> pd.DataFrame:
    """Per dataset: the poster column it stands for, the poster's n and classes beside ours, group and confounders."""
    rows = []
    for name, ds in data.items():
        column = poster_column(name)
        n, k = POSTER_N.get(column, (None, None))
        rows.append({"dataset": name, "poster column": column, "poster n": n, "poster classes": k, "images": len(ds),
                     "classes": len(ds.classes), "group": getattr(ds, "group", None) or "",
                     "confounders": ", ".join(c for c in ds.confounders if c != getattr(ds, "group", None))})
    return pd.DataFrame(rows).set_index("dataset")


def model_summary(results: pd.DataFrame, confounders: pd.DataFrame) -> pd.DataFrame:
    """Per model and split: mean CV / test accuracy and macro F1 over datasets, chance, and confounder lift."""
    columns = ["cv_accuracy_mean", "cv_macro_f1_mean", "test_accuracy", "test_macro_f1", "chance_accuracy"]
    summary = results.groupby(["model", "split"], sort=False)[columns].mean().unstack("split")
    summary.columns = [f"{metric} ({split})" for metric, split in summary.columns]
    if not confounders.empty:
        summary["confounder lift over chance"] = confounders.groupby("model", sort=False)["lift over chance"].mean()
    return summary


# ------------------------------------------------------------------ the demo's medical image-text model

MEDICAL_VLM = {"image_encoder": "bundled:efficientnet_lite0", "text_encoder": "bundled:minilm", "image_size": 96,
               "epochs": 10, "batch_size": 128, "lr": 1e-3, "embed_dim": 128}
SMALL_SYNTH_CXR = {"n_studies": 600, "n_test_images": 100}  # a SynthCXR world of its own, small enough for the demo


def train_medical_vlm(out_dir, seed: int = 0, device: str = "cpu", **overrides) -> Path:
    """Train (or reuse) a small medical image-text model: the loss-relaxation notebook's dual encoder (frozen
    towers, projections trained contrastively on SynthCXR image-report pairs with sentence sampling and relaxed
    positives) on a small SynthCXR world of its own (`SMALL_SYNTH_CXR`, under the data root); saved with
    `save_pretrained` into `out_dir`, which is returned. Reused when already there."""
    from ..config import dataset_dir
    from ..models.dual_encoder import CONFIG_NAME
    from ..models.encoders import build_image_encoder, build_text_encoder
    from ..text.observations import CHEXPERT_LABELS
    from ..train import TrainConfig
    from . import loss_relaxation as lr

    out_dir, options = Path(out_dir), {**MEDICAL_VLM, **overrides}
    if (out_dir / CONFIG_NAME).is_file():
        return out_dir
    image = build_image_encoder(options["image_encoder"], device=device, image_size=options["image_size"])
    world = {"root": dataset_dir("synth-cxr-vlm-probe"), **SMALL_SYNTH_CXR, **options.get("world", {})}
    study = lr.prepare_study(image, build_text_encoder(options["text_encoder"], device=device),
                             labels=[n for n in CHEXPERT_LABELS if n != "No Finding"], name="synth-cxr",
                             progress=False, views="frontal", **world)
    config = TrainConfig(epochs=options["epochs"], batch_size=options["batch_size"], lr=options["lr"],
                         warmup_steps=10, device=device, progress=False)
    model, _ = lr.fit_variant(study, lr.ablation_variants()[-1], seed, config, embed_dim=options["embed_dim"])
    model.save_pretrained(out_dir)
    return out_dir


def claims(summary: pd.DataFrame, confounders: pd.DataFrame, subclasses: pd.DataFrame, tags: dict) -> pd.DataFrame:
    """The poster's claims that this run can pose, each with what we measured and whether we agree."""
    acc = summary["cv_accuracy_mean (random)"]
    med, non, rnd = (tags.get(k) for k in ("medical", "encoder", "random"))
    rows = []
    if med in acc and non in acc:
        gap = acc[med] - acc[non]
        rows.append(("Medical and non-medical encoders give similarly discriminative features (mean CV accuracy "
                     "within 5 points)", f"{acc[med]:.3f} vs {acc[non]:.3f}", abs(gap) < 0.05))
    if non in acc and rnd in acc:
        rows.append(("Pretrained features beat a random-init control", f"{acc[non]:.3f} vs {acc[rnd]:.3f}",
                     acc[non] > acc[rnd]))
    if not confounders.empty:
        lift = confounders.groupby("model", sort=False)["lift over chance"].mean()
        rows.append(("Background factors (plane, burned-in words, marks, scanner) are encoded although independent "
                     "of the class (mean confounder lift over chance at association 0)",
                     ", ".join(f"{m}: {v:.3f}" for m, v in lift.items()), bool((lift.drop([rnd] if rnd else [], errors="ignore") > 0.05).all())))
    if not subclasses.empty and "microbe" in set(subclasses["parent"]):
        micro = subclasses[subclasses["parent"] == "microbe"].set_index("model")["lift over chance"]
        rows.append(("HiCervix-like microbe subclasses are linearly separable (lift of CV accuracy over chance "
                     "within the microbe group; the poster finds PMC-15M models fail here, which no demo model is)",
                     ", ".join(f"{m}: {v:.3f}" for m, v in micro.items()), bool((micro > 0.1).any())))
    return pd.DataFrame(rows, columns=["claim (poster)", "this run", "agrees"])
