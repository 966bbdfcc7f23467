"""Frozen-tower feature cache: reruns extract nothing; a changed file or spec extracts again."""

import os

import numpy as np
import torch
from PIL import Image

from medvl_core.data import open_dataset
from medvl_core.models.cache import cache_key, image_tower_features, text_tower_features
from medvl_core.models.encoders import build_image_encoder, build_text_encoder


def _folder(root):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return open_dataset("image-folder", root=root)


class Counting(torch.nn.Module):
    """Wraps an encoder and counts forward calls."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0
        self.spec, self.embed_dim = inner.spec, inner.embed_dim
        self.preprocess = getattr(inner, "preprocess", None)

    def forward(self, *args):
        self.calls += 1
        return self.inner(*args)

    def tokenize(self, texts):
        return self.inner.tokenize(texts)


def test_image_features_cached_and_invalidated(tmp_path, data_root):
    dataset = _folder(tmp_path / "imgs")
    encoder = Counting(build_image_encoder("tiny:cnn-32"))
    first = image_tower_features(encoder, dataset, batch_size=4, progress=False)
    assert first.shape == (6, encoder.embed_dim) and encoder.calls == 2
    again = image_tower_features(encoder, dataset, batch_size=4, progress=False)
    assert encoder.calls == 2 and torch.equal(first, again)
    path = dataset.records[0]["path"]
    os.utime(path, ns=(1, 1))
    image_tower_features(encoder, dataset, batch_size=4, progress=False)
    assert encoder.calls == 4
    assert len(list((data_root / "cache" / "features").glob("*.pt"))) == 2


def test_text_features_cached(data_root):
    encoder = Counting(build_text_encoder("tiny:text-32"))
    a = text_tower_features(encoder, ["no effusion", "small effusion"], progress=False)
    b = text_tower_features(encoder, ["no effusion", "small effusion"], progress=False)
    assert encoder.calls == 1 and torch.equal(a, b) and a.shape[0] == 2


def test_cache_key_depends_on_spec_ids_and_extra():
    base = cache_key("bundled:minilm", ["a", "b"])
    assert base.startswith("bundled_minilm-2-")
    assert base != cache_key("tiny:text", ["a", "b"]) != cache_key("bundled:minilm", ["b", "a"])
    assert base != cache_key("bundled:minilm", ["a", "b"], extra="224")


def test_text_features_keep_input_order_despite_length_batching(data_root):
    encoder = build_text_encoder("tiny:text-32")
    texts = ["a much longer sentence about a small left pleural effusion", "short", "mid length one"]
    batched = text_tower_features(encoder, texts, batch_size=2, progress=False)
    with torch.no_grad():
        single = torch.cat([encoder(**{k: v for k, v in encoder.tokenize([t]).items()}) for t in texts])
    assert torch.allclose(batched, single, atol=1e-5)


def test_conv_towers_extract_in_channels_last_with_the_same_features(tmp_path, data_root):
    from medvl_core.models.cache import conv_layout

    dataset = _folder(tmp_path / "imgs")
    encoder = build_image_encoder("tiny:cnn", image_size=32).eval()
    pixels = torch.stack([encoder.preprocess(dataset[i]["image"]) for i in range(len(dataset))])
    with torch.no_grad():
        plain = encoder(pixels)
        with conv_layout(encoder) as layout:
            assert layout(pixels).is_contiguous(memory_format=torch.channels_last)
            fast = encoder(layout(pixels))
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    assert all(p.is_contiguous() for p in encoder.parameters())  # the standard layout is back
    torch.testing.assert_close(image_tower_features(encoder, dataset, progress=False), plain, atol=1e-5, rtol=1e-5)
