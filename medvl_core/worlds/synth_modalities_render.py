"""Renderers of the eight `synth-modalities` datasets: numpy drawing primitives and one function per modality.

Coordinates: the grid (y, x) in [-1, 1], y down. A renderer takes a `Scene` (class, confounder values, the
patient/slide group's tone, seed, size) and returns uint8 pixels, (S, S) or (S, S, 3). Overlays (burned-in
words, calipers, rulers) are drawn with PIL on a 64-px-per-unit layer and scaled up, so they look alike
at every size. The X-ray renderer is SynthCXR's (`synth_cxr_render`), reused with a Pneumonia finding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import gaussian_filter

from .synth_cxr_render import Finding, render_cxr, sample_nuisance

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


# ------------------------------------------------------------------ histology (BreakHis stand-in)

H_OD, E_OD = np.array([0.65, 0.70, 0.29], np.float32), np.array([0.07, 0.99, 0.11], np.float32)  # Ruifrok-Johnston
ZOOM = {"40X": 0.75, "100X": 0.9, "200X": 1.1, "400X": 1.3}
LAB_STAIN = {"A": (1.25, 0.8), "B": (0.8, 1.25)}  # (haematoxylin, eosin) strength per lab


def histology(sc: Scene) -> np.ndarray:
    """H&E breast tissue (Beer-Lambert stain mixing); malignant = crowded, enlarged, pleomorphic, dark nuclei."""
    rng = np.random.default_rng([sc.seed, 5])
    y, x = grid(sc.size)
    zoom = ZOOM[sc.conf["magnification"]]
    eosin = 0.35 + 0.12 * texture(rng, sc.size, 0.01 * zoom, 0.04 * zoom)
    haem = np.full_like(y, 0.04)
    if sc.cls == "benign":
        cy, cx, r, lumen = _glands(rng, zoom)
        eosin = eosin * (1 - lumen(y, x))
        dark = 0.8
    else:
        n = int(min(45 / zoom ** 2, 120))
        cy, cx = rng.uniform(-1.05, 1.05, (2, n))
        r = 0.075 * zoom * rng.lognormal(0, 0.3, n)
        dark = 1.2
    nuclei = spots(y, x, cy, cx, r, rng.uniform(0.5 if sc.cls == "malignant" else 0.75, 1, len(r)),
                   rng.uniform(0, np.pi, len(r)), edge=0.15)
    haem = haem + dark * nuclei * (0.85 + 0.15 * texture(rng, sc.size, 0.01))
    h_gain, e_gain = LAB_STAIN[sc.conf["lab"]]
    h_vec = H_OD * h_gain * (1 + 0.12 * np.asarray(sc.tone, np.float32))
    e_vec = E_OD * e_gain * (1 + 0.12 * np.roll(np.asarray(sc.tone, np.float32), 1))
    od = haem[..., None] * h_vec + eosin.clip(0)[..., None] * e_vec
    img = np.exp(-od * 1.6) + 0.015 * rng.standard_normal((*od.shape,))
    return to_uint8(img)


def _glands(rng, zoom):
    """Benign architecture: nuclei ringing 1-3 gland lumens plus sparse stromal nuclei; (cy, cx, r, lumen mask fn)."""
    k = int(rng.integers(1, 4))
    gy, gx = rng.uniform(-0.6, 0.6, (2, k))
    gr = rng.uniform(0.18, 0.28, k) * zoom
    per = int(max(8, 22 * zoom))
    ang = rng.uniform(0, 2 * np.pi, (k, per))
    cy = (gy[:, None] + 1.15 * gr[:, None] * np.sin(ang)).ravel()
    cx = (gx[:, None] + 1.15 * gr[:, None] * np.cos(ang)).ravel()
    m = int(12 / zoom ** 2)
    cy, cx = np.concatenate([cy, rng.uniform(-1, 1, m)]), np.concatenate([cx, rng.uniform(-1, 1, m)])
    r = 0.045 * zoom * rng.lognormal(0, 0.08, len(cy))

    def lumen(y, x):
        return spots(y, x, gy, gx, gr, edge=0.08)

    return cy, cx, r, lumen


# ------------------------------------------------------------------ cytology (HiCervix stand-in)

# HiCervix-like hierarchy: 29 fine classes under 4 level-1 groups (stand-in names, not HiCervix's own list)
CYTOLOGY_TREE = {
    "negative": ("nilm", "atrophy", "repair", "metaplasia", "endocervical", "endometrial", "parabasal"),
    "asc": ("asc_us", "lsil", "koilocyte", "asc_h", "hsil", "hsil_sheet", "scc", "keratinizing_scc"),
    "agc": ("agc_nos", "agc_endocervical", "agc_endometrial", "agc_fn", "ais", "adenocarcinoma", "endometrial_ca"),
    "microbe": ("candida", "trichomonas", "actinomyces", "herpes", "clue_cells", "bacillus", "cocci"),
}
CYTOLOGY_LEVEL1 = {fine: parent for parent, fines in CYTOLOGY_TREE.items() for fine in fines}
CYTOLOGY_CLASSES = tuple(sorted(CYTOLOGY_LEVEL1))


def cell_preset(cls: str) -> tuple:
    """(count, radius, N:C ratio, darkness, halo, spread, aspect, pink share) of a fine class: its group's base
    preset moved along the group's severity axis by the class's rank in the group."""
    parent = CYTOLOGY_LEVEL1[cls]
    rank = CYTOLOGY_TREE[parent].index(cls) / (len(CYTOLOGY_TREE[parent]) - 1)
    if parent == "asc":  # NILM -> HSIL: more, smaller, darker, higher N:C
        count = (int(4 + 6 * rank), int(7 + 8 * rank))
        radius = (0.17 - 0.08 * rank, 0.22 - 0.1 * rank)
        ratio = (0.25 + 0.3 * rank, 0.32 + 0.33 * rank)
        return count, radius, ratio, 0.7 + 0.3 * rank, cls in ("lsil", "koilocyte"), 0.75 - 0.3 * rank, 0.8, 0.2 + 0.5 * (cls == "keratinizing_scc")
    if parent == "agc":  # columnar, crowded clusters, elongated nuclei
        return (6 + int(5 * rank), 10 + int(6 * rank)), (0.08, 0.12), (0.35 + 0.25 * rank, 0.45 + 0.25 * rank), \
            0.65 + 0.3 * rank, False, 0.35 - 0.15 * rank, 0.45, 0.5
    if parent == "negative":  # benign variants: size, shape and stain of normal cells
        return (3 + int(5 * rank), 6 + int(5 * rank)), (0.2 - 0.1 * rank, 0.25 - 0.1 * rank), (0.12 + 0.15 * rank, 0.18 + 0.15 * rank), \
            0.5 + 0.1 * rank, False, 0.8 - 0.2 * rank, 1.0 - 0.4 * (cls in ("endocervical", "endometrial")), rank
    return (5, 8), (0.17, 0.23), (0.15, 0.2), 0.55, False, 0.75, 0.9, 0.35  # microbe: normal cells + organisms


def cytology(sc: Scene) -> np.ndarray:
    """Pap smear field: cells drawn from the fine class's preset, plus the organisms of a microbe class."""
    rng = np.random.default_rng([sc.seed, 6])
    y, x = grid(sc.size)
    count, radius, ratio, dark, halo, spread, min_aspect, pink_share = cell_preset(sc.cls)
    n = int(rng.integers(*count))
    cy, cx = rng.normal(0, spread, (2, n)).clip(-0.85, 0.85)
    r, theta, aspect = rng.uniform(*radius, n), rng.uniform(0, np.pi, n), rng.uniform(min_aspect, 1.0, n)
    img = np.ones((sc.size, sc.size, 3), np.float32) * np.array([0.93, 0.92, 0.87], np.float32)
    img += 0.015 * texture(rng, sc.size, 0.05)[..., None]
    pink = rng.random(n) < pink_share
    for i in range(n):
        cell = shape(y, x, cy[i], cx[i], r[i] * aspect[i], r[i], theta[i], 0.05, wobble(rng, 0.12))
        img = img * (1 - 0.6 * cell[..., None]) + 0.6 * cell[..., None] * (
            np.array([0.9, 0.62, 0.7] if pink[i] else [0.55, 0.76, 0.84], np.float32))
    k = rng.uniform(*ratio, n)
    if halo:
        img = paint(img, 0.8 * spots(y, x, cy, cx, 1.7 * k * r * aspect, edge=0.1), [0.9, 0.92, 0.92])
    nuclei = spots(y, x, cy, cx, k * r * aspect, rng.uniform(0.7, 1.0, n), theta, edge=0.12)
    img = paint(img, dark * nuclei, [0.2, 0.14, 0.42])
    if CYTOLOGY_LEVEL1[sc.cls] == "microbe":
        img = _organisms(img, rng, y, x, sc.cls, sc.size)
    if sc.conf["inflammation"] == "yes":
        m, extra = 30, np.random.default_rng([sc.seed, OVERLAY_STREAM])
        img = paint(img, 0.8 * spots(y, x, *extra.uniform(-0.95, 0.95, (2, m)), np.full(m, 0.018), edge=0.2),
                    [0.3, 0.2, 0.45])
    img = img * (1 + 0.03 * np.asarray(sc.tone, np.float32))
    if sc.conf["scanner"] == "B":  # softer optics, warmer white balance
        img = gaussian_filter(img, (0.9 * sc.size / 64, 0.9 * sc.size / 64, 0)) * np.array([1.0, 0.96, 0.84], np.float32)
    return to_uint8(img + 0.012 * rng.standard_normal(img.shape))


