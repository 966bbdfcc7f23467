"""MEEMS study (Cooper & Vainio): data, captioner, MEEMS and baseline heads trained with the shared engine, tables.

Pipeline: a frozen CNN gives every image a feature grid (cached on disk); a Show-Attend-Tell
captioner learns the training reports' first sentences; each image's MEEMS input is its pooled image
features and the captioner's hidden state after it generated a caption (greedy); the embedder +
MLP classifier and the image-only baseline (same heads, image features alone) are trained for the
binary (No Finding vs Finding) and 14-label tasks. Evaluation: the paper's metrics (AUC as the mean of
the binarised label matrix's column AUCs plus micro AUC on its flattening, F1 and confusion at argmax),
validation-threshold extras, FNR/FPR, trivial references, minority classes, and the SynthCXR rare
stratum (demo: subpulmonic pleural effusion, an elevated hemidiaphragm without a meniscus) against the
common one with bootstrap CIs; claims over several head seeds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..config import dataset_dir, seed_everything
from ..data import open_dataset
from ..data.check import screen
from ..data.labels import CHEXPERT_LABELS
from ..errors import ParameterError
from ..eval.captioning import caption_bleu, mean_caption_iou
from ..eval.metrics import auroc, auroc_per_label, choose_thresholds
from ..losses import captioning_loss
from ..models.cache import image_tower_grids
from ..models.captioner import ShowAttendTell, caption_ids, caption_text
from ..models.meems import MeemsClassifier
from ..text.sentences import split_sentences
from ..text.vocab import Vocabulary, build_vocabulary, word_tokens
from ..train import TrainConfig, train

TASKS = ("binary", "multilabel")
DEMO_WORLD = {"n_studies": 700, "n_test_images": 400, "report_source": "template", "rare_stratum": "subpulmonic",
              "rare_stratum_fraction": 0.03, "rare_stratum_test_fraction": 0.35}
RARE_LABEL = "Pneumothorax"  # the rare stratum's label when the world does not say (SynthCXR's default "drain")


# ------------------------------------------------------------------ data


def world_root(knobs: dict) -> Path:
    """A SynthCXR world folder of its own for these generator knobs (the default folder keeps default knobs)."""
    digest = hashlib.sha256(json.dumps(knobs, sort_keys=True).encode()).hexdigest()[:8]
    return dataset_dir(f"synth-cxr-{digest}")


def first_sentences(text: str, max_words: int = 30) -> str:
    """The caption target: a report's leading whole sentences within `max_words` word tokens, as lower-case tokens.

    The first sentence is always kept (cut at `max_words`); de-identification runs (XXXX) are dropped.
    """
    kept: list[str] = []
    for sentence in split_sentences(text or ""):
        tokens = word_tokens(sentence)
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


def _rare_flags(root: Path, paths: list[str]) -> np.ndarray | None:
    """SynthCXR's per-image rare-stratum flag from synth_truth.csv (None for real datasets)."""
    from ..worlds.synth_cxr import read_truth

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
    """Open train/validate/test of `dataset` (+ SynthCXR's held-out test set), cache grids, build the vocabulary.

    `world`: SynthCXR generator knobs (its own folder under the data root unless `root` is given).
    Labels: `uncertain` policy for -1, then not-stated -> 0 (the usual MIMIC-CXR convention).
    `max_images` keeps a seeded random subset of each split (grids take h*w*D*2 bytes per image on disk).
    `split_sizes` (the paper's four subsets): caption_train > 0 carves D_captioning out of the official train split
    (the rest, or embedding_train images, is D_embedding); validate / test > 0 keep seeded subsets of those splits.
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
              for s in ("validate", "test")}
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
    return MeemsData(splits["train"], splits["validate"], splits["test"], splits.get("held-out test", splits["test"]),
                     vocab, list(CHEXPERT_LABELS), max_words, _rare_label(root) if synth else None, caption, skipped)


def pretrain_encoder(encoder, images, texts, config: TrainConfig, uncertain: str = "zeros") -> None:
    """Fine-tune `encoder` with a 14-label linear head on the images' pixels, then freeze it in eval mode.

    Its cache spec gets a digest of the new weights, so its grids never mix with the pretrained encoder's.
    """
    from ..models.meems import ImageOnlyClassifier

    del texts, uncertain  # the labels come with the images
    seed_everything(config.seed)
    y = torch.as_tensor(np.nan_to_num(images.label_matrix(), nan=0.0), dtype=torch.float32)
    for p in encoder.parameters():
        p.requires_grad_(True)
    model = ImageOnlyClassifier(encoder.train(), y.shape[1])
    train(model, _PixelPairs(images.column("path"), y, model.preprocess), PixelObjective("multilabel"), config)
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    digest = hashlib.sha256()
    for tensor in encoder.state_dict().values():
        digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    encoder.spec = f"{encoder.spec}#pretrained-on-captioning-{digest.hexdigest()[:12]}"


def _rare_label(root: Path) -> str:
    """The rare stratum's label recorded in a SynthCXR world.json."""
    from ..worlds.synth_cxr import read_world

    return (read_world(root) or {}).get("constants", {}).get("rare_stratum_label", RARE_LABEL)


# ------------------------------------------------------------------ captioner


class _CaptionPairs(Dataset):
    """(grid, caption ids) items for teacher forcing."""

    def __init__(self, grids: torch.Tensor, ids: torch.Tensor):
        self.grids, self.ids = grids, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"grid": self.grids[i], "caption": self.ids[i]}


