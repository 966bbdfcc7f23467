"""SynthCXR renderer: a frontal chest radiograph drawn with numpy from findings, nuisance and a seed.

Coordinates: the image grid (X, Y) in [-1, 1] (Y down) is mapped to anatomical (x, y) through the
nuisance's rotation, shift and body scale, so findings are drawn in anatomy and move with the patient.
The patient's right is on the image left (x < 0), as on a real radiograph. Brightness = attenuation.
Every random draw comes from `np.random.default_rng([seed, stream])` with one stream per layer
(anatomy, each observation, noise), so adding a finding never changes the rest of the picture.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from ..data.labels import CHEXPERT_LABELS

SIDE_SIGNS = {"right": (-1.0,), "left": (1.0,), "bilateral": (-1.0, 1.0)}
LUNG_CX, LUNG_A, LUNG_B_UP, LUNG_B_DOWN, DIAPHRAGM_Y = 0.43, 0.33, 0.8, 1.25, 0.5
RIB_Y0 = np.linspace(-0.74, 0.42, 9)
NOISE_STREAM, ANATOMY_STREAM = 99, 0
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

def _ramp(v, width):
    """Soft step 0 -> 1 as v goes from -width/2 to +width/2."""
    return np.clip(v / width + 0.5, 0.0, 1.0)


def _band(dist, half, soft):
    """1 inside |dist| < half, fading over `soft`."""
    return _ramp(half - np.abs(dist), soft)


def _blob(x, y, cx, cy, sx, sy):
    """Gaussian bump centred at (cx, cy)."""
    return np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def _texture(rng, shape, sigma_px):
    """Unit-variance low-pass noise."""
    t = gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px)
    return t / (t.std() + 1e-6)


def _curve(xs, ys, n=14):
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
        inside = _ramp(1.0 - self.lung_field(sign, shrink), 0.08)
        below = _ramp(self.diaphragm_y(sign) - self.y, 2 * self.px)
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


# ------------------------------------------------------------------ anatomy

def _anatomy(scene: Scene, rng, heart_scale: float, mediastinum: float, fractures: list) -> tuple[np.ndarray, np.ndarray]:
    """Body, lungs with markings, heart, mediastinum, spine, clavicles and ribs (attenuation, ~0..1)."""
    x, y, px, n = scene.x, scene.y, scene.px, scene.nuisance
    body = _ramp(0.95 - 0.5 * np.clip(-0.72 - y, 0, None) - np.abs(x), 3 * px)
    hx, hy = 0.12, 0.23 + (0.04 if scene.ap else 0.0)
    ha, hb = 0.4 * heart_scale * (1.1 if scene.ap else 1.0), 0.28 * heart_scale ** 0.5
    heart = _ramp(1.0 - ((x - hx) / ha) ** 2 - ((y - hy) / hb) ** 2, 0.2) * (y > hy - hb * 0.95)
    mw = 0.1 * mediastinum + 0.025 * (y > -0.6)
    medi = _band(x - 0.01, mw, 2 * px) * _ramp(hy - y, 0.1)
    air = scene.lung * (1 - heart) * (1 - medi)
    scene.air, scene.heart = air, heart
    scene.lungs_air = {s: scene.lungs[s] * (1 - heart) * (1 - medi) for s in (-1.0, 1.0)}
    img = body * n.soft_tissue - 0.36 * air + 0.1 * heart + 0.08 * medi
    img += 0.05 * _ramp(np.abs(x) - 0.55, 0.2) * _band(y + 0.35, 0.25, 0.2) * (1.5 if scene.ap else 1.0)  # scapulae
    img += 0.07 * _band(x, 0.06, 2 * px) * (1 + 0.3 * np.cos(y * 26.0)) * (1 - 0.6 * heart)  # spine
    img -= 0.1 * _band(x, 0.028, 2 * px) * _ramp(-0.3 - y, 0.05)  # trachea
    img += 0.1 * _ramp(y - scene.diaphragm_y(np.sign(x + 1e-6)), 0.04) * (1 - heart) * body  # abdomen
    img += _clavicles(x, y, px, scene.ap) + _ribs(x, y, px, fractures)
    texture = _texture(rng, x.shape, max(0.012 / px, 0.6))
    hila = _blob(np.abs(x), y, 0.2, -0.02, 0.18, 0.22)
    markings = (0.035 * texture + 0.09 * hila + 0.14 * _vessels(scene, rng)) * scene.lung * (1 - 0.7 * heart)
    return img, markings


def _clavicles(x, y, px, ap):
    """Two oblique bony bands at the top of the chest."""
    lift = -0.05 if ap else 0.0
    y_c = -0.7 + lift - 0.22 * (np.abs(x) - 0.1)
    return 0.16 * _band(y - y_c, 0.035, 2 * px) * _band(np.abs(x) - 0.4, 0.32, 0.05)


def _rib_curve(k, ax):
    """Vertical position of posterior rib k at |x| = ax."""
    t = ax - 0.08
    return RIB_Y0[k] - 0.12 * t + 0.42 * t ** 2


def _ribs(x, y, px, fractures):
    """Posterior ribs (9 per side) with optional fractures: list of (k, sign, x_break)."""
    ax = np.abs(x)
    ribs = np.zeros_like(x)
    within = _band(ax - 0.45, 0.38, 0.05)
    for k in range(len(RIB_Y0)):
        rib_y = _rib_curve(k, ax)
        for kk, sign, xb in fractures:
            if kk == k:
                outer = (np.sign(x) == sign) & (ax > abs(xb))
                rib_y = rib_y + 0.05 * outer  # displaced fragment
        band = _band(y - rib_y, 0.022, 1.5 * px)
        for kk, sign, xb in fractures:
            if kk == k:
                band = band * (1 - (np.sign(x) == sign) * _band(x - xb, 0.035, px))  # the gap
        ribs += band
    for k, _, xb in fractures:  # callus at each break
        ribs += 4.0 * _blob(x, y, xb, _rib_curve(k, abs(xb)) + 0.02, 0.07, 0.045)
    return 0.13 * ribs * within


def _vessels(scene, rng):
    """Branching vessel segments radiating from the hila, tapering outwards."""
    lines = []
    for sign in (-1.0, 1.0):
        for angle in rng.uniform(-1.2, 1.3, 7):
            length = rng.uniform(0.25, 0.45)
            x0, y0 = sign * 0.2, -0.02
            lines.append([(x0, y0), (x0 + sign * length * np.cos(angle), y0 - length * np.sin(angle))])
    return scene.stroke(lines, 0.01, taper=0.7)


# ------------------------------------------------------------------ findings

def _effusion(scene, f, rng):
    """Basal meniscus: fluid filling the costophrenic angle, higher laterally, on the stated side.

    Variant "subpulmonic": no meniscus; the fluid under the lung shows only as a raised hemidiaphragm
    (see `_elevation`), the form an image model trained on menisci does not know.
    """
    if f.variant == "subpulmonic":
        return
    h = (0.16, 0.34, 0.6)[f.severity - 1] * rng.uniform(0.85, 1.15)
    for sign, mask in scene.side_masks(f.side or "bilateral"):
        lateral = np.clip((np.abs(scene.x) - 0.12) / 0.66, 0, 1)
        surface = scene.diaphragm_y(sign) - h * (0.55 + 0.45 * lateral ** 1.5)
        fluid = _ramp(scene.y - surface, 0.05) * mask * (1 - scene.heart)
        scene.density += 0.34 * fluid * (0.85 + 0.15 * _ramp(scene.y - surface, 0.3))
        scene.markings_gain *= 1 - fluid


def _pneumothorax(scene, f, rng):
    """Apical/lateral lucency without lung markings, bounded by a thin visible pleural line."""
    rim = (0.09, 0.15, 0.22)[f.severity - 1] * rng.uniform(0.85, 1.15)
    if f.variant == "drain":
        rim = 0.045
    for sign, mask in scene.side_masks(f.side or "right"):
        collapsed = scene.lung_field(sign, shrink=rim)
        upper = _ramp(0.25 - scene.y, 0.3)
        gap = _ramp(collapsed - 1.0, 0.04) * mask * upper
        scene.markings_gain *= 1 - gap
        scene.density -= 0.16 * gap
        line = np.exp(-(((collapsed - 1.0) / 0.03) ** 2)) * mask * upper
        scene.density += 0.18 * line
        if f.variant == "drain":
            scene.density += 0.5 * scene.stroke([_chest_tube(sign)], 0.014)


def _lung_opacity(scene, f, rng):
    """Scattered patchy opacities."""
    tex = _texture(rng, scene.x.shape, max(0.035 / scene.px, 1.0))
    patches = np.zeros_like(scene.x)
    for sign, mask in scene.side_masks(f.side or rng.choice(["left", "right", "bilateral"])):
        for _ in range(2 + f.severity):
            cx, cy = scene.point_in_lung(rng, sign)
            s = rng.uniform(0.07, 0.12)
            patches = np.maximum(patches, _blob(scene.x, scene.y, cx, cy, s, s * 1.2) * mask)
    scene.density += (0.2 + 0.05 * f.severity) * patches * np.clip(0.7 + 0.5 * tex, 0, 1.4)


def _edema(scene, f, rng):
    """Bilateral perihilar (bat-wing) haze blurring the vessels."""
    haze = _blob(np.abs(scene.x), scene.y, 0.26, 0.02, 0.22 + 0.05 * f.severity, 0.35) * scene.air
    scene.density += (0.08 + 0.05 * f.severity) * haze
    scene.markings_gain *= 1 - 0.5 * haze
    kerley = _band(np.mod(scene.y * 28, 1.0) - 0.5, 0.08, 0.1) * _ramp(np.abs(scene.x) - 0.62, 0.05)
    scene.density += 0.04 * f.severity * kerley * _ramp(scene.y - 0.05, 0.1) * scene.air


def _atelectasis(scene, f, rng):
    """Plate-like linear bands at the lung base (volume loss raises that hemidiaphragm, see render_findings)."""
    for sign, mask in scene.side_masks(f.side or "bilateral"):
        for _ in range(f.severity):
            cx = sign * rng.uniform(0.3, 0.55)
            cy = rng.uniform(0.05, 0.3)
            slope, half = rng.uniform(-0.25, 0.25), rng.uniform(0.12, 0.2)
            line = _band(scene.y - cy - slope * (scene.x - cx), 0.02, 2 * scene.px)
            scene.density += 0.28 * line * _band(scene.x - cx, half, 0.05) * mask


def _lobe(scene, sign, lobe, severity):
    """Soft mask of a lobe-like zone of the aerated lung: 'upper', 'middle' (right) or 'lower'."""
    x, y, grow = scene.x, scene.y, 0.1 * (severity - 1)
    if lobe == "upper":
        zone = _ramp(-0.3 + grow - y, 0.06)
    elif lobe == "middle":
        zone = _band(y - 0.12, 0.12 + 0.5 * grow, 0.06) * _ramp(0.5 + grow - np.abs(x), 0.1)
    else:
        zone = _ramp(y - 0.15 + grow - 0.15 * (np.abs(x) - LUNG_CX), 0.06)
    return zone * scene.lungs_air[sign]


def _pick_lobe(f: Finding, sign: float, rng) -> str:
    """The lobe named by the variant ('upper'/'middle'/'lower'; middle only on the right), else a random one."""
    allowed = LOBES if sign < 0 else LOBES[:2]
    return f.variant if f.variant in allowed else allowed[int(rng.integers(0, len(allowed)))]


def _consolidation(scene, f, rng):
    """Dense homogeneous lobar opacity with dark air bronchograms, in the variant's lobe."""
    for sign, _ in scene.side_masks(f.side or rng.choice(["left", "right"])):
        lobe = _pick_lobe(f, sign, rng)
        zone = _lobe(scene, sign, lobe, f.severity)
        y_dir = 1.0 if lobe != "upper" else -1.0
        lines = [[(sign * 0.2, 0.0), (sign * (0.2 + 0.35 * np.cos(a)), y_dir * 0.35 * abs(np.sin(a) + 0.6))]
                 for a in rng.uniform(-1.0, 1.0, 4)]
        bronchi = scene.stroke(lines, 0.008)
        scene.density += zone * (0.36 - 0.2 * bronchi)
        scene.markings_gain *= 1 - 0.8 * zone


