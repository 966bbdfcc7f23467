"""`synth-modalities` renderers of the photographic stand-ins: colour fundus photos (DeepDR grades) and dermoscopy
(ISIC 2019 categories)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .synth_modalities_draw import (
    OVERLAY_STREAM,
    Scene,
    grid,
    overlay,
    paint,
    shape,
    sigmoid,
    spots,
    texture,
    to_px,
    to_uint8,
    wobble,
)

# ------------------------------------------------------------------ fundus (DeepDR stand-in)

CAMERA_CAST = {"A": (1.0, 1.0, 1.0), "B": (0.85, 1.05, 1.25)}


def fundus(sc: Scene) -> np.ndarray:
    """Colour fundus photo: disc, macula, vessel arcades; mild = microaneurysms, severe = haemorrhages + exudates."""
    rng = np.random.default_rng([sc.seed, 7])
    y, x = grid(sc.size)
    side = 1.0 if sc.conf["eye"] == "right" else -1.0
    r2 = x ** 2 + y ** 2
    pigment = 1 + 0.12 * sc.tone[0]
    base = np.array([0.8, 0.36, 0.14], np.float32) * pigment
    img = base * (1 - 0.4 * r2)[..., None] * (1 + 0.05 * texture(rng, sc.size, 0.04))[..., None]
    dy, dx = rng.uniform(-0.1, 0.05), side * rng.uniform(0.42, 0.5)
    img = paint(img, 0.6 * shape(y, x, 0.0, -0.05 * side, 0.16, 0.16, edge=0.3), [0.45, 0.16, 0.06])
    img = paint(img, _vessels(sc.size, dy, dx, side, rng), [0.5, 0.08, 0.05])
    img = paint(img, shape(y, x, dy, dx, 0.12, 0.11, edge=0.08), [0.98, 0.86, 0.6])
    img = _dr_lesions(img, rng, y, x, sc.cls)
    img = img * np.array(CAMERA_CAST[sc.conf["camera"]], np.float32)
    field = shape(y, x, 0, 0, 0.93, 0.93, edge=0.01)
    if sc.conf["camera"] == "B":  # wider field, clipped top and bottom, with a notch
        field = shape(y, x, 0, 0, 1.0, 1.0, edge=0.01) * sigmoid((0.84 - np.abs(y)) / 0.01)
        field *= 1 - shape(y, x, -0.84, 0.0, 0.06, 0.06, edge=0.05)
    return to_uint8(img * field[..., None] + 0.01 * rng.standard_normal(img.shape))


def _vessels(size, dy, dx, side, rng):
    """Four arcades leaving the disc toward the macula side (PIL polylines, blurred)."""
    def draw(canvas, n):
        t = np.linspace(0, 1, 16)
        for up in (-1, 1):
            for spread, w in ((0.55, 2), (0.32, 1)):
                bend = spread * rng.uniform(0.85, 1.15)
                px = dx - side * 1.5 * t
                py = dy + up * bend * np.sin(np.pi * t * 0.95) + rng.normal(0, 0.01, t.size)
                canvas.line([(to_px(a, n), to_px(b, n)) for a, b in zip(px, py)], fill=200, width=w)

    return gaussian_filter(overlay(size, draw), 0.4 * size / 64)


FUNDUS_CLASSES = ("dr0_none", "dr1_mild", "dr2_moderate", "dr3_severe", "dr4_proliferative")  # DeepDR's grades 0-4


def _dr_lesions(img, rng, y, x, cls):
    """By grade: microaneurysms (1+), blot haemorrhages (2+), more of them and hard exudates (3+), new vessels (4)."""
    grade = FUNDUS_CLASSES.index(cls)
    if grade == 0:
        return img
    n = int(rng.integers(4, 8))
    img = paint(img, spots(y, x, *rng.uniform(-0.55, 0.55, (2, n)), np.full(n, 0.028), edge=0.15), [0.35, 0.03, 0.03])
    if grade >= 2:
        n = int(rng.integers(3, 6) * (grade - 1))
        img = paint(img, spots(y, x, *rng.uniform(-0.6, 0.6, (2, n)), rng.uniform(0.04, 0.07, n), edge=0.15),
                    [0.32, 0.03, 0.02])
    if grade >= 3:
        m = int(rng.integers(8, 16))
        ey, ex = rng.normal(0, 0.22, (2, m))
        img = paint(img, spots(y, x, ey, ex, rng.uniform(0.025, 0.04, m), edge=0.15), [1.0, 0.9, 0.35])
    if grade == 4:  # neovascular tufts: clusters of thin, elongated red segments
        m = 24
        ty, tx = (rng.uniform(-0.5, 0.5, (2, 3))[:, rng.integers(0, 3, m)] + rng.normal(0, 0.06, (2, m)))
        img = paint(img, 0.9 * spots(y, x, ty, tx, np.full(m, 0.012), np.full(m, 5.0), rng.uniform(0, np.pi, m),
                                     edge=0.2), [0.6, 0.05, 0.05])
    return img


# ------------------------------------------------------------------ dermoscopy (ISIC2019 stand-in)

LESIONS = {  # ISIC 2019's nine categories: radius range, border wobble, colour, detail
    "ak": ((0.3, 0.4), 0.2, (0.8, 0.45, 0.4), "scale"),  # actinic keratosis: red, rough, scaly
    "bcc": ((0.25, 0.35), 0.1, (0.85, 0.62, 0.6), "vessels"),  # basal cell carcinoma: pearly, arborising vessels
    "bkl": ((0.3, 0.42), 0.15, (0.72, 0.55, 0.38), "cysts"),  # benign keratosis: milia-like cysts, comedo openings
    "df": ((0.16, 0.22), 0.05, (0.6, 0.42, 0.3), "white_patch"),  # dermatofibroma: small, central white patch
    "mel": ((0.36, 0.5), 0.45, (0.36, 0.2, 0.12), "blotches"),  # melanoma: large, irregular, black/blue-grey
    "nv": ((0.28, 0.38), 0.06, (0.52, 0.33, 0.2), ""),  # nevus: regular, brown
    "scc": ((0.3, 0.42), 0.25, (0.85, 0.5, 0.45), "keratin"),  # squamous cell carcinoma: central keratin mass
    "unk": ((0.25, 0.45), 0.25, (0.62, 0.45, 0.35), "mixed"),  # unknown/other
    "vasc": ((0.2, 0.3), 0.1, (0.65, 0.15, 0.3), "lacunae"),  # vascular: red-purple lacunae
}
DERMOSCOPY_CLASSES = tuple(sorted(LESIONS))


def dermoscopy(sc: Scene) -> np.ndarray:
    """Dermoscopic skin lesion; melanoma = large, irregular border, black and blue-grey blotches."""
    rng = np.random.default_rng([sc.seed, 8])
    y, x = grid(sc.size)
    skin = np.array([0.9, 0.72, 0.62], np.float32) * (1 - 0.1 * np.clip(sc.tone[0], -2, 2))
    img = skin * (1 + 0.03 * texture(rng, sc.size, 0.02))[..., None]
    radius, irregular, colour, detail = LESIONS[sc.cls]
    r = rng.uniform(*radius)
    cy, cx = rng.uniform(-0.12, 0.12, 2)
    lesion = shape(y, x, cy, cx, r * rng.uniform(0.8, 1.0), r, rng.uniform(0, np.pi), 0.04, wobble(rng, irregular))
    img = paint(img, lesion * 0.95, colour)
    img = paint(img, 0.35 * shape(y, x, cy, cx, 0.45 * r, 0.45 * r, edge=0.3) * lesion, np.array(colour) * 0.7)
    img = _lesion_detail(img, rng, y, x, detail, lesion, sc.size)
    if sc.conf["ruler"] == "yes":
        img = paint(img, _ruler(sc.size, np.random.default_rng([sc.seed, OVERLAY_STREAM])), 0.08)
    if sc.conf["vignette"] == "yes":
        img = img * shape(y, x, 0, 0, 1.02, 1.02, edge=0.03)[..., None]
    return to_uint8(img + 0.01 * rng.standard_normal(img.shape))


LESION_DOTS = {  # detail -> (count, radius, aspect, colour) of small marks inside the lesion
    "cysts": (7, 0.03, 1.0, (0.95, 0.92, 0.85)), "vessels": (12, 0.012, 6.0, (0.7, 0.1, 0.15)),
    "scale": (20, 0.025, 1.0, (0.95, 0.9, 0.85)), "lacunae": (10, 0.05, 1.0, (0.45, 0.05, 0.2)),
    "mixed": (6, 0.04, 1.0, (0.3, 0.2, 0.15)),
}


def _lesion_detail(img, rng, y, x, detail, lesion, size):
    """Blotches (melanoma), a central white patch or keratin mass, or small dots/lines inside the lesion."""
    if detail == "blotches":
        t = texture(rng, size, 0.06)
        img = paint(img, sigmoid((t - 0.6) / 0.1) * lesion, [0.1, 0.07, 0.07])
        return paint(img, 0.8 * sigmoid((-t - 0.7) / 0.1) * lesion, [0.45, 0.5, 0.62])
    if detail in ("white_patch", "keratin"):
        r = 0.08 if detail == "white_patch" else 0.14
        return paint(img, 0.85 * shape(y, x, 0, 0, r, r, edge=0.2) * lesion, [0.97, 0.95, 0.9] if
                     detail == "white_patch" else [0.95, 0.9, 0.7])
    if detail in LESION_DOTS:
        n, radius, aspect, colour = LESION_DOTS[detail]
        cy, cx = rng.uniform(-0.4, 0.4, (2, n))
        marks = spots(y, x, cy, cx, np.full(n, radius), np.full(n, aspect), rng.uniform(0, np.pi, n))
        return paint(img, marks * lesion, colour)
    return img


def _ruler(size, rng):
    """A dermatoscope ruler along the bottom or left edge: a line with ticks every 4 px (every 5th long)."""
    vertical = rng.random() < 0.5

    def draw(canvas, n):
        for k, p in enumerate(range(4, n - 3, 4)):
            length = 6 if k % 5 == 0 else 3
            line = [(2, p), (2 + length, p)] if vertical else [(p, n - 3), (p, n - 3 - length)]
            canvas.line(line, fill=255)
        canvas.line([(2, 2), (2, n - 3)] if vertical else [(2, n - 3), (n - 3, n - 3)], fill=255)

    return overlay(size, draw)
