"""On-disk cache of frozen-tower outputs, keyed by encoder spec and the exact inputs, so reruns extract nothing."""

from __future__ import annotations

import hashlib
import os
import re

import torch
from tqdm.auto import tqdm

from ..config import cache_dir
from ..io import atomic_path


def cache_key(spec: str, ids, extra: str = "") -> str:
    """File stem for (encoder spec, ordered input ids, extra settings): readable prefix + content hash."""
    digest = hashlib.sha256("\n".join([spec, extra, *map(str, ids)]).encode()).hexdigest()[:16]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', spec)}-{len(ids)}-{digest}"


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
    if path.is_file():
        return torch.load(path, weights_only=True)
    value = compute()
    with atomic_path(path) as tmp:
        torch.save(value, tmp)
    return value


@torch.no_grad()
def image_tower_features(encoder, dataset, batch_size: int = 64, progress: bool = True) -> torch.Tensor:
    """Pooled features (N, D) of every dataset item's `image` through `encoder` (eval mode), cached on disk."""
    ids = [_fingerprint(record) for record in dataset.records]

    def compute():
        chunks = _image_batches(encoder, dataset, batch_size, progress, "image features",
                                lambda pixels: encoder(pixels).float().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, encoder.embed_dim)

    return _cached(cache_key(encoder.spec, ids, repr(encoder.preprocess)), compute)


def _image_batches(encoder, dataset, batch_size: int, progress: bool, what: str, run) -> list:
    """`run(pixels)` over the dataset's images in batches (encoder in eval mode, on its device); the outputs in order."""
    encoder.eval()
    device = next(encoder.parameters()).device
    chunks = []
    for start in tqdm(range(0, len(dataset), batch_size), desc=f"{what} {encoder.spec}", disable=not progress):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        chunks.append(run(torch.stack([encoder.preprocess(item["image"]) for item in items]).to(device)))
    return chunks


@torch.no_grad()
def text_tower_features(encoder, texts, batch_size: int = 128, progress: bool = True) -> torch.Tensor:
    """Pooled features (N, D) of strings through a text tower (eval mode), cached on disk."""
    texts = list(texts)

    def compute():
        encoder.eval()
        device = next(encoder.parameters()).device
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths per batch: less padding
        out = torch.empty(len(texts), encoder.embed_dim)
        for start in tqdm(range(0, len(texts), batch_size), desc=f"text features {encoder.spec}", disable=not progress):
            rows = order[start:start + batch_size]
            tokens = encoder.tokenize([texts[i] for i in rows])
            out[rows] = encoder(tokens["input_ids"].to(device), tokens["attention_mask"].to(device)).float().cpu()
        return out

    return _cached(cache_key(encoder.spec, texts), compute)


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

    return _cached(cache_key(encoder.spec, ids, "grid|" + repr(encoder.preprocess)), compute).float()
