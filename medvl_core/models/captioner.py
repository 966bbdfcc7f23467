"""Show, Attend and Tell (Xu et al. 2015) over a frozen CNN feature grid, as the MEEMS captioner.

Soft attention over the grid's cells, a gate on the attended context, an LSTM decoder trained with
teacher forcing, beam search with `<end>` handling, and per-word attention maps. The vocabulary comes
from `text.vocab` (built on training reports); word vectors may start from a word2vec binary
(e.g. BioWordVec, supplied by the user) or an installed spaCy pipeline's vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import AssetNotFoundError, DataFormatError, ParameterError
from ..text.vocab import Vocabulary, word_tokens


def flatten_grid(grid: torch.Tensor) -> torch.Tensor:
    """(B, D, h, w) feature grid -> (B, h*w, D) cells (a (B, P, D) input passes through)."""
    if grid.ndim == 3:
        return grid
    if grid.ndim != 4:
        raise ParameterError(f"feature grid must be (B, D, h, w) or (B, P, D), got shape {tuple(grid.shape)}")
    return grid.flatten(2).transpose(1, 2)


class SoftAttention(nn.Module):
    """Additive attention: alpha = softmax_p(w . tanh(W_f f_p + W_h h)); context = sum_p alpha_p f_p."""

    def __init__(self, feature_dim: int, hidden_dim: int, attention_dim: int):
        super().__init__()
        self.features = nn.Linear(feature_dim, attention_dim)
        self.hidden = nn.Linear(hidden_dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1)

    def forward(self, cells: torch.Tensor, hidden: torch.Tensor, projected: torch.Tensor | None = None):
        """(context (B, D), alpha (B, P)); `projected` = self.features(cells), reusable across steps."""
        projected = self.features(cells) if projected is None else projected
        scores = self.score(torch.tanh(projected + self.hidden(hidden).unsqueeze(1))).squeeze(-1)
        alpha = torch.softmax(scores, dim=1)
        return (alpha.unsqueeze(-1) * cells).sum(1), alpha


@dataclass
class DecoderState:
    """LSTM (h, c) and the per-step reusable attention projection of the cells."""

    h: torch.Tensor
    c: torch.Tensor
    cells: torch.Tensor
    projected: torch.Tensor

    def select(self, rows: torch.Tensor) -> DecoderState:
        """The state of the given batch rows (beam reordering)."""
        rows = rows.to(self.h.device)
        return DecoderState(self.h[rows], self.c[rows], self.cells[rows], self.projected[rows])


class ShowAttendTell(nn.Module):
    """Captioner: attention over grid cells, gated context, LSTMCell decoder, word logits per step.

    `cell_dim` (optional) first maps each frozen grid cell through a learned Linear+ReLU to that size.
    """

    def __init__(self, vocab_size: int, feature_dim: int, embed_dim: int = 64, attention_dim: int = 64,
                 hidden_dim: int = 128, dropout: float = 0.3, word_vectors: torch.Tensor | None = None,
                 pad_id: int = 0, cell_dim: int | None = None):
        super().__init__()
        if word_vectors is not None:
            if tuple(word_vectors.shape) != (vocab_size, embed_dim):
                raise ParameterError(f"word_vectors shape {tuple(word_vectors.shape)} must be (vocab_size, embed_dim) = "
                                     f"({vocab_size}, {embed_dim}); pass embed_dim equal to the vectors' dimension")
        self.vocab_size, self.feature_dim, self.hidden_dim, self.pad_id = vocab_size, feature_dim, hidden_dim, pad_id
        # optional learned reduction of frozen cells (e.g. 1280 -> 256) so the LSTM stays cheap on CPU
        self.reduce = nn.Sequential(nn.Linear(feature_dim, cell_dim), nn.ReLU()) if cell_dim else nn.Identity()
        feature_dim = cell_dim or feature_dim
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        if word_vectors is not None:
            self.embedding.weight.data.copy_(word_vectors)
        self.attention = SoftAttention(feature_dim, hidden_dim, attention_dim)
        self.init_h, self.init_c = nn.Linear(feature_dim, hidden_dim), nn.Linear(feature_dim, hidden_dim)
        self.gate = nn.Linear(hidden_dim, feature_dim)  # f_beta: how much image context enters this step
        self.lstm = nn.LSTMCell(embed_dim + feature_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def start(self, grid: torch.Tensor) -> DecoderState:
        """Initial state from the mean cell (as in the paper)."""
        cells = self.reduce(flatten_grid(grid))
        mean = cells.mean(1)
        return DecoderState(torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean)), cells,
                            self.attention.features(cells))

    def step(self, words: torch.Tensor, state: DecoderState):
        """One decoding step: (logits (B, V), next state, alpha (B, P)) given the previous words (B,)."""
        context, alpha = self.attention(state.cells, state.h, state.projected)
        context = torch.sigmoid(self.gate(state.h)) * context
        h, c = self.lstm(torch.cat([self.embedding(words), context], dim=1), (state.h, state.c))
        next_state = DecoderState(h, c, state.cells, state.projected)
        return self.out(self.dropout(h)), next_state, alpha

    def forward(self, grid: torch.Tensor, captions: torch.Tensor):
        """Teacher forcing: (logits (B, T-1, V), alphas (B, T-1, P), hidden (B, T-1, H)) predicting captions[:, 1:]."""
        state = self.start(grid)
        logits, alphas, hiddens = [], [], []
        for t in range(captions.shape[1] - 1):
            step_logits, state, alpha = self.step(captions[:, t], state)
            logits.append(step_logits)
            alphas.append(alpha)
            hiddens.append(state.h)
        return torch.stack(logits, 1), torch.stack(alphas, 1), torch.stack(hiddens, 1)

    @torch.no_grad()
    def greedy(self, grid: torch.Tensor, start_id: int, end_id: int, max_length: int = 30):
        """Batched greedy decoding: (tokens (B, L), hidden state after each caption's last word (B, H))."""
        state = self.start(grid)
        words = torch.full((state.h.shape[0],), start_id, dtype=torch.long, device=state.h.device)
        done = torch.zeros_like(words, dtype=torch.bool)
        final_h, tokens = state.h.clone(), []
        for _ in range(max_length):
            logits, state, _ = self.step(words, state)
            words = logits.argmax(1)
            final_h = torch.where(done.unsqueeze(1), final_h, state.h)
            tokens.append(torch.where(done, torch.full_like(words, self.pad_id), words))
            done = done | (words == end_id)
            if bool(done.all()):
                break
        return torch.stack(tokens, 1), final_h

    @torch.no_grad()
    def beam_search(self, grid: torch.Tensor, start_id: int, end_id: int, beam_size: int = 3,
                    max_length: int = 30) -> Beam:
        """The best caption of ONE image (grid (D, h, w) or (1, D, h, w)) by beam search."""
        grid = grid.unsqueeze(0) if grid.ndim == 3 and grid.shape[0] == self.feature_dim else grid
        if grid.shape[0] != 1:
            raise ParameterError(f"beam_search decodes one image at a time; got a batch of {grid.shape[0]}")

        device = grid.device

        def step(words, state):  # the search itself keeps its bookkeeping on the CPU
            logits, state, alpha = self.step(words.to(device), state)
            return torch.log_softmax(logits, dim=1).cpu(), state, alpha.cpu()

        return beam_search(step, self.start(grid), start_id, end_id, beam_size, max_length)


@dataclass
class Beam:
    """A decoded sequence: token ids (without <start>, ending with <end> when finished), log-prob, alphas."""

    tokens: list[int]
    score: float
    alphas: np.ndarray  # (len(tokens), P): the attention map that produced each token
    finished: bool


def beam_search(step: Callable, state, start_id: int, end_id: int, beam_size: int = 3,
                max_length: int = 30) -> Beam:
    """Generic beam search: `step(words (K,), state) -> (log_probs (K, V), state, alpha (K, P))`.

    Hypotheses that emit `end_id` are set aside (the beam shrinks by one each time); when all are set
    aside, or after `max_length` tokens, the highest-scoring finished hypothesis is returned (sum of
    log-probs), or the best unfinished one if none finished. `state` must have `.select(rows)`.
    """
    if beam_size < 1 or max_length < 1:
        raise ParameterError(f"beam_size={beam_size} and max_length={max_length} must both be >= 1")
    words = torch.tensor([start_id])
    scores, seqs, maps = torch.zeros(1), [[]], [[]]
    finished: list[Beam] = []
    for _ in range(max_length):
        log_probs, state, alpha = step(words, state)
        total = (scores.unsqueeze(1) + log_probs).flatten()
        k = min(beam_size - len(finished), total.numel())
        top, flat = total.topk(k)
        rows, next_words = flat // log_probs.shape[1], flat % log_probs.shape[1]
        seqs = [seqs[r] + [int(w)] for r, w in zip(rows.tolist(), next_words.tolist())]
        maps = [maps[r] + [alpha[r].detach().cpu().numpy()] for r in rows.tolist()]
        ended = next_words == end_id
        finished += [Beam(seqs[i], float(top[i]), np.stack(maps[i]), True) for i in np.flatnonzero(ended.numpy())]
        keep = torch.nonzero(~ended).squeeze(1)
        if len(finished) >= beam_size or keep.numel() == 0:
            break
        seqs, maps = [seqs[i] for i in keep.tolist()], [maps[i] for i in keep.tolist()]
        scores, words, state = top[keep], next_words[keep], state.select(rows[keep])
    else:
        finished = finished or [Beam(s, float(v), np.stack(m), False) for s, v, m in zip(seqs, scores.tolist(), maps)]
    return max(finished, key=lambda beam: beam.score)


# ------------------------------------------------------------------ captions as tensors


def caption_ids(vocab: Vocabulary, texts, max_words: int = 30) -> torch.Tensor:
    """(N, max_words + 2) ids: <start>, the first `max_words` tokens, <end>, then <pad>."""
    rows = torch.full((len(texts), max_words + 2), vocab.stoi["<pad>"], dtype=torch.long)
    for i, text in enumerate(texts):
        ids = vocab.encode(text, add_specials=False)[:max_words]
        rows[i, : len(ids) + 2] = torch.tensor([vocab.stoi["<start>"], *ids, vocab.stoi["<end>"]])
    return rows


def caption_text(vocab: Vocabulary, tokens) -> str:
    """The words of decoded ids (stops at <end>)."""
    return vocab.decode([int(t) for t in tokens])


# ------------------------------------------------------------------ pretrained word vectors


def word_vectors(vocab: Vocabulary, source: str, seed: int = 0) -> tuple[torch.Tensor, float]:
    """(V, dim) initial embeddings and the fraction of vocabulary words found in `source`.

    `source` is a word2vec binary file (e.g. BioWordVec's .bin, which you download yourself) or
    "spacy:PIPELINE" (an installed spaCy pipeline with vectors). Words not found get N(0, 0.1) vectors.
    """
    found = _spacy_vectors(vocab, source[6:]) if source.startswith("spacy:") else _word2vec_vectors(vocab, source)
    dim = len(next(iter(found.values()))) if found else 0
    if not dim:
        raise DataFormatError(f"word vectors {source!r} cover none of the {len(vocab)} vocabulary words; "
                              "use another vectors file or leave word_vectors unset")
    out = np.random.default_rng(seed).normal(0.0, 0.1, size=(len(vocab), dim)).astype(np.float32)
    for token, vector in found.items():
        out[vocab.stoi[token]] = vector
    out[vocab.stoi["<pad>"]] = 0.0
    return torch.from_numpy(out), len(found) / max(1, len(vocab))


def _spacy_vectors(vocab: Vocabulary, pipeline: str) -> dict[str, np.ndarray]:
    """Vectors of vocabulary words from an installed spaCy pipeline (empty dict if it has none)."""
    import spacy

    try:
        nlp = spacy.load(pipeline)
    except OSError as exc:
        raise AssetNotFoundError(f"spaCy pipeline {pipeline!r} is not installed; install it or use a word2vec "
                                 "file for word_vectors") from exc
    return {t: nlp.vocab[t].vector.astype(np.float32) for t in vocab.itos if nlp.vocab.has_vector(t)}


def _word2vec_vectors(vocab: Vocabulary, path: str) -> dict[str, np.ndarray]:
    """Vectors of vocabulary words read from a word2vec binary file (streamed; other words skipped)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise AssetNotFoundError(f"word_vectors: file {path} not found; download BioWordVec (word2vec .bin, "
                                 "see papers/meems/README.md) there, set word_vectors to its path, pass 'spacy:PIPELINE', "
                                 "or set word_vectors to \"\" for random initial embeddings")
    wanted, found = set(vocab.itos), {}
    with open(path, "rb") as fh:
        header = fh.readline().split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise DataFormatError(f"{path} is not a word2vec binary file (first line must be '<count> <dim>')")
        count, dim = map(int, header)
        for _ in range(count):
            word = _read_word(fh)
            vector = np.frombuffer(fh.read(4 * dim), dtype="<f4")
            if len(vector) != dim:
                raise DataFormatError(f"{path} ends early; re-download the word vectors file")
            key = word.lower()
            if key in wanted and key not in found and word_tokens(key) == [key]:
                found[key] = vector.astype(np.float32)
    return found


def _read_word(fh) -> str:
    """The next space-terminated word of a word2vec binary stream (leading newlines skipped)."""
    chars = bytearray()
    while True:
        ch = fh.read(1)
        if ch in (b" ", b""):
            return chars.decode("utf-8", errors="replace")
        if ch != b"\n":
            chars += ch
