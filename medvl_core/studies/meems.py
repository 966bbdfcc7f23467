"""MEEMS study (Cooper & Vainio): data, captioner, MEEMS and baseline heads trained with the shared engine, tables.

Pipeline: a frozen CNN gives every image a feature grid (cached on disk); a Show-Attend-Tell
captioner learns the training reports' first sentences; each image's MEEMS input is its pooled image
features and the captioner's hidden state after it generated a caption (greedy); the embedder +
MLP classifier and the image-only baseline (same heads, image features alone) are trained for the
binary (No Finding vs Finding) and 14-label tasks. Evaluation: per-class / macro / micro AUC, F1,
FNR/FPR at validation-chosen operating points, confusion matrices, minority classes, and the
SynthCXR rare stratum (treated Pneumothorax with a chest drain) against the common one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..config import dataset_dir, seed_everything
from ..data import open_dataset
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
DEMO_WORLD = {"n_studies": 700, "n_test_images": 400, "rare_stratum_fraction": 0.5}
RARE_LABEL = "Pneumothorax"


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


def prepare_meems_data(encoder, dataset: str = "synth-cxr", root=None, world: dict | None = None,
                       max_words: int = 30, vocab_min_count: int = 2, uncertain: str = "zeros",
                       max_images: int | None = None, seed: int = 0, progress: bool = True) -> MeemsData:
    """Open train/validate/test of `dataset` (+ SynthCXR's held-out test set), cache grids, build the vocabulary.

    `world`: SynthCXR generator knobs (its own folder under the data root unless `root` is given).
    Labels: `uncertain` policy for -1, then not-stated -> 0 (the usual MIMIC-CXR convention).
    `max_images` keeps a seeded random subset of each split (grids take h*w*D*2 bytes per image on disk).
    """
    synth = dataset == "synth-cxr"
    knobs = dict(world or {}) if synth else {}
    root = Path(root).expanduser() if root is not None else (world_root(knobs) if knobs else dataset_dir(dataset))
    options = {"uncertain": uncertain, **knobs}
    splits = {}
    for split in ("train", "validate", "test"):
        opened = _limit(open_dataset(dataset, root=root, split=split, **options), max_images, seed)
        texts = _limit(open_dataset(dataset, root=root, split=split, images=False, **options), max_images, seed)
        splits[split] = _split(split, opened, encoder, root, max_words, progress,
                               [texts[i]["text"] for i in range(len(texts))])
    held_out = splits["test"]
    if synth:
        opened = _limit(open_dataset(dataset, root=root, split="test", test_set="chexpert", **options), max_images, seed)
        held_out = _split("held-out test", opened, encoder, root, max_words, progress)
    vocab = build_vocabulary(splits["train"].captions, min_count=vocab_min_count)
    return MeemsData(splits["train"], splits["validate"], splits["test"], held_out, vocab, list(CHEXPERT_LABELS),
                     max_words)


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


class CaptionValidation:
    """val_fn: teacher-forced validation loss, and caption IoU / BLEU of greedy captions on a fixed sample."""

    def __init__(self, split: MeemsSplit, vocab: Vocabulary, max_words: int, objective: CaptionObjective,
                 n_sample: int = 64):
        self.split, self.vocab, self.max_words, self.objective = split, vocab, max_words, objective
        self.ids = caption_ids(vocab, split.captions, max_words)
        self.sample = list(range(min(n_sample, len(split.captions))))

    def __call__(self, model, epoch: int) -> dict:
        device = _device(model)
        terms = self.objective(model, {"grid": self.split.grids.to(device), "caption": self.ids.to(device)})
        hyps, _ = generate_captions(model, self.split.grids[self.sample], self.vocab, self.max_words + 1)
        refs = [self.split.captions[i] for i in self.sample]
        return {"val_loss": float(terms["loss"]), "val_cross_entropy": float(terms["cross_entropy"]),
                "val_caption_iou": mean_caption_iou(hyps, refs), "val_bleu": caption_bleu(hyps, refs)}


def fit_captioner(data: MeemsData, config: TrainConfig, embed_dim: int = 64, attention_dim: int = 64,
                  hidden_dim: int = 128, dropout: float = 0.3, alpha_c: float = 1.0, word_vectors=None,
                  n_sample: int = 64, cell_dim: int | None = None):
    """Train the captioner on the training captions; returns (captioner in eval mode, TrainResult)."""
    seed_everything(config.seed)
    vocab = data.vocab
    model = ShowAttendTell(len(vocab), data.train.grids.shape[1], embed_dim, attention_dim, hidden_dim, dropout,
                           word_vectors, pad_id=vocab.stoi["<pad>"], cell_dim=cell_dim)
    objective = CaptionObjective(alpha_c, vocab.stoi["<pad>"])
    pairs = _CaptionPairs(data.train.grids, caption_ids(vocab, data.train.captions, data.max_words))
    validation = CaptionValidation(data.validate, vocab, data.max_words, objective, n_sample)
    result = train(model, pairs, objective, config, val_fn=validation)
    return model.eval(), result


def caption_scores(captioner: ShowAttendTell, split: MeemsSplit, vocab: Vocabulary, max_words: int) -> dict:
    """Caption IoU (word sets and labelled findings) and BLEU of greedy captions against a split's references."""
    hyps, _ = generate_captions(captioner, split.grids, vocab, max_words + 1)
    return {"caption_iou_words": round(mean_caption_iou(hyps, split.captions, "words"), 4),
            "caption_iou_findings": round(mean_caption_iou(hyps, split.captions, "findings"), 4),
            "caption_bleu": round(caption_bleu(hyps, split.captions), 2), "caption_n_images": len(hyps)}


def caption_examples(captioner: ShowAttendTell, split: MeemsSplit, vocab: Vocabulary, indices, beam_size: int = 3,
                     max_length: int = 30) -> pd.DataFrame:
    """Reference vs beam-search caption of a few images."""
    rows = []
    for i in indices:
        beam = captioner.beam_search(split.grids[i].to(_device(captioner)), vocab.stoi["<start>"],
                                     vocab.stoi["<end>"], beam_size, max_length)
        rows.append({"image": i, "reference": split.captions[i], "generated (beam)": caption_text(vocab, beam.tokens)})
    return pd.DataFrame(rows)


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


def binary_confusions(Y, P, threshold: float) -> dict:
    """Binary confusion matrices: at argmax (P >= 0.5) and at the chosen operating point."""
    y = np.asarray(Y)[:, 0].astype(int)
    p = np.asarray(P)[:, 0]
    return {"argmax": confusion_matrix(y, p >= 0.5, 2), "operating point": confusion_matrix(y, p >= threshold, 2)}


def single_label_confusion(Y, P) -> tuple[np.ndarray, np.ndarray]:
    """14-class argmax confusion over images with exactly one positive label; also returns which rows were used."""
    y = np.nan_to_num(np.asarray(Y, dtype=np.float64))
    rows = np.flatnonzero(y.sum(1) == 1)
    return confusion_matrix(y[rows].argmax(1), np.asarray(P)[rows].argmax(1), y.shape[1]), rows


def rare_stratum_table(Y, probs: dict, rare: np.ndarray, label_names, thresholds: dict | None = None,
                       label: str = RARE_LABEL) -> pd.DataFrame:
    """AUC (and sensitivity at each model's threshold) of `label`: all positives vs the common vs the rare stratum.

    Each row scores one group of positives against all negatives of `label`. Without rare-stratum flags
    (a real dataset) the table is empty.
    """
    if rare is None:
        return pd.DataFrame(columns=["n positive", *(f"AUC {name}" for name in probs)]).rename_axis("group")
    j = list(label_names).index(label)
    y = np.asarray(Y, dtype=np.float64)[:, j]
    negatives, positives = y == 0, y == 1
    groups = {"all positives": positives, "common stratum": positives & ~rare, "rare stratum (chest drain)": positives & rare}
    rows = []
    for group, mask in groups.items():
        keep = negatives | mask
        row = {"group": group, "n positive": int(mask.sum())}
        for name, P in probs.items():
            p = np.asarray(P)[:, j]
            row[f"AUC {name}"] = auroc(y[keep], p[keep])
            if thresholds is not None:
                row[f"sensitivity {name}"] = float((p[mask] >= thresholds[name][j]).mean()) if mask.any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("group")



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
              baseline_config: TrainConfig | None = None) -> HeadsResult:
    """Train MEEMS and the image-only baseline for each task with the same config and seed.

    The baseline is the same heads on the frozen image features, or, with `baseline_spec` (the paper: a
    ResNet-50), that CNN fine-tuned on pixels with a linear head (`baseline_config`, default `config`).
    """
    result = HeadsResult({}, {}, {})
    splits = {"validate": data.validate, "test": data.test}
    for task in tasks:
        for name in MODELS:
            use_caption = name == "MEEMS"
            if use_caption or baseline_spec is None:
                model, fit = fit_head(data, inputs, task, use_caption, config, sizes, dropout)
                probs = {k: predict(model, inputs, k, task, use_caption) for k in splits}
            else:
                model, fit = fit_finetuned_baseline(data, baseline_spec, task, baseline_config or config)
                probs = {k: predict_pixels(model, s.paths, task) for k, s in splits.items()}
            result.models[(task, name)], result.histories[(task, name)] = model, fit
            result.probs.update({(task, name, k): p for k, p in probs.items()})
    return result


