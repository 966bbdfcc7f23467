"""An image-report study for contrastive fine-tuning and zero-shot evaluation: train / validate / report-test /
held-out test splits with their report sentences, cached frozen-tower features and zero-shot prompt features.

Every image and report is opened once before training; `bad_items` decides whether a bad item stops the
preparation or is dropped and counted (`data.check.screen`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import open_dataset
from ..data.check import screen
from ..data.pairs import sentence_index
from ..data.transforms import PaperAugmentation
from ..models.cache import image_tower_features, image_view_features, text_tower_features
from .selection import require_scorable
from .zeroshot import prompt_pairs

COMPETITION = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]  # CheXpert's five


@dataclass
class Split:
    """One split: its dataset, labels, report sentences (unique strings + owners) and cached tower features."""

    dataset: object
    labels: np.ndarray
    texts: list[str] | None = None
    sentences: list[str] | None = None
    owners: list[list[int]] | None = None
    image_features: torch.Tensor | None = None
    sentence_features: torch.Tensor | None = None
    view_features: torch.Tensor | None = None  # (N, V, D) cached augmented views (SLIP, UniCLIP)
    view_params: torch.Tensor | None = None  # (N, V, P) their augmentation parameters


@dataclass
class StudyData:
    """Towers, label names and the train / validate / report-test / held-out test splits of a study."""

    image_encoder: torch.nn.Module
    text_encoder: torch.nn.Module
    label_names: list[str]
    train: Split
    validate: Split
    reports_test: Split
    test: Split
    cached: bool
    sampling_rounds: int = 2  # cached demo: distinct sentence draws per report (epoch e uses draw e mod rounds)
    zero_shot_sets: dict = field(default_factory=dict)  # name -> further zero-shot test set (e.g. a paper's others)
    skipped: dict = field(default_factory=dict)  # "dataset/split" -> bad items dropped (bad_items="skip")
    _prompts: dict = field(default_factory=dict)

    def prompt_features(self, names=None) -> dict:
        """Frozen text-tower features of the zero-shot prompts ("{label}", "no {label}") of `names` (default: the
        study's labels), each prompt encoded once per study."""
        pos, neg = prompt_pairs(self.label_names if names is None else names)
        missing = [t for t in dict.fromkeys(pos + neg) if t not in self._prompts]
        if missing:
            self._prompts.update(zip(missing, text_tower_features(self.text_encoder, missing, progress=False)))
        return self._prompts


def report_split(name, split, options, bad_items: str = "error", skipped: dict | None = None) -> Split:
    """A split with reports: dataset, labels, unique sentences and which report owns which; bad items (unreadable
    images, missing/empty/section-less reports) fail here or are dropped, per `bad_items` (`data.check.screen`)."""
    dataset, kept = screen(open_dataset(name, split=split, **options), bad_items)
    texts = open_dataset(name, split=split, images=False, **options)
    reports = [texts[i]["text"] for i in kept]
    if skipped is not None:
        skipped[f"{name}/{split}"] = len(texts) - len(kept)
    unique, owners = sentence_index(reports)
    return Split(dataset, dataset.label_matrix(), reports, unique, owners)


def image_split(name, options, bad_items: str, skipped: dict) -> Split:
    """A labelled image split (validation or held-out test) after the `bad_items` policy."""
    opened = open_dataset(name, **options)
    dataset, kept = screen(opened, bad_items)
    skipped[f"{name}/{options['split']}"] = len(opened) - len(kept)
    return Split(dataset, dataset.label_matrix())


def selection_columns(label_names) -> list[int]:
    """Columns of the labels that select epochs and arms: the five competition labels the study has, else all."""
    names = list(label_names)
    return [names.index(c) for c in COMPETITION if c in names] or list(range(len(names)))


def check_selection_labels(validate: Split, label_names, source: str) -> None:
    """Fail before training when the validation AUROC over the selection labels cannot be computed on `validate`."""
    five = selection_columns(label_names)
    require_scorable(validate.labels[:, five], [label_names[j] for j in five], f"validation set {source}",
                     "choose a validation set whose labels state positives and negatives, e.g. validation_dataset: "
                     "chexpert (radiologist labels; prepare_study's validation_name); a report labeler's blank (not "
                     "mentioned) is read as unknown, not as negative")


HELD_OUT_OPTIONS = {"synth-cxr": {"split": "test", "test_set": "chexpert"}}  # its CheXpert-style test set
VALIDATION_OPTIONS = {"synth-cxr": {"split": "val", "test_set": "chexpert"}}  # its CheXpert-style valid set


def prepare_report_study(image_encoder, text_encoder, labels=None, name: str = "synth-cxr",
                         test_name: str | None = None, cache: bool = True, progress: bool = True,
                         cached_views: int = 0, sampling_rounds: int = 2, validation_name: str | None = None,
                         bad_items: str = "error", **options) -> StudyData:
    """Open train/val/test (with reports) of `name` and the held-out zero-shot test set of `test_name`.

    `test_name` defaults to `name`; SynthCXR's held-out set is its CheXpert-style test set, a real dataset's
    is its "test" split. Model selection uses `name`'s validation split, or `validation_name`'s (e.g. "chexpert":
    its radiologist-labelled valid set; "synth-cxr": its CheXpert-style valid set, opened with `name`'s world knobs
    when it is `name`). Frozen-tower features are cached when `cache`; `cached_views` > 0 also
    caches that many augmented views of each training image (`data.transforms.PaperAugmentation`).
    `bad_items="error"` fails listing all bad items, "skip" drops them (counted in `StudyData.skipped`).
    The validation split's selection labels are checked before anything is cached (`check_selection_labels`).
    """
    skipped: dict[str, int] = {}
    splits = {s: report_split(name, s, options, bad_items, skipped) for s in ("train", "val", "test")}
    if validation_name:
        valid_options = {"split": "val", **VALIDATION_OPTIONS.get(validation_name, {})}
        splits["val"] = image_split(validation_name, {**valid_options, **(options if validation_name == name else {})},
                                    bad_items, skipped)
    test_name = test_name or name
    held_out_options = {"split": "test", **HELD_OUT_OPTIONS.get(test_name, {})}
    splits["held_out"] = image_split(test_name, {**held_out_options, **(options if test_name == name else {})},
                                     bad_items, skipped)
    held_out = splits["held_out"].dataset
    label_names = list(held_out.label_names)
    if labels is not None:
        keep = [label_names.index(label) for label in labels]
        for split in splits.values():
            split.labels = split.labels[:, keep]
        label_names = list(labels)
    check_selection_labels(splits["val"], label_names, f"{validation_name or name}/val")
    if cache:
        for split in splits.values():
            split.image_features = image_tower_features(image_encoder, split.dataset, progress=progress)
        # only sentence-level alignment (on the report test split) uses single sentences; training encodes epoch texts
        report_test = splits["test"]
        report_test.sentence_features = text_tower_features(text_encoder, report_test.sentences, progress=progress)
        if cached_views:
            train = splits["train"]
            train.view_features, train.view_params = image_view_features(
                image_encoder, train.dataset, PaperAugmentation(), cached_views, progress=progress)
    return StudyData(image_encoder, text_encoder, label_names, splits["train"], splits["val"], splits["test"],
                     splits["held_out"], cache, int(sampling_rounds), {}, skipped)
