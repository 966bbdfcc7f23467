"""A multi-scale dual encoder (Zhong et al.; GLoRIA): global image/report embeddings plus region and word features.

Image side: a backbone maps its input to region features (B, R, C): a tower's last feature map on pixels
(`TowerGrid`, trainable), or a small trainable adapter over cached grids of a frozen tower (`CachedGrid`).
Text side: a backbone maps its input to contextual token features (N, T, H): a whole text tower on token ids
(`TowerTokens` + `TokenIds`, trainable), or a small trainable transformer (`TokenAdapter`) over the frozen
pretrained tower's own contextual token features, computed once per distinct text (`FrozenTokenFeatures`, the
CPU demo: the pretrained tower with its position embeddings already tells word orders apart).
In the demo the adapters are shared by the global and the local projections, so the local loss moves the
global embeddings too.
Global embeddings are projections of the mean region / mean token feature; region and word features have
their own projections (a word = mean of its sub-word tokens: `word_index`, `pool_words` below). All outputs are
L2-normalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError
from .cache import cached_on_disk, image_tower_grids
from .modules import device_of

NOT_A_WORD = -1


def word_index(tokenizer, texts: Sequence[str], max_length: int = 128) -> dict:
    """Tokenise `texts` -> dict(input_ids, attention_mask, word_ids); word_ids (N, T) numbers each text's words
    0, 1, ... and marks special tokens, padding and punctuation-only words with -1."""
    if not getattr(tokenizer, "is_fast", False):
        raise ParameterError("word_index needs a fast (Rust) Hugging Face tokenizer for word ids and offsets; "
                             "load it with AutoTokenizer.from_pretrained(..., use_fast=True)")
    texts = list(texts)
    batch = tokenizer(texts, padding=True, truncation=True, max_length=int(max_length), return_tensors="pt",
                      return_offsets_mapping=True)
    offsets = batch["offset_mapping"].tolist()
    rows = [_renumber(text, batch.word_ids(i), offsets[i]) for i, text in enumerate(texts)]
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
            "word_ids": torch.tensor(rows, dtype=torch.long)}


def _renumber(text: str, word_ids: list, offsets: list) -> list[int]:
    """Per token its word's number among the text's non-punctuation words, -1 for everything else."""
    spans: dict[int, list[int]] = {}
    for word, (start, end) in zip(word_ids, offsets):
        if word is not None:
            span = spans.setdefault(word, [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)
    kept = [w for w in sorted(spans) if any(ch.isalnum() for ch in text[spans[w][0]:spans[w][1]])]
    number = {w: i for i, w in enumerate(kept)}
    return [number.get(w, NOT_A_WORD) if w is not None else NOT_A_WORD for w in word_ids]


def pool_words(tokens: torch.Tensor, word_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T, D) token features + (N, T) word ids -> word features (N, W, D) = mean of their tokens, mask (N, W)."""
    if tokens.ndim != 3 or word_ids.shape != tokens.shape[:2]:
        raise ParameterError(f"pool_words needs tokens (N, T, D) and word_ids (N, T), got {tuple(tokens.shape)} "
                             f"and {tuple(word_ids.shape)}")
    n_words = max(int(word_ids.max()) + 1, 1) if word_ids.numel() else 1
    member = (word_ids.unsqueeze(-1) == torch.arange(n_words, device=word_ids.device)).to(tokens.dtype)
    counts = member.sum(1)  # (N, W)
    words = member.transpose(1, 2) @ tokens / counts.clamp(min=1).unsqueeze(-1)
    return words, counts > 0