class CaptionObjective:
    """loss_fn for the engine: cross-entropy + alpha_c x doubly stochastic attention penalty."""

    def __init__(self, alpha_c: float = 1.0, pad_id: int = 0):
        self.alpha_c, self.pad_id = alpha_c, pad_id

    def __call__(self, model, batch) -> dict:
        captions = batch["caption"]
        captions = captions[:, : int((captions != self.pad_id).sum(1).max())]  # no steps over all-pad columns
        logits, alphas, _ = model(batch["grid"], captions)
        return captioning_loss(logits, captions[:, 1:], alphas, self.pad_id, self.alpha_c)


def _device(model) -> torch.device:
    """Device of a model's parameters."""
    return next(model.parameters()).device


@torch.no_grad()
def generate_captions(captioner: ShowAttendTell, grids: torch.Tensor, vocab: Vocabulary, max_length: int = 30,
                      batch_size: int = 128) -> tuple[list[str], torch.Tensor]:
    """Greedy captions of many images and the hidden state after each caption's last word (N, H)."""
    was = captioner.training
    captioner.eval()
    texts, states = [], []
    for start in range(0, len(grids), batch_size):
        batch = grids[start:start + batch_size].to(_device(captioner))
        tokens, hidden = captioner.greedy(batch, vocab.stoi["<start>"], vocab.stoi["<end>"], max_length)
        texts += [caption_text(vocab, row) for row in tokens.cpu()]
        states.append(hidden.float().cpu())
    captioner.train(was)
    return texts, torch.cat(states) if states else torch.empty(0, captioner.hidden_dim)


def caption_diversity(captions) -> dict:
    """Distinct captions per image and distinct words used over a list of generated captions."""
    captions = list(captions)
    words = {w for c in captions for w in c.split()}
    return {"distinct_caption_fraction": len(set(captions)) / len(captions) if captions else float("nan"),
            "vocabulary_used": len(words)}


class CaptionValidation:
    """val_fn: teacher-forced validation loss; IoU / BLEU / diversity of greedy captions on fixed validation and training samples.

    The paper draws 1,000 random images from each of the training and validation sets every epoch; here
    the samples are the first `n_sample` images of each (fixed, so epochs compare).
    """

    def __init__(self, split: MeemsSplit, vocab: Vocabulary, max_words: int, objective: CaptionObjective,
                 n_sample: int = 64, train_split: MeemsSplit | None = None):
        self.split, self.vocab, self.max_words, self.objective = split, vocab, max_words, objective
        self.ids = caption_ids(vocab, split.captions, max_words)
        self.sample = list(range(min(n_sample, len(split.captions))))
        self.train_split = train_split
        self.train_sample = list(range(min(n_sample, len(train_split.captions)))) if train_split else []

    def _sample_scores(self, model, split: MeemsSplit, sample: list, prefix: str) -> dict:
        """IoU, BLEU and diversity of greedy captions of one fixed sample."""
        hyps, _ = generate_captions(model, split.grids[sample], self.vocab, self.max_words + 1)
        refs = [split.captions[i] for i in sample]
        diversity = caption_diversity(hyps)
        return {f"{prefix}_caption_iou": mean_caption_iou(hyps, refs), f"{prefix}_bleu": caption_bleu(hyps, refs),
                f"{prefix}_distinct_captions": diversity["distinct_caption_fraction"],
                f"{prefix}_vocabulary_used": diversity["vocabulary_used"]}

    def __call__(self, model, epoch: int) -> dict:
        device = _device(model)
        terms = self.objective(model, {"grid": self.split.grids.to(device), "caption": self.ids.to(device)})
        out = {"val_loss": float(terms["loss"]), "val_cross_entropy": float(terms["cross_entropy"]),
               **self._sample_scores(model, self.split, self.sample, "val")}
        if self.train_split is not None:
            out.update(self._sample_scores(model, self.train_split, self.train_sample, "train_sample"))
        return out


def fit_captioner(data: MeemsData, config: TrainConfig, embed_dim: int = 64, attention_dim: int = 64,
                  hidden_dim: int = 128, dropout: float = 0.3, alpha_c: float = 1.0, word_vectors=None,
                  n_sample: int = 64, cell_dim: int | None = None):
    """Train the captioner on the training captions; returns (captioner in eval mode, TrainResult)."""
    seed_everything(config.seed)
    vocab = data.vocab
    model = ShowAttendTell(len(vocab), data.captioning.grids.shape[1], embed_dim, attention_dim, hidden_dim, dropout,
                           word_vectors, pad_id=vocab.stoi["<pad>"], cell_dim=cell_dim)
    objective = CaptionObjective(alpha_c, vocab.stoi["<pad>"])
    source = data.captioning
    pairs = _CaptionPairs(source.grids, caption_ids(vocab, source.captions, data.max_words))
    validation = CaptionValidation(data.validate, vocab, data.max_words, objective, n_sample, source)
    result = train(model, pairs, objective, config, val_fn=validation)
    return model.eval(), result


def caption_scores(captioner: ShowAttendTell, split: MeemsSplit, vocab: Vocabulary, max_words: int) -> dict:
    """Caption IoU (word sets and labelled findings) and BLEU of greedy captions against a split's references."""
    hyps, _ = generate_captions(captioner, split.grids, vocab, max_words + 1)
    return {"caption_iou_words": round(mean_caption_iou(hyps, split.captions, "words"), 4),
            "caption_iou_findings": round(mean_caption_iou(hyps, split.captions, "findings"), 4),
            "caption_bleu": round(caption_bleu(hyps, split.captions), 2), "caption_n_images": len(hyps)}


