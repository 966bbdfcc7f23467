"""Datasets for feature probing named by one string: a synth-modalities dataset or a real one on disk."""

from __future__ import annotations

from .registry import open_dataset

REAL = ("brain-mr", "sars-cov-2-ct", "pneumoniamnist", "breast-us", "breakhis", "hicervix", "deepdr", "isic2019")
FORMS = ("a synth-modalities name (xray, ct, ...), one of the poster's datasets (" + ", ".join(REAL) +
         ") optionally as NAME:ROOT, 'image-folder:PATH' or 'medmnist:FLAG'")


def open_probe_dataset(entry: str, **world):
    """Open a probing dataset (all its images) and give it `classes`, `confounders`, `group` and `description`.

    `world` knobs (confounder_strength, n_images, ...) go to the synth-modalities generator.
    """
    from ..errors import ParameterError

    kind, _, argument = entry.partition(":")
    if kind in REAL:
        data = open_dataset(kind, root=argument or None)
        data.description = f"real data: {kind}"
        return data
    if not argument:
        data = open_dataset("synth-modalities", dataset=entry, split="all", **world)
        data.description, data.group = f"synthetic stand-in for {data.modality.stands_for}", data.modality.group
        return data
    if kind == "image-folder":
        data = open_dataset("image-folder", root=argument)
    elif kind == "medmnist":
        data = open_dataset("medmnist", split="test", flag=argument)
        data.classes = sorted(set(data.column("class_name")))
    else:
        raise ParameterError(f"unknown probing dataset {entry!r}; use {FORMS}")
    data.confounders, data.group, data.description = [], None, f"real data: {entry}"
    return data
