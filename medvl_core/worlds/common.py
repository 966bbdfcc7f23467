"""Synthetic worlds generated on first use: built in a temp folder beside the root, `world.json` written
last (its presence = complete), renamed into place; reused only when format version and knobs match."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..config import dataset_dir, lock_file
from ..errors import MedvlError
from ..io import atomic_write_json, exclusive_lock

WORLD_FILE = "world.json"


def knob_folder(title: str, knobs: dict) -> Path:
    """The data root's folder for a world generated with `knobs`: `<title>` without any, else `<title>-<digest>`, so
    worlds with other knobs sit beside the default one instead of clashing with it."""
    if not knobs:
        return dataset_dir(title)
    digest = hashlib.sha256(json.dumps(knobs, sort_keys=True).encode()).hexdigest()[:8]
    return dataset_dir(f"{title}-{digest}")


def read_world(root, title: str = "synthetic") -> dict | None:
    """world.json of a complete world at `root`, or None if there is none."""
    path = Path(root) / WORLD_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MedvlError(f"{path} is not valid JSON ({exc}); delete the folder {root} to regenerate the {title} world") from exc


def check_world(root: Path, world: dict, wanted: dict, title: str, format_version: int) -> None:
    """Raise if the stored world's format version or params differ from `wanted` (only the keys given)."""
    if world.get("format_version") != format_version:
        raise MedvlError(f"{title} world at {root} has format version {world.get('format_version')}, this code "
                         f"writes {format_version}; delete the folder to regenerate it, or pass another root=")
    stored = world.get("params", {})
    diff = {k: (stored.get(k), v) for k, v in wanted.items() if stored.get(k) != v}
    if diff:
        listing = ", ".join(f"{k}: stored {a!r} vs requested {b!r}" for k, (a, b) in sorted(diff.items()))
        raise MedvlError(f"the {title} world at {root} was generated with different knobs ({listing}); "
                         "pass another root= or delete that folder to regenerate it")


def ensure_world(root: Path, build: Callable[[Path], dict], wanted: dict, title: str, format_version: int,
                 cache_root: Path | None = None) -> Path:
    """Reuse the world at `root` if it matches `wanted`, else `build(tmp)` -> world dict and publish it atomically.

    An outdated world at `cache_root` (the default place, a cache) is regenerated instead of raising. Processes
    asking for the same world at once take turns (a lock file beside it): one builds, the others reuse it.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(lock_file("world", str(root.resolve()))):
        return _ensure_world(root, build, wanted, title, format_version, cache_root)


def _ensure_world(root: Path, build, wanted: dict, title: str, format_version: int, cache_root: Path | None) -> Path:
    """ensure_world under its lock."""
    world = read_world(root, title)
    if world is not None and world.get("format_version") != format_version and root == cache_root:
        shutil.rmtree(root)
        world = None
    if world is not None:
        check_world(root, world, wanted, title, format_version)
        return root
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise MedvlError(f"{root} exists and is not a {title} world (no {WORLD_FILE}); pass an empty or new root=")
    remove_stale_partials(root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        atomic_write_json(tmp / WORLD_FILE, {**build(tmp), "format_version": format_version})
        _publish(tmp, root, wanted, title, format_version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _publish(tmp: Path, root: Path, wanted: dict, title: str, format_version: int) -> None:
    """Move the finished world in place (atomic rename); tolerate a concurrent identical generation."""
    try:
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        os.replace(tmp, root)
    except OSError:
        world = read_world(root, title)
        if world is None:
            raise
        check_world(root, world, wanted, title, format_version)
        shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_partials(root: Path, max_age_s: float = 6 * 3600) -> None:
    """Delete temp folders of generations that were killed (older than `max_age_s`) beside `root`."""
    for stale in root.parent.glob(f".{root.name}.partial-*"):
        if time.time() - stale.stat().st_mtime > max_age_s:
            shutil.rmtree(stale, ignore_errors=True)


def default_workers(limit: int = 4) -> int:
    """CPUs this process may use, at most `limit`."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, limit))


def run_jobs(render: Callable[[tuple], None], jobs: list[tuple], workers: int) -> None:
    """Call `render(job)` for every job, in `workers` processes for large batches (files must not depend on it)."""
    if workers <= 1 or len(jobs) < 64:
        for job in jobs:
            render(job)
        return
    import multiprocessing as mp

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers) as pool:
        for _ in pool.imap_unordered(render, jobs, chunksize=16):
            pass