def _pneumonia(scene, f, rng):
    """Ill-defined patchy (consolidation-like) opacity confined to one lobe (the variant's)."""
    tex = _texture(rng, scene.x.shape, max(0.025 / scene.px, 1.0))
    for sign, _ in scene.side_masks(f.side or rng.choice(["left", "right"])):
        lobe = _pick_lobe(f, sign, rng)
        zone = gaussian_filter(_lobe(scene, sign, lobe, f.severity), 0.03 / scene.px)
        scene.density += (0.24 + 0.04 * f.severity) * zone * np.clip(0.6 + 0.6 * tex, 0, 1.5)


def _lung_lesion(scene, f, rng):
    """Well-defined round nodules (as many as the severity), or one lobulated mass (variant 'mass')."""
    mass = f.variant == "mass"
    for sign, mask in scene.side_masks(f.side or rng.choice(["left", "right"])):
        for _ in range(1 if mass else f.severity):
            cx, cy = scene.point_in_lung(rng, sign, (-0.6, 0.2))
            r = rng.uniform(0.09, 0.13) if mass else rng.uniform(0.05, 0.07)
            d = np.hypot(scene.x - cx, scene.y - cy) * (1 + (0.1 if mass else 0.03) * np.sin(5 * np.arctan2(scene.y - cy, scene.x - cx)))
            scene.density += 0.42 * _ramp(r - d, 1.5 * scene.px) * (0.5 + 0.5 * mask)