def embedding_views(result: HeadsResult, inputs: HeadInputs, task: str = "binary", split: str = "test") -> dict:
    """{model: embedder output} of the heads that have a MEEMS-style embedder (a fine-tuned CNN has none)."""
    return {name: embeddings(result.models[(task, name)], inputs, split, name == "MEEMS") for name in MODELS
            if isinstance(result.models[(task, name)], MeemsClassifier)}


def training_summary(result: HeadsResult) -> pd.DataFrame:
    """Epochs run, best epoch and early stopping of every head."""
    rows = [{"task": task, "model": name, "epochs run": len(fit.history), "best epoch": fit.best_epoch,
             "stopped early": fit.stopped_early} for (task, name), fit in result.histories.items()]
    return pd.DataFrame(rows)


def thresholds_by_model(result: HeadsResult, data: MeemsData, task: str) -> dict:
    """F1-optimal validation thresholds of each model for one task."""
    y_val = task_targets(data.validate.labels, task)
    return {m: choose_thresholds(y_val, result.probs[(task, m, "validate")], "f1") for m in MODELS}


def operating_points(result: HeadsResult, data: MeemsData, task: str) -> pd.DataFrame:
    """`operating_point_table` of both models side by side (columns model / metric)."""
    y_val, y = task_targets(data.validate.labels, task), task_targets(data.test.labels, task)
    names = task_names(task, data.label_names)
    tables = {m: operating_point_table(y_val, result.probs[(task, m, "validate")], y, result.probs[(task, m, "test")],
                                       names) for m in MODELS}
    return pd.concat(tables, axis=1)