def caption_examples(captioner: ShowAttendTell, split: MeemsSplit, vocab: Vocabulary, indices, beam_size: int = 3,
                     max_length: int = 30, label_names=None) -> pd.DataFrame:
    """Reference vs beam-search caption of a few images (with their positive labels when `label_names` is given)."""
    rows = []
    for i in indices:
        beam = captioner.beam_search(split.grids[i].to(_device(captioner)), vocab.stoi["<start>"],
                                     vocab.stoi["<end>"], beam_size, max_length)
        row = {"image": int(i), "reference": split.captions[i], "generated (beam)": caption_text(vocab, beam.tokens)}
        if label_names is not None:
            row["labels"] = ", ".join(n for n, v in zip(label_names, split.labels[i]) if v == 1) or "none"
        rows.append(row)
    return pd.DataFrame(rows)


def distinct_label_examples(labels: np.ndarray, n: int = 6) -> list[int]:
    """Indices of up to `n` images with pairwise different label vectors, first come first served."""
    seen, picked = set(), []
    for i, row in enumerate(np.asarray(labels)):
        key = tuple(np.asarray(row, dtype=int))
        if key not in seen:
            seen.add(key)
            picked.append(i)
        if len(picked) == n:
            break
    return picked


def attention_words(captioner: ShowAttendTell, grid: torch.Tensor, vocab: Vocabulary, n_words: int = 10,
                    beam_size: int = 3, max_length: int = 30) -> tuple[list[str], np.ndarray]:
    """The first `n_words` generated words of one image and their attention maps (n, h, w)."""
    beam = captioner.beam_search(grid.to(_device(captioner)), vocab.stoi["<start>"], vocab.stoi["<end>"],
                                 beam_size, max_length)
    words = [vocab.itos[t] for t in beam.tokens][:n_words]
    return words, beam.alphas[: len(words)].reshape(len(words), *grid.shape[-2:])


# ------------------------------------------------------------------ MEEMS and baseline heads


def task_targets(labels: np.ndarray, task: str) -> np.ndarray:
    """Evaluation targets: binary -> (N, 1) Finding (= not No Finding); multilabel -> the (N, 14) labels."""
    if task not in TASKS:
        raise ParameterError(f"task={task!r}; use one of {TASKS}")
    return 1.0 - labels[:, :1] if task == "binary" else labels


def task_names(task: str, label_names) -> list[str]:
    """Column names of `task_targets`."""
    return ["Finding"] if task == "binary" else list(label_names)


class _HeadPairs(Dataset):
    """(image features, caption hidden state, target) items."""

    def __init__(self, features: torch.Tensor, hidden: torch.Tensor, targets: torch.Tensor):
        self.features, self.hidden, self.targets = features, hidden, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> dict:
        return {"features": self.features[i], "hidden": self.hidden[i], "target": self.targets[i]}


def head_loss(logits: torch.Tensor, target: torch.Tensor, task: str) -> torch.Tensor:
    """binary: 2-way softmax cross-entropy (target Finding 0/1); multilabel: mean BCE over the 14 labels."""
    if task == "binary":
        return F.cross_entropy(logits.float(), target[:, 0].long())
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def head_probabilities(logits: torch.Tensor, task: str) -> np.ndarray:
    """(N, 1) P(Finding) or (N, 14) label probabilities."""
    probs = torch.softmax(logits.float(), 1)[:, 1:] if task == "binary" else torch.sigmoid(logits.float())
    return probs.cpu().numpy()


class HeadObjective:
    """loss_fn for the heads (MEEMS when the model takes the caption state, else the baseline)."""

    def __init__(self, task: str, use_caption: bool):
        self.task, self.use_caption = task, use_caption

    def __call__(self, model, batch) -> torch.Tensor:
        hidden = batch["hidden"] if self.use_caption else None
        return head_loss(model(batch["features"], hidden), batch["target"], self.task)


class HeadValidation:
    """val_fn: validation loss and macro AUROC of the heads."""

    def __init__(self, objective: HeadObjective, features, hidden, targets: torch.Tensor):
        self.objective, self.batch = objective, {"features": features, "hidden": hidden, "target": targets}

    def __call__(self, model, epoch: int) -> dict:
        batch = {k: v.to(_device(model)) for k, v in self.batch.items()}
        loss = float(self.objective(model, batch))
        hidden = batch["hidden"] if self.objective.use_caption else None
        probs = head_probabilities(model(batch["features"], hidden), self.objective.task)
        y = self.batch["target"].numpy()
        return {"val_loss": loss, "val_auroc": float(np.nanmean(auroc_per_label(y, probs).to_numpy()))}


@dataclass
class HeadInputs:
    """Pooled image features and caption hidden states of train / validate / test."""

    features: dict
    hidden: dict


def head_inputs(data: MeemsData, captioner: ShowAttendTell, max_length: int = 31) -> HeadInputs:
    """Pooled features and greedy-caption hidden states for the three classification splits."""
    splits = {"train": data.train, "validate": data.validate, "test": data.test}
    hidden = {k: generate_captions(captioner, s.grids, data.vocab, max_length)[1] for k, s in splits.items()}
    return HeadInputs({k: s.pooled for k, s in splits.items()}, hidden)


def fit_head(data: MeemsData, inputs: HeadInputs, task: str, use_caption: bool, config: TrainConfig,
             sizes: dict | None = None, dropout: float = 0.2):
    """Train MEEMS (use_caption) or the image-only baseline for `task`; returns (model in eval mode, TrainResult)."""
    seed_everything(config.seed)
    sizes = {"embed_hidden": 256, "embed_dim": 64, "classifier_hidden": 32, **(sizes or {})}
    y = {k: torch.as_tensor(task_targets(s.labels, task), dtype=torch.float32)
         for k, s in (("train", data.train), ("validate", data.validate))}
    caption_dim = inputs.hidden["train"].shape[1] if use_caption else 0
    model = MeemsClassifier(inputs.features["train"].shape[1], caption_dim, y["train"].shape[1] + (task == "binary"),
                            dropout=dropout, **sizes)
    objective = HeadObjective(task, use_caption)
    pairs = _HeadPairs(inputs.features["train"], inputs.hidden["train"], y["train"])
    validation = HeadValidation(objective, inputs.features["validate"], inputs.hidden["validate"], y["validate"])
    result = train(model, pairs, objective, config, val_fn=validation)
    return model.eval(), result


