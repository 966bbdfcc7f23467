"""Zhong et al.'s figure of the pre-training: the loss terms per epoch and variant."""

from __future__ import annotations

import pandas as pd

from .arms import VARIANTS


def loss_terms_figure(history: pd.DataFrame, title: str = ""):
    """One axis per loss term (global, local, perturbation), one line per variant that trains that term."""
    import matplotlib.pyplot as plt

    terms = ("global", "local", "perturbation")
    colours = dict(zip(VARIANTS, ("#1b9e77", "#d95f02", "#7570b3", "#e7298a"), strict=True))
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for ax, term in zip(axes, terms, strict=True):
        for variant, part in history[history["term"] == term].groupby("variant", sort=False):
            if (part["value"] != 0).any():
                ax.plot(part["epoch"], part["value"], marker="o", ms=3, color=colours.get(variant), label=variant)
        ax.set_title(f"L_{term[:4] if term == 'perturbation' else term}", fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.tick_params(labelsize=9)
        ax.legend(fontsize=9)
    axes[0].set_ylabel("training loss (unweighted)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
