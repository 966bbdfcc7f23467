"""Notebook default-run times and ``make test`` wall time (peer: the default-run budget in docs/architecture.md).

Default: reads each paper's last default run, ``runs/notebooks/<paper>/run.json`` (written by ``make notebooks`` /
``medvl refresh``; ``runtime_s`` is the papermill wall time) or, failing that, ``runs/demo/<paper>/run.json``
(``make demo``), and the ``make test`` rows of benchmarks/timings.md (written by ``make test``).
``--run`` executes every notebook now with ``medvl run PAPER --out <temp dir>`` (default parameters; synthetic
worlds and feature caches already under the data root are reused, as in a second ``make demo``), one at a time.
Prints seconds per notebook and its ratio to the 180 s budget; ratio last: budget / slowest notebook
(> 1 = every notebook within budget). Each notebook's time is also written to benchmarks/timings.md
(``timings.record``): with ``--run`` as ``notebook <paper> (warm)`` (``(cold)`` when the data root was empty) with
CPU seconds and this commit, otherwise as ``notebook <paper> (<make target>)`` dated by its run.json.
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from timings import read_rows, record

from medvl_core.papers import PAPERS

REPO = Path(__file__).resolve().parent.parent
RUN_FOLDERS = {"runs/notebooks": "make notebooks", "runs/demo": "make demo"}
BUDGET_S = 180.0


def recorded_runtime(paper: str) -> tuple[float, str] | None:
    """(runtime_s, where and when) of the paper's last successful default run, or None; also written to timings.md."""
    for folder, target in RUN_FOLDERS.items():
        path = REPO / folder / paper / "run.json"
        if not path.is_file():
            continue
        status = json.loads(path.read_text(encoding="utf-8"))
        if status.get("status") == "ok" and status.get("runtime_s") is not None and not _non_default(status):
            seconds = float(status["runtime_s"])
            record(f"notebook {paper} ({target})", seconds, note=f"runtime_s of {folder}/{paper}/run.json "
                   f"(papermill wall time of `{target}`), read by bench_notebooks.py", date=_mtime(path)[:10],
                   commit="not recorded (a run.json does not name its commit)")
            return seconds, f"{folder}, {_mtime(path)}"
    return None


def _non_default(status: dict) -> bool:
    """True when the run changed parameters other than the probing notebook's `run_models` (added by make demo)."""
    return bool(set(status.get("overrides") or {}) - {"run_models"})


def _mtime(path: Path) -> str:
    """A file's modification time, UTC, to the minute."""
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def run_now(paper: str, out: Path, cold: bool) -> tuple[float, str]:
    """Execute the notebook with its defaults through `medvl run`, record it in timings.md; (wall s, 'run now')."""
    medvl = Path(sys.executable).with_name("medvl")
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([str(medvl), "run", paper, "--out", str(out / paper)], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    state = "data root empty at the start of bench_notebooks.py --run" if cold else (
        "worlds and caches already under the data root reused")
    record(f"notebook {paper} ({'cold' if cold else 'warm'})", round(wall, 1), round(cpu, 1),
           note=f"bench_notebooks.py --run: medvl run {paper}, default parameters; {state}; CPU of medvl and its kernel")
    return wall, "run now"


def data_root_empty() -> bool:
    """Whether $MEDVL_DATA (default ~/.cache/medvl) is missing or empty: every world and cache will be generated."""
    from medvl_core.config import data_root

    root = data_root()
    return not root.is_dir() or not any(root.iterdir())


def report_make_test() -> None:
    """Print the `make test` rows of benchmarks/timings.md (written by `make test` itself)."""
    rows = [row for row in read_rows() if row["key"].startswith("make test")]
    if not rows:
        print("make test: no row in benchmarks/timings.md yet (`make test` writes one)")
    for row in rows:
        print(f"{row['key']}: {row['wall s']} s wall, {row['CPU s'] or '?'} s CPU ({row['date']}, {row['commit']}; "
              f"{row['note']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="execute every notebook now instead of reading run.json")
    args = parser.parse_args()
    times, cold = {}, args.run and data_root_empty()
    with tempfile.TemporaryDirectory() as tmp:
        for paper in PAPERS:
            found = run_now(paper, Path(tmp), cold) if args.run else recorded_runtime(paper)
            if found is None:
                print(f"{paper:34s}  no recorded default run (run `make notebooks`, or this script with --run)")
                continue
            times[paper], source = found
            print(f"{paper:34s}  {times[paper]:6.1f} s  {times[paper] / BUDGET_S:4.2f} x the {BUDGET_S:.0f} s budget  "
                  f"({source})")
    if times:
        print(f"all notebooks: {sum(times.values()):.0f} s")
    report_make_test()
    if times:
        slowest = max(times, key=times.get)
        print(f"notebook ratio {BUDGET_S:.0f} s budget / slowest default run ({slowest}): "
              f"{BUDGET_S / times[slowest]:.2f}")


if __name__ == "__main__":
    main()