@torch.no_grad()
def predict(model: MeemsClassifier, inputs: HeadInputs, split: str, task: str, use_caption: bool) -> np.ndarray:
    """Probabilities of a trained head on one split ("validate" or "test")."""
    model.eval()
    device = _device(model)
    hidden = inputs.hidden[split].to(device) if use_caption else None
    return head_probabilities(model(inputs.features[split].to(device), hidden), task)


@torch.no_grad()
def embeddings(model: MeemsClassifier, inputs: HeadInputs, split: str, use_caption: bool) -> np.ndarray:
    """The embedder's output (N, embed_dim) on one split."""
    device = _device(model)
    hidden = inputs.hidden[split].to(device) if use_caption else None
    return model.embed(inputs.features[split].to(device), hidden).cpu().numpy()


# ------------------------------------------------------------------ the paper's baseline: a CNN fine-tuned on pixels


class _PixelPairs(Dataset):
    """(preprocessed image, target) items read from image paths."""

    def __init__(self, paths, targets: torch.Tensor, preprocess):
        self.paths, self.targets, self.preprocess = list(paths), targets, preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        from ..data.images import load_image

        return {"pixels": self.preprocess(load_image(self.paths[i])), "target": self.targets[i]}


class PixelObjective:
    """loss_fn of the fine-tuned image-only baseline."""

    def __init__(self, task: str):
        self.task = task

    def __call__(self, model, batch) -> torch.Tensor:
        return head_loss(model(batch["pixels"]), batch["target"], self.task)


@torch.no_grad()
def predict_pixels(model, paths, task: str, batch_size: int = 64) -> np.ndarray:
    """Probabilities of an `ImageOnlyClassifier` on image files."""
    model.eval()
    pairs = _PixelPairs(paths, torch.zeros(len(paths), 1), model.preprocess)
    chunks = []
    for start in range(0, len(pairs), batch_size):
        pixels = torch.stack([pairs[i]["pixels"] for i in range(start, min(start + batch_size, len(pairs)))])
        chunks.append(head_probabilities(model(pixels.to(_device(model))), task))
    return np.concatenate(chunks)


class PixelValidation:
    """val_fn of the fine-tuned baseline: validation loss and macro AUROC."""

    def __init__(self, paths, targets: torch.Tensor, task: str):
        self.paths, self.targets, self.task = paths, targets, task

    def __call__(self, model, epoch: int) -> dict:
        probs = torch.as_tensor(predict_pixels(model, self.paths, self.task)).clamp(1e-7, 1 - 1e-7)
        y = self.targets.numpy()
        if self.task == "binary":
            loss = F.binary_cross_entropy(probs[:, 0], self.targets[:, 0])
        else:
            loss = F.binary_cross_entropy(probs, self.targets)
        return {"val_loss": float(loss), "val_auroc": float(np.nanmean(auroc_per_label(y, probs.numpy()).to_numpy()))}


def fit_finetuned_baseline(data: MeemsData, encoder_spec: str, task: str, config: TrainConfig):
    """The paper's baseline: `encoder_spec` (e.g. torchvision:resnet50) + linear head, all layers trained on pixels."""
    from ..models.encoders import build_image_encoder
    from ..models.meems import ImageOnlyClassifier

    seed_everything(config.seed)
    y = {k: torch.as_tensor(task_targets(s.labels, task), dtype=torch.float32)
         for k, s in (("train", data.train), ("validate", data.validate))}
    encoder = build_image_encoder(encoder_spec).train()
    model = ImageOnlyClassifier(encoder, y["train"].shape[1] + (task == "binary"))
    pairs = _PixelPairs(data.train.paths, y["train"], model.preprocess)
    validation = PixelValidation(data.validate.paths, y["validate"], task)
    result = train(model, pairs, PixelObjective(task), config, val_fn=validation)
    return model.eval(), result


# ------------------------------------------------------------------ evaluation tables


def micro_auroc(Y, P) -> float:
    """AUROC of all (image, label) pairs pooled; NaN labels dropped."""
    return auroc(np.asarray(Y, dtype=np.float64).ravel(), np.asarray(P, dtype=np.float64).ravel())


def auc_table(Y, probs: dict, label_names, train_prevalence=None, minority_below: float = 0.05) -> pd.DataFrame:
    """Per-class AUC of each model, then macro and micro rows; `minority` flags classes rarer than `minority_below`."""
    table = pd.DataFrame({name: auroc_per_label(Y, P, label_names) for name, P in probs.items()})
    y = np.asarray(Y, dtype=np.float64)
    table.insert(0, "n positive", np.nansum(y, axis=0).astype(int))
    if train_prevalence is not None:
        table.insert(1, "minority", pd.Series(np.asarray(train_prevalence) < minority_below, index=table.index,
                                              dtype=object))
    models = list(probs)
    table.loc["macro"] = {m: table[m].iloc[: len(label_names)].mean() for m in models}
    table.loc["micro"] = {m: micro_auroc(Y, probs[m]) for m in models}
    return table


def minority_summary(table: pd.DataFrame, models) -> pd.DataFrame:
    """Macro AUC of each model over minority vs other classes (rows of `auc_table` with a `minority` flag)."""
    classes = table.drop(index=["macro", "micro"])
    rows = {}
    for flag, name in ((True, "minority classes"), (False, "other classes")):
        part = classes[classes["minority"] == flag]
        rows[f"{name} ({len(part)})"] = {m: part[m].mean() for m in models}
    return pd.DataFrame(rows).T