def _pleural_other(scene, f, rng):
    """Pleural thickening: an irregular band along the lateral chest wall (and apical cap)."""
    for sign, mask in scene.side_masks(f.side or rng.choice(["left", "right", "bilateral"])):
        thick = 0.035 + 0.02 * f.severity
        inner = scene.lung_field(sign, shrink=thick * (1 + 0.3 * np.sin(scene.y * 9 + rng.uniform(0, 6))))
        rim = _ramp(inner - 1.0, 0.03) * mask * _ramp(np.abs(scene.x) - 0.25, 0.1)
        scene.density += 0.3 * rim


def _fracture_params(f, rng):
    """(rib index, side sign, x of the break) for each fractured rib."""
    signs = SIDE_SIGNS.get(f.side or str(rng.choice(["left", "right"])), (-1.0,))
    ribs = rng.choice(np.arange(1, 7), size=f.severity, replace=False)
    return [(int(k), signs[i % len(signs)], signs[i % len(signs)] * rng.uniform(0.38, 0.62)) for i, k in enumerate(ribs)]


def _chest_tube(sign):
    """Polyline of a chest drain entering laterally and running up to the apex on side `sign`."""
    return _curve([sign * 0.95, sign * 0.72, sign * 0.58, sign * 0.45], [0.3, 0.18, -0.3, -0.62])


