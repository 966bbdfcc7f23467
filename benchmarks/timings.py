"""benchmarks/timings.md, the one file that holds measured times: `record` replaces the row of a key.

    python benchmarks/timings.py record KEY --wall S [--cpu S] [--note TEXT]
    python benchmarks/timings.py run KEY [--note TEXT] -- COMMAND...   (runs COMMAND, records its wall and CPU time)

or, from Python (this module imports no torch): ``timings.record(key, wall, cpu=None, note="")``. Each row
also gets the date (UTC), the machine (CPU model, cores, GPU if `nvidia-smi` names one) and the commit
(short hash, "-dirty" when tracked files differ from it). The file is rewritten atomically under a lock.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMINGS = REPO / "benchmarks" / "timings.md"
COLUMNS = ("key", "wall s", "CPU s", "date", "machine", "commit", "note")
PREAMBLE = """\
# Measured times

Every measured time of this repository lives here; the READMEs point to this file instead of quoting times.
One row per key; a new measurement of a key replaces its row. Write rows with
`python benchmarks/timings.py record KEY --wall S [--cpu S] [--note TEXT]` or
`benchmarks.timings.record(key, wall, cpu=None, note="")`, never by hand.

- **wall s**: wall-clock seconds. **CPU s**: user + sys seconds of the measured processes, where known.
- **machine**: CPU model and core count, and the GPU if there is one. **commit**: the code measured
  ("-dirty": with uncommitted changes).
- Keys: `notebook <paper> (warm)` (worlds and caches already under the data root), `notebook <paper> (cold)`
  (empty data root), `notebook <paper> -f <profile> (<card>)`, `make test (fresh clone)`, `make test-fast`, ...
- Rows whose commit says "recorded in" were measured before this file existed and moved here from the
  README that quoted them, with their original numbers, date and machine.

"""
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def read_rows(path: Path = TIMINGS) -> list[dict]:
    """The table's rows as dicts keyed by COLUMNS (empty when the file does not exist)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip().replace("\\|", "|") for c in _CELL_SPLIT.split(line.strip())[1:-1]]
        if len(cells) == len(COLUMNS) and cells[0] != COLUMNS[0] and not set(cells[0]) <= {"-"}:
            rows.append(dict(zip(COLUMNS, cells)))
    return rows


def render(rows: list[dict]) -> str:
    """The whole file: preamble, then the table sorted by key."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in sorted(rows, key=lambda r: r["key"]):
        lines.append("| " + " | ".join(str(row.get(c, "")).replace("|", "\\|") for c in COLUMNS) + " |")
    return PREAMBLE + "\n".join(lines) + "\n"


def seconds(value: float | None) -> str:
    """A number of seconds as given (no float noise, no exponent); empty for None."""
    return "" if value is None else f"{float(value):.10g}"


def record(key: str, wall: float, cpu: float | None = None, note: str = "", *, date: str | None = None,
           machine: str | None = None, commit: str | None = None, path: Path = TIMINGS) -> dict:
    """Write (or replace) the row of `key`; date, machine and commit default to now, this machine and HEAD."""
    row = {"key": key.strip(), "wall s": seconds(wall), "CPU s": seconds(cpu),
           "date": date or datetime.now(UTC).strftime("%Y-%m-%d"), "machine": machine or machine_description(),
           "commit": commit or commit_description(), "note": " ".join(note.split())}
    with _locked(path.parent):
        rows = [r for r in read_rows(path) if r["key"] != row["key"]] + [row]
        _atomic_write(path, render(rows))
    return row


@contextlib.contextmanager
def _locked(folder: Path):
    """Hold an exclusive lock on `folder` so that two writers do not lose each other's row."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _atomic_write(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and rename it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def machine_description() -> str:
    """'AMD EPYC 7B13, 2 cores' plus ', GPU NVIDIA H100 80GB HBM3' when nvidia-smi lists one."""
    text = f"{_cpu_model()}, {os.cpu_count()} cores"
    gpus = _command(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"])
    return text + (f", GPU {gpus.splitlines()[0].strip()}" if gpus else "")


def _cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else what the platform module says."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def commit_description() -> str:
    """HEAD's short hash, '-dirty' when tracked files (other than this table) differ from it; 'unknown' outside git."""
    head = _command(["git", "rev-parse", "--short", "HEAD"])
    if not head:
        return "unknown"
    dirty = _command(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", f":!{TIMINGS.relative_to(REPO)}"])
    return head + ("-dirty" if dirty else "")


def _command(argv: list[str]) -> str:
    """A command's stripped stdout run in the repository, or '' when it is missing or fails."""
    try:
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def run_and_record(key: str, command: list[str], note: str = "", path: Path = TIMINGS) -> int:
    """Run `command`, record its wall time and the CPU time (user + sys) of it and its children; its exit code."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    code = subprocess.call(command)
    wall, after = time.monotonic() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    outcome = "passed" if code == 0 else f"exit {code}"
    record(key, round(wall, 1), round(cpu, 1), "; ".join(filter(None, [note, outcome])), path=path)
    print(f"{key}: {wall:.0f} s wall, {cpu:.0f} s CPU ({outcome}) -> {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return code


def main(argv=None) -> int:
    """`record KEY --wall S ...` writes one row; `run KEY -- COMMAND` measures COMMAND and writes its row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="write or replace the row of KEY")
    rec.add_argument("key", help="what was measured, e.g. 'notebook loss_relaxation (warm)'")
    rec.add_argument("--wall", type=float, required=True, help="wall-clock seconds")
    rec.add_argument("--cpu", type=float, help="CPU seconds, user + sys")
    rec.add_argument("--note", default="", help="how it was measured (load, threads, data root...)")
    rec.add_argument("--file", type=Path, default=TIMINGS, help="the table to write (default benchmarks/timings.md)")
    run = sub.add_parser("run", help="run a command and record its wall and CPU time under KEY")
    run.add_argument("key", help="what is measured, e.g. 'make test'")
    run.add_argument("--note", default="", help="how it was measured")
    run.add_argument("--file", type=Path, default=TIMINGS, help="the table to write (default benchmarks/timings.md)")
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args, command = parser.parse_args(argv[:split]), argv[split + 1:]
    if args.command == "run":
        if not command:
            parser.error("run: give the command after --")
        return run_and_record(args.key, command, args.note, args.file)
    row = record(args.key, args.wall, args.cpu, args.note, path=args.file)
    print(" | ".join(row.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
