"""SynthDerm renderer: skin (tone, body site: hair, creases, pores), a condition's lesions, then photo nuisance.

`render_derm(condition, site, tone, nuisance, seed, size)` returns an RGB uint8 array. Coordinates: the
output image spans [-1, 1] on both axes; the canvas is drawn ~1.45x larger so that rotation leaves
no empty corners. Everything is drawn from `np.random.default_rng(seed)`, so an image is a pure
function of its arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .synth_derm_conditions import Condition

SKIN_TONES = ((241, 213, 192), (226, 186, 156), (204, 156, 121), (166, 118, 85), (120, 82, 57), (80, 56, 42))
SITES = ("face", "scalp", "neck", "chest", "back", "abdomen", "arm", "hand", "leg", "foot")
SITE_LOOK = {  # site -> (hair strands, hair darkness 0..1, crease lines, pores, tone factor)
    "face": (0, 0.0, 0, True, 1.0), "scalp": (260, 0.9, 0, False, 0.97), "neck": (0, 0.0, 2, False, 0.99),
    "chest": (12, 0.6, 0, False, 1.0), "back": (0, 0.0, 0, True, 0.98), "abdomen": (6, 0.5, 0, False, 1.01),
    "arm": (40, 0.5, 0, False, 0.98), "hand": (8, 0.4, 7, False, 1.03), "leg": (45, 0.6, 0, False, 0.97),
    "foot": (0, 0.0, 5, False, 1.06),
}
COUNTS = {"single": (1, 1), "pair": (2, 2), "few": (2, 4), "scattered": (6, 12), "clustered": (8, 18),
          "band": (12, 22), "widespread": (25, 45)}
RED = np.array([205.0, 72.0, 72.0])
SCALE_WHITE, SCALE_GREASY = np.array([238.0, 236.0, 230.0]), np.array([228.0, 202.0, 120.0])


@dataclass(frozen=True)
class Nuisance:
    """Photo conditions of one image."""

    brightness: float = 1.0
    gradient: float = 0.0
    gradient_angle: float = 0.0
    warmth: float = 0.0
    blur: float = 0.0
    rotation: float = 0.0
    zoom: float = 1.0
    noise: float = 0.0


def sample_nuisance(rng: np.random.Generator, strength: float = 1.0, closeup: bool = False) -> Nuisance:
    """Random lighting, white balance, blur, rotation, zoom and sensor noise; `strength` 0 = none."""
    zoom = rng.uniform(1.25, 1.7) if closeup else rng.uniform(0.85, 1.1)
    return Nuisance(brightness=1 + strength * rng.uniform(-0.18, 0.12), gradient=strength * rng.uniform(0, 0.25),
                    gradient_angle=rng.uniform(0, 2 * math.pi), warmth=strength * rng.uniform(-0.06, 0.06),
                    blur=strength * rng.uniform(0, 1.2), rotation=strength * rng.uniform(0, 360),
                    zoom=1 + strength * (zoom - 1), noise=strength * rng.uniform(1, 4))


# ------------------------------------------------------------------ fields and helpers

def _smooth(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Smoothstep from 0 (x <= edge0) to 1 (x >= edge1)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1] at `cells` cells across an n x n canvas."""
    grid = rng.random((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((n, n), Image.BICUBIC)).clip(0, 1)


def _blend(canvas: np.ndarray, colour, alpha: np.ndarray) -> None:
    """canvas = (1 - alpha) * canvas + alpha * colour, in place (alpha: HxW)."""
    a = alpha[..., None]
    canvas *= 1 - a
    canvas += a * np.asarray(colour, dtype=np.float32)


def _lines(n: int, rng, count: int, length: tuple, angle: float, jitter: float, width: int, curve: bool = False) -> np.ndarray:
    """A [0, 1] mask of `count` random strokes (hairs, creases, vessels) on an n x n canvas."""
    mask = Image.new("L", (n, n), 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(count):
        x, y, a = rng.uniform(0, n), rng.uniform(0, n), angle + rng.normal(0, jitter)
        step = rng.uniform(*length) * n / 4
        points = [(x, y)]
        for _ in range(4 if curve else 1):
            a += rng.normal(0, 0.5) if curve else 0.0
            x, y = x + step * math.cos(a), y + step * math.sin(a)
            points.append((x, y))
        draw.line(points, fill=255, width=width)
    return np.asarray(mask.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32) / 255.0


def tinted(colour, tone: int) -> np.ndarray:
    """A lesion colour as it shows on skin tone `tone`: colours darker than the lightest skin scale with the
    skin (pigment and redness look darker on dark skin); lighter ones (depigmentation, fluid) barely change."""
    skin, light = np.asarray(SKIN_TONES[tone], dtype=np.float32), np.asarray(SKIN_TONES[0], dtype=np.float32)
    colour = np.asarray(colour, dtype=np.float32)
    w = 0.65 if colour.mean() < light.mean() else 0.15
    return (1 - w) * colour + w * np.minimum(colour * skin / light, 255)


# ------------------------------------------------------------------ skin

def skin(n: int, tone: int, site: str, rng: np.random.Generator) -> np.ndarray:
    """An n x n x 3 float skin background for `site` (mottling, hair, creases, pores)."""
    hair, darkness, creases, pores, factor = SITE_LOOK[site]
    base = np.asarray(SKIN_TONES[tone], dtype=np.float32) * factor
    canvas = base.astype(np.float32) * (1 + 0.07 * (_noise(rng, n, 5) - 0.5))[..., None]
    canvas *= (1 + 0.03 * (np.stack([_noise(rng, n, 14) for _ in range(3)], -1) - 0.5))
    if pores:
        canvas *= (1 - 0.12 * (rng.random((n, n), dtype=np.float32) > 0.985))[..., None]
    if creases:
        _blend(canvas, base * 0.72, 0.35 * _lines(n, rng, creases, (1.2, 2.5), rng.uniform(0, math.pi), 0.4, 1, True))
    if hair:
        colour = np.array([35.0, 27.0, 22.0]) * darkness + base * (1 - darkness) * 0.8
        _blend(canvas, colour, 0.75 * _lines(n, rng, hair, (0.15, 0.4), rng.uniform(0, math.pi), 0.25, 1))
    return canvas


# ------------------------------------------------------------------ lesions

def lesion_layout(cond: Condition, rng: np.random.Generator) -> list[tuple]:
    """(x, y, radius, angle) of each lesion, in output coordinates before zoom."""
    lo, hi = COUNTS[cond.distribution]
    count = int(rng.integers(lo, hi + 1))
    radii = cond.size * np.exp(rng.normal(0, 0.18, count))
    angles = rng.uniform(0, math.pi, count)
    if cond.distribution == "single":
        xy = rng.normal(0, 0.12, (1, 2))
    elif cond.distribution == "pair":
        xy = np.array([[-0.55, 0.0], [0.55, 0.0]]) + rng.normal(0, 0.08, (2, 2))
    elif cond.distribution == "few":
        xy = rng.uniform(-0.6, 0.6, (count, 2))
    elif cond.distribution == "clustered":
        centre, spread = rng.normal(0, 0.15, 2), rng.uniform(0.2, 0.35)
        xy = centre + rng.normal(0, spread / 1.8, (count, 2))
    elif cond.distribution == "band":
        xy, angles = _band(count, rng)
    else:  # scattered / widespread
        xy = rng.uniform(-1.35, 1.35, (count, 2))
    return [(float(x), float(y), float(r), float(a)) for (x, y), r, a in zip(xy, radii, angles)]


def _band(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Positions along a slightly curved band through the image, lesions oriented along it."""
    direction, offset = rng.uniform(0, math.pi), rng.normal(0, 0.15)
    t = np.sort(rng.uniform(-1.3, 1.3, count))
    bend = 0.15 * t**2 * rng.choice([-1, 1])
    along = np.array([math.cos(direction), math.sin(direction)])
    across = np.array([-along[1], along[0]])
    xy = t[:, None] * along + (offset + bend + rng.normal(0, 0.07, count))[:, None] * across
    return xy, np.full(count, direction) + rng.normal(0, 0.15, count)


def _blob(n: int, px: float, lesion: tuple, aspect: float, irregular: float, rng, reach: float = 1.7):
    """(region slices, rho, a, b) of one lesion: rho = distance / irregular radius, (a, b) lesion frame."""
    x, y, r, angle = lesion
    half = r * max(aspect, 1.0) * reach
    x0, x1 = max(0, int((x - half) * px + n / 2)), min(n, int((x + half) * px + n / 2) + 2)
    y0, y1 = max(0, int((y - half) * px + n / 2)), min(n, int((y + half) * px + n / 2) + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    X, Y = np.meshgrid((np.arange(x0, x1) + 0.5 - n / 2) / px - x, (np.arange(y0, y1) + 0.5 - n / 2) / px - y)
    ca, sa = math.cos(angle), math.sin(angle)
    a, b = (X * ca + Y * sa) / (r * aspect), (-X * sa + Y * ca) / r
    theta, k = np.arctan2(b, a), np.arange(2, 6)
    amp, phase = irregular * rng.standard_normal(4) * 2 / k, rng.uniform(0, 2 * math.pi, 4)
    radius = 1 + np.tensordot(amp, np.cos(k[:, None, None] * theta + phase[:, None, None]), 1)
    rho = np.hypot(a, b) / np.maximum(radius, 0.3)
    return (slice(y0, y1), slice(x0, x1)), rho.astype(np.float32), a, b


def _dome(rho, a, b, glossy: bool):
    """(shade factor, specular highlight) of a raised lesion lit from the top left."""
    h = np.sqrt(np.clip(1 - rho**2, 0, 1))
    shade = 0.8 + 0.28 * h - 0.12 * (a + b) * h
    spot = np.exp(-((a + 0.35) ** 2 + (b + 0.35) ** 2) / (0.04 if glossy else 0.025))
    return shade, spot * (0.75 if glossy else 0.35)


def paint_lesion(canvas, cover, region, rho, a, b, cond: Condition, colour) -> None:
    """Draw one lesion of `cond.morphology` into `canvas` (HxWx3) and its coverage into `cover` (HxW)."""
    view, morph = canvas[region], cond.morphology
    glossy = cond.texture == "glossy"
    inside = 1 - _smooth(0.85, 1.0, rho)
    if morph in ("macule", "patch"):
        alpha = (0.85 if morph == "macule" else 0.75) * (1 - _smooth(0.85 if morph == "macule" else 0.35, 1.0, rho))
        _blend(view, colour, alpha)
    elif morph == "plaque":
        view *= (1 - 0.15 * (_smooth(0.95, 1.0, rho) - _smooth(1.0, 1.15, rho)))[..., None]
        alpha = 0.92 * (1 - _smooth(0.92, 1.0, rho))
        _blend(view, colour, alpha)
    elif morph in ("papule", "nodule"):
        shade, spot = _dome(rho, a, b, glossy or morph == "nodule")
        alpha = inside
        _blend(view, np.clip(colour * shade[..., None], 0, 255), alpha * 0.95)
        _blend(view, (250, 250, 250), alpha * spot)
        if cond.texture == "dimpled":
            _blend(view, colour * 0.6, 0.6 * np.exp(-(a**2 + b**2) / 0.03))
    elif morph in ("vesicle", "bulla", "pustule"):
        halo = (1.5, 1.2, 1.7)[("vesicle", "bulla", "pustule").index(morph)]
        _blend(view, RED, 0.55 * (1 - _smooth(0.9, halo, rho)))
        core = inside if morph != "pustule" else 1 - _smooth(0.45, 0.65, rho)
        _, spot = _dome(rho, a, b, True)
        _blend(view, colour, 0.85 * core)
        _blend(view, (252, 252, 252), core * spot)
        alpha = core
    elif morph == "ring":
        alpha = 0.9 * (1 - _smooth(0.0, 0.16, np.abs(rho - 0.82)))
        _blend(view, colour, np.maximum(alpha, 0.15 * (rho < 0.82)))
    elif morph == "target":
        _blend(view, colour, 0.9 * inside)
        _blend(view, colour + (255 - colour) * 0.6, 0.8 * (1 - _smooth(0.5, 0.62, rho)))
        _blend(view, colour * 0.55, 0.9 * (1 - _smooth(0.25, 0.35, rho)))
        alpha = inside
    else:  # wheal
        _blend(view, (228, 112, 112), 0.4 * (1 - _smooth(0.9, 1.3, rho)))
        _blend(view, colour + (255 - colour) * 0.35 * (1 - _smooth(0.3, 0.7, rho))[..., None], 0.85 * inside)
        alpha = inside
    cover[region] = np.maximum(cover[region], alpha)


# ------------------------------------------------------------------ textures

def apply_texture(canvas, cover, cond: Condition, rng: np.random.Generator) -> None:
    """Scale (flakes) and surface texture over the lesion coverage map `cover`."""
    n, t = cover.shape[0], cond.texture
    if t in ("rough", "waxy"):
        grain = rng.random((n, n)) - 0.5 if t == "rough" else _noise(rng, n, n // 6) - 0.5
        canvas *= (1 + (0.35 if t == "waxy" else 0.25) * grain * cover)[..., None]
    elif t == "crust":
        crust = _smooth(0.5, 0.65, _noise(rng, n, n // 5)) * cover
        _blend(canvas, (192, 138, 58), 0.75 * crust)
        canvas *= (1 - 0.3 * (rng.random((n, n)) > 0.9) * crust)[..., None]
    elif t == "variegated":
        _blend(canvas, (30, 28, 42), 0.7 * _smooth(0.5, 0.62, _noise(rng, n, n // 8)) * cover)
        _blend(canvas, (142, 70, 56), 0.6 * _smooth(0.55, 0.7, _noise(rng, n, n // 8)) * cover)
    elif t == "veins":
        vessels = _lines(n, rng, 40, (0.1, 0.3), 0.0, math.pi, 1, True) * _smooth(0.2, 0.5, cover)
        _blend(canvas, (176, 30, 44), 0.7 * vessels)
    if cond.scale > 0:
        flakes = _smooth(1 - 0.55 * cond.scale, 1.05 - 0.55 * cond.scale, _noise(rng, n, n // 3))
        _blend(canvas, SCALE_GREASY if t == "greasy" else SCALE_WHITE, 0.85 * flakes * cover)


# ------------------------------------------------------------------ whole image

def render_derm(cond: Condition, site: str, tone: int, nuisance: Nuisance, seed, size: int = 128) -> np.ndarray:
    """One RGB uint8 image (size x size) of `cond` at `site` on skin tone `tone` (0 light .. 5 dark)."""
    rng = np.random.default_rng(seed)
    n = int(math.ceil(size * 1.45 / 2)) * 2
    px = size / 2
    canvas = skin(n, tone, site, rng)
    cover = np.zeros((n, n), dtype=np.float32)
    colour = tinted(cond.colour, tone)
    for x, y, r, angle in lesion_layout(cond, rng):
        lesion = (x * nuisance.zoom, y * nuisance.zoom, r * nuisance.zoom, angle)
        blob = _blob(n, px, lesion, cond.aspect, cond.irregular, rng)
        if blob is not None:
            paint_lesion(canvas, cover, *blob, cond, colour * rng.uniform(0.93, 1.07))
    apply_texture(canvas, cover, cond, rng)
    return _photograph(canvas, nuisance, size, rng)


def _photograph(canvas: np.ndarray, nu: Nuisance, size: int, rng: np.random.Generator) -> np.ndarray:
    """Lighting, white balance, rotation + crop, blur and sensor noise; returns uint8."""
    n = canvas.shape[0]
    coords = ((np.arange(n, dtype=np.float32) + 0.5 - n / 2) / (n / 2)) * (nu.gradient / 1.4)
    ramp = math.cos(nu.gradient_angle) * coords[None, :] + math.sin(nu.gradient_angle) * coords[:, None]
    gain = np.float32(nu.brightness) * np.array([1 + nu.warmth, 1.0, 1 - nu.warmth], dtype=np.float32)
    canvas = canvas * (1 + ramp)[..., None] * gain
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), mode="RGB").rotate(nu.rotation, Image.BILINEAR)
    lo = (n - size) // 2
    img = img.crop((lo, lo, lo + size, lo + size))
    if nu.blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(nu.blur))
    if nu.noise <= 0:
        return np.asarray(img)
    out = np.asarray(img, dtype=np.float32) + rng.standard_normal((size, size, 3), dtype=np.float32) * np.float32(nu.noise)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