class TowerGrid(nn.Module):
    """An ImageEncoder's spatial features as regions: pixels (B, 3, H, W) -> (B, h*w, grid_dim)."""

    def __init__(self, tower: nn.Module):
        super().__init__()
        self.tower, self.out_dim = tower, int(tower.grid_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.tower.forward_grid(pixels).flatten(2).transpose(1, 2)


class CachedGrid(nn.Module):
    """Cached region features (B, R, C) of a frozen tower (see `image_grid_features`) -> a small trainable adapter
    (Linear + GELU, shared by the global and the local projections) -> (B, R, hidden)."""

    def __init__(self, dim: int, hidden: int = 256):
        super().__init__()
        self.in_dim, self.out_dim = int(dim), int(hidden)
        self.adapter = nn.Sequential(nn.Linear(self.in_dim, self.out_dim), nn.GELU())

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        if grid.ndim != 3 or grid.shape[-1] != self.in_dim:
            raise ParameterError(f"cached grid features must be (B, R, {self.in_dim}), got {tuple(grid.shape)}; "
                                 "compute them with image_grid_features(encoder, dataset)")
        return self.adapter(grid.float())


class TowerTokens(nn.Module):
    """A TextEncoder's contextual token features (N, T, token_dim); the whole tower trains."""

    def __init__(self, tower: nn.Module):
        super().__init__()
        self.tower, self.out_dim = tower, int(tower.token_dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.tower.forward_tokens(input_ids, attention_mask)


class FrozenTokenFeatures:
    """`features(texts)` -> dict(text_input (N, T, H) frozen contextual token features of a pretrained text tower,
    attention_mask, word_ids), each distinct text run through the tower once (kept as float16 in memory).

    The frozen tower runs once per report and per perturbation; only the adapter on top trains (the CPU demo).
    """

    def __init__(self, tower: nn.Module, max_length: int = 64, batch_size: int = 128):
        self.tower, self.max_length, self.batch_size = tower, int(max_length), int(batch_size)
        self.tokenizer, self.dim, self.rows = tower.tokenizer, int(tower.token_dim), {}

    def __deepcopy__(self, memo):
        return self  # frozen: copies of a model (fine-tuning) share the tower and its features

    @torch.no_grad()
    def precompute(self, texts: Sequence[str]) -> None:
        """Run the frozen tower on the texts not seen yet, in batches of similar length; the features of one call's
        new texts are kept on disk (`models.cache`), so a rerun with the same texts runs no tower."""
        new = sorted(dict.fromkeys(t for t in texts if t not in self.rows), key=len)
        if not new:
            return
        stored = cached_on_disk(self.tower, new, f"tokens|{self.max_length}", lambda: self._extract(new))
        tokens = stored["tokens"].split(stored["lengths"].tolist())
        word_ids = stored["word_ids"].split(stored["lengths"].tolist())
        for text, rows, words in zip(new, tokens, word_ids, strict=True):
            self.rows[text] = (rows, words)

    def _extract(self, texts: list[str]) -> dict:
        """dict(tokens (sum of lengths, H) float16, lengths (N,), word_ids (sum of lengths,)) of texts, in order."""
        self.tower.eval()
        device = device_of(self.tower)
        tokens, lengths, word_ids = [], [], []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start:start + self.batch_size]
            batch = word_index(self.tokenizer, chunk, self.max_length)
            out = self.tower.forward_tokens(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            for i in range(len(chunk)):
                n = int(batch["attention_mask"][i].sum())
                tokens.append(out[i, :n].to(torch.float16).cpu())
                word_ids.append(batch["word_ids"][i, :n].clone())
                lengths.append(n)
        return {"tokens": torch.cat(tokens), "lengths": torch.tensor(lengths, dtype=torch.long),
                "word_ids": torch.cat(word_ids)}

    def __call__(self, texts: Sequence[str]) -> dict:
        texts = list(texts)
        self.precompute(texts)
        length = max(len(self.rows[text][1]) for text in texts)
        out = {"text_input": torch.zeros(len(texts), length, self.dim),
               "attention_mask": torch.zeros(len(texts), length, dtype=torch.long),
               "word_ids": torch.full((len(texts), length), NOT_A_WORD, dtype=torch.long)}
        for i, text in enumerate(texts):
            tokens, words = self.rows[text]
            n = len(words)
            out["text_input"][i, :n], out["attention_mask"][i, :n], out["word_ids"][i, :n] = tokens.float(), 1, words
        return out


class TokenAdapter(nn.Module):
    """Frozen token features (N, T, H) -> Linear to `dim` -> a small trainable pre-norm transformer -> (N, T, dim)."""

    def __init__(self, in_dim: int, dim: int = 64, layers: int = 1, heads: int = 2):
        super().__init__()
        self.input = nn.Linear(int(in_dim), dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False) if layers else None
        self.norm, self.out_dim = nn.LayerNorm(dim), int(dim)

    def forward(self, features: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(features) or features.ndim != 3:
            raise ParameterError(f"TokenAdapter needs frozen token features (N, T, H), got {tuple(features.shape)} "
                                 f"{features.dtype}; pass FrozenTokenFeatures(tower)(texts)['text_input']")
        x = self.input(features)
        if self.encoder is not None:
            x = self.encoder(x, src_key_padding_mask=~attention_mask.bool())
        return self.norm(x)


@dataclass
class MultiScaleOutput:
    """Normalised global image (B, D) and text (N, D) embeddings, regions (B, R, D), words (N, W, D) + mask."""

    image: torch.Tensor
    regions: torch.Tensor
    text: torch.Tensor
    words: torch.Tensor
    word_mask: torch.Tensor


class MultiScaleEncoder(nn.Module):
    """Image and text backbones with separate global and local projections into one `embed_dim` space.

    `text_inputs(texts)` makes the text backbone's input: dict(text_input, attention_mask, word_ids), where
    text_input is token ids (a whole trainable tower) or a `FrozenTokenFeatures`' cached features (the demo).
    """

    def __init__(self, image_backbone: nn.Module, text_backbone: nn.Module, text_inputs, embed_dim: int = 128):
        super().__init__()
        self.image_backbone, self.text_backbone, self.text_inputs = image_backbone, text_backbone, text_inputs
        self.embed_dim = int(embed_dim)
        image_dim, text_dim = image_backbone.out_dim, text_backbone.out_dim
        self.image_global, self.image_local = nn.Linear(image_dim, embed_dim), nn.Linear(image_dim, embed_dim)
        self.text_global, self.text_local = nn.Linear(text_dim, embed_dim), nn.Linear(text_dim, embed_dim)

    def tokenize(self, texts: Sequence[str]) -> dict:
        """dict(text_input, attention_mask, word_ids) for a list of strings."""
        return self.text_inputs(list(texts))

    def _image(self, images: torch.Tensor, regions: bool = True):
        """(unnormalised global (B, D), normalised regions (B, R, D) or None)."""
        grid = self.image_backbone(images)
        return self.image_global(grid.mean(1)), F.normalize(self.image_local(grid), dim=-1) if regions else None

    def _text(self, text_input, attention_mask, word_ids=None):
        """(unnormalised global (N, D), normalised words (N, W, D) or None, word mask or None)."""
        tokens = self.text_backbone(text_input, attention_mask)
        weights = attention_mask.unsqueeze(-1).to(tokens.dtype)
        text = self.text_global((tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9))
        if word_ids is None:
            return text, None, None
        words, mask = pool_words(tokens[:len(word_ids)], word_ids.to(tokens.device))  # words of the first rows only
        return text, F.normalize(self.text_local(words), dim=-1), mask

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels (or cached grids) -> global image features (B, D) before normalisation, differentiable."""
        return self._image(images, regions=False)[0]

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """Strings -> global text features (N, D) before normalisation, differentiable."""
        batch = self.tokenize(texts)
        device = device_of(self)
        return self._text(batch["text_input"].to(device), batch["attention_mask"].to(device))[0]

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels (or cached grids) -> normalised global image embeddings (B, D), differentiable."""
        return F.normalize(self.image_features(images), dim=-1)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Strings -> normalised global text embeddings (N, D), differentiable."""
        return F.normalize(self.text_features(texts), dim=-1)

    def forward(self, images, text_input, attention_mask, word_ids) -> MultiScaleOutput:
        """All outputs the losses need, from one call (one forward under DDP)."""
        image, regions = self._image(images)
        text, words, mask = self._text(text_input, attention_mask, word_ids)
        return MultiScaleOutput(F.normalize(image, dim=-1), regions, F.normalize(text, dim=-1), words, mask)


class TextEmbedder(nn.Module):
    """`embedder(list_of_str) -> (N, D)` global text features of a MultiScaleEncoder, before normalisation (for NLI
    fine-tuning: the pre-trained text side, not the unit sphere the contrastive losses use)."""

    def __init__(self, model: MultiScaleEncoder):
        super().__init__()
        self.model = model

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        return self.model.text_features(list(texts))


class ImageEmbedder(nn.Module):
    """`embedder(X) -> (B, D)` global image features (before normalisation) of a MultiScaleEncoder's inputs
    (pixels or cached grids), for fine-tuned classification."""

    def __init__(self, model: MultiScaleEncoder):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.image_features(images)


def image_grid_features(encoder, dataset, progress: bool = False) -> torch.Tensor:
    """Region features (N, h*w, grid_dim) of every dataset item's `image` through a frozen tower (cached on disk)."""
    return image_tower_grids(encoder, dataset, progress=progress).flatten(2).transpose(1, 2).contiguous()


def build_multiscale(image_tower: nn.Module, text_tower: nn.Module, embed_dim: int = 128, cached: bool = True,
                     text_dim: int = 64, text_layers: int = 1, max_length: int = 64, image_dim: int = 256,
                     features: FrozenTokenFeatures | None = None) -> MultiScaleEncoder:
    """The demo model (`cached`: cached frozen image grids and frozen text-tower token features, each under a small
    trainable adapter; `features` shares one text feature cache between models) or the paper's (both towers
    trained end to end on pixels and token ids)."""
    length = min(int(max_length), int(text_tower.max_length))
    if cached:
        features = features or FrozenTokenFeatures(text_tower, length)
        image = CachedGrid(image_tower.grid_dim, image_dim)
        text = TokenAdapter(text_tower.token_dim, text_dim, text_layers, max(1, text_dim // 32))
        return MultiScaleEncoder(image, text, features, embed_dim)
    return MultiScaleEncoder(TowerGrid(image_tower), TowerTokens(text_tower), TokenIds(text_tower.tokenizer, length),
                             embed_dim)


class TokenIds:
    """`inputs(texts)` -> dict(text_input = token ids, attention_mask, word_ids), each distinct text tokenised once."""

    def __init__(self, tokenizer, max_length: int = 128):
        self.tokenizer, self.max_length, self.rows = tokenizer, int(max_length), {}
        self.pad_id = int(tokenizer.pad_token_id or 0)

    def __call__(self, texts: Sequence[str]) -> dict:
        texts = list(texts)
        new = [text for text in dict.fromkeys(texts) if text not in self.rows]
        if new:
            batch = word_index(self.tokenizer, new, self.max_length)
            for i, text in enumerate(new):
                n = int(batch["attention_mask"][i].sum())
                self.rows[text] = (batch["input_ids"][i, :n], batch["word_ids"][i, :n])
        length = max(len(self.rows[text][0]) for text in texts)
        out = {"text_input": torch.full((len(texts), length), self.pad_id, dtype=torch.long),
               "attention_mask": torch.zeros(len(texts), length, dtype=torch.long),
               "word_ids": torch.full((len(texts), length), NOT_A_WORD, dtype=torch.long)}
        for i, text in enumerate(texts):
            ids, words = self.rows[text]
            out["text_input"][i, :len(ids)], out["attention_mask"][i, :len(ids)], out["word_ids"][i, :len(ids)] = \
                ids, 1, words
        return out