def confusion_counts(y: np.ndarray, pred: np.ndarray) -> dict:
    """tp, fp, fn, tn of boolean predictions against 0/1 labels (NaN labels dropped)."""
    keep = ~np.isnan(y)
    y, pred = y[keep] == 1, pred[keep]
    return {"tp": int((pred & y).sum()), "fp": int((pred & ~y).sum()), "fn": int((~pred & y).sum()),
            "tn": int((~pred & ~y).sum())}


def _rates(c: dict) -> dict:
    """F1, FNR and FPR from confusion counts (NaN where undefined)."""
    pos, neg, denom = c["tp"] + c["fn"], c["fp"] + c["tn"], 2 * c["tp"] + c["fp"] + c["fn"]
    return {"f1": 2 * c["tp"] / denom if denom else np.nan, "fnr": c["fn"] / pos if pos else np.nan,
            "fpr": c["fp"] / neg if neg else np.nan}


def operating_point_table(Y_val, P_val, Y, P, label_names) -> pd.DataFrame:
    """Per class: F1-optimal threshold on validation, then F1, FNR, FPR on test (and the same at 0.5)."""
    thresholds = choose_thresholds(Y_val, P_val, "f1")
    y, p = np.asarray(Y, dtype=np.float64), np.asarray(P, dtype=np.float64)
    rows = {}
    for j, name in enumerate(label_names):
        at_op = _rates(confusion_counts(y[:, j], p[:, j] >= thresholds[j]))
        at_half = _rates(confusion_counts(y[:, j], p[:, j] >= 0.5))
        rows[name] = {"threshold": thresholds[j], **at_op, "f1 @0.5": at_half["f1"]}
    table = pd.DataFrame(rows).T
    table.loc["macro"] = table.mean()
    table.loc["macro", "threshold"] = np.nan
    return table


def confusion_matrix(true_class: np.ndarray, pred_class: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n) counts: rows true class, columns predicted class."""
    out = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(out, (np.asarray(true_class, dtype=int), np.asarray(pred_class, dtype=int)), 1)
    return out


def single_label_confusion(Y, P) -> tuple[np.ndarray, np.ndarray]:
    """14-class argmax confusion over images with exactly one positive label; also returns which rows were used."""
    y = np.nan_to_num(np.asarray(Y, dtype=np.float64))
    rows = np.flatnonzero(y.sum(1) == 1)
    return confusion_matrix(y[rows].argmax(1), np.asarray(P)[rows].argmax(1), y.shape[1]), rows


def _auc_ci(y: np.ndarray, p: np.ndarray, n_resamples: int, seed: int) -> dict:
    """AUROC with a 95% percentile bootstrap CI (NaN when a class is missing)."""
    from ..eval.metrics import bootstrap_ci

    if len(np.unique(y)) < 2:
        return {"point": np.nan, "low": np.nan, "high": np.nan}
    ci = bootstrap_ci(y[:, None], p[:, None], "auroc", n_resamples=n_resamples, seed=seed)
    return {k: float(np.ravel(v)[0]) for k, v in ci.items()}


def rare_stratum_table(Y, probs: dict, rare: np.ndarray, label_names, label: str = RARE_LABEL,
                       n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """AUC of `label` with 95% bootstrap CIs for all positives, the common and the rare stratum, each against all negatives.

    Columns: n positive, n negative, then per model AUC / low / high. Without rare-stratum flags (a real
    dataset) the table is empty.
    """
    columns = ["n positive", "n negative", *(f"{k} {m}" for m in probs for k in ("AUC", "low", "high"))]
    if rare is None or label not in list(label_names):
        return pd.DataFrame(columns=columns).rename_axis("group")
    j = list(label_names).index(label)
    y = np.asarray(Y, dtype=np.float64)[:, j]
    negatives, positives = y == 0, y == 1
    groups = {"all positives": positives, "common stratum": positives & ~rare, "rare stratum": positives & rare}
    rows = {}
    for group, mask in groups.items():
        keep = negatives | mask
        row = {"n positive": int(mask.sum()), "n negative": int(negatives.sum())}
        for name, P in probs.items():
            ci = _auc_ci(y[keep], np.asarray(P)[:, j][keep], n_resamples, seed)
            row.update({f"AUC {name}": ci["point"], f"low {name}": ci["low"], f"high {name}": ci["high"]})
        rows[group] = row
    return pd.DataFrame(rows).T[columns].rename_axis("group")


# ------------------------------------------------------------------ the paper's metrics (binarised label matrix, argmax)


def binarised(Y, P, task: str) -> tuple[np.ndarray, np.ndarray]:
    """The paper's binarised label and score matrices: binary -> columns (No Finding, Finding); multilabel unchanged."""
    y, p = np.asarray(Y, dtype=np.float64), np.asarray(P, dtype=np.float64)
    if task == "binary":
        return np.column_stack([1 - y[:, 0], y[:, 0]]), np.column_stack([1 - p[:, 0], p[:, 0]])
    return y, p


def paper_auc(Yb, Pb) -> dict:
    """The paper's AUC: mean of the column AUCs of the binarised matrix, and micro AUC on its flattening."""
    per_column = auroc_per_label(Yb, Pb).to_numpy(dtype=np.float64)
    return {"auc": float(np.nanmean(per_column)), "auc_micro": micro_auroc(Yb, Pb)}


def argmax_onehot(Pb) -> np.ndarray:
    """One-hot of each row's argmax (the paper's operating point)."""
    Pb = np.asarray(Pb)
    out = np.zeros(Pb.shape, dtype=bool)
    out[np.arange(len(Pb)), Pb.argmax(1)] = True
    return out


