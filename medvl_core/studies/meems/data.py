"""MEEMS data: SynthCXR world folders, caption targets, the splits with their cached feature grids and vocabulary.

Each image gets a frozen CNN's feature grid (cached on disk); its caption target is the report's first
sentences; labels follow the `uncertain` policy, then not-stated -> 0. On SynthCXR the classification test
set is the CheXpert-style held-out set and each image carries its rare-stratum flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...config import dataset_dir
from ...data import open_dataset
from ...data.check import screen
from ...data.labels import CHEXPERT_LABELS
from ...errors import ParameterError
from ...eval.selection import require_validation
from ...models.cache import image_tower_grids
from ...text.sentences import split_sentences
from ...text.vocab import Vocabulary, build_vocabulary, word_tokens
from ...train import TrainConfig
from ...worlds.common import knob_folder
from .pixels import pretrain_encoder

DEMO_WORLD = {"n_studies": 700, "n_test_images": 600, "report_source": "template", "rare_stratum": "subpulmonic",
              "rare_stratum_fraction": 0.03, "rare_stratum_test_fraction": 0.5, "test_abnormal_fraction": 0.67,
              "subpulmonic_raise": 0.3}
RARE_LABEL = "Pneumothorax"  # the rare stratum's label when the world does not say (SynthCXR's default "drain")


def world_root(knobs: dict) -> Path:
    """A SynthCXR world folder of its own for these generator knobs (the default folder keeps default knobs)."""
    return knob_folder("synth-cxr", knobs)


def first_sentences(text: str, max_words: int = 30, punctuation: bool = False) -> str:
    """The caption target: a report's leading whole sentences within `max_words` word tokens, as lower-case tokens.

    The first sentence is always kept (cut at `max_words`); de-identification runs (XXXX) are dropped; punctuation
    tokens are dropped unless `punctuation` (the paper's reports have "punctuation removed", Fig. 1 caption).
    """
    kept: list[str] = []
    for sentence in split_sentences(text or ""):
        tokens = [t for t in word_tokens(sentence) if punctuation or any(c.isalnum() for c in t)]
        if kept and len(kept) + len(tokens) > max_words:
            break
        kept += tokens
    return " ".join(kept[:max_words])


@dataclass
class MeemsSplit:
    """One split: image paths, feature grids (N, D, h, w), labels (N, 14), captions, rare-stratum flags."""

    name: str
    paths: list[str]
    grids: torch.Tensor
    labels: np.ndarray
    captions: list[str] | None = None
    rare: np.ndarray | None = None

    @property
    def pooled(self) -> torch.Tensor:
        """Global-average-pooled image features (N, D)."""
        return self.grids.mean(dim=(2, 3))


@dataclass
class MeemsData:
    """Splits, caption vocabulary and label names of a study."""

    train: MeemsSplit
    validate: MeemsSplit
    reports_test: MeemsSplit  # test images with reports: captioning metrics
    test: MeemsSplit  # classification test set (SynthCXR: its CheXpert-style held-out set)
    vocab: Vocabulary
    label_names: list[str]
    max_words: int
    rare_label: str | None = None  # the label whose positives the rare stratum belongs to (SynthCXR only)
    caption_train: MeemsSplit | None = None  # D_captioning when it is its own split (paper), else None: `train` serves both
    skipped: dict = field(default_factory=dict)  # split -> bad items dropped before training (bad_items="skip")

    @property
    def captioning(self) -> MeemsSplit:
        """The split the captioner (and its vocabulary) learns from."""
        return self.caption_train if self.caption_train is not None else self.train


def validation_split(data: MeemsData, what: str) -> MeemsSplit:
    """The split models, epochs and thresholds are selected on (`data.validate`); refuses a test split."""
    split = data.validate
    require_validation(split.labels, what=what, split="test" if "test" in split.name else split.name)
    return split


def _rare_flags(root: Path, paths: list[str]) -> np.ndarray | None:
    """SynthCXR's per-image rare-stratum flag from synth_truth.csv (None for real datasets)."""
    from ...worlds.synth_cxr import read_truth

    if not (root / "synth_truth.csv").is_file():
        return None
    truth = read_truth(root).set_index("image")["rare_stratum"]
    return np.array([bool(truth[Path(p).relative_to(root).as_posix()]) for p in paths])


def _limit(dataset, limit: int | None, seed: int):
    """Keep a seeded random `limit` of a record dataset's items (all when None)."""
    if limit is not None and limit < len(dataset.records):
        keep = np.sort(np.random.default_rng(seed).choice(len(dataset.records), size=limit, replace=False))
        dataset.records = [dataset.records[i] for i in keep]
    return dataset


def _split(name: str, dataset, encoder, root: Path, max_words: int, progress: bool, texts=None) -> MeemsSplit:
    """Grids, labels (NaN -> 0), captions and rare flags of one opened split."""
    paths = dataset.column("path")
    grids = image_tower_grids(encoder, dataset, progress=progress)
    labels = np.nan_to_num(dataset.label_matrix(), nan=0.0)
    captions = [first_sentences(t, max_words) for t in texts] if texts is not None else None
    return MeemsSplit(name, paths, grids, labels, captions, _rare_flags(root, paths))


def _opened(dataset: str, root: Path, split: str, options: dict, max_images: int | None, seed: int,
            bad_items: str = "error", skipped: dict | None = None, **extra):
    """(images, texts) datasets of one split, both limited to the same seeded subset and screened for bad items
    (`data.check.screen`: missing/unreadable images, missing/empty reports fail here or are dropped and counted)."""
    images = _limit(open_dataset(dataset, root=root, split=split, **options, **extra), max_images, seed)
    texts = _limit(open_dataset(dataset, root=root, split=split, images=False, **options, **extra), max_images, seed)
    images, kept = screen(images, bad_items)
    if skipped is not None and len(kept) < len(texts.records):
        skipped[split] = len(texts.records) - len(kept)
    return images, texts.subset(kept)


def _partitions(n: int, sizes: dict, seed: int) -> dict:
    """Disjoint seeded row sets of the official train split: D_captioning first, then D_embedding (0 = the rest)."""
    order = np.random.default_rng([seed, 11]).permutation(n)
    n_caption = min(int(sizes.get("caption_train") or 0), n)
    n_embed = int(sizes.get("embedding_train") or 0) or n - n_caption
    if n_caption + n_embed > n:
        raise ParameterError(f"split sizes: caption_train {n_caption} + embedding_train {n_embed} > the {n} training "
                             "images there are; lower them or set them to 0")
    return {"caption": np.sort(order[:n_caption]), "train": np.sort(order[n_caption:n_caption + n_embed])}


def prepare_meems_data(encoder, dataset: str = "synth-cxr", root=None, world: dict | None = None,
                       max_words: int = 30, vocab_min_count: int = 2, uncertain: str = "zeros",
                       max_images: int | None = None, seed: int = 0, progress: bool = True,
                       split_sizes: dict | None = None, pretrain_config: TrainConfig | None = None,
                       bad_items: str = "error") -> MeemsData:
    """Open train/val/test of `dataset` (+ SynthCXR's held-out test set), cache grids, build the vocabulary.

    `world`: SynthCXR generator knobs (its own folder under the data root unless `root` is given).
    Labels: `uncertain` policy for -1, then not-stated -> 0 (the usual MIMIC-CXR convention).
    `max_images` keeps a seeded random subset of each split (grids take h*w*D*2 bytes per image on disk).
    `split_sizes` (the paper's four subsets): caption_train > 0 carves D_captioning out of the official train split
    (the rest, or embedding_train images, is D_embedding); val / test > 0 keep seeded subsets of those splits.
    `pretrain_config`: first fine-tune `encoder` on D_captioning's 14 labels (pixels), then freeze it (the paper's
    ResNet-50 "pre-trained on D_captioning").
    `bad_items`: "error" fails before any training listing every unreadable/missing image and missing/empty report;
    "skip" drops them (counted in `MeemsData.skipped`).
    """
    synth = dataset == "synth-cxr"
    sizes = dict(split_sizes or {})
    knobs = dict(world or {}) if synth else {}
    root = Path(root).expanduser() if root is not None else (world_root(knobs) if knobs else dataset_dir(dataset))
    options = {"uncertain": uncertain, **knobs}
    skipped = {}
    opened = {s: _opened(dataset, root, s, options, max_images or sizes.get(s) or None, seed, bad_items, skipped)
              for s in ("val", "test")}
    train_images, train_texts = _opened(dataset, root, "train", options, max_images, seed, bad_items, skipped)
    rows = _partitions(len(train_images.records), sizes, seed)
    opened["train"] = (train_images.subset(rows["train"]), train_texts.subset(rows["train"]))
    if len(rows["caption"]):
        opened["caption"] = (train_images.subset(rows["caption"]), train_texts.subset(rows["caption"]))
    if synth:
        opened["held-out test"] = (_limit(open_dataset(dataset, root=root, split="test", test_set="chexpert", **options),
                                          max_images or sizes.get("test") or None, seed), None)
    if pretrain_config is not None:
        pretrain_encoder(encoder, *opened.get("caption", opened["train"]), pretrain_config, uncertain)
    splits = {name: _split(name, images, encoder, root, max_words, progress,
                           None if texts is None else [texts[i]["text"] for i in range(len(texts))])
              for name, (images, texts) in opened.items()}
    caption = splits.get("caption")
    vocab = build_vocabulary((caption or splits["train"]).captions, min_count=vocab_min_count)
    return MeemsData(splits["train"], splits["val"], splits["test"], splits.get("held-out test", splits["test"]),
                     vocab, list(CHEXPERT_LABELS), max_words, _rare_label(root) if synth else None, caption, skipped)


def _rare_label(root: Path) -> str:
    """The rare stratum's label recorded in a SynthCXR world.json."""
    from ...worlds.synth_cxr import read_world

    return (read_world(root) or {}).get("constants", {}).get("rare_stratum_label", RARE_LABEL)
