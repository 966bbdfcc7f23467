"""`synth-modalities` renderers of the microscopy stand-ins: H&E histology (BreakHis) and Pap-smear cytology
(HiCervix-like class hierarchy)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .synth_modalities_draw import (
    OVERLAY_STREAM,
    Scene,
    grid,
    paint,
    shape,
    spots,
    texture,
    to_uint8,
    wobble,
)

# ------------------------------------------------------------------ histology (BreakHis stand-in)

H_OD, E_OD = np.array([0.65, 0.70, 0.29], np.float32), np.array([0.07, 0.99, 0.11], np.float32)  # Ruifrok-Johnston
ZOOM = {"40X": 0.75, "100X": 0.9, "200X": 1.1, "400X": 1.3}
LAB_STAIN = {"A": (1.25, 0.8), "B": (0.8, 1.25)}  # (haematoxylin, eosin) strength per lab


# BreakHis's eight tumour subtypes, four under each class (the real set's names)
HISTOLOGY_SUBTYPES = {
    "benign": ("adenosis", "fibroadenoma", "phyllodes_tumor", "tubular_adenoma"),
    "malignant": ("ductal_carcinoma", "lobular_carcinoma", "mucinous_carcinoma", "papillary_carcinoma"),
}


def histology(sc: Scene) -> np.ndarray:
    """H&E breast tissue (Beer-Lambert stain mixing); malignant = crowded, enlarged, pleomorphic, dark nuclei; the
    subtype (confounder key `subtype`, default the first of the class) sets the architecture within the class."""
    rng = np.random.default_rng([sc.seed, 5])
    y, x = grid(sc.size)
    zoom = ZOOM[sc.conf["magnification"]]
    subtype = sc.conf.get("subtype") or HISTOLOGY_SUBTYPES[sc.cls][0]
    eosin = 0.35 + 0.12 * texture(rng, sc.size, 0.01 * zoom, 0.04 * zoom)
    haem = np.full_like(y, 0.04)
    if sc.cls == "benign":
        cy, cx, r, lumen = _glands(rng, zoom, subtype)
        eosin = eosin * (1 - lumen(y, x))
        dark, aspect = 0.8, rng.uniform(0.75, 1, len(r))
    else:
        cy, cx, r, aspect, pools = _carcinoma(rng, zoom, subtype)
        eosin = eosin * (1 - 0.8 * pools(y, x))
        dark = 1.2
    nuclei = spots(y, x, cy, cx, r, aspect, rng.uniform(0, np.pi, len(r)), edge=0.15)
    haem = haem + dark * nuclei * (0.85 + 0.15 * texture(rng, sc.size, 0.01))
    h_gain, e_gain = LAB_STAIN[sc.conf["lab"]]
    h_vec = H_OD * h_gain * (1 + 0.12 * np.asarray(sc.tone, np.float32))
    e_vec = E_OD * e_gain * (1 + 0.12 * np.roll(np.asarray(sc.tone, np.float32), 1))
    od = haem[..., None] * h_vec + eosin.clip(0)[..., None] * e_vec
    img = np.exp(-od * 1.6) + 0.015 * rng.standard_normal((*od.shape,))
    return to_uint8(img)


GLANDS = {  # benign subtype -> (gland count range, radius range, aspect (<1 = slit-like), stromal nuclei factor)
    "adenosis": ((5, 8), (0.10, 0.15), 1.0, 1.0),
    "fibroadenoma": ((2, 4), (0.20, 0.30), 0.3, 0.5),
    "phyllodes_tumor": ((1, 2), (0.15, 0.22), 0.6, 5.0),
    "tubular_adenoma": ((1, 4), (0.18, 0.28), 1.0, 1.0),
}


def _glands(rng, zoom, subtype: str = "tubular_adenoma"):
    """Benign architecture: nuclei ringing gland lumens plus stromal nuclei, shaped by the subtype (`GLANDS`);
    returns (cy, cx, r, lumen mask fn)."""
    (k_lo, k_hi), (r_lo, r_hi), aspect, stroma = GLANDS[subtype]
    k = int(rng.integers(k_lo, k_hi))
    gy, gx = rng.uniform(-0.6, 0.6, (2, k))
    gr = rng.uniform(r_lo, r_hi, k) * zoom
    theta = rng.uniform(0, np.pi, k)
    per = int(max(8, 22 * zoom * (r_lo + r_hi) / 0.46))
    ang = rng.uniform(0, 2 * np.pi, (k, per))
    u, v = 1.15 * gr[:, None] * np.cos(ang), 1.15 * gr[:, None] * aspect * np.sin(ang)
    cy = (gy[:, None] + u * np.sin(theta)[:, None] + v * np.cos(theta)[:, None]).ravel()
    cx = (gx[:, None] + u * np.cos(theta)[:, None] - v * np.sin(theta)[:, None]).ravel()
    m = int(12 * stroma / zoom ** 2)
    cy, cx = np.concatenate([cy, rng.uniform(-1, 1, m)]), np.concatenate([cx, rng.uniform(-1, 1, m)])
    r = 0.045 * zoom * rng.lognormal(0, 0.08, len(cy))
    if stroma > 1:  # phyllodes: the stromal nuclei are small and spindle-shaped
        r[-m:] *= 0.7

    def lumen(y, x):
        return shape(y, x, gy[:, None, None], gx[:, None, None], (gr * aspect)[:, None, None], gr[:, None, None],
                     theta[:, None, None], edge=0.08).max(0)

    return cy, cx, r, lumen


def _carcinoma(rng, zoom, subtype: str = "ductal_carcinoma"):
    """Malignant architecture by subtype: ductal = crowded pleomorphic sheet; lobular = small uniform nuclei in
    single files; mucinous = nuclear clusters floating in pale mucin pools; papillary = nuclei lining radiating
    fronds. Returns (cy, cx, r, aspect, mucin pool mask fn)."""
    pools = np.zeros((0, 3))
    if subtype == "lobular_carcinoma":
        rows = int(rng.integers(4, 7))
        slope, offset = rng.uniform(-0.4, 0.4), rng.uniform(-1, 1, rows)
        t = rng.uniform(-1.1, 1.1, (rows, int(18 / zoom)))
        cy, cx = (offset[:, None] + slope * t).ravel(), t.ravel()
        r, aspect = 0.05 * zoom * rng.lognormal(0, 0.05, len(cy)), rng.uniform(0.85, 1, len(cy))
    elif subtype == "mucinous_carcinoma":
        pools = np.column_stack([rng.uniform(-0.5, 0.5, (2, 2)).T, rng.uniform(0.35, 0.5, 2)])
        centre = pools[rng.integers(0, 2, 10)]
        cy = np.repeat(centre[:, 0] + rng.normal(0, 0.15, 10), 4) + rng.normal(0, 0.05, 40)
        cx = np.repeat(centre[:, 1] + rng.normal(0, 0.15, 10), 4) + rng.normal(0, 0.05, 40)
        r, aspect = 0.07 * zoom * rng.lognormal(0, 0.2, 40), rng.uniform(0.6, 1, 40)
    elif subtype == "papillary_carcinoma":
        ang = rng.uniform(0, 2 * np.pi) + np.arange(5) * 2 * np.pi / 5
        t = rng.uniform(0.05, 1.1, (5, int(14 / zoom)))
        cy, cx = (np.sin(ang)[:, None] * t).ravel(), (np.cos(ang)[:, None] * t).ravel()
        cy, cx = cy + rng.normal(0, 0.04, len(cy)), cx + rng.normal(0, 0.04, len(cx))
        r, aspect = 0.07 * zoom * rng.lognormal(0, 0.25, len(cy)), rng.uniform(0.4, 0.7, len(cy))
    else:  # ductal carcinoma
        n = int(min(45 / zoom ** 2, 120))
        cy, cx = rng.uniform(-1.05, 1.05, (2, n))
        r, aspect = 0.075 * zoom * rng.lognormal(0, 0.3, n), rng.uniform(0.5, 1, n)

    def mucin(y, x):
        return spots(y, x, pools[:, 0], pools[:, 1], pools[:, 2], edge=0.1) if len(pools) else np.zeros_like(y)

    return cy, cx, r, aspect, mucin


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
