"""Zhong et al.'s data: image-report splits whose reports carry their perturbations (cached on disk), the labelled
held-out set for classification and, in the cached profile, the frozen text features shared by every model."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...config import cache_dir, dataset_dir
from ...data import open_dataset
from ...errors import DataFormatError, ParameterError
from ...eval.report_study import HELD_OUT_OPTIONS, VALIDATION_OPTIONS
from ...io import atomic_write_json
from ...models.multiscale import FrozenTokenFeatures, image_grid_features
from ...text import perturb as perturb_module
from ...text.perturb import PERTURBATIONS, perturb_all


def cached_perturbations(texts: Sequence[str], seed: int = 0) -> list[dict]:
    """`text.perturb.perturb_all(texts, seed=seed)`, stored once per (texts, seed, perturb.py source) as JSON under
    the cache."""
    texts = list(texts)
    code = Path(perturb_module.__file__).read_text(encoding="utf-8")  # a changed perturbation invalidates the cache
    digest = hashlib.sha256("\n\x00".join([str(seed), code, *texts]).encode()).hexdigest()[:16]
    path = cache_dir("perturbations") / f"{len(texts)}-{digest}.json"
    if not path.is_file():
        atomic_write_json(path, perturb_all(texts, seed=seed))
    # always the file's content (key-sorted JSON), so a first (computing) run and every later (reading) one see the
    # kinds in the same order
    return json.loads(path.read_text(encoding="utf-8"))


def first_words(text: str, max_words: int | None) -> str:
    """The text cut after its first `max_words` whitespace-separated words (None: unchanged)."""
    if not max_words:
        return text
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:int(max_words)])


class PixelImages:
    """`images[i]` -> the preprocessed (3, H, W) pixels of a dataset's item i (decoded images kept in memory)."""

    def __init__(self, dataset, preprocess):
        self.dataset, self.preprocess, self._images = dataset, preprocess, {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        if index not in self._images:
            self._images[index] = self.dataset[index]["image"]
        return self.preprocess(self._images[index])


@dataclass
class ReportSplit:
    """Images (cached grids (N, R, C) or PixelImages), reports, their perturbations and labels of one split."""

    images: object
    texts: list[str]
    perturbed: list[dict]
    labels: np.ndarray
    label_names: list[str]

    def dropped(self) -> dict:
        """Per kind, the reports it cannot change (that negative is dropped for them)."""
        return {kind: sum(p.get(kind) is None for p in self.perturbed) for kind in PERTURBATIONS}


@dataclass
class PerturbedStudy:
    """Towers, the training and held-out report splits, the labelled classification test set (and its validation
    set, where the dataset has one: Table II's thresholds are chosen on it) and, in the cached profile, the frozen
    text features shared by every model."""

    image_tower: torch.nn.Module
    text_tower: torch.nn.Module
    train: ReportSplit
    test: ReportSplit
    classify_test: ReportSplit
    cached: bool
    features: FrozenTokenFeatures | None = None
    classify_val: ReportSplit | None = None


def dataset_options(name: str, options) -> dict:
    """Loader options of `name` (a dict or [name, value] pairs); for a synthetic world with generator knobs, a world
    folder of its own under the data root (the default folder keeps the default knobs)."""
    options = {str(k): v for k, v in (options.items() if isinstance(options, dict) else options or [])}
    if name.startswith("synth-") and options and "root" not in options:
        digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
        options["root"] = dataset_dir(f"{name}-{digest}")
    return options


def _images(dataset, image_tower, cached: bool):
    """Cached frozen-tower grids, or lazily preprocessed pixels."""
    return image_grid_features(image_tower, dataset) if cached else PixelImages(dataset, image_tower.preprocess)


def _with_reports(name: str, split: str, **options):
    """(image dataset, report per record) of a split; records without a non-empty report dropped."""
    dataset = open_dataset(name, split=split, **options)
    texts = open_dataset(name, split=split, images=False, **options)
    by_id = {_report_key(texts.records[i]): texts[i].get("text") for i in range(len(texts))}  # by id, not position
    keep = [r for r in dataset.records if isinstance(by_id.get(_report_key(r)), str) and by_id[_report_key(r)].strip()]
    if not keep:
        raise DataFormatError(f"{name} split {split!r} has no image with a report; check the dataset under the data root")
    dataset.records = keep
    return dataset, [by_id[_report_key(r)] for r in keep]


def _report_key(record: dict) -> str:
    """The report an item belongs to: its `uid` (Open-I items per image), else its `id`."""
    return record.get("uid", record["id"])


def _split(dataset, reports, image_tower, cached, seed, max_reports, max_words) -> ReportSplit:
    """A ReportSplit of the first `max_reports` records, reports cut to `max_words` words, then perturbed."""
    if max_reports:
        dataset.records, reports = dataset.records[:max_reports], reports[:max_reports]
    reports = [first_words(text, max_words) for text in reports]
    return ReportSplit(_images(dataset, image_tower, cached), reports, cached_perturbations(reports, seed),
                       dataset.label_matrix(), list(dataset.label_names))


def held_out_by_count(records: list[dict], n_held_out: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, held-out) record indices: reports (uid) in a seeded order fill the held-out set until it has exactly
    `n_held_out` pairs; no report is on both sides (the rest of a report cut at the boundary is dropped)."""
    uids = list(dict.fromkeys(r.get("uid", r["id"]) for r in records))
    order = [uids[i] for i in np.random.default_rng(seed).permutation(len(uids))]
    held, held_uids = [], set()
    by_uid = {}
    for i, r in enumerate(records):
        by_uid.setdefault(r.get("uid", r["id"]), []).append(i)
    for uid in order:
        if len(held) >= n_held_out:
            break
        held += by_uid[uid][: n_held_out - len(held)]
        held_uids.add(uid)
    if len(held) < n_held_out:
        raise ParameterError(f"n_held_out={n_held_out} but the dataset has only {len(records)} image-report pairs")
    train_ids = [i for i, r in enumerate(records) if r.get("uid", r["id"]) not in held_uids]
    return train_ids, sorted(held)


def prepare_perturbed_study(image_tower, text_tower, name: str = "synth-cxr", cached: bool = True, seed: int = 0,
                            max_train: int | None = None, max_test: int | None = None, max_words: int | None = None,
                            n_held_out: int | None = None, max_length: int = 64, **options) -> PerturbedStudy:
    """Train and held-out report splits of `name` (perturbed) and its labelled test set for classification.

    `n_held_out`: hold out exactly that many pairs of split "all" (whole reports, seeded; the paper's 469 Open-I
    pairs) instead of the dataset's own train/test splits. `max_words`: reports cut first (the demo's budget).
    """
    if n_held_out:
        dataset, reports = _with_reports(name, "all", **options)
        train_ids, test_ids = held_out_by_count(dataset.records, int(n_held_out), seed)
        test_set = copy.copy(dataset)
        records = dataset.records
        dataset.records, reports, test_set.records, test_reports = ([records[i] for i in train_ids],
                                                                   [reports[i] for i in train_ids],
                                                                   [records[i] for i in test_ids],
                                                                   [reports[i] for i in test_ids])
    else:
        dataset, reports = _with_reports(name, "train", **options)
        test_set, test_reports = _with_reports(name, "test", **options)
    train_split = _split(dataset, reports, image_tower, cached, seed, max_train, max_words)
    test_split = _split(test_set, test_reports, image_tower, cached, seed, max_test, max_words)
    classify_val = None
    if n_held_out:  # the held-out pairs' own labels (Open-I: MeSH) serve Table II
        classify = ReportSplit(test_split.images, [], [], test_split.labels, test_split.label_names)
    else:
        classify = _labelled(name, image_tower, cached, {"split": "test", **HELD_OUT_OPTIONS.get(name, {})}, options)
        if name in VALIDATION_OPTIONS:  # its labelled validation set: Table II's thresholds are chosen there
            classify_val = _labelled(name, image_tower, cached, VALIDATION_OPTIONS[name], options)
    features = None
    if cached:
        features = FrozenTokenFeatures(text_tower, min(int(max_length), int(text_tower.max_length)))
        features.precompute([t for split in (train_split, test_split) for t in _all_texts(split)])
    return PerturbedStudy(image_tower, text_tower, train_split, test_split, classify, cached, features, classify_val)


def _labelled(name: str, image_tower, cached: bool, split_options: dict, options: dict) -> ReportSplit:
    """A labelled image set without reports (Table II's test or validation set); labels keep their split tag."""
    dataset = open_dataset(name, **split_options, **options)
    return ReportSplit(_images(dataset, image_tower, cached), [], [], dataset.label_matrix(), list(dataset.label_names))


def _all_texts(split: ReportSplit) -> list[str]:
    """A split's reports and every perturbation of them."""
    return split.texts + [t for p in split.perturbed for t in p.values() if t is not None]
