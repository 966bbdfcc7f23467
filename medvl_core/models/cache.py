"""On-disk cache of frozen-tower outputs, keyed by encoder spec and the exact inputs, so reruns extract nothing."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from tqdm.auto import tqdm

from ..config import cache_dir, lock_file
from ..io import atomic_path, exclusive_lock
from .modules import device_of


def cache_key(spec: str, ids, extra: str = "") -> str:
    """File stem for (encoder spec, ordered input ids, extra settings): readable prefix + content hash."""
    digest = hashlib.sha256("\n".join([spec, extra, *map(str, ids)]).encode()).hexdigest()[:16]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', spec)}-{len(ids)}-{digest}"


def _spec_key(encoder) -> str:
    """The encoder's spec, plus a digest of its weights for random-init specs (tiny:..., ...@random), whose
    weights differ between runs with different seeds: their features must not be mixed up in the cache."""
    spec = encoder.spec
    if not (spec.startswith("tiny:") or spec.endswith("@random")):
        return spec
    digest = hashlib.sha256()
    for tensor in encoder.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"{spec}#{digest.hexdigest()[:12]}"


def _fingerprint(record: dict) -> str:
    """Record id plus its image file's path, size and mtime, so a regenerated file invalidates the cache."""
    path = record.get("path")
    if not path or not os.path.exists(path):
        return str(record["id"])
    stat = os.stat(path)
    return f"{record['id']}|{path}|{stat.st_size}|{stat.st_mtime_ns}"


def _cached(key: str, compute) -> torch.Tensor:
    """Load features/<key>.pt, or compute, store atomically and return them."""
    path = cache_dir("features") / f"{key}.pt"
    with exclusive_lock(lock_file("features", key)):  # another process computing it: wait, then load
        if path.is_file():
            return torch.load(path, weights_only=True)
        value = compute()
        with atomic_path(path) as tmp:
            torch.save(value, tmp)
    return value


def cached_on_disk(encoder, ids, extra: str, compute):
    """`compute()` (a tensor or a dict of tensors) stored once under the features cache, keyed by the encoder's spec
    (weights digest for random-init specs), the ordered input ids and `extra`; later calls load it."""
    return _cached(cache_key(_spec_key(encoder), list(ids), extra), compute)


