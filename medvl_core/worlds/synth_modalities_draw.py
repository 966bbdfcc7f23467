"""What the `synth-modalities` renderers share: the `Scene` one image shows, numpy drawing primitives and PIL overlays.

Coordinates: the grid (y, x) in [-1, 1], y down. A renderer takes a `Scene` (class, confounder values, the
patient/slide group's tone, seed, size) and returns uint8 pixels, (S, S) or (S, S, 3). Overlays (burned-in
words, calipers, rulers) are drawn with PIL on a 64-px-per-unit layer and scaled up, so they look alike
at every size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import gaussian_filter

OVERLAY_STREAM = 100  # confounder marks draw from their own stream, so adding one leaves the rest unchanged


@dataclass(frozen=True)
class Scene:
    """What one image shows: class name, confounder values, group tone (3 N(0,1) draws), seed, size."""

    cls: str
    conf: dict
    tone: tuple[float, float, float]
    seed: int
    size: int


# ------------------------------------------------------------------ primitives

def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) pixel-centre coordinates in [-1, 1], float32."""
    c = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1)
    return np.meshgrid(c, c, indexing="ij")


def sigmoid(v):
    """Logistic function (soft step)."""
    return 1.0 / (1.0 + np.exp(-np.clip(v, -30, 30)))


def shape(y, x, cy, cx, ry, rx, theta=0.0, edge=0.05, wobble=None):
    """Soft mask of an ellipse (optionally with a wobbly border: `wobble` = (amplitudes, phases) over harmonics 2..)."""
    c, s = np.cos(theta), np.sin(theta)
    u, v = (x - cx) * c + (y - cy) * s, (y - cy) * c - (x - cx) * s
    r = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    if wobble is not None:
        amp, phase = wobble
        k = np.arange(2, 2 + len(amp), dtype=np.float32)[:, None, None]
        r = r / (1 + np.sum(amp[:, None, None] * np.cos(k * np.arctan2(v, u)[None] + phase[:, None, None]), 0))
    return sigmoid((1 - r) / edge)


def wobble(rng, amount: float, harmonics: int = 6):
    """Random border harmonics for `shape` (amplitude ~ amount / k)."""
    k = np.arange(2, 2 + harmonics)
    return (amount * rng.uniform(0.3, 1.0, harmonics) / k * 2).astype(np.float32), rng.uniform(0, 2 * np.pi, harmonics)


def spots(y, x, cy, cx, r, aspect=None, theta=None, edge=0.12):
    """Max over many small soft ellipses (centres cy, cx, radii r; arrays), vectorised."""
    cy, cx, r = (np.asarray(a, dtype=np.float32)[:, None, None] for a in (cy, cx, r))
    if len(cy) == 0:
        return np.zeros_like(y)
    aspect = np.ones_like(r) if aspect is None else np.asarray(aspect, dtype=np.float32)[:, None, None]
    theta = np.zeros_like(r) if theta is None else np.asarray(theta, dtype=np.float32)[:, None, None]
    c, s = np.cos(theta), np.sin(theta)
    u, v = (x - cx) * c + (y - cy) * s, (y - cy) * c - (x - cx) * s
    d = np.sqrt((u / r) ** 2 + (v / (r * aspect)) ** 2)
    return sigmoid((1 - d) / edge).max(0)


def texture(rng, size: int, sigma: float, sigma_x: float | None = None) -> np.ndarray:
    """Unit-variance low-pass noise; sigma in units of the image width (sigma_x: anisotropic)."""
    sig = (max(sigma * size, 0.5), max((sigma_x or sigma) * size, 0.5))
    t = gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), sig, mode="wrap")
    return t / (t.std() + 1e-6)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Clip [0, 1] floats to uint8."""
    return np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)


def _font():
    """PIL's built-in bitmap font (the same glyphs on every platform)."""
    loader = getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)
    return loader()


def overlay(size: int, draw: Callable[[ImageDraw.ImageDraw, int], None]) -> np.ndarray:
    """Mask in [0, 1] of marks drawn by `draw(canvas, unit)` on a 64-px-per-unit layer, scaled to `size`."""
    f = max(1, size // 64)
    small = -(-size // f)
    layer = Image.new("L", (small, small), 0)
    draw(ImageDraw.Draw(layer), small)
    return np.asarray(layer.resize((small * f, small * f), Image.NEAREST), dtype=np.float32)[:size, :size] / 255


def paint(img: np.ndarray, mask: np.ndarray, colour) -> np.ndarray:
    """Blend `colour` (scalar or RGB) into `img` where `mask` is 1."""
    m = mask[..., None] if img.ndim == 3 else mask
    return img * (1 - m) + np.asarray(colour, dtype=np.float32) * m


def text_mask(size: int, text: str, corner: str = "top-left") -> np.ndarray:
    """Mask of burned-in `text` (PIL default font) in a corner of the image."""
    def draw(canvas, n):
        w, h = canvas.textbbox((0, 0), text, font=_font())[2:]
        x = 2 if corner.endswith("left") else n - w - 2
        y = 1 if corner.startswith("top") else n - h - 2
        canvas.text((x, y), text, fill=255, font=_font())

    return overlay(size, draw)


def to_px(v: float, n: int) -> float:
    """Grid coordinate in [-1, 1] -> pixel on an n-px canvas."""
    return (v + 1) / 2 * n
