"""Datasets for feature probing named by one string: a synth-modalities dataset or a real one on disk."""

from __future__ import annotations

from .registry import open_dataset

FORMS = "a synth-modalities name (xray, ct, ...), 'image-folder:PATH' or 'medmnist:FLAG'"


def open_probe_dataset(entry: str):
    """Open a probing dataset (all its images) and give it `classes`, `confounders` and `description`."""
    from ..errors import ParameterError

    kind, _, argument = entry.partition(":")
    if not argument:
        data = open_dataset("synth-modalities", dataset=entry, split="all")
        data.description = f"synthetic stand-in for {data.modality.stands_for}"
        return data
    if kind == "image-folder":
        data = open_dataset("image-folder", root=argument)
    elif kind == "medmnist":
        data = open_dataset("medmnist", split="test", flag=argument)
        data.classes = sorted(set(data.column("class_name")))
    else:
        raise ParameterError(f"unknown probing dataset {entry!r}; use {FORMS}")
    data.confounders, data.description = [], f"real data: {entry}"
    return data
