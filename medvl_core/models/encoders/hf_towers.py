"""transformers towers (hf:REPO_OR_PATH): a dual model's vision or text tower with its projection, or a plain
encoder with mean pooling."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from ..modules import eval_mode
from .base import ImageEncoder, TextEncoder
from .hub import hf_load, remote_code_guard, trust_remote_code
from .preprocess import HFPreprocess, imagenet_transform


class _HFImage(ImageEncoder):
    """A transformers vision tower: pooled = (projected) pooler output; grid = last hidden state as a map."""

    def __init__(self, spec: str, tower: nn.Module, projection, preprocess, image_size: int):
        super().__init__(spec, 0, 0, image_size, preprocess)
        self.tower, self.projection = tower, projection
        self.patch_size = getattr(tower.config, "patch_size", None)
        with torch.no_grad(), eval_mode(self):
            pooled, grid = self._pooled_and_grid(torch.zeros(1, 3, image_size, image_size))
        self.embed_dim, self.grid_dim = int(pooled.shape[-1]), int(grid.shape[1])

    def _pooled_and_grid(self, x):
        out = self.tower(pixel_values=x)
        hidden = out.last_hidden_state
        grid = hidden if hidden.ndim == 4 else _tokens_to_grid(hidden, x.shape[-2:], self.patch_size)
        pooled = getattr(out, "pooler_output", None)
        pooled = grid.mean(dim=(2, 3)) if pooled is None else pooled.flatten(1)
        return (pooled if self.projection is None else self.projection(pooled)), grid

    def forward(self, x):
        return self._pooled_and_grid(x)[0]

    def forward_grid(self, x):
        return self._pooled_and_grid(x)[1]


def _tokens_to_grid(tokens: torch.Tensor, size, patch_size=None) -> torch.Tensor:
    """(B, T, C) tokens -> (B, C, h, w), dropping leading prefix tokens (CLS, registers)."""
    b, t, c = tokens.shape
    if isinstance(patch_size, int) and patch_size > 0 and size[0] // patch_size * (size[1] // patch_size) <= t:
        h, w = size[0] // patch_size, size[1] // patch_size
    else:  # no usable patch size: the largest square number of trailing tokens
        h = w = math.isqrt(t)
    return tokens[:, t - h * w :].transpose(1, 2).reshape(b, c, h, w)


def _hf_tower(model: nn.Module, side: str):
    """(tower, projection) of a transformers model: a dual model's vision/text tower and its projection, if any."""
    tower = getattr(model, f"{side}_model", None)
    if tower is None:
        return model, None
    return tower, getattr(model, "visual_projection" if side == "vision" else "text_projection", None)


def hf_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """hf:REPO_OR_PATH as an image tower (CLIP/SigLIP-style models: the vision tower + its projection)."""
    return hf_load(spec, name, lambda src: _hf_image_from(spec, src), "'bundled:efficientnet_lite0'")


def _hf_image_from(spec: str, source: str) -> ImageEncoder:
    """Build an _HFImage from a local folder or a (reachable or cached) hub repo."""
    import transformers as tr

    tower, projection = _hf_tower(tr.AutoModel.from_pretrained(source, trust_remote_code=trust_remote_code(source)),
                                  "vision")
    vision = getattr(tower.config, "vision_config", tower.config)
    try:
        processor = tr.AutoImageProcessor.from_pretrained(source)
        size = _processor_size(processor) or getattr(vision, "image_size", 224)
        preprocess = HFPreprocess(processor)
    except (OSError, ValueError):  # no preprocessor_config.json: fall back to ImageNet values
        size = getattr(vision, "image_size", 224)
        preprocess = imagenet_transform(size)
    return _HFImage(spec, tower, projection, preprocess, size)


def _processor_size(processor) -> int | None:
    """Output side of a transformers image processor (crop size, else resize size)."""
    for attr in ("crop_size", "size"):
        value = getattr(processor, attr, None)
        if isinstance(value, dict):
            value = value.get("height") or value.get("shortest_edge")
        if isinstance(value, int) and value > 0:
            return value
    return None


class HFText(TextEncoder):
    """A transformers text tower: mean pooling (BERT-like), or pooler output + projection (CLIP/SigLIP-style)."""

    def __init__(self, spec: str, tower: nn.Module, tokenizer, max_length: int, projection=None, pooling="mean"):
        hidden = tower.config.hidden_size
        embed = projection.out_features if isinstance(projection, nn.Linear) else hidden
        super().__init__(spec, embed, hidden, max_length)
        self.tower, self.projection, self.tokenizer, self.pooling = tower, projection, tokenizer, pooling

    def tokenize(self, texts, max_length=None):
        length = int(max_length or self.max_length)
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=length, return_tensors="pt")
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def forward(self, input_ids, attention_mask):
        out = self.tower(input_ids=input_ids, attention_mask=attention_mask)
        if self.pooling == "mean":
            return _mean_pool(out.last_hidden_state, attention_mask)
        return out.pooler_output if self.projection is None else self.projection(out.pooler_output)

    def forward_tokens(self, input_ids, attention_mask):
        return self.tower(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _mean_pool(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average token embeddings over the attention mask (sentence-transformers pooling)."""
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def hf_text(spec: str, name: str, tag: str | None) -> TextEncoder:
    """hf:REPO_OR_PATH as a text tower (dual models: the text tower + projection; else mean pooling)."""
    return hf_load(spec, name, lambda src: hf_text_from(spec, src), "'bundled:minilm'")


def hf_text_from(spec: str, source: str) -> TextEncoder:
    """Build an HFText from a local folder or a (reachable or cached) hub repo."""
    import transformers as tr

    remote = trust_remote_code(source)
    with remote_code_guard(spec, source):
        tokenizer = tr.AutoTokenizer.from_pretrained(source, trust_remote_code=remote)
        model = tr.AutoModel.from_pretrained(source, trust_remote_code=remote)
    tower, projection = _hf_tower(model, "text")
    pooling = "mean" if tower is model else "pooler"
    return HFText(spec, tower, tokenizer, _max_length(source, tokenizer, tower.config), projection, pooling)


def _max_length(source: str, tokenizer, config) -> int:
    """Sequence limit: sentence-transformers' max_seq_length if present, else tokenizer/model limits."""
    st_config = Path(source) / "sentence_bert_config.json"
    if st_config.is_file():
        return int(json.loads(st_config.read_text())["max_seq_length"])
    text_config = getattr(config, "text_config", config)
    limits = [getattr(text_config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    limits = [int(x) for x in limits if isinstance(x, int) and 0 < x < 100_000]
    return min(limits) if limits else 512