ORGANISMS = {  # count, radius, aspect (elongation), colour
    "candida": (14, 0.018, 6.0, (0.75, 0.35, 0.55)), "trichomonas": (6, 0.05, 1.5, (0.45, 0.6, 0.65)),
    "actinomyces": (3, 0.09, 1.0, (0.25, 0.2, 0.45)), "herpes": (3, 0.07, 1.0, (0.35, 0.25, 0.55)),
    "clue_cells": (60, 0.012, 1.0, (0.3, 0.3, 0.45)), "bacillus": (40, 0.01, 3.5, (0.35, 0.3, 0.5)),
    "cocci": (90, 0.008, 1.0, (0.4, 0.3, 0.5)),
}


def _organisms(img, rng, y, x, cls, size):
    """The organisms of a microbe class: hyphae, pear-shaped protozoa, dark tangles, multinucleation, bacteria."""
    n, radius, aspect, colour = ORGANISMS[cls]
    cy, cx = rng.uniform(-0.85, 0.85, (2, n))
    return paint(img, 0.75 * spots(y, x, cy, cx, np.full(n, radius), np.full(n, aspect), rng.uniform(0, np.pi, n),
                                   edge=0.2), colour)


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


RENDERERS: dict[str, Callable[[Scene], np.ndarray]] = {
    "xray": xray, "ct": ct, "mr": mr, "ultrasound": ultrasound,
    "histology": histology, "cytology": cytology, "fundus": fundus, "dermoscopy": dermoscopy,
}