def column_f1(Yb, pred) -> np.ndarray:
    """F1 of each column of boolean predictions against the binarised labels (NaN for a column with no positives)."""
    y = np.asarray(Yb, dtype=np.float64)
    return np.array([_rates(confusion_counts(y[:, j], pred[:, j]))["f1"] if np.nansum(y[:, j]) else np.nan
                     for j in range(y.shape[1])])


def paper_scores(Y, P, task: str, thresholds=None) -> dict:
    """AUC, micro AUC and F1 at argmax as the paper computes them, plus F1 at validation `thresholds` (our extra).

    Binary: `f1` is the Finding column's F1 (the paper's 0.815 / 0.817 fit that column at its 2:1 prevalence),
    `f1_columns` the mean over both columns. Multilabel: `f1` is the mean over the 14 columns of the
    argmax one-hot prediction. `f1_threshold` thresholds each task column of P at the validation threshold.
    """
    Yb, Pb = binarised(Y, P, task)
    f1 = column_f1(Yb, argmax_onehot(Pb))
    out = {**paper_auc(Yb, Pb), "f1": float(f1[-1] if task == "binary" else np.nanmean(f1)),
           "f1_columns": float(np.nanmean(f1))}
    if thresholds is not None:
        y, p = np.asarray(Y, dtype=np.float64), np.asarray(P, dtype=np.float64)
        out["f1_threshold"] = float(np.nanmean(column_f1(y, p >= np.asarray(thresholds)[None, :])))
    return out


def reference_scores(Y, task: str) -> dict:
    """Trivial references on the same labels: every column positive, and a constant (prevalence) score."""
    Yb, _ = binarised(Y, np.zeros_like(np.asarray(Y, dtype=np.float64)), task)
    everything = column_f1(Yb, np.ones(Yb.shape, dtype=bool))
    prevalence = np.nanmean(Yb, axis=0)
    constant = paper_scores(Y, np.tile(np.nanmean(np.asarray(Y, dtype=np.float64), 0), (len(Yb), 1)), task)
    return {"all positive": {"auc": 0.5, "auc_micro": np.nan, "f1": float(everything[-1] if task == "binary"
                                                                          else np.nanmean(everything)),
                             "f1_columns": float(np.nanmean(everything))},
            "constant prevalence score": {**constant, "auc": 0.5},
            "_prevalence": prevalence}


def fnr_fpr_table(Y, probs: dict, thresholds: dict | None = None) -> pd.DataFrame:
    """Binary FNR / FPR of each model at argmax (P >= 0.5) and at its validation threshold, plus the all-positive reference."""
    y = np.asarray(Y, dtype=np.float64)[:, 0]
    rows = {}
    for name, P in probs.items():
        p = np.asarray(P)[:, 0]
        at_argmax = _rates(confusion_counts(y, p >= 0.5))
        row = {"FNR (argmax)": at_argmax["fnr"], "FPR (argmax)": at_argmax["fpr"]}
        if thresholds is not None:
            at_t = _rates(confusion_counts(y, p >= float(np.asarray(thresholds[name])[0])))
            row.update({"FNR (validation threshold)": at_t["fnr"], "FPR (validation threshold)": at_t["fpr"]})
        rows[name] = row
    rows["all positive (reference)"] = {k: (0.0 if k.startswith("FNR") else 1.0) for k in next(iter(rows.values()))}
    return pd.DataFrame(rows).T