def summary_metrics(result: HeadsResult, data: MeemsData) -> dict:
    """Flat, rounded headline numbers of both tasks for `runs.record`."""
    out = {}
    for task in TASKS:
        y, probs = task_targets(data.test.labels, task), result.test_probs(task)
        ops = operating_points(result, data, task)
        for m in MODELS:
            key = m.lower()
            out[f"{task}_macro_auc_{key}"] = round(float(auroc_per_label(y, probs[m]).mean()), 4)
            out[f"{task}_micro_auc_{key}"] = round(micro_auroc(y, probs[m]), 4)
            out[f"{task}_macro_f1_{key}"] = round(float(ops.loc["macro", (m, "f1")]), 4)
    if data.test.rare is not None and RARE_LABEL in data.label_names:
        y = task_targets(data.test.labels, "multilabel")
        rare = rare_stratum_table(y, result.test_probs("multilabel"), data.test.rare, data.label_names)
        for m in MODELS:
            out[f"rare_stratum_auc_{m.lower()}"] = round(float(rare.loc["rare stratum (chest drain)", f"AUC {m}"]), 4)
            out[f"common_stratum_auc_{m.lower()}"] = round(float(rare.loc["common stratum", f"AUC {m}"]), 4)
        out["rare_stratum_n_positive"] = int(rare.loc["rare stratum (chest drain)", "n positive"])
    return out
