"""SynthCXR findings: one drawing function per rendered CheXpert observation (`RENDERERS`), each adding its
attenuation (or removing lung markings) in a `Scene`, with its own random stream."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .synth_cxr_scene import LOBES, LUNG_CX, SIDE_SIGNS, Finding, band, blob, curve, ramp, texture


def _effusion(scene, f, rng):
    """Basal meniscus: fluid filling the costophrenic angle, higher laterally, on the stated side.

    Variant "subpulmonic": no meniscus; the fluid under the lung shows only as a raised hemidiaphragm
    (see `synth_cxr_render._elevation`), the form an image model trained on menisci does not know.
    """
    if f.variant == "subpulmonic":
        return
    h = (0.16, 0.34, 0.6)[f.severity - 1] * rng.uniform(0.85, 1.15)
    for sign, mask in scene.side_masks(f.side or "bilateral"):
        lateral = np.clip((np.abs(scene.x) - 0.12) / 0.66, 0, 1)
        surface = scene.diaphragm_y(sign) - h * (0.55 + 0.45 * lateral ** 1.5)
        fluid = ramp(scene.y - surface, 0.05) * mask * (1 - scene.heart)
        scene.density += 0.34 * fluid * (0.85 + 0.15 * ramp(scene.y - surface, 0.3))
        scene.markings_gain *= 1 - fluid


def _pneumothorax(scene, f, rng):
    """Apical/lateral lucency without lung markings, bounded by a thin visible pleural line."""
    rim = (0.09, 0.15, 0.22)[f.severity - 1] * rng.uniform(0.85, 1.15)
    if f.variant == "drain":
        rim = 0.045
    for sign, mask in scene.side_masks(f.side or "right"):
        collapsed = scene.lung_field(sign, shrink=rim)
        upper = ramp(0.25 - scene.y, 0.3)
        gap = ramp(collapsed - 1.0, 0.04) * mask * upper
        scene.markings_gain *= 1 - gap
        scene.density -= 0.16 * gap
        line = np.exp(-(((collapsed - 1.0) / 0.03) ** 2)) * mask * upper
        scene.density += 0.18 * line
        if f.variant == "drain":
            scene.density += 0.5 * scene.stroke([_chest_tube(sign)], 0.014)


def _lung_opacity(scene, f, rng):
    """Scattered patchy opacities."""
    tex = texture(rng, scene.x.shape, max(0.035 / scene.px, 1.0))
    patches = np.zeros_like(scene.x)
    for sign, mask in scene.side_masks(f.side or rng.choice(["left", "right", "bilateral"])):
        for _ in range(2 + f.severity):
            cx, cy = scene.point_in_lung(rng, sign)
            s = rng.uniform(0.07, 0.12)
            patches = np.maximum(patches, blob(scene.x, scene.y, cx, cy, s, s * 1.2) * mask)
    scene.density += (0.2 + 0.05 * f.severity) * patches * np.clip(0.7 + 0.5 * tex, 0, 1.4)


def _edema(scene, f, rng):
    """Bilateral perihilar (bat-wing) haze blurring the vessels."""
    haze = blob(np.abs(scene.x), scene.y, 0.26, 0.02, 0.22 + 0.05 * f.severity, 0.35) * scene.air
    scene.density += (0.08 + 0.05 * f.severity) * haze
    scene.markings_gain *= 1 - 0.5 * haze
    kerley = band(np.mod(scene.y * 28, 1.0) - 0.5, 0.08, 0.1) * ramp(np.abs(scene.x) - 0.62, 0.05)
    scene.density += 0.04 * f.severity * kerley * ramp(scene.y - 0.05, 0.1) * scene.air


def _atelectasis(scene, f, rng):
    """Plate-like linear bands at the lung base (volume loss raises that hemidiaphragm, see render_findings)."""
    for sign, mask in scene.side_masks(f.side or "bilateral"):
        for _ in range(f.severity):
            cx = sign * rng.uniform(0.3, 0.55)
            cy = rng.uniform(0.05, 0.3)
            slope, half = rng.uniform(-0.25, 0.25), rng.uniform(0.12, 0.2)
            line = band(scene.y - cy - slope * (scene.x - cx), 0.02, 2 * scene.px)
            scene.density += 0.28 * line * band(scene.x - cx, half, 0.05) * mask


def _lobe(scene, sign, lobe, severity):
    """Soft mask of a lobe-like zone of the aerated lung: 'upper', 'middle' (right) or 'lower'."""
    x, y, grow = scene.x, scene.y, 0.1 * (severity - 1)
    if lobe == "upper":
        zone = ramp(-0.3 + grow - y, 0.06)
    elif lobe == "middle":
        zone = band(y - 0.12, 0.12 + 0.5 * grow, 0.06) * ramp(0.5 + grow - np.abs(x), 0.1)
    else:
        zone = ramp(y - 0.15 + grow - 0.15 * (np.abs(x) - LUNG_CX), 0.06)
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
    tex = texture(rng, scene.x.shape, max(0.025 / scene.px, 1.0))
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
            scene.density += 0.42 * ramp(r - d, 1.5 * scene.px) * (0.5 + 0.5 * mask)


def _pleural_other(scene, f, rng):
    """Pleural thickening: an irregular band along the lateral chest wall (and apical cap)."""
    for sign, mask in scene.side_masks(f.side or rng.choice(["left", "right", "bilateral"])):
        thick = 0.035 + 0.02 * f.severity
        inner = scene.lung_field(sign, shrink=thick * (1 + 0.3 * np.sin(scene.y * 9 + rng.uniform(0, 6))))
        rim = ramp(inner - 1.0, 0.03) * mask * ramp(np.abs(scene.x) - 0.25, 0.1)
        scene.density += 0.3 * rim


def fracture_params(f, rng):
    """(rib index, side sign, x of the break) for each fractured rib."""
    signs = SIDE_SIGNS.get(f.side or str(rng.choice(["left", "right"])), (-1.0,))
    ribs = rng.choice(np.arange(1, 7), size=f.severity, replace=False)
    return [(int(k), signs[i % len(signs)], signs[i % len(signs)] * rng.uniform(0.38, 0.62)) for i, k in enumerate(ribs)]


def _chest_tube(sign):
    """Polyline of a chest drain entering laterally and running up to the apex on side `sign`."""
    return curve([sign * 0.95, sign * 0.72, sign * 0.58, sign * 0.45], [0.3, 0.18, -0.3, -0.62])


DEVICES = ("ett", "cvc", "ng", "ecg", "pacer", "sternotomy", "chest_tube")


def _support_device_shapes(kind, x, y, px, rng):
    """Shapes of one support device of `kind` (tube, line, wire, ...): (tubes, lines, solid mask)."""
    s = float(rng.choice([-1.0, 1.0]))
    if kind == "ett":
        return [curve([0.0, 0.0, 0.01], [-1.1, -0.8, -0.45 + rng.uniform(-0.05, 0.05)], 4)], [], 0
    if kind == "cvc":
        return [], [curve([s * 0.62, s * 0.35, s * 0.12, 0.05], [-0.8, -0.62, -0.45, -0.15 + rng.uniform(0, 0.15)])], 0
    if kind == "ng":
        return [], [curve([-0.02, 0.0, 0.05, 0.25], [-1.1, -0.3, 0.5, 0.75])], 0
    if kind == "chest_tube":
        return [_chest_tube(s)], [], 0
    if kind == "ecg":
        centres = rng.uniform([-0.7, -0.6], [0.7, 0.4], size=(3, 2))
        rings = sum(band(np.hypot(x - cx, y - cy) - 0.035, 0.008, px) for cx, cy in centres)
        wires = [curve([cx, cx + 0.2, np.sign(cx + 1e-3) * 1.1], [cy, cy + 0.1, cy + 0.3], 8) for cx, cy in centres]
        return [], wires, rings
    if kind == "sternotomy":
        ys = np.linspace(-0.45, 0.15, 5) + rng.uniform(-0.02, 0.02, 5)
        loops = sum(band(np.hypot((x - 0.01) / 1.6, y - yy) - 0.022, 0.007, px) for yy in ys)
        return [], [], loops
    box = band(x - 0.58, 0.09, px) * band(y + 0.6, 0.06, px)  # pacemaker generator + lead
    return [], [curve([0.55, 0.3, 0.1, 0.02], [-0.6, -0.45, 0.0, 0.3])], box


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
