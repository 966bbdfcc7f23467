"""Contrastive models saved in run folders as probe-able image encoders, and spec -> cached features glue.

`image_encoder_from_run(path)` wraps a `DualEncoder.save_pretrained` folder's image tower + image projection as an
ImageEncoder with spec `run:<path>`; `probe_encoder(spec)` accepts those specs besides `build_image_encoder`'s;
`extract_features(spec, dataset)` is the probing notebook's one call per (model, dataset), cached on disk.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ParameterError
from .cache import image_tower_features
from .dual_encoder import WEIGHTS_NAME, load_dual_encoder
from .encoders import ImageEncoder, build_image_encoder, parse_spec

RUN_PREFIX = "run:"


class _KeyedPreprocess:
    """The tower's transform, with a repr naming the weights file so the feature cache sees retrained weights."""

    def __init__(self, transform, weights: Path):
        stat = weights.stat()
        ident = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        self.transform, self.weights_id = transform, hashlib.sha256(ident.encode()).hexdigest()[:12]

    def __call__(self, image):
        return self.transform(image)

    def __repr__(self):
        return f"{self.transform!r} weights={self.weights_id}"


class RunImageEncoder(ImageEncoder):
    """A trained dual encoder's image tower + projection: forward -> L2-normalised (B, embed_dim) joint embeddings."""

    def __init__(self, spec: str, model, weights: Path):
        tower = model.visual
        super().__init__(
            spec, model.embed_dim, tower.grid_dim, tower.image_size, _KeyedPreprocess(tower.preprocess, weights)
        )
        self.visual, self.projection = tower, model.image_projection

    def forward(self, x):
        return F.normalize(self.projection(self.visual(x)), dim=-1)

    def forward_grid(self, x):
        return self.visual.forward_grid(x)


def image_encoder_from_run(path, device=None) -> RunImageEncoder:
    """The image side of the dual encoder saved in `path` (spec `run:<path>` as given), in eval mode."""
    path = Path(path).expanduser()
    model = load_dual_encoder(path, device=device)
    return RunImageEncoder(f"{RUN_PREFIX}{path.as_posix()}", model, path / WEIGHTS_NAME).eval()


def probe_encoder(spec: str, device=None, image_size: int | None = None, seed: int = 0) -> ImageEncoder:
    """`run:<path>` or any `build_image_encoder` spec; random-init towers are seeded and their spec gets `#seed=N`.

    A run model keeps the input size it was trained at (`image_size` is ignored for it).
    """
    if spec.startswith(RUN_PREFIX):
        return image_encoder_from_run(spec[len(RUN_PREFIX) :], device=device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = build_image_encoder(spec, device=device, image_size=image_size)
    if is_random_init(spec):
        encoder.spec = f"{spec}#seed={seed}"  # the feature cache is keyed by spec: one entry per random draw
    return encoder


def is_random_init(spec: str) -> bool:
    """True for specs built with random weights: tiny:*, NAME@random, open_clip:ARCH without a pretrained tag."""
    if spec.startswith(RUN_PREFIX):
        return False
    kind, name, tag = parse_spec(spec)
    return kind == "tiny" or tag == "random" or (kind == "open_clip" and tag is None and not name.startswith("hf-hub:"))


def extract_features(
    spec: str,
    dataset,
    batch_size: int = 64,
    device=None,
    image_size: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> torch.Tensor:
    """Pooled image features (N, D) of `dataset` through `probe_encoder(spec)`, cached on disk per (model, dataset)."""
    if batch_size < 1:
        raise ParameterError(f"batch_size={batch_size}; use a positive integer")
    encoder = probe_encoder(spec, device=device, image_size=image_size, seed=seed)
    with torch.no_grad():  # frozen features: no autograd graph (about a third less CPU)
        return image_tower_features(encoder, dataset, batch_size=batch_size, progress=progress)
