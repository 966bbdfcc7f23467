"""`medvl prepare`: decode a chest X-ray dataset's images once into a prepared copy (read side: `data.prepared`).

The items come from the dataset's own loader (every split, the views asked for); each image is decoded (JPGs in
PIL's draft mode, DICOM through its VOI LUT), resized so its shorter side is `size` and centre-cropped to a
square, in chunks written into one memory-mapped array. A chunk is marked done (its ids and its source files'
sizes and mtimes) once flushed, so a killed prepare resumes with the chunks not yet done; `manifest.json` is
written last, and a folder without it is an incomplete copy that no loader reads.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import subprocess
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import REPO_ROOT
from ..errors import DataFormatError, ParameterError, UsageError
from ..io import atomic_path, atomic_write_json
from .check import POLICIES
from .images import load_image, square_uint8
from .prepared import (
    IMAGES,
    INDEX,
    MANIFEST,
    PREPARABLE,
    PREPARED_FORMAT,
    digest_entries,
    prepared_dir,
    stat_entries,
)
from .registry import DATASETS, open_dataset

SPLITS = {"mimic-cxr": ("all",), "chexpert": ("train", "val", "test"), "padchest": ("all",),
          "vindr-cxr": ("train", "test")}
PLAN = "plan.json"
CHUNK_SIZE = 512


def source_records(name: str, root: Path, views) -> tuple[list[dict], list[str], object]:
    """Every item of every split of `name` found under `root` (one per image), its label names and the loader's text
    callback."""
    factory = DATASETS[name].factory
    options = {"views": views} if "views" in inspect.signature(factory).parameters else {}
    records, labels, text, missing = [], [], None, []
    for split in SPLITS[name]:
        try:
            dataset = open_dataset(name, root, split=split, prepared="off", **options)
        except DataFormatError as exc:  # a split not downloaded (e.g. only VinDr-CXR's test set)
            missing.append(exc)
            continue
        records += dataset.records
        labels, text = dataset.label_names, getattr(dataset.loader, "text", None)
    if len(missing) == len(SPLITS[name]):
        raise missing[0]
    ids = [str(r["id"]) for r in records]
    if len(set(ids)) != len(ids):
        raise DataFormatError(f"{name} under {root}: item ids repeat across splits; a prepared copy needs unique ids")
    return records, labels, text


def relative(path: str, root: Path) -> str:
    """`path` relative to the dataset root (as stored in the index)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:  # the loader resolved a link or a parent folder (CheXpert's CSV prefixes)
        return Path(path).resolve().relative_to(root.resolve()).as_posix()


def chunk_marker(ids, entries) -> str:
    """What makes a finished chunk reusable: its ids and its source files' sizes and mtimes."""
    return hashlib.sha256(json.dumps([list(ids), [list(e) for e in entries]]).encode()).hexdigest()


def decode_one(path: str, size: int) -> tuple[np.ndarray, str]:
    """(size x size uint8 image, "") or (zeros, "problem: detail") for one source image."""
    if not Path(path).is_file():
        return np.zeros((size, size), np.uint8), "missing file: no such file"
    try:
        return square_uint8(load_image(path, "L", draft_side=size), size), ""
    except Exception as exc:  # PIL, pydicom and DataFormatError all mean an unreadable image
        cause = exc.__cause__ or exc
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        return np.zeros((size, size), np.uint8), f"unreadable image: {detail}"


def open_array(folder: Path, plan: dict, force: bool) -> np.memmap:
    """The (N, size, size) array to fill: reopened when an unfinished copy has the same plan, else made anew."""
    plan_path = folder / PLAN
    same = plan_path.is_file() and json.loads(plan_path.read_text()) == plan and (folder / IMAGES).is_file()
    if force or not same:
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "chunks").mkdir(parents=True)
        array = np.lib.format.open_memmap(folder / IMAGES, mode="w+", dtype=np.uint8,
                                          shape=(plan["n"], plan["size"], plan["size"]))
        atomic_write_json(plan_path, plan)
        return array
    (folder / MANIFEST).unlink(missing_ok=True)
    return np.load(folder / IMAGES, mmap_mode="r+")


def fill_chunks(array, paths, entries, ids, folder: Path, size: int, workers: int, progress: bool) -> list[str]:
    """Decode every chunk not yet marked done into `array`; the image problem of each item ("" when none)."""
    from tqdm.auto import tqdm

    problems = [""] * len(paths)
    starts = range(0, len(paths), CHUNK_SIZE)
    bar = tqdm(total=len(paths), desc=f"preparing {folder.name}", unit="image", disable=not progress)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for number, start in enumerate(starts):
            end = min(start + CHUNK_SIZE, len(paths))
            marker_path = folder / "chunks" / f"{number:05d}.json"
            marker = chunk_marker(ids[start:end], entries[start:end])
            done = json.loads(marker_path.read_text()) if marker_path.is_file() else {}
            if done.get("marker") == marker:
                problems[start:end] = done["problems"]
            else:
                for offset, (pixels, problem) in enumerate(pool.map(decode_one, paths[start:end], [size] * (end - start))):
                    array[start + offset] = pixels
                    problems[start + offset] = problem
                array.flush()
                atomic_write_json(marker_path, {"marker": marker, "problems": problems[start:end]})
            bar.update(end - start)
    bar.close()
    return problems