def normalised_confusion(matrix: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix (each true class sums to 1; empty rows stay 0)."""
    m = np.asarray(matrix, dtype=np.float64)
    return np.divide(m, m.sum(1, keepdims=True), out=np.zeros_like(m), where=m.sum(1, keepdims=True) > 0)


# ------------------------------------------------------------------ both tasks, both models

MODELS = ("MEEMS", "baseline")


@dataclass
class HeadsResult:
    """Per (task, model): trained head, history, and validation / test probabilities."""

    models: dict
    histories: dict
    probs: dict  # (task, model, split) -> (N, L) probabilities

    def test_probs(self, task: str) -> dict:
        """{model: test probabilities} of one task."""
        return {m: self.probs[(task, m, "test")] for m in MODELS}


def fit_heads(data: MeemsData, inputs: HeadInputs, config: TrainConfig, sizes: dict | None = None,
              dropout: float = 0.2, tasks=TASKS, baseline_spec: str | None = None,
              baseline_config: TrainConfig | None = None, baseline_epochs: dict | None = None) -> HeadsResult:
    """Train MEEMS and the image-only baseline for each task with the same config and seed.

    The baseline is the same heads on the frozen image features, or, with `baseline_spec` (the paper: a
    ResNet-50), that CNN fine-tuned on pixels with a linear head (`baseline_config`, default `config`).
    `baseline_epochs` {task: epochs} overrides the baseline's epochs per task (paper: 20 binary, 9 14-label).
    """
    from dataclasses import replace

    result = HeadsResult({}, {}, {})
    splits = {"validate": data.validate, "test": data.test}
    for task in tasks:
        for name in MODELS:
            use_caption = name == "MEEMS"
            if use_caption or baseline_spec is None:
                model, fit = fit_head(data, inputs, task, use_caption, config, sizes, dropout)
                probs = {k: predict(model, inputs, k, task, use_caption) for k in splits}
            else:
                task_config = baseline_config or config
                if (baseline_epochs or {}).get(task):
                    task_config = replace(task_config, epochs=int(baseline_epochs[task]))
                model, fit = fit_finetuned_baseline(data, baseline_spec, task, task_config)
                probs = {k: predict_pixels(model, s.paths, task) for k, s in splits.items()}
            result.models[(task, name)], result.histories[(task, name)] = model, fit
            result.probs.update({(task, name, k): p for k, p in probs.items()})
    return result


def training_summary(result: HeadsResult) -> pd.DataFrame:
    """Epochs run, best epoch and early stopping of every head."""
    rows = [{"task": task, "model": name, "epochs run": len(fit.history), "best epoch": fit.best_epoch,
             "stopped early": fit.stopped_early} for (task, name), fit in result.histories.items()]
    return pd.DataFrame(rows)


def thresholds_by_model(result: HeadsResult, data: MeemsData, task: str) -> dict:
    """F1-optimal validation thresholds of each model for one task."""
    y_val = task_targets(data.validate.labels, task)
    return {m: choose_thresholds(y_val, result.probs[(task, m, "validate")], "f1") for m in MODELS}


def paper_table(result: HeadsResult, data: MeemsData, task: str) -> pd.DataFrame:
    """The paper's table (AUC, micro AUC, F1 at argmax) for both models, our validation-threshold F1, and trivial references."""
    y = task_targets(data.test.labels, task)
    thresholds = thresholds_by_model(result, data, task)
    rows = {m: paper_scores(y, result.probs[(task, m, "test")], task, thresholds[m]) for m in MODELS}
    references = reference_scores(y, task)
    rows.update({f"{k} (reference)": v for k, v in references.items() if not k.startswith("_")})
    table = pd.DataFrame(rows).T.rename(columns={"auc": "AUC", "auc_micro": "AUC (micro)", "f1": "F1 (argmax)",
                                                 "f1_columns": "F1 (mean of columns, argmax)",
                                                 "f1_threshold": "F1 (validation threshold)"})
    return table.astype(float)


def summary_metrics(result: HeadsResult, data: MeemsData) -> dict:
    """Flat, rounded headline numbers of both tasks (the paper's metrics, extras, references, stratum) for `runs.record`."""
    out = {}
    for task in TASKS:
        table = paper_table(result, data, task)
        for row, key in zip((*MODELS, "all positive (reference)"), ("meems", "baseline", "all_positive")):
            out[f"{task}_auc_{key}"] = round(float(table.loc[row, "AUC"]), 4)
            out[f"{task}_f1_argmax_{key}"] = round(float(table.loc[row, "F1 (argmax)"]), 4)
            if key != "all_positive":
                out[f"{task}_auc_micro_{key}"] = round(float(table.loc[row, "AUC (micro)"]), 4)
                out[f"{task}_f1_threshold_{key}"] = round(float(table.loc[row, "F1 (validation threshold)"]), 4)
    y = task_targets(data.test.labels, "binary")
    out["binary_prevalence_test"] = round(float(np.mean(y)), 4)
    rates = fnr_fpr_table(y, result.test_probs("binary"))
    for m in MODELS:
        out[f"binary_fnr_argmax_{m.lower()}"] = round(float(rates.loc[m, "FNR (argmax)"]), 4)
        out[f"binary_fpr_argmax_{m.lower()}"] = round(float(rates.loc[m, "FPR (argmax)"]), 4)
    out.update(stratum_metrics(result, data))
    return out


def stratum_metrics(result: HeadsResult, data: MeemsData) -> dict:
    """Rare / common stratum AUCs (with CIs) and sizes for `runs.record` (empty without a rare stratum)."""
    if data.test.rare is None or data.rare_label not in data.label_names:
        return {}
    y = task_targets(data.test.labels, "multilabel")
    table = rare_stratum_table(y, result.test_probs("multilabel"), data.test.rare, data.label_names, data.rare_label)
    out = {}
    for group, key in (("rare stratum", "rare_stratum"), ("common stratum", "common_stratum")):
        for m in MODELS:
            for col, suffix in (("AUC", ""), ("low", "_low"), ("high", "_high")):
                out[f"{key}_auc{suffix}_{m.lower()}"] = round(float(table.loc[group, f"{col} {m}"]), 4)
        out[f"{key}_n_positive"] = int(table.loc[group, "n positive"])
    out["stratum_n_negative"] = int(table.loc["rare stratum", "n negative"])
    return out


# ------------------------------------------------------------------ claims over head seeds


def seed_metrics(result: HeadsResult, data: MeemsData, inputs: HeadInputs) -> dict:
    """The numbers the paper's claims rest on, for one trained set of heads."""
    summary = summary_metrics(result, data)
    prevalence = data.train.labels.mean(0)
    table = auc_table(task_targets(data.test.labels, "multilabel"), result.test_probs("multilabel"), data.label_names,
                      prevalence)
    minority = minority_summary(table, MODELS)
    emb = embeddings(result.models[("multilabel", "MEEMS")], inputs, "train", True)
    out = {**summary, "no_finding_silhouette_meems": no_finding_silhouette(emb, data.train.labels[:, 0])}
    out["minority_auc_meems"], out["other_auc_meems"] = (float(minority.iloc[0]["MEEMS"]),
                                                         float(minority.iloc[1]["MEEMS"]))
    return out


def no_finding_silhouette(embedding: np.ndarray, no_finding: np.ndarray) -> float:
    """Silhouette of the No Finding vs Finding split of L2-normalised embeddings (> 0: the split forms clusters)."""
    from sklearn.metrics import silhouette_score

    e = np.asarray(embedding, dtype=np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(no_finding) == 1
    if labels.all() or not labels.any():
        return float("nan")
    return float(silhouette_score(e, labels, metric="euclidean"))


CLAIMS = (  # (claim, the comparison that tests it on one seed's numbers)
    ("MEEMS > baseline, binary AUC", lambda m: m["binary_auc_meems"] > m["binary_auc_baseline"]),
    ("MEEMS > baseline, binary F1 (argmax)", lambda m: m["binary_f1_argmax_meems"] > m["binary_f1_argmax_baseline"]),
    ("MEEMS > baseline, 14-label AUC", lambda m: m["multilabel_auc_meems"] > m["multilabel_auc_baseline"]),
    ("MEEMS > baseline, 14-label F1 (argmax)",
     lambda m: m["multilabel_f1_argmax_meems"] > m["multilabel_f1_argmax_baseline"]),
    ("MEEMS: lower FNR at higher FPR than the baseline (argmax)",
     lambda m: m["binary_fnr_argmax_meems"] < m["binary_fnr_argmax_baseline"]
     and m["binary_fpr_argmax_meems"] > m["binary_fpr_argmax_baseline"]),
    ("MEEMS beats the all-positive F1 reference (binary)",
     lambda m: m["binary_f1_argmax_meems"] > m["binary_f1_argmax_all_positive"]),
    ('MEEMS embeddings cluster "No Finding" (silhouette > 0)', lambda m: m["no_finding_silhouette_meems"] > 0),
    ("Minority classes not captured: MEEMS minority-class AUC < other classes",
     lambda m: m["minority_auc_meems"] < m["other_auc_meems"]),
    ("Hidden stratum (hypothesis): MEEMS > baseline on the rare stratum",
     lambda m: m.get("rare_stratum_auc_meems", np.nan) > m.get("rare_stratum_auc_baseline", np.nan)),
    ("Hidden stratum: MEEMS rare-stratum AUC < its common-stratum AUC",
     lambda m: m.get("rare_stratum_auc_meems", np.nan) < m.get("common_stratum_auc_meems", np.nan)),
)

CLAIM_VALUES = {  # claim -> the metrics printed beside its verdict
    0: ("binary_auc_meems", "binary_auc_baseline"), 1: ("binary_f1_argmax_meems", "binary_f1_argmax_baseline"),
    2: ("multilabel_auc_meems", "multilabel_auc_baseline"),
    3: ("multilabel_f1_argmax_meems", "multilabel_f1_argmax_baseline"),
    4: ("binary_fnr_argmax_meems", "binary_fnr_argmax_baseline"),
    5: ("binary_f1_argmax_meems", "binary_f1_argmax_all_positive"), 6: ("no_finding_silhouette_meems",),
    7: ("minority_auc_meems", "other_auc_meems"), 8: ("rare_stratum_auc_meems", "rare_stratum_auc_baseline"),
    9: ("rare_stratum_auc_meems", "common_stratum_auc_meems"),
}


def claims_table(per_seed: list[dict]) -> pd.DataFrame:
    """Per claim: how many seeds agree, the verdict (all / none / mixed), and mean ± SD of the numbers behind it."""
    rows = []
    for k, (claim, test) in enumerate(CLAIMS):
        votes = [bool(test(m)) for m in per_seed]
        values = "; ".join(f"{key} {np.mean([m.get(key, np.nan) for m in per_seed]):.3f} ± "
                           f"{np.std([m.get(key, np.nan) for m in per_seed], ddof=1) if len(per_seed) > 1 else 0:.3f}"
                           for key in CLAIM_VALUES[k])
        verdict = "agrees" if all(votes) else "disagrees" if not any(votes) else "mixed"
        rows.append({"claim": claim, "seeds agreeing": f"{sum(votes)}/{len(votes)}", "verdict": verdict,
                     "mean ± SD over seeds": values})
    return pd.DataFrame(rows).set_index("claim")


def fit_head_seeds(data: MeemsData, inputs: HeadInputs, config: TrainConfig, seeds, sizes: dict | None = None,
                   dropout: float = 0.2, baseline_spec: str | None = None, baseline_config: TrainConfig | None = None,
                   baseline_epochs: dict | None = None):
    """Train both models' heads once per seed (the captioner is shared); returns [(seed, HeadsResult)]."""
    from dataclasses import replace

    out = []
    for seed in seeds:
        seeded = replace(config, seed=int(seed))
        base = replace(baseline_config, seed=int(seed)) if baseline_config is not None else None
        out.append((int(seed), fit_heads(data, inputs, seeded, sizes, dropout, baseline_spec=baseline_spec,
                                         baseline_config=base, baseline_epochs=baseline_epochs)))
    return out


def first_with_label(labels: np.ndarray, label_names, label: str) -> int:
    """Index of the first image positive for `label` (0 when none is)."""
    hits = np.flatnonzero(np.asarray(labels)[:, list(label_names).index(label)] == 1)
    return int(hits[0]) if len(hits) else 0


def verdict_sentences(claims: pd.DataFrame) -> list[str]:
    """One plain sentence per claim: where this run agrees with the paper, contradicts it, or is mixed over seeds."""
    words = {"agrees": "agrees with the paper", "disagrees": "CONTRADICTS the paper",
             "mixed": "is mixed over seeds (neither confirms nor contradicts)"}
    return [f"{claim}: this run {words[row.verdict]} ({row['seeds agreeing']} seeds)." for claim, row in claims.iterrows()]


def caption_example_text(examples: pd.DataFrame, width: int = 100) -> str:
    """`caption_examples` rows as wrapped text blocks: labels, generated caption, ground truth (nothing cut)."""
    import textwrap

    blocks = []
    for row in examples.itertuples(index=False):
        labels = f" ({row.labels})" if hasattr(row, "labels") else ""
        blocks.append("\n".join([f"image {row.image}{labels}",
                                 textwrap.fill(f"generated:    {row[2]}", width, subsequent_indent=" " * 14),
                                 textwrap.fill(f"ground truth: {row.reference}", width, subsequent_indent=" " * 14)]))
    return "\n\n".join(blocks)