DEVICES = ("ett", "cvc", "ng", "ecg", "pacer", "sternotomy", "chest_tube")


def _support_device_shapes(kind, x, y, px, rng):
    """Shapes of one support device of `kind` (tube, line, wire, ...): (tubes, lines, solid mask)."""
    s = float(rng.choice([-1.0, 1.0]))
    if kind == "ett":
        return [_curve([0.0, 0.0, 0.01], [-1.1, -0.8, -0.45 + rng.uniform(-0.05, 0.05)], 4)], [], 0
    if kind == "cvc":
        return [], [_curve([s * 0.62, s * 0.35, s * 0.12, 0.05], [-0.8, -0.62, -0.45, -0.15 + rng.uniform(0, 0.15)])], 0
    if kind == "ng":
        return [], [_curve([-0.02, 0.0, 0.05, 0.25], [-1.1, -0.3, 0.5, 0.75])], 0
    if kind == "chest_tube":
        return [_chest_tube(s)], [], 0
    if kind == "ecg":
        centres = rng.uniform([-0.7, -0.6], [0.7, 0.4], size=(3, 2))
        rings = sum(_band(np.hypot(x - cx, y - cy) - 0.035, 0.008, px) for cx, cy in centres)
        wires = [_curve([cx, cx + 0.2, np.sign(cx + 1e-3) * 1.1], [cy, cy + 0.1, cy + 0.3], 8) for cx, cy in centres]
        return [], wires, rings
    if kind == "sternotomy":
        ys = np.linspace(-0.45, 0.15, 5) + rng.uniform(-0.02, 0.02, 5)
        loops = sum(_band(np.hypot((x - 0.01) / 1.6, y - yy) - 0.022, 0.007, px) for yy in ys)
        return [], [], loops
    box = _band(x - 0.58, 0.09, px) * _band(y + 0.6, 0.06, px)  # pacemaker generator + lead
    return [], [_curve([0.55, 0.3, 0.1, 0.02], [-0.6, -0.45, 0.0, 0.3])], box


