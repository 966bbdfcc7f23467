"""The MEEMS captioner glue: teacher-forced training on the caption targets, greedy and beam captions, their scores.

A Show-Attend-Tell captioner (`models.captioner`) learns the training reports' first sentences from the
feature grids; its hidden state after a greedy caption is the caption half of each image's MEEMS input.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ...config import seed_everything
from ...losses import captioning_loss
from ...models.captioner import ShowAttendTell, caption_ids, caption_text
from ...models.modules import device_of
from ...text.vocab import Vocabulary
from ...train import TrainConfig, train
from .caption_quality import caption_bleu, mean_caption_iou
from .data import MeemsData, MeemsSplit, validation_split


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


@torch.no_grad()
def generate_captions(captioner: ShowAttendTell, grids: torch.Tensor, vocab: Vocabulary, max_length: int = 30,
                      batch_size: int = 128) -> tuple[list[str], torch.Tensor]:
    """Greedy captions of many images and the hidden state after each caption's last word (N, H)."""
    was = captioner.training
    captioner.eval()
    texts, states = [], []
    for start in range(0, len(grids), batch_size):
        batch = grids[start:start + batch_size].to(device_of(captioner))
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
        device = device_of(model)
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
    validation = CaptionValidation(validation_split(data, "fit_captioner (early stopping)"), vocab, data.max_words,
                                   objective, n_sample, source)
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
        beam = captioner.beam_search(split.grids[i].to(device_of(captioner)), vocab.stoi["<start>"],
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
    beam = captioner.beam_search(grid.to(device_of(captioner)), vocab.stoi["<start>"], vocab.stoi["<end>"],
                                 beam_size, max_length)
    words = [vocab.itos[t] for t in beam.tokens][:n_words]
    return words, beam.alphas[: len(words)].reshape(len(words), *grid.shape[-2:])


def first_with_label(labels: np.ndarray, label_names, label: str) -> int:
    """Index of the first image positive for `label` (0 when none is)."""
    hits = np.flatnonzero(np.asarray(labels)[:, list(label_names).index(label)] == 1)
    return int(hits[0]) if len(hits) else 0


def caption_example_text(examples: pd.DataFrame, width: int = 100) -> str:
    """`caption_examples` rows as wrapped text blocks: labels, generated caption, ground truth (nothing cut)."""
    blocks = []
    for row in examples.itertuples(index=False):
        labels = f" ({row.labels})" if hasattr(row, "labels") else ""
        blocks.append("\n".join([f"image {row.image}{labels}",
                                 textwrap.fill(f"generated:    {row[2]}", width, subsequent_indent=" " * 14),
                                 textwrap.fill(f"ground truth: {row.reference}", width, subsequent_indent=" " * 14)]))
    return "\n\n".join(blocks)


def rare_words(captions, rare) -> list[str]:
    """Words of the rare-stratum images' captions that no other caption uses (the stratum's own words), sorted."""
    rare = np.asarray(rare, dtype=bool)
    own = {w for c, r in zip(captions, rare) if r for w in c.split()}
    other = {w for c, r in zip(captions, rare) if not r for w in c.split()}
    return sorted(own - other)


def word_rates(captions, groups: dict, words) -> pd.DataFrame:
    """Per group of images (name -> boolean mask): n, and how many / what share of its captions use any of `words`."""
    words = set(words)
    uses = np.array([bool(words & set(c.split())) for c in captions])
    rows = {}
    for name, mask in groups.items():
        mask = np.asarray(mask, dtype=bool)
        n, k = int(mask.sum()), int(uses[mask].sum())
        rows[name] = {"n images": n, "captions with the words": k, "share": k / n if n else float("nan")}
    return pd.DataFrame(rows).T.rename_axis("images")


def stratum_word_use(data, test_captions) -> tuple[list[str], pd.DataFrame] | None:
    """The rare stratum's own words (training captions) and how often the test captions of rare-stratum, common-form
    and label-negative images use them; None for a dataset without a known stratum (real MIMIC-CXR)."""
    if data.rare_label is None or data.test.rare is None or data.train.rare is None:
        return None
    words = rare_words(data.train.captions, data.train.rare)
    positive = data.test.labels[:, data.label_names.index(data.rare_label)] == 1
    groups = {"rare stratum": positive & data.test.rare, "common stratum": positive & ~data.test.rare,
              f"no {data.rare_label}": ~positive}
    return words, word_rates(test_captions, groups, words)
