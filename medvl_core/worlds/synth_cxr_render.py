"""SynthCXR renderer: a frontal chest radiograph drawn with numpy from findings, nuisance and a seed.

The anatomy is drawn here, the findings by `synth_cxr_findings` into a `synth_cxr_scene.Scene`; then exposure,
detector blur and noise, and the burned-in site marker.
Every random draw comes from `np.random.default_rng([seed, stream])` with one stream per layer
(anatomy, each observation, noise), so adding a finding never changes the rest of the picture.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.ndimage import gaussian_filter

from ..data.labels import CHEXPERT_LABELS
from .synth_cxr_findings import RENDERERS, fracture_params
from .synth_cxr_scene import SIDE_SIGNS, Finding, Nuisance, Scene, band, blob, ramp, texture

RIB_Y0 = np.linspace(-0.74, 0.42, 9)
NOISE_STREAM, ANATOMY_STREAM = 99, 0


# ------------------------------------------------------------------ anatomy

def _anatomy(scene: Scene, rng, heart_scale: float, mediastinum: float, fractures: list) -> tuple[np.ndarray, np.ndarray]:
    """Body, lungs with markings, heart, mediastinum, spine, clavicles and ribs (attenuation, ~0..1)."""
    x, y, px, n = scene.x, scene.y, scene.px, scene.nuisance
    body = ramp(0.95 - 0.5 * np.clip(-0.72 - y, 0, None) - np.abs(x), 3 * px)
    hx, hy = 0.12, 0.23 + (0.04 if scene.ap else 0.0)
    ha, hb = 0.4 * heart_scale * (1.1 if scene.ap else 1.0), 0.28 * heart_scale ** 0.5
    heart = ramp(1.0 - ((x - hx) / ha) ** 2 - ((y - hy) / hb) ** 2, 0.2) * (y > hy - hb * 0.95)
    mw = 0.1 * mediastinum + 0.025 * (y > -0.6)
    medi = band(x - 0.01, mw, 2 * px) * ramp(hy - y, 0.1)
    air = scene.lung * (1 - heart) * (1 - medi)
    scene.air, scene.heart = air, heart
    scene.lungs_air = {s: scene.lungs[s] * (1 - heart) * (1 - medi) for s in (-1.0, 1.0)}
    img = body * n.soft_tissue - 0.36 * air + 0.1 * heart + 0.08 * medi
    img += 0.05 * ramp(np.abs(x) - 0.55, 0.2) * band(y + 0.35, 0.25, 0.2) * (1.5 if scene.ap else 1.0)  # scapulae
    img += 0.07 * band(x, 0.06, 2 * px) * (1 + 0.3 * np.cos(y * 26.0)) * (1 - 0.6 * heart)  # spine
    img -= 0.1 * band(x, 0.028, 2 * px) * ramp(-0.3 - y, 0.05)  # trachea
    img += 0.1 * ramp(y - scene.diaphragm_y(np.sign(x + 1e-6)), 0.04) * (1 - heart) * body  # abdomen
    img += _clavicles(x, y, px, scene.ap) + _ribs(x, y, px, fractures)
    tex = texture(rng, x.shape, max(0.012 / px, 0.6))
    hila = blob(np.abs(x), y, 0.2, -0.02, 0.18, 0.22)
    markings = (0.035 * tex + 0.09 * hila + 0.14 * _vessels(scene, rng)) * scene.lung * (1 - 0.7 * heart)
    return img, markings


def _clavicles(x, y, px, ap):
    """Two oblique bony bands at the top of the chest."""
    lift = -0.05 if ap else 0.0
    y_c = -0.7 + lift - 0.22 * (np.abs(x) - 0.1)
    return 0.16 * band(y - y_c, 0.035, 2 * px) * band(np.abs(x) - 0.4, 0.32, 0.05)


def _rib_curve(k, ax):
    """Vertical position of posterior rib k at |x| = ax."""
    t = ax - 0.08
    return RIB_Y0[k] - 0.12 * t + 0.42 * t ** 2


def _ribs(x, y, px, fractures):
    """Posterior ribs (9 per side) with optional fractures: list of (k, sign, x_break)."""
    ax = np.abs(x)
    ribs = np.zeros_like(x)
    within = band(ax - 0.45, 0.38, 0.05)
    for k in range(len(RIB_Y0)):
        rib_y = _rib_curve(k, ax)
        for kk, sign, xb in fractures:
            if kk == k:
                outer = (np.sign(x) == sign) & (ax > abs(xb))
                rib_y = rib_y + 0.05 * outer  # displaced fragment
        rib = band(y - rib_y, 0.022, 1.5 * px)
        for kk, sign, xb in fractures:
            if kk == k:
                rib = rib * (1 - (np.sign(x) == sign) * band(x - xb, 0.035, px))  # the gap
        ribs += rib
    for k, _, xb in fractures:  # callus at each break
        ribs += 4.0 * blob(x, y, xb, _rib_curve(k, abs(xb)) + 0.02, 0.07, 0.045)
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


HEART_SCALE = {0: 1.0, 1: 1.22, 2: 1.36, 3: 1.5}
MEDIASTINUM_SCALE = {0: 1.0, 1: 1.55, 2: 1.85, 3: 2.2}


def render_findings(findings: Mapping[str, Finding], nuisance: Nuisance, seed: int, size: int = 128,
                    subpulmonic_raise: float = 1.0) -> np.ndarray:
    """Attenuation image (float32, before exposure and noise) for `findings` (label name -> Finding).

    `subpulmonic_raise` scales a subpulmonic effusion's hemidiaphragm raise (see `_elevation`).
    """
    unknown = set(findings) - set(CHEXPERT_LABELS)
    if unknown:
        raise ValueError(f"unknown observation(s) {sorted(unknown)}; use names from CHEXPERT_LABELS")
    rngs = {name: np.random.default_rng([seed, 1 + i]) for i, name in enumerate(CHEXPERT_LABELS)}
    scene = Scene(size, nuisance, _elevation(findings.get("Atelectasis"), findings.get("Pleural Effusion"),
                                         subpulmonic_raise))
    anat_rng = np.random.default_rng([seed, ANATOMY_STREAM])
    heart = HEART_SCALE[_sev(findings, "Cardiomegaly")] * float(anat_rng.uniform(0.95, 1.05))
    mediastinum = MEDIASTINUM_SCALE[_sev(findings, "Enlarged Cardiomediastinum")]
    fractures = fracture_params(findings["Fracture"], rngs["Fracture"]) if "Fracture" in findings else []
    base, markings = _anatomy(scene, anat_rng, heart, mediastinum, fractures)
    for name in CHEXPERT_LABELS:
        if name in findings and name in RENDERERS:
            RENDERERS[name](scene, findings[name], rngs[name])
    return base + markings * scene.markings_gain + scene.density


def _elevation(f: Finding | None, effusion: Finding | None = None, subpulmonic_raise: float = 1.0) -> dict:
    """Hemidiaphragm raise per side sign for atelectasis (volume loss) plus a subpulmonic effusion's fluid.

    The subpulmonic raise is `subpulmonic_raise` x (0.03 + 0.03 x severity): at 1 about atelectasis's raise; below 1
    within the range of a normal hemidiaphragm's height, the form radiologists miss on a frontal film.
    """
    raise_by = {} if f is None else {s: 0.03 + 0.025 * f.severity for s in SIDE_SIGNS.get(f.side or "bilateral", ())}
    if effusion is not None and effusion.variant == "subpulmonic":
        for s in SIDE_SIGNS.get(effusion.side or "bilateral", ()):
            raise_by[s] = raise_by.get(s, 0.0) + subpulmonic_raise * (0.03 + 0.03 * effusion.severity)  # at 1: about atelectasis's raise: a mimic
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
               marker: bool = True, subpulmonic_raise: float = 1.0) -> np.ndarray:
    """Render one frontal chest radiograph (uint8, size x size) showing `findings` (`subpulmonic_raise`: see `render_findings`)."""
    img = expose(render_findings(findings, nuisance, seed, size, subpulmonic_raise), nuisance, seed)
    return burn_marker(img, nuisance.site, nuisance.marker_jitter) if marker else img
