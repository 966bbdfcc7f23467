"""Jang et al.'s data: the report study of `eval.report_study` plus the paper's other zero-shot test sets (Open-i,
PadChest, VinDr-CXR), each kept to the Table 9 labels its selection rule keeps (papers/loss_relaxation/test_labels.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...data import open_dataset
from ...data.check import screen
from ...errors import MedvlError
from ...eval.report_study import Split, StudyData, prepare_report_study
from ...models.cache import image_tower_features


@dataclass
class ZeroShotSet:
    """One of the paper's zero-shot test sets: its images, the Table 9 labels its rule keeps, and those it drops."""

    name: str
    split: Split
    label_names: list[str]  # as Table 9 prints them
    prompt_names: list[str]  # as the prompts spell them
    positives: dict[str, int]  # kept label -> positives in this set
    dropped: dict[str, int]  # Table 9 label failing the rule -> positives
    rule: str
    paper_n: int


def paper_test_labels(name: str) -> dict:
    """The paper's label list and selection rule of a zero-shot test set (papers/loss_relaxation/test_labels.yaml)."""
    import yaml

    from ...papers import get_paper

    path = get_paper("loss_relaxation").folder / "test_labels.yaml"
    sets = yaml.safe_load(path.read_text())["sets"]
    if name not in sets:
        raise MedvlError(f"zero_shot_sets: {name!r} is not one of the paper's test sets ({', '.join(sets)}; {path})")
    return sets[name]


def _open_i_test(spec: dict) -> tuple[object, np.ndarray, list[str]]:
    """Open-i's frontal report pairs with >= min_text_chars of Findings+Impression, labelled by our labeler on
    that text (the paper used the CheXpert labeler) over Table 9's 13 CheXpert observations."""
    from ...data.labels import CHEXPERT_LABELS
    from ...text.labeler import label_reports

    dataset = open_dataset("open-i", split="all", unit="report")
    subset = dataset.subset([i for i, r in enumerate(dataset.records) if len(r["text"].strip()) >= spec["min_text_chars"]])
    records = subset.records
    spelled = [spec.get("prompt_names", {}).get(n, n) for n in spec["labels"]]
    lookup = {c.lower(): i for i, c in enumerate(CHEXPERT_LABELS)}
    columns = [lookup[n.lower()] for n in spelled]
    labels = np.nan_to_num(label_reports([r["text"] for r in records]), nan=0.0)
    return subset, labels[:, columns].clip(0, 1), spelled


def _native_test(name: str, spec: dict) -> tuple[object, np.ndarray, list[str]]:
    """PadChest's radiologist-labelled frontal images / VinDr-CXR's test set, labelled in their own vocabulary."""
    from ...data.cxr import native_labels

    options = {"padchest": {"split": "all", "labelled_by": "physician"}, "vindr-cxr": {"split": "test"}}[name]
    dataset = open_dataset(name, **options)
    return dataset, native_labels(dataset, spec["labels"]), list(spec["labels"])


def zero_shot_set(name: str, image_encoder=None, progress: bool = False, bad_items: str = "error") -> ZeroShotSet:
    """Open a paper test set (open-i, padchest, vindr-cxr) under $MEDVL_DATA, keep the Table 9 labels its rule keeps
    (more than min_positives positives, and at least one negative) and cache image-tower features if given."""
    spec = paper_test_labels(name)
    dataset, labels, spelled = _open_i_test(spec) if name == "open-i" else _native_test(name, spec)
    dataset, kept = screen(dataset, bad_items)
    labels = labels[kept]
    counts = labels.sum(axis=0).astype(int)
    keep = (counts > spec["min_positives"]) & (counts < len(labels))
    if not keep.any():
        raise MedvlError(f"zero_shot_sets: no label of {name} passes the paper's rule ({spec['rule']}) on the "
                         f"{len(labels)} images found; check the dataset under $MEDVL_DATA/{name}")
    split = Split(dataset, labels[:, keep])
    if image_encoder is not None:
        split.image_features = image_tower_features(image_encoder, dataset, progress=progress)
    table9 = list(spec["labels"])
    return ZeroShotSet(name, split, [t for t, k in zip(table9, keep) if k], [s for s, k in zip(spelled, keep) if k],
                       {t: int(c) for t, c, k in zip(table9, counts, keep) if k},
                       {t: int(c) for t, c, k in zip(table9, counts, keep) if not k}, spec["rule"], spec["n_images"])


def world_options(name: str, knobs: dict) -> dict:
    """Options opening `name` with SynthCXR generator knobs (`worlds.synth_cxr_plan.WorldParams`): none when every
    knob is at its default (the default world), else the changed knobs and a world folder of their own."""
    from ...worlds.common import knob_folder
    from ...worlds.synth_cxr_plan import WorldParams

    defaults = WorldParams()
    changed = {k: v for k, v in knobs.items() if getattr(defaults, k) != v}
    if not changed:
        return {}
    if name != "synth-cxr":
        raise MedvlError(f"world knobs {sorted(changed)} apply to synth-cxr only, not to {name!r}")
    return {"root": knob_folder("synth-cxr", changed), **changed}


def prepare_study(image_encoder, text_encoder, labels=None, name: str = "synth-cxr", test_name: str | None = None,
                  cache: bool = True, progress: bool = True, cached_views: int = 0, sampling_rounds: int = 2,
                  validation_name: str | None = None, zero_shot_sets=(), bad_items: str = "error",
                  **options) -> StudyData:
    """`eval.report_study.prepare_report_study` (train/validate/test with reports of `name`, the held-out test set
    of `test_name`; model selection on `validation_name`'s valid set, e.g. "chexpert" as the paper) plus the
    paper's other test sets named in `zero_shot_sets` (open-i, padchest, vindr-cxr; see `zero_shot_set`).
    Every image and report is opened once before training: `bad_items="error"` fails listing all bad items,
    "skip" drops them (counted in `StudyData.skipped`).
    """
    study = prepare_report_study(image_encoder, text_encoder, labels, name, test_name, cache, progress, cached_views,
                                 sampling_rounds, validation_name, bad_items, **options)
    study.zero_shot_sets = {n: zero_shot_set(n, image_encoder if cache else None, progress, bad_items)
                            for n in zero_shot_sets}
    return study
