"""What Jang et al.'s figures show, as data: Fig. 2's sentence sampling on a real report and Fig. 5's seed-mean
training curves (the notebook draws them with `viz`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .arms import AblationResult, arm_name


def sampled_example(report: dict, n: int = 3, seed: int = 0) -> dict:
    """Fig. 2 on a real report: its Findings + Impression text, the sentences, and one draw of n of them."""
    from ...data.openi import report_text
    from ...data.pairs import epoch_text
    from ...text.sentences import split_sentences

    text = report_text(report)
    return {"report (Findings + Impression)": text, "sentences": split_sentences(text),
            f"{n} sampled sentences (one epoch's positive text)": epoch_text(text, n, seed, 0, 0)}


def curves_without_and_with(result: AblationResult, framework: str) -> dict[str, dict[str, np.ndarray]]:
    """Fig. 5: per quantity (train_loss, val_auroc_5), the seed-mean curve of plain fine-tuning ("w/o ours") and of
    both parts of the method ("w/ ours") of one framework."""
    arms = {"w/o ours": arm_name(framework, "none"), "w/ ours": arm_name(framework, "both")}
    curve = training_curves(result, list(arms.values()))
    return {column: {label: curve.loc[curve["variant"] == variant, column].to_numpy() for label, variant in arms.items()}
            for column in ("train_loss", "val_auroc_5")}


def training_curves(result: AblationResult, variants) -> pd.DataFrame:
    """Fig. 5: per epoch, each variant's mean (over seeds) training loss and validation Avg. 5 AUROC."""
    frames = []
    for variant in variants:
        per_seed = pd.concat(list(result.history[variant].values()))
        mean = per_seed.groupby(level=0)[["train_loss", "val_auroc_5"]].mean()
        frames.append(mean.assign(variant=variant))
    return pd.concat(frames).reset_index()
