"""open_clip towers: open_clip:ARCH[@TAG] (random init offline, or a pretrained tag), open_clip:hf-hub:ORG/NAME and
open_clip:local-dir:PATH (the hub layout), image and text."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ParameterError, UnknownSpecError
from ..modules import eval_mode
from .base import ImageEncoder, TextEncoder
from .hub import SCHEMAS, load_remote
from .preprocess import RGB


class _OpenClipImage(ImageEncoder):
    """An open_clip visual tower: pooled = projected image embedding; grid = last block's patch tokens/feature map."""

    def __init__(self, spec: str, visual: nn.Module, preprocess):
        size = getattr(visual, "image_size", 224)
        size = size[0] if isinstance(size, (tuple, list)) else size
        super().__init__(spec, visual.output_dim, 0, size, RGB(preprocess))
        self.visual = visual
        with torch.no_grad(), eval_mode(self):
            self.grid_dim = int(self.forward_grid(torch.zeros(1, 3, size, size)).shape[1])

    def forward(self, x):
        return self.visual(x)

    def forward_grid(self, x):
        out = self.visual.forward_intermediates(x, indices=1, intermediates_only=True, normalize_intermediates=True)
        return out["image_intermediates"][-1]


class _OpenClipText(TextEncoder):
    """An open_clip text tower: pooled = open_clip's own EOT pooling + text projection."""

    def __init__(self, spec: str, clip: nn.Module, tokenizer):
        clip.visual = None  # the text tower does not need the image tower's weights
        super().__init__(spec, 0, 0, int(getattr(tokenizer, "context_length", 77)))
        self._tokenizer, self.clip = tokenizer, clip
        inner = getattr(tokenizer, "tokenizer", None)
        self.pad_id = int(getattr(inner, "pad_token_id", None) or 0)
        probe = self.tokenize(["probe"])
        with torch.no_grad(), eval_mode(self):
            self.embed_dim = int(self(**probe).shape[-1])
            self.token_dim = int(self.forward_tokens(**probe).shape[-1])

    def tokenize(self, texts, max_length=None):
        length = int(max_length or self.max_length)
        if length > self.max_length:
            raise ParameterError(f"max_length={length} exceeds {self.spec}'s context length {self.max_length}")
        ids = self._tokenizer(list(texts), context_length=length)
        # positional embeddings are fixed: always pad to the model's context length
        ids = F.pad(ids, (0, self.max_length - ids.shape[1]), value=self.pad_id)
        return {"input_ids": ids, "attention_mask": (ids != self.pad_id).long()}

    def forward(self, input_ids, attention_mask=None):
        return self.clip.encode_text(input_ids)

    def forward_tokens(self, input_ids, attention_mask=None):
        out = self.clip.forward_intermediates(
            text=input_ids, text_indices=1, intermediates_only=True, normalize_intermediates=True
        )
        return out["text_intermediates"][-1]


def _open_clip_model(spec: str, name: str, tag: str | None, alternative: str):
    """(model, eval preprocess) for open_clip:ARCH[@TAG], open_clip:hf-hub:ORG/NAME or open_clip:local-dir:PATH."""
    import open_clip

    if name.startswith("local-dir:"):
        folder = Path(name.removeprefix("local-dir:")).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise UnknownSpecError(f"{spec}: {folder} has no open_clip_config.json; save the model in the hub layout "
                                   "(open_clip_config.json with model_cfg + open_clip_model.safetensors)")
    elif not name.startswith("hf-hub:") and name not in open_clip.list_models():
        raise UnknownSpecError(f"open_clip has no config {name!r} (spec {spec!r}); see open_clip.list_models()")
    if tag and not Path(tag).is_file() and not name.startswith(SCHEMAS):
        known = [t for arch, t in open_clip.list_pretrained() if arch == name]
        if tag not in known:
            raise UnknownSpecError(f"open_clip {name} has no pretrained tag {tag!r}; known: {known or 'none'}")

    def load():
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=tag)
        return model, preprocess

    return load_remote(spec, load, alternative)


def _random_clip(name: str) -> str:
    """The offline random-init spec matching an open_clip name."""
    return "'open_clip:ARCH' (random init)" if name.startswith(SCHEMAS) else f"'open_clip:{name}' (random init)"


def open_clip_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """open_clip:ARCH (random init, offline), open_clip:ARCH@TAG or hf-hub:ORG/NAME (download)."""
    model, preprocess = _open_clip_model(spec, name, tag, f"{_random_clip(name)} or 'bundled:efficientnet_lite0'")
    return _OpenClipImage(spec, model.visual, preprocess)


def open_clip_text(spec: str, name: str, tag: str | None) -> TextEncoder:
    """The text tower of open_clip:ARCH[@TAG] / open_clip:hf-hub:ORG/NAME, with its own tokenizer."""
    import open_clip

    alternative = f"{_random_clip(name)} or 'bundled:minilm'"
    model, _ = _open_clip_model(spec, name, tag, alternative)
    tokenizer = load_remote(spec, lambda: open_clip.get_tokenizer(name), alternative)
    return _OpenClipText(spec, model, tokenizer)
