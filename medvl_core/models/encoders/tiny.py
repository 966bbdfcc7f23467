"""tiny: small random-init towers for tests and demos (fast on CPU): a CNN, a ViT and a BERT text tower."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ParameterError, UnknownSpecError
from .base import ImageEncoder, TextEncoder
from .hf_towers import HFText
from .preprocess import imagenet_transform

_TINY_DEFAULT_DIM = 128


def _tiny_dim(spec: str, name: str, arch: str) -> int:
    """DIM of tiny:ARCH[-DIM] (default 128); a positive multiple of 32."""
    dim = name.partition("-")[2] or str(_TINY_DEFAULT_DIM)
    if not dim.isdigit() or int(dim) <= 0 or int(dim) % 32:
        raise UnknownSpecError(f"{spec!r}: DIM must be a positive multiple of 32, e.g. 'tiny:{arch}-64'")
    return int(dim)


class _TinyCNN(ImageEncoder):
    """Five stride-2 conv-BN-ReLU stages (total stride 32); pooled = mean of the last map."""

    def __init__(self, spec: str, dim: int, image_size: int):
        super().__init__(spec, dim, dim, image_size, imagenet_transform(image_size))
        layers, c_in = [], 3
        for c in (dim // 8, dim // 4, dim // 2, dim, dim):
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        self.body = nn.Sequential(*layers)

    def forward_grid(self, x):
        return self.body(x)

    def forward(self, x):
        return self.forward_grid(x).mean(dim=(2, 3))


class _TinyViT(ImageEncoder):
    """A 2-block pre-norm ViT with 16-pixel patches; pooled = normalized CLS token."""

    patch = 16

    def __init__(self, spec: str, dim: int, image_size: int, depth: int = 2):
        if image_size % self.patch:
            raise ParameterError(f"image_size={image_size} must be a multiple of {self.patch} for {spec!r}")
        super().__init__(spec, dim, dim, image_size, imagenet_transform(image_size))
        self.embed = nn.Conv2d(3, dim, self.patch, stride=self.patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, (image_size // self.patch) ** 2 + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, dim // 32, 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def _tokens(self, x):
        patches = self.embed(x)
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), patches.flatten(2).transpose(1, 2)], dim=1)
        return self.norm(self.blocks(tokens + self.pos)), patches.shape[-2:]

    def forward(self, x):
        return self._tokens(x)[0][:, 0]

    def forward_grid(self, x):
        tokens, (h, w) = self._tokens(x)
        return tokens[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, h, w)


def tiny_image(spec: str, name: str, tag: str | None, image_size: int = 224) -> ImageEncoder:
    """tiny:cnn[-DIM] or tiny:vit[-DIM], random init."""
    arch = name.partition("-")[0]
    if arch not in ("cnn", "vit") or tag:
        raise UnknownSpecError(f"unknown tiny image spec {spec!r}; use 'tiny:cnn[-DIM]' or 'tiny:vit[-DIM]'")
    cls = _TinyCNN if arch == "cnn" else _TinyViT
    return cls(spec, _tiny_dim(spec, name, arch), image_size)


def tiny_text(spec: str, name: str, tag: str | None) -> TextEncoder:
    """tiny:text[-DIM]: a 2-layer random-init BERT over the bundled MiniLM (BERT uncased) vocabulary."""
    if name.partition("-")[0] != "text" or tag:
        raise UnknownSpecError(f"unknown tiny text spec {spec!r}; use 'tiny:text[-DIM]'")
    import transformers as tr

    from ... import assets

    dim = _tiny_dim(spec, name, "text")
    tokenizer = tr.AutoTokenizer.from_pretrained(str(assets.minilm_dir()))
    config = tr.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=dim,
        num_hidden_layers=2,
        num_attention_heads=dim // 32,
        intermediate_size=4 * dim,
        max_position_embeddings=128,
    )
    return HFText(spec, tr.BertModel(config, add_pooling_layer=False), tokenizer, 128)