@torch.no_grad()
def image_tower_features(encoder, dataset, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
    """Pooled features (N, D) of every dataset item's `image` through `encoder` (eval mode), cached on disk."""
    ids = [_fingerprint(record) for record in dataset.records]

    def compute():
        chunks = _image_batches(encoder, dataset, batch_size, progress, "image features",
                                lambda pixels: encoder(pixels).float().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, encoder.embed_dim)

    return _cached(cache_key(_spec_key(encoder), ids, f"{LAYOUT}|{encoder.preprocess!r}"), compute)


CHANNELS_LAST_KINDS = ("bundled:", "torchvision:", "timm:", "tiny:", "run:")  # convolutional towers
LAYOUT = "channels_last"  # part of every image cache key: features computed in another layout differ in the last bits


@contextmanager
def conv_layout(encoder) -> Iterator:
    """Convolutional towers extract in the channels-last memory layout (EfficientNet-Lite0 at 128 px: about 1.6x
    faster on one CPU thread); yields the function that puts a pixel batch in that layout. The module returns to
    the standard layout afterwards (the layout moves no value)."""
    if not str(encoder.spec).startswith(CHANNELS_LAST_KINDS):
        yield lambda pixels: pixels
        return
    encoder.to(memory_format=torch.channels_last)
    try:
        yield lambda pixels: pixels.contiguous(memory_format=torch.channels_last)
    finally:
        encoder.to(memory_format=torch.contiguous_format)


def _image_batches(encoder, dataset, batch_size: int, progress: bool, what: str, run) -> list:
    """`run(pixels)` over the dataset's images in batches (encoder in eval mode, on its device); the outputs in order."""
    encoder.eval()
    device = device_of(encoder)
    chunks = []
    with conv_layout(encoder) as layout:
        for start in tqdm(range(0, len(dataset), batch_size), desc=f"{what} {encoder.spec}", disable=not progress):
            items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            chunks.append(run(layout(torch.stack([encoder.preprocess(item["image"]) for item in items]).to(device))))
    return chunks


@torch.no_grad()
def text_tower_features(encoder, texts, batch_size: int = 128, progress: bool = True) -> torch.Tensor:
    """Pooled features (N, D) of strings through a text tower (eval mode), cached on disk."""
    texts = list(texts)

    def compute():
        encoder.eval()
        device = device_of(encoder)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths per batch: less padding
        out = torch.empty(len(texts), encoder.embed_dim)
        for start in tqdm(range(0, len(texts), batch_size), desc=f"text features {encoder.spec}", disable=not progress):
            rows = order[start:start + batch_size]
            tokens = encoder.tokenize([texts[i] for i in rows])
            out[rows] = encoder(tokens["input_ids"].to(device), tokens["attention_mask"].to(device)).float().cpu()
        return out

    return _cached(cache_key(_spec_key(encoder), texts), compute)


@torch.no_grad()
def image_tower_grids(encoder, dataset, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
    """Spatial feature grids (N, D, h, w) of every dataset item's `image` (`forward_grid`, eval mode), cached on disk.

    Stored as float16 to keep the cache small (grids are large); returned as float32.
    """
    ids = [_fingerprint(record) for record in dataset.records]

    def compute():
        chunks = _image_batches(encoder, dataset, batch_size, progress, "image grids",
                                lambda pixels: encoder.forward_grid(pixels).to(torch.float16).cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, encoder.grid_dim, 0, 0, dtype=torch.float16)

    return _cached(cache_key(_spec_key(encoder), ids, f"grid|{LAYOUT}|{encoder.preprocess!r}"), compute).float()


@torch.no_grad()
def image_view_features(encoder, dataset, augment, n_views: int = 2, seed: int = 0, batch_size: int = 64,
                        progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features (N, V, D) of `n_views` augmented views of every image and their parameter vectors (N, V, P).

    `augment.with_params(image)` makes a view (e.g. `data.transforms.PaperAugmentation`); view k of item i is drawn
    from a torch seed of (seed, i, k), so the views are reproducible; both tensors are cached on disk.
    """
    from ..data.pairs import pair_seed

    ids = [_fingerprint(record) for record in dataset.records]

    def compute():
        encoder.eval()
        device = device_of(encoder)
        features, params = [], []
        with conv_layout(encoder) as layout:
            for start in tqdm(range(0, len(dataset), batch_size), desc=f"view features {encoder.spec}",
                              disable=not progress):
                pixels, vectors = [], []
                for i in range(start, min(start + batch_size, len(dataset))):
                    image = dataset[i]["image"]
                    for k in range(n_views):
                        with torch.random.fork_rng(devices=[]):
                            torch.manual_seed(pair_seed(seed, 1_000_000 + k, i))
                            view, vector = augment.with_params(image)
                        pixels.append(encoder.preprocess(view))
                        vectors.append(vector)
                out = encoder(layout(torch.stack(pixels).to(device))).float().cpu()
                features.append(out.reshape(-1, n_views, out.shape[-1]))
                params.append(torch.stack(vectors).view(-1, n_views, vectors[0].shape[0]))
        return {"features": torch.cat(features), "params": torch.cat(params)}

    extra = f"views|{n_views}|{seed}|{augment!r}|{LAYOUT}|{encoder.preprocess!r}"
    cached = _cached(cache_key(_spec_key(encoder), ids, extra), compute)
    return cached["features"], cached["params"]


class EpochTextFeatures:
    """epoch -> (N, D) frozen text-tower features of that epoch's texts (`data.pairs.epoch_text`: each report's
    sampled sentences joined into one text), every distinct text over `epochs` epochs encoded once (cached on disk).
    Epoch e uses the draw of epoch e mod `epochs`: `epochs` = the training epochs draws anew every epoch (the
    paper); fewer rounds bound the number of texts a CPU has to encode."""

    def __init__(self, encoder, reports, sentences_per_report: int | None, seed: int, epochs: int,
                 progress: bool = True):
        from ..data.pairs import epoch_text

        rounds = epochs if sentences_per_report is not None else 1  # the whole report is the same every epoch
        texts = [[epoch_text(r, sentences_per_report, seed, e, i) for i, r in enumerate(reports)] for e in range(rounds)]
        distinct = list(dict.fromkeys(t for epoch in texts for t in epoch))
        position = {t: k for k, t in enumerate(distinct)}
        self.features = text_tower_features(encoder, distinct, progress=progress)
        self.index = [torch.tensor([position[t] for t in epoch]) for epoch in texts]

    def __call__(self, epoch: int) -> torch.Tensor:
        """Features of the texts of `epoch` (draws repeat every `epochs` epochs)."""
        return self.features[self.index[int(epoch) % len(self.index)]]
