"""`synth-modalities` renderers of the radiology stand-ins: X-ray (SynthCXR's renderer with a Pneumonia finding),
CT, brain MR and breast ultrasound."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.ndimage import gaussian_filter

from .synth_cxr_render import render_cxr
from .synth_cxr_scene import Finding, sample_nuisance
from .synth_modalities_draw import (
    OVERLAY_STREAM,
    Scene,
    grid,
    overlay,
    paint,
    shape,
    sigmoid,
    spots,
    text_mask,
    texture,
    to_px,
    to_uint8,
    wobble,
)

# ------------------------------------------------------------------ X-ray (PneumoniaMNIST stand-in)

def xray(sc: Scene) -> np.ndarray:
    """SynthCXR chest film; pneumonia = a lobar Pneumonia finding; view AP/PA and site marker from the confounders."""
    rng = np.random.default_rng([sc.seed, 1])
    findings = {}
    if sc.cls == "pneumonia":  # lobar pneumonia plus patchy opacities on the same side(s)
        side = str(rng.choice(["left", "right", "bilateral"]))
        findings["Pneumonia"] = Finding(3, side, str(rng.choice(["lower", "upper", "middle"])))
        findings["Lung Opacity"] = Finding(int(rng.integers(2, 4)), side)
    habitus = float(np.clip(sc.tone[0] / 2, -1, 1))
    nuisance = sample_nuisance(rng, sc.conf["view"], int(sc.conf["site"][-1]), habitus)
    nuisance = dataclasses.replace(nuisance, brightness=float(0.05 * np.clip(sc.tone[1], -2, 2)))
    return render_cxr(findings, nuisance, sc.seed, sc.size)


# ------------------------------------------------------------------ CT (SARS-CoV-2 CT stand-in)

CT_LUNGS = {"upper": (0.28, 0.2, -0.05), "middle": (0.42, 0.3, -0.02), "lower": (0.3, 0.27, -0.08)}  # ry, rx, cy


def ct(sc: Scene) -> np.ndarray:
    """Axial chest CT slice (lung window); covid = peripheral ground-glass opacities; slice level changes anatomy."""
    rng = np.random.default_rng([sc.seed, 2])
    y, x = grid(sc.size)
    level = sc.conf["slice_level"]
    body = shape(y, x, 0.05, 0, 0.62, 0.88, edge=0.02)
    img = 0.03 + 0.42 * body + 0.08 * (body - shape(y, x, 0.05, 0, 0.57, 0.83, edge=0.02))
    ry, rx, cy = CT_LUNGS[level]
    ry, rx = ry * rng.uniform(0.92, 1.08), rx * rng.uniform(0.92, 1.08)
    lungs = np.maximum(shape(y, x, cy, -0.38, ry, rx, 0.1, 0.04), shape(y, x, cy, 0.38, ry, rx, -0.1, 0.04))
    if level == "lower":  # liver dome under the right lung (image left)
        lungs = lungs * (1 - shape(y, x, 0.22, -0.4, 0.2, 0.26, edge=0.05))
        img += 0.12 * shape(y, x, 0.25, -0.4, 0.25, 0.3, edge=0.05) * (1 - lungs)
    if level != "upper":
        img += 0.1 * shape(y, x, 0.05, 0.06, 0.25, 0.22, edge=0.05) * (1 - lungs)
    img = img * (1 - lungs) + 0.06 * lungs
    img = paint(img, shape(y, x, 0.47, 0, 0.1, 0.1, edge=0.05), 0.95)  # vertebral body
    n = 25
    vessels = spots(y, x, rng.uniform(cy - ry, cy + ry, n), rng.choice([-1, 1], n) * rng.uniform(0.2, 0.6, n),
                    rng.uniform(0.015, 0.03, n), edge=0.2)
    img += 0.3 * vessels * lungs
    if sc.cls == "covid":
        img += 0.35 * _ground_glass(rng, y, x, cy, ry, rx, sc.size) * lungs
    elif rng.random() < 0.5:  # a small solid nodule
        side = rng.choice([-1, 1])
        img += 0.5 * shape(y, x, cy + rng.uniform(-0.5, 0.5) * ry, side * 0.38, 0.035, 0.035, edge=0.1) * lungs
    img = img * (1 + 0.1 * sc.tone[0]) + 0.04 * sc.tone[1]
    if sc.conf["kernel"] == "sharp":
        img += 0.05 * rng.standard_normal(img.shape)
    else:
        img = gaussian_filter(img, 0.5) + 0.015 * rng.standard_normal(img.shape)
    return to_uint8(img)


def _ground_glass(rng, y, x, cy, ry, rx, size):
    """Hazy subpleural patches: blobs near the outer border of both lungs, with fine texture."""
    n = int(rng.integers(4, 9))
    side = rng.choice([-1, 1], n)
    angle = rng.uniform(-np.pi / 2, np.pi / 2, n)
    py = cy + 0.65 * ry * np.sin(angle)
    px = side * (0.38 + 0.65 * rx * np.cos(angle))
    haze = spots(y, x, py, px, rng.uniform(0.14, 0.22, n), edge=0.35)
    return haze * np.clip(0.8 + 0.3 * texture(rng, size, 0.02), 0, 1.5)


# ------------------------------------------------------------------ MR (BrainMR stand-in)

def _head(y, x, plane):
    """(head, brain, csf) soft masks for an axial, coronal or sagittal brain slice."""
    if plane == "axial":
        head, brain = shape(y, x, 0, 0, 0.9, 0.74, edge=0.02), shape(y, x, 0, 0, 0.8, 0.64, edge=0.02)
        csf = np.maximum(shape(y, x, -0.05, -0.12, 0.3, 0.06, 0.25), shape(y, x, -0.05, 0.12, 0.3, 0.06, -0.25))
    elif plane == "coronal":
        head = np.maximum(shape(y, x, -0.1, 0, 0.78, 0.8, edge=0.02), shape(y, x, 0.6, 0, 0.35, 0.14, edge=0.03))
        brain = np.maximum(shape(y, x, -0.12, 0, 0.68, 0.7, edge=0.02), shape(y, x, 0.6, 0, 0.32, 0.1, edge=0.03))
        csf = np.maximum(shape(y, x, -0.2, -0.1, 0.14, 0.07, 0.4), shape(y, x, -0.2, 0.1, 0.14, 0.07, -0.4))
        csf = np.maximum(csf, shape(y, x, 0.08, 0, 0.12, 0.025))
    else:
        head = np.maximum(shape(y, x, -0.05, 0.02, 0.78, 0.92, edge=0.02), shape(y, x, 0.35, -0.8, 0.25, 0.15, edge=0.03))
        brain = np.maximum(shape(y, x, -0.1, 0.05, 0.64, 0.82, edge=0.02), shape(y, x, 0.5, 0.1, 0.35, 0.09, 0.35, 0.03))
        brain = np.maximum(brain, shape(y, x, 0.45, 0.5, 0.2, 0.28, edge=0.03))
        csf = shape(y, x, -0.12, 0.05, 0.09, 0.36, 0.1) * (1 - shape(y, x, -0.05, 0.05, 0.07, 0.3, 0.1))
    return head, brain, csf * brain


TUMOUR_SITES = {"pituitary": {"axial": (0.3, 0.0), "coronal": (0.42, 0.0), "sagittal": (0.28, -0.08)}}


def mr(sc: Scene) -> np.ndarray:
    """Brain MR slice in the plane of the `plane` confounder, T1 or T2; tumour type by class."""
    rng = np.random.default_rng([sc.seed, 3])
    y, x = grid(sc.size)
    plane, t2 = sc.conf["plane"], sc.conf["weighting"] == "T2"
    head, brain, csf = _head(y, x, plane)
    tissue = 0.42 + 0.05 * texture(rng, sc.size, 0.03)
    img = (0.35 if t2 else 0.6) * (head - brain).clip(0) + brain * tissue
    img = paint(img, csf, 0.65 if t2 else 0.1)
    if sc.cls != "no_tumor":
        img = _tumour(img, rng, y, x, sc.cls, plane, t2, brain)
    img = img * (1 + 0.08 * sc.tone[0]) + 0.03 * sc.tone[1]
    return to_uint8(np.abs(img + 0.02 * rng.standard_normal(img.shape)))


def _tumour(img, rng, y, x, kind, plane, t2, brain):
    """Glioma (irregular, necrotic core, oedema), meningioma (round, at the skull) or pituitary (small, at the sella)."""
    if kind == "glioma":
        cy, cx = rng.uniform(-0.35, 0.15), rng.choice([-1, 1]) * rng.uniform(0.22, 0.36)
        r = rng.uniform(0.17, 0.24)
        oedema = shape(y, x, cy, cx, 1.6 * r, 1.6 * r, edge=0.15, wobble=wobble(rng, 0.3)) * brain
        img = paint(img, oedema, 0.6 if t2 else 0.3)
        mass = shape(y, x, cy, cx, r, r * rng.uniform(0.8, 1.1), rng.uniform(0, 3), 0.06, wobble(rng, 0.35))
        core = shape(y, x, cy, cx, 0.45 * r, 0.45 * r, edge=0.1)
        return paint(paint(img, mass, 0.85), core, 0.9 if t2 else 0.18)
    if kind == "meningioma":
        angle = rng.uniform(-np.pi * 0.9, -np.pi * 0.1)
        r = rng.uniform(0.14, 0.2)
        cy, cx = -0.1 + (0.62 - 0.6 * r) * np.sin(angle), 0.6 * np.cos(angle)
        return paint(img, shape(y, x, cy, cx, r, r * 1.1, edge=0.04), 0.85)
    cy, cx = TUMOUR_SITES["pituitary"][plane]
    r = rng.uniform(0.11, 0.15)
    return paint(img, shape(y, x, cy, cx, r, 1.2 * r, edge=0.05), 0.87)


# ------------------------------------------------------------------ ultrasound (BreastUS stand-in)

def ultrasound(sc: Scene) -> np.ndarray:
    """Breast ultrasound (linear probe): speckled tissue layers; benign = oval, malignant = spiculated + shadow."""
    rng = np.random.default_rng([sc.seed, 4])
    y, x = grid(sc.size)
    field = sigmoid((y + 0.76) / 0.01) * sigmoid((0.9 - np.abs(x)) / 0.01)
    depth = np.clip((y + 0.76) / 1.7, 0, 1)
    wave = 0.05 * texture(rng, sc.size, 0.08)
    layers = np.select([depth < 0.05, depth < 0.28 + wave, depth < 0.75 + wave], [0.85, 0.32, 0.58], 0.38)
    layers = layers + 0.12 * texture(rng, sc.size, 0.008, 0.06)
    img = layers * (1 - 0.35 * depth)
    lesion_box = None
    if sc.cls != "normal":
        img, lesion_box = _us_lesion(img, rng, y, x, sc.cls == "malignant")
    speckle = gaussian_filter(rng.rayleigh(1.0, img.shape).astype(np.float32), 0.5) / 1.25
    img = img * speckle * field * (1 + 0.15 * sc.tone[0])
    if sc.conf["calipers"] == "yes":
        img = paint(img, _calipers(sc.size, lesion_box or _random_box(np.random.default_rng([sc.seed, OVERLAY_STREAM]))), 0.95)
    if sc.conf["word"] != "none":
        img = paint(img, text_mask(sc.size, sc.conf["word"], "top-left"), 0.95)
    return to_uint8(img)


def _us_lesion(img, rng, y, x, malignant):
    """Draw the hypoechoic mass and its posterior feature; return (image, lesion box (y0, x0, y1, x1))."""
    cy, cx = rng.uniform(0.05, 0.3), rng.uniform(-0.35, 0.35)
    if malignant:
        ry, rx = rng.uniform(0.18, 0.25), rng.uniform(0.14, 0.2)
        mask = shape(y, x, cy, cx, ry, rx, edge=0.05, wobble=wobble(rng, 0.5, 10))
        below = 0.5
    else:
        ry, rx = rng.uniform(0.11, 0.16), rng.uniform(0.22, 0.3)
        mask = shape(y, x, cy, cx, ry, rx, rng.uniform(-0.2, 0.2), edge=0.03)
        below = 1.3
    column = sigmoid((y - cy) / 0.05) * np.exp(-((x - cx) / (0.8 * rx)) ** 4)
    img = img * (1 + (below - 1) * column * (1 - mask))
    return paint(img, mask, 0.07), (cy - ry, cx - rx, cy + ry, cx + rx)


def _random_box(rng):
    """A plausible caliper span where no lesion is drawn."""
    cy, cx = rng.uniform(0.0, 0.3), rng.uniform(-0.3, 0.3)
    return cy - 0.1, cx - 0.2, cy + 0.1, cx + 0.2


def _calipers(size, box):
    """Two '+' caliper marks at the box's horizontal ends and a dotted line between them."""
    y0, x0, y1, x1 = box

    def draw(canvas, n):
        cy, a, b = to_px((y0 + y1) / 2, n), to_px(x0, n), to_px(x1, n)
        for cx in (a, b):
            canvas.line([(cx - 2, cy), (cx + 2, cy)], fill=255)
            canvas.line([(cx, cy - 2), (cx, cy + 2)], fill=255)
        for px in np.arange(a + 4, b - 3, 3):
            canvas.point((float(px), cy), fill=255)

    return overlay(size, draw)
