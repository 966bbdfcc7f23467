"""SynthCXR / SynthDerm generation speed and memory (peers: the 60 s default-world budget; a PIL JPEG-writing floor).

``medvl_core.worlds.synth_cxr.generate_synth_cxr`` and ``medvl_core.worlds.synth_derm.generate_synth_derm`` (fixed
seeds) into fresh temp dirs, each world in its own subprocess so its peak RSS (``resource.getrusage``: the process
and, separately, its largest worker) is its own. Each world is generated at its default size and at two smaller
sizes: peak RSS per size shows how memory grows with the world; a straight line through the points (MiB per 1k
images) gives the memory of a 100k-image world, and disk bytes per image x 100k its size on disk (both
extrapolated: generating 100k images takes about 10 minutes). Peer floor: saving the same number of JPEGs of the
same size, mode and quality with PIL from one pre-made noise image (no rendering, one process).
Ratios last: 60 s budget / our time at the default size (> 1 = within budget), and our images/s / the PIL floor's.
Not part of ``make test``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BUDGET_S = 60.0
BIG_WORLD = 100_000
IMAGE_EXT = {".png", ".jpg", ".jpeg"}
# world -> knob sets, smallest first; the last is the default world
SIZES = {
    "synth_cxr": [{"n_studies": 750, "n_test_images": 0}, {"n_studies": 1500, "n_test_images": 0}, {}],
    "synth_derm": [{"n_train": 75}, {"n_train": 150}, {}],
}
FLOOR = {"synth_cxr": ("L", 128), "synth_derm": ("RGB", 128)}  # image mode and side of each world


def generate(world: str, root: Path, knobs: dict) -> None:
    """Generate one world with `knobs` at `root`."""
    if world == "synth_cxr":
        from medvl_core.worlds.synth_cxr import generate_synth_cxr

        generate_synth_cxr(root, **knobs)
    else:
        from medvl_core.worlds.synth_derm import generate_synth_derm

        generate_synth_derm(root, **knobs)


def child(world: str, knobs: dict) -> None:
    """Generate in a temp dir; print one JSON line: wall, images, bytes on disk, peak RSS of self and workers."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / world
        t0 = time.perf_counter()
        generate(world, root, knobs)
        wall = time.perf_counter() - t0
        files = [p for p in root.rglob("*") if p.is_file()]
        n = sum(1 for p in files if p.suffix.lower() in IMAGE_EXT)
        size = sum(p.stat().st_size for p in files)
    print(json.dumps({"wall": wall, "images": n, "bytes": size,
                      "rss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def measure(world: str, knobs: dict) -> dict:
    """One generation in a fresh subprocess."""
    res = subprocess.run([sys.executable, __file__, world, json.dumps(knobs)], capture_output=True, text=True,
                         check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def pil_floor(n: int, mode: str, side: int, seed: int = 0) -> float:
    """Seconds to save n JPEGs (quality 95) of one pre-made smooth-noise image: the I/O + encode floor."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    shape = (side, side) if mode == "L" else (side, side, 3)
    image = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).filter(ImageFilter.GaussianBlur(2))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for i in range(n):
            image.save(Path(tmp) / f"{i:06d}.jpg", format="JPEG", quality=95)
        return time.perf_counter() - t0


def growth(points: list[dict]) -> tuple[float, float]:
    """Least-squares (MiB per 1k images, MiB at a 100k-image world) of the larger of the two peak RSS figures."""
    n = np.array([p["images"] for p in points], dtype=float)
    rss = np.array([max(p["rss_self_mib"], p["rss_worker_mib"]) for p in points])
    slope, intercept = np.polyfit(n, rss, 1)
    return 1000 * slope, intercept + slope * BIG_WORLD


def report(world: str) -> tuple[float, float]:
    """Measure every size of one world and print its lines; (budget ratio, floor ratio) at the default size."""
    points = [measure(world, knobs) for knobs in SIZES[world]]
    for knobs, r in zip(SIZES[world], points):
        print(f"{world} {json.dumps(knobs) if knobs else '(default)':35s} {r['images']:>6,d} images in "
              f"{r['wall']:6.1f} s = {r['images'] / r['wall']:5,.0f} images/s  "
              f"peak RSS main {r['rss_self_mib']:4.0f} MiB, largest worker {r['rss_worker_mib']:4.0f} MiB  "
              f"disk {r['bytes'] / r['images'] / 1024:5.1f} KiB/image")
    per_k, big = growth(points)
    default = points[-1]
    disk_big = default["bytes"] / default["images"] * BIG_WORLD / 2**30
    print(f"{world}: peak RSS grows {per_k:+.1f} MiB per 1k images -> about {big:,.0f} MiB at {BIG_WORLD:,d} images "
          f"(extrapolated); disk about {disk_big:.1f} GiB at {BIG_WORLD:,d} images")
    mode, side = FLOOR[world]
    floor_s = pil_floor(default["images"], mode, side)
    print(f"{world}: PIL floor, {default['images']:,d} {mode} {side} px JPEGs from one image: {floor_s:.1f} s = "
          f"{default['images'] / floor_s:,.0f} images/s")
    return BUDGET_S / default["wall"], floor_s / default["wall"]


def main() -> None:
    ratios = {world: report(world) for world in SIZES}
    print("generation ratios at the default size: 60 s budget / our time (> 1 = within budget) "
          + "  ".join(f"{w} {b:.2f}" for w, (b, _) in ratios.items())
          + "; our images/s / PIL floor images/s " + "  ".join(f"{w} {f:.2f}" for w, (_, f) in ratios.items()))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1], json.loads(sys.argv[2]))
    else:
        main()
