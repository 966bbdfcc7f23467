"""SynthCXR / SynthDerm generation speed (peer: the 60 s default-world budget of issue 3).

``medvl_core.data.synth_cxr.generate_synth_cxr`` and ``medvl_core.data.synth_derm.generate_synth_derm``
with default knobs (fixed seeds) into fresh temp dirs, each in its own subprocess so its peak RSS
(``resource.getrusage``: the process and, separately, its largest worker) is its own. Prints
images/s, wall time and peak RSS; ratio last: 60 s budget / our wall time (> 1 = within budget).
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

BUDGET_S = 60.0
IMAGE_EXT = {".png", ".jpg", ".jpeg"}


def child(world: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / world
        t0 = time.perf_counter()
        if world == "synth_cxr":
            from medvl_core.data.synth_cxr import generate_synth_cxr

            generate_synth_cxr(root)
        else:
            from medvl_core.data.synth_derm import generate_synth_derm

            generate_synth_derm(root)
        wall = time.perf_counter() - t0
        n = sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXT)
    print(json.dumps({"wall": wall, "images": n,
                      "rss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def main() -> None:
    ratios = {}
    for world in ("synth_cxr", "synth_derm"):
        res = subprocess.run([sys.executable, __file__, world], capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        ratios[world] = BUDGET_S / r["wall"]
        print(f"{world}: {r['images']:,d} images in {r['wall']:.1f} s = {r['images'] / r['wall']:,.0f} images/s  "
              f"peak RSS main {r['rss_self_mib']:.0f} MiB, largest worker {r['rss_worker_mib']:.0f} MiB")
    print("generation ratio 60 s budget / our time (> 1 = within budget): "
          + "  ".join(f"{w} {v:.2f}" for w, v in ratios.items()))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1])
    else:
        main()