def _support_devices(scene, f, rng):
    """Lines, tubes and wires (high-attenuation curves); kinds from the variant ('ett,cvc'), else `severity` random ones."""
    kinds = [k for k in f.variant.split(",") if k in DEVICES] or list(rng.permutation(DEVICES[:5])[: f.severity])
    tubes, lines, solid = [], [], np.zeros_like(scene.x)
    for kind in kinds:
        t, line, mask = _support_device_shapes(kind, scene.x, scene.y, scene.px, rng)
        tubes, lines, solid = tubes + t, lines + line, np.maximum(solid, np.clip(mask, 0, 1))
    dev = solid
    if tubes:
        dev = np.maximum(dev, scene.stroke(tubes, 0.016))
    if lines:
        dev = np.maximum(dev, scene.stroke(lines, 0.008))
    scene.density += 0.55 * dev


RENDERERS = {
    "Pleural Effusion": _effusion,
    "Pneumothorax": _pneumothorax,
    "Lung Opacity": _lung_opacity,
    "Edema": _edema,
    "Atelectasis": _atelectasis,
    "Consolidation": _consolidation,
    "Pneumonia": _pneumonia,
    "Lung Lesion": _lung_lesion,
    "Pleural Other": _pleural_other,
    "Support Devices": _support_devices,
}
HEART_SCALE = {0: 1.0, 1: 1.22, 2: 1.36, 3: 1.5}
MEDIASTINUM_SCALE = {0: 1.0, 1: 1.55, 2: 1.85, 3: 2.2}


def render_findings(findings: Mapping[str, Finding], nuisance: Nuisance, seed: int, size: int = 128) -> np.ndarray:
    """Attenuation image (float32, before exposure and noise) for `findings` (label name -> Finding)."""
    unknown = set(findings) - set(CHEXPERT_LABELS)
    if unknown:
        raise ValueError(f"unknown observation(s) {sorted(unknown)}; use names from CHEXPERT_LABELS")
    rngs = {name: np.random.default_rng([seed, 1 + i]) for i, name in enumerate(CHEXPERT_LABELS)}
    scene = Scene(size, nuisance, _elevation(findings.get("Atelectasis"), findings.get("Pleural Effusion")))
    anat_rng = np.random.default_rng([seed, ANATOMY_STREAM])
    heart = HEART_SCALE[_sev(findings, "Cardiomegaly")] * float(anat_rng.uniform(0.95, 1.05))
    mediastinum = MEDIASTINUM_SCALE[_sev(findings, "Enlarged Cardiomediastinum")]
    fractures = _fracture_params(findings["Fracture"], rngs["Fracture"]) if "Fracture" in findings else []
    base, markings = _anatomy(scene, anat_rng, heart, mediastinum, fractures)
    for name in CHEXPERT_LABELS:
        if name in findings and name in RENDERERS:
            RENDERERS[name](scene, findings[name], rngs[name])
    return base + markings * scene.markings_gain + scene.density