def write_index(folder: Path, records, label_names, text, root: Path, problems) -> None:
    """index.csv.gz: id, source path, the records' scalar fields, report text, one column per label, problem."""
    scalar = [k for k in records[0] if k not in ("id", "path", "labels", "report_path")
              and all(isinstance(r.get(k), str | int | float | type(None)) for r in records[:100])]
    frame = pd.DataFrame({"id": [str(r["id"]) for r in records], "path": [relative(r["path"], root) for r in records],
                          **{k: [r.get(k) for r in records] for k in scalar}})
    if text is not None:
        frame["text"] = [_text_or_blank(text, r) for r in records]
    labels = np.stack([np.asarray(r["labels"], dtype=np.float32) for r in records]) if label_names else None
    for column, name in enumerate(label_names):
        frame[name] = labels[:, column]
    frame["problem"] = problems
    with atomic_path(folder / INDEX) as tmp:
        frame.to_csv(tmp, index=False, compression="gzip")


def _text_or_blank(text, record: dict) -> str:
    """The report text the loader gives, or "" when it cannot be read (the training screen lists it)."""
    try:
        return text(dict(record))
    except DataFormatError:
        return ""


def code_version() -> dict:
    """medvl's version and the git commit of the working tree (None outside a git checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        medvl = version("medvl")
    except PackageNotFoundError:
        medvl = "unknown"
    try:
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"medvl": medvl, "git_commit": commit}


def prepare_dataset(name: str, root=None, size: int = 256, views="all", workers: int = 4, force: bool = False,
                    bad_items: str = "error", progress: bool = True) -> Path:
    """Write (or finish) the prepared copy of `name` at `size` px; its folder. See the module docstring."""
    from ..config import dataset_dir

    if name not in PREPARABLE:
        raise UsageError(f"medvl prepare: {name!r} has no prepared copy; choose one of {', '.join(PREPARABLE)}")
    if bad_items not in POLICIES or int(size) < 8:
        raise ParameterError(f"bad_items={bad_items!r}, size={size!r}: use one of {POLICIES} and a size >= 8 px")
    root = Path(root).expanduser() if root is not None else dataset_dir(name)
    records, label_names, text = source_records(name, root, views)
    if not records:
        raise DataFormatError(f"{name} under {root}: no items (views={views!r}); check --root and --views")
    folder, paths = prepared_dir(name, size), [r["path"] for r in records]
    entries = stat_entries(root, [relative(p, root) for p in paths])
    ids = [str(r["id"]) for r in records]
    plan = {"dataset": name, "size": int(size), "format": PREPARED_FORMAT, "n": len(records), "views": str(views),
            "root": str(root.resolve()), "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}
    array = open_array(folder, plan, force)
    problems = fill_chunks(array, paths, entries, ids, folder, int(size), workers, progress)
    del array
    write_index(folder, records, label_names, text, root, problems)
    _apply_policy(name, records, problems, bad_items)
    atomic_write_json(folder / MANIFEST, {**{k: plan[k] for k in ("dataset", "size", "format", "views", "root")},
                                          "n_images": len(records), "n_bad": sum(map(bool, problems)),
                                          "crop": "centre", "source": digest_entries(entries),
                                          "created": datetime.now(UTC).isoformat(timespec="seconds"),
                                          "code": code_version()})
    return folder


def _apply_policy(name: str, records, problems, bad_items: str) -> None:
    """`error`: fail listing the unreadable images (finished chunks are kept); `skip`: say how many the copy marks."""
    bad = [(records[i]["path"], p) for i, p in enumerate(problems) if p]
    if not bad:
        return
    if bad_items == "error":
        shown = "\n".join(f"  {problem}: {path}" for path, problem in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise DataFormatError(f"{name}: {len(bad)} unreadable images while preparing:\n{shown}{more}\nfix or remove "
                              "them and rerun (finished chunks are kept), or pass --bad-items skip to mark them in "
                              "the copy (a training drops them with bad_items='skip')")
    warnings.warn(f"{name}: {len(bad)} of {len(records)} images are unreadable; the copy marks them and a training "
                  "drops them with bad_items='skip'", stacklevel=2)
