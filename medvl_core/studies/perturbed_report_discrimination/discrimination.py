"""Zhong et al.'s perturbed report discrimination (Table IV, zero-shot): for each held-out image, the candidates
are its original report and each perturbation that changes it; the model picks the candidate with the highest
cosine of GLOBAL image and text embeddings (image-text, as the paper states; the reference code compared text
with text). Ties share the credit (k candidates tied at the top, the original among them: 1/k)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ...eval.metrics import bootstrap_ci
from ...models.modules import device_of
from ...models.multiscale import MultiScaleEncoder
from ...text.perturb import PERTURBATIONS
from .arms import metric_name
from .prepare import ReportSplit

OVERALL = "overall (all candidates)"
TABLE_IV_QUANTILES = ((1 - 0.95) / 2, (1 + 0.95) / 2)  # the 95% CI's levels, as Table IV has always computed them


@torch.no_grad()
def image_embeddings(model: MultiScaleEncoder, images, batch_size: int = 128) -> torch.Tensor:
    """Normalised global embeddings (N, D) of cached grids or PixelImages."""
    device, chunks = device_of(model), []
    for start in range(0, len(images), batch_size):
        rows = range(start, min(start + batch_size, len(images)))
        batch = images[start:rows.stop] if torch.is_tensor(images) else torch.stack([images[i] for i in rows])
        chunks.append(model.encode_images(batch.to(device)).float().cpu())
    return torch.cat(chunks)


@torch.no_grad()
def text_embeddings(model: MultiScaleEncoder, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Normalised global embeddings (N, D) of strings."""
    texts = list(texts)
    return torch.cat([model.encode_text(texts[i:i + batch_size]).float().cpu() for i in range(0, len(texts), batch_size)])


def discrimination_scores(model: MultiScaleEncoder, split: ReportSplit) -> pd.DataFrame:
    """One row per (image, candidate): kind ("original" or a perturbation kind) and image-text cosine."""
    model.eval()
    images = image_embeddings(model, split.images)
    rows = [(i, "original", text) for i, text in enumerate(split.texts)]
    rows += [(i, kind, text) for i, versions in enumerate(split.perturbed) for kind, text in versions.items()
             if text is not None]
    texts = text_embeddings(model, [text for _, _, text in rows])
    index = torch.tensor([i for i, _, _ in rows])
    cosine = (images[index] * texts).sum(-1).numpy()
    return pd.DataFrame({"image": index.numpy(), "kind": [kind for _, kind, _ in rows], "cosine": cosine})


def original_credit(scores: pd.DataFrame) -> pd.Series:
    """Per image: 1 / (candidates tied at the top) when the original is among them, else 0 (ties shared fairly)."""
    best = scores.groupby("image")["cosine"].transform("max")
    top = scores.assign(top=scores["cosine"] == best)
    n_top = top.groupby("image")["top"].sum()
    return top[top["kind"] == "original"].set_index("image")["top"] / n_top


def discrimination_accuracy(scores: pd.DataFrame) -> pd.DataFrame:
    """Per kind, share of images whose original report beats that perturbation (ties count half); overall, share
    whose original is the top candidate among all (ties shared); with chance levels."""
    original = scores[scores["kind"] == "original"].set_index("image")["cosine"]
    perturbed = scores[scores["kind"] != "original"]
    margin = original.loc[perturbed["image"]].to_numpy() - perturbed["cosine"].to_numpy()
    wins = perturbed.assign(win=np.where(margin > 0, 1.0, np.where(margin == 0, 0.5, 0.0)))
    rows = [{"kind": kind, "accuracy": wins.loc[wins["kind"] == kind, "win"].mean(),
             "chance": 0.5, "n_images": int((wins["kind"] == kind).sum())}
            for kind in PERTURBATIONS if (wins["kind"] == kind).any()]
    chance = (1.0 / scores.groupby("image").size()).mean()
    rows.append({"kind": OVERALL, "accuracy": original_credit(scores).mean(), "chance": chance,
                 "n_images": len(original)})
    return pd.DataFrame(rows)


def discrimination_table(fits: dict, split: ReportSplit) -> pd.DataFrame:
    """Per kind (our extra) + overall: rows = kinds, columns = variants' accuracies, plus chance and image counts."""
    tables = {variant: discrimination_accuracy(discrimination_scores(model, split)) for variant, (model, _) in fits.items()}
    first = next(iter(tables.values()))
    table = pd.DataFrame({variant: t.set_index("kind")["accuracy"] for variant, t in tables.items()})
    return table.assign(chance=first.set_index("kind")["chance"], n_images=first.set_index("kind")["n_images"])


def table_iv(fits: dict, split: ReportSplit, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Table IV layout: one row per method, overall accuracy with its 95% bootstrap CI over images, chance, n."""
    rows = {}
    for variant, (model, _) in fits.items():
        scores = discrimination_scores(model, split)
        credit = original_credit(scores)
        ci = bootstrap_ci(credit, metric="mean", n_resamples=int(n_boot), seed=seed, quantiles=TABLE_IV_QUANTILES)
        rows[variant] = {"accuracy": credit.mean(), "ci_low": ci["low"], "ci_high": ci["high"],
                         "chance": (1.0 / scores.groupby("image").size()).mean(), "n_images": len(credit)}
    return pd.DataFrame(rows).T


def variant_agreement(fits: dict, split: ReportSplit, a: str = "ours", b: str = "ours w/o local") -> dict:
    """How far two variants' Table IV decisions differ: images whose top candidate differs, mean |cosine difference|
    over all (image, candidate) rows, and images the original wins under one variant only."""
    first, second = (discrimination_scores(fits[v][0], split) for v in (a, b))
    top = [s.loc[s.groupby("image")["cosine"].idxmax(), ["image", "kind"]].set_index("image")["kind"] for s in (first, second)]
    wins = [original_credit(s) > 0 for s in (first, second)]
    return {"n_images": len(top[0]), "top_candidate_differs": int((top[0] != top[1]).sum()),
            "mean_abs_cosine_difference": float((first["cosine"] - second["cosine"]).abs().mean()),
            f"original_wins_only_{metric_name(a)}": int((wins[0] & ~wins[1]).sum()),
            f"original_wins_only_{metric_name(b)}": int((wins[1] & ~wins[0]).sum())}