def _elevation(f: Finding | None, effusion: Finding | None = None) -> dict:
    """Hemidiaphragm raise per side sign for atelectasis (volume loss) plus a subpulmonic effusion's fluid."""
    raise_by = {} if f is None else {s: 0.03 + 0.025 * f.severity for s in SIDE_SIGNS.get(f.side or "bilateral", ())}
    if effusion is not None and effusion.variant == "subpulmonic":
        for s in SIDE_SIGNS.get(effusion.side or "bilateral", ()):
            raise_by[s] = raise_by.get(s, 0.0) + 0.03 + 0.03 * effusion.severity  # about atelectasis's raise: a mimic
    return raise_by


def _sev(findings, name):
    """Severity of `name` if present, else 0."""
    return findings[name].severity if name in findings else 0


def expose(attenuation: np.ndarray, nuisance: Nuisance, seed: int) -> np.ndarray:
    """Apply exposure, gamma, detector blur and noise; return uint8."""
    rng = np.random.default_rng([seed, NOISE_STREAM])
    img = np.clip(nuisance.exposure * (attenuation - 0.05) + 0.1 + nuisance.brightness, 0.0, 1.0) ** nuisance.gamma
    img = gaussian_filter(img, 0.6) + nuisance.noise * rng.standard_normal(img.shape).astype(np.float32)
    return np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)


# ------------------------------------------------------------------ burned-in site markers

GLYPHS = {  # 3x5 bitmaps, rows top to bottom
    "L": "100100100100111", "R": "110101110101101", "A": "010101111101101", "P": "110101110100100",
    "O": "111101101101111", "T": "111010010010010", "S": "111100111001111", "1": "010110010010111",
    "2": "111001111100111", "E": "111100110100111", "U": "101101101101111", "M": "101111111101101",
}
SITE_STYLES = (  # (text, corner, boxed): site 0 = lead letter in a box top-left; 1 = plain text top-right
    ("R", "top-left", True),
    ("PORT", "top-right", False),
    ("S2", "bottom-left", True),
    ("UME", "bottom-right", False),
)


def burn_marker(img: np.ndarray, site: int, jitter=(0, 0)) -> np.ndarray:
    """Stamp the site's text-like marker (position and style identify the site) onto a uint8 image."""
    text, corner, boxed = SITE_STYLES[site % len(SITE_STYLES)]
    scale = max(1, img.shape[0] // 64)
    glyphs = [np.array(list(GLYPHS[c]), dtype=np.uint8).reshape(5, 3) for c in text]
    stamp = np.concatenate([np.pad(g, ((0, 0), (0, 1))) for g in glyphs], 1)[:, :-1]
    stamp = np.kron(stamp, np.ones((scale, scale), dtype=np.uint8))
    if boxed:
        stamp = np.pad(stamp, scale, constant_values=0)
    h, w = stamp.shape
    margin = 3 * scale
    r0 = margin + jitter[0] if corner.startswith("top") else img.shape[0] - margin - h + jitter[0]
    c0 = margin + jitter[1] if corner.endswith("left") else img.shape[1] - margin - w + jitter[1]
    r0, c0 = int(np.clip(r0, 0, max(img.shape[0] - h, 0))), int(np.clip(c0, 0, max(img.shape[1] - w, 0)))
    stamp = stamp[: img.shape[0] - r0, : img.shape[1] - c0]
    h, w = stamp.shape
    region = img[r0:r0 + h, c0:c0 + w]
    value = np.where(stamp > 0, 250, 15 if boxed else region)
    img = img.copy()
    img[r0:r0 + h, c0:c0 + w] = value
    return img


def render_cxr(findings: Mapping[str, Finding], nuisance: Nuisance, seed: int, size: int = 128,
               marker: bool = True) -> np.ndarray:
    """Render one frontal chest radiograph (uint8, size x size) showing `findings`."""
    img = expose(render_findings(findings, nuisance, seed, size), nuisance, seed)
    return burn_marker(img, nuisance.site, nuisance.marker_jitter) if marker else img
