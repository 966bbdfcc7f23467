"""SynthCXR scene: the findings and nuisance records, numpy drawing primitives, and the `Scene` findings draw into.

Coordinates: the image grid (X, Y) in [-1, 1] (Y down) is mapped to anatomical (x, y) through the
nuisance's rotation, shift and body scale, so findings are drawn in anatomy and move with the patient.
The patient's right is on the image left (x < 0), as on a real radiograph. Brightness = attenuation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

SIDE_SIGNS = {"right": (-1.0,), "left": (1.0,), "bilateral": (-1.0, 1.0)}
LUNG_CX, LUNG_A, LUNG_B_UP, LUNG_B_DOWN, DIAPHRAGM_Y = 0.43, 0.33, 0.8, 1.25, 0.5
LOBES = ("lower", "upper", "middle")


@dataclass(frozen=True)
class Finding:
    """One rendered observation: severity 1 (small/mild) .. 3 (large/severe), side, optional variant."""

    severity: int = 1
    side: str = ""  # "left" | "right" | "bilateral" | "" (not lateralised)
    variant: str = ""  # Pneumothorax "drain" / Pleural Effusion "subpulmonic" (rare strata), Lung Lesion "mass", lobe for Consolidation/Pneumonia,
    # comma-separated device kinds for Support Devices (see DEVICES)


@dataclass(frozen=True)
class Nuisance:
    """Acquisition and patient variation that carries no label."""

    view: str = "PA"
    rotation: float = 0.0  # degrees
    shift: tuple[float, float] = (0.0, 0.0)
    scale: tuple[float, float] = (0.92, 0.95)  # body habitus (thorax width, height)
    soft_tissue: float = 0.5
    exposure: float = 1.0
    brightness: float = 0.0
    gamma: float = 1.0
    noise: float = 0.02
    site: int = 0
    marker_jitter: tuple[int, int] = (0, 0)  # pixels


def sample_nuisance(rng: np.random.Generator, view: str = "PA", site: int = 0, habitus: float = 0.0) -> Nuisance:
    """Draw a plausible nuisance; `habitus` in [-1, 1] (per patient) widens or narrows the body."""
    ap = view == "AP"
    return Nuisance(
        view=view,
        rotation=float(rng.normal(0.0, 2.5 if ap else 1.5)),
        shift=(float(rng.normal(0, 0.025)), float(rng.normal(0.02 if ap else 0.0, 0.025))),
        scale=(float(0.92 + 0.05 * habitus + rng.normal(0, 0.015)), float(0.95 + rng.normal(0, 0.02))),
        soft_tissue=float(np.clip(0.5 + 0.06 * habitus + rng.normal(0, 0.04), 0.35, 0.65)),
        exposure=float(rng.uniform(0.85, 1.15)),
        brightness=float(rng.uniform(-0.06, 0.06)),
        gamma=float(np.exp(rng.normal(0, 0.12))),
        noise=float(rng.uniform(0.02, 0.04) if ap else rng.uniform(0.01, 0.025)),
        site=int(site),
        marker_jitter=(int(rng.integers(-3, 4)), int(rng.integers(-3, 4))),
    )


# ------------------------------------------------------------------ primitives

def ramp(v, width):
    """Soft step 0 -> 1 as v goes from -width/2 to +width/2."""
    return np.clip(v / width + 0.5, 0.0, 1.0)


def band(dist, half, soft):
    """1 inside |dist| < half, fading over `soft`."""
    return ramp(half - np.abs(dist), soft)


def blob(x, y, cx, cy, sx, sy):
    """Gaussian bump centred at (cx, cy)."""
    return np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def texture(rng, shape, sigma_px):
    """Unit-variance low-pass noise."""
    t = gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px)
    return t / (t.std() + 1e-6)


def curve(xs, ys, n=14):
    """n points along the Bezier curve with control points (xs, ys) (de Casteljau, vectorised over t)."""
    control = np.stack([np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)], 1)
    t = np.linspace(0.0, 1.0, n)[:, None, None]
    pts = np.broadcast_to(control, (n, *control.shape))
    while pts.shape[1] > 1:
        pts = pts[:, :-1] * (1 - t) + pts[:, 1:] * t
    return pts[:, 0]


# ------------------------------------------------------------------ scene

class Scene:
    """Anatomical grids, lung masks and the density layers findings draw into."""

    def __init__(self, size: int, nuisance: Nuisance, elevation: Mapping[float, float] | None = None):
        grid = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
        gy, gx = np.meshgrid(grid, grid, indexing="ij")
        theta = np.deg2rad(nuisance.rotation)
        xr = np.cos(theta) * gx + np.sin(theta) * gy
        yr = -np.sin(theta) * gx + np.cos(theta) * gy
        self.x = ((xr - nuisance.shift[0]) / nuisance.scale[0]).astype(np.float32)
        self.y = ((yr - nuisance.shift[1]) / nuisance.scale[1]).astype(np.float32)
        self.size, self.nuisance = size, nuisance
        self.px = 2.0 / size / min(nuisance.scale)  # one pixel in anatomical units
        self.ap = nuisance.view == "AP"
        self.diaphragm = DIAPHRAGM_Y - (0.05 if self.ap else 0.0)
        self.elevation = dict(elevation or {})  # side sign -> hemidiaphragm raise (volume loss)
        self.lungs = {s: self.lung_mask(s) for s in (-1.0, 1.0)}
        self.lung = np.maximum(self.lungs[-1.0], self.lungs[1.0])
        self.density = np.zeros_like(self.x)  # additive attenuation from findings
        self.markings_gain = np.ones_like(self.x)  # 0 where lung markings vanish (pneumothorax)

    def to_pixels(self, pts):
        """Anatomical points (N, 2) -> fractional (row, col) pixel coordinates."""
        n, theta = self.nuisance, np.deg2rad(self.nuisance.rotation)
        xr, yr = pts[:, 0] * n.scale[0] + n.shift[0], pts[:, 1] * n.scale[1] + n.shift[1]
        gx, gy = np.cos(theta) * xr - np.sin(theta) * yr, np.sin(theta) * xr + np.cos(theta) * yr
        return (gy + 1) / 2 * self.size - 0.5, (gx + 1) / 2 * self.size - 0.5

    def stroke(self, polylines, half_width, taper=0.0):
        """Soft mask (peak ~1) of polylines (each an (N, 2) array) drawn by splatting dense points and blurring."""
        rows, cols, weights = [], [], []
        for pts in polylines:
            r, c = self.to_pixels(np.asarray(pts, dtype=np.float64))
            seg = np.hypot(np.diff(r), np.diff(c))
            arc = np.concatenate([[0.0], np.cumsum(seg)])
            t = np.arange(0.0, arc[-1] + 1e-9, 0.35)
            rows.append(np.interp(t, arc, r))
            cols.append(np.interp(t, arc, c))
            weights.append(1.0 - taper * t / max(arc[-1], 1e-9))
        return self._splat(np.concatenate(rows), np.concatenate(cols), np.concatenate(weights), half_width)

    def _splat(self, r, c, w, half_width):
        """Bilinear splat of weighted points, blurred to the stroke width and normalised to peak ~1."""
        size = self.size
        r0, c0 = np.floor(r).astype(int), np.floor(c).astype(int)
        fr, fc = r - r0, c - c0
        acc = np.zeros(size * size + 1)
        for dr, dc, wt in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
            rr, cc = r0 + dr, c0 + dc
            ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
            acc += np.bincount(np.where(ok, rr * size + cc, size * size), weights=wt * w, minlength=size * size + 1)
        sigma = max(0.8 * half_width / self.px, 0.6)
        img = gaussian_filter(acc[:-1].reshape(size, size), sigma) * (0.35 * np.sqrt(2 * np.pi) * sigma)
        return np.clip(img, 0.0, 1.0).astype(np.float32)

    def lung_field(self, sign, shrink=0.0):
        """Implicit lung shape value (<1 inside) for side `sign`, optionally shrunk by `shrink` units."""
        cx = sign * (LUNG_CX - 0.5 * shrink)
        dy = self.y - 0.0
        b = np.where(dy < 0, LUNG_B_UP - shrink, LUNG_B_DOWN)
        return ((self.x - cx) / (LUNG_A - 0.5 * shrink)) ** 2 + (dy / b) ** 2

    def diaphragm_y(self, sign):
        """Hemidiaphragm dome height under each pixel's column (right side a little higher)."""
        t = (np.abs(self.x) - LUNG_CX) / LUNG_A
        raise_by = np.where(np.sign(sign) < 0, self.elevation.get(-1.0, 0.0), self.elevation.get(1.0, 0.0))
        return self.diaphragm + 0.14 * t ** 2 + 0.04 * t - 0.02 * (1 - np.sign(sign)) - raise_by

    def lung_mask(self, sign, shrink=0.0):
        """Soft mask of one lung (sign -1 = patient's right)."""
        inside = ramp(1.0 - self.lung_field(sign, shrink), 0.08)
        below = ramp(self.diaphragm_y(sign) - self.y, 2 * self.px)
        return inside * below * (np.sign(self.x) == sign)

    def side_masks(self, side):
        """Aerated lung masks (heart and mediastinum removed) for the signs of `side` ('' = both)."""
        return [(s, self.lungs_air[s]) for s in SIDE_SIGNS.get(side, (-1.0, 1.0))]

    def point_in_lung(self, rng, sign, y_range=(-0.6, 0.35)):
        """A random (x, y) inside the lung of side `sign`."""
        for _ in range(20):
            y = rng.uniform(*y_range)
            x = sign * rng.uniform(LUNG_CX - 0.7 * LUNG_A, LUNG_CX + 0.7 * LUNG_A)
            if ((x - sign * LUNG_CX) / LUNG_A) ** 2 + (y / (LUNG_B_UP if y < 0 else LUNG_B_DOWN)) ** 2 < 0.7:
                return x, y
        return sign * LUNG_CX, 0.0
