"""The poster's dataset columns: which stand-in or real dataset fills each column, its metric-key slug, and the
poster's image and class counts."""

from __future__ import annotations

import pandas as pd

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
