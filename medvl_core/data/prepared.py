"""Prepared copies of chest X-ray image datasets: read side (`medvl prepare` writes them, see `data.prepare`).

A prepared copy `$MEDVL_DATA/prepared/<dataset>-<size>/` holds every image once decoded, as uint8 grayscale with
the shorter side resized to `size` and the longer one centre-cropped (what Resize + CenterCrop gives the model),
in one (N, size, size) `images.npy` read memory-mapped, an `index.csv.gz` (ids, source paths, views, splits,
report text, labels, image problems) and `manifest.json`, written last. `open_dataset` uses a copy whose
manifest matches the dataset root's files and refuses a stale or foreign one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..config import data_root
from ..errors import DataFormatError, MedvlError, UsageError

PREPARED_FORMAT = 1  # bump when the array layout, resize or crop changes: older copies are then refused
PREPARABLE = ("mimic-cxr", "chexpert", "padchest", "vindr-cxr")  # one image file per item, read by ImageTextLoad
MANIFEST, IMAGES, INDEX = "manifest.json", "images.npy", "index.csv.gz"
ESTIMATE_MIN_ITEMS = 2000  # below this a raw epoch is cheap enough to say nothing
_opened: dict = {}  # (folder, manifest mtime) -> PreparedImages whose source files were checked in this process
_said: set = set()  # one line per copy or estimate per process


def prepared_dir(name: str, size: int) -> Path:
    """$MEDVL_DATA/prepared/<name>-<size>."""
    return data_root() / "prepared" / f"{name}-{int(size)}"


def force_hint(name: str, size: int, root: Path | None = None) -> str:
    """The command that rebuilds a copy."""
    where = f" --root {root}" if root is not None else ""
    return f"`medvl prepare {name}{where} --size {size} --force`"


def stat_entries(root: Path, relpaths, workers: int = 16) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of each file under `root`; (path, -1, -1) for a missing one."""
    def one(rel: str) -> tuple[str, int, int]:
        try:
            st = os.stat(root / rel)
        except OSError:
            return rel, -1, -1
        return rel, st.st_size, st.st_mtime_ns

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, relpaths, chunksize=256))


def digest_entries(entries) -> dict:
    """Source digest: file count, total bytes, sha256 over the sorted (path, size, mtime_ns) rows."""
    rows = sorted(entries)
    sha = hashlib.sha256("\n".join(f"{p}\t{s}\t{m}" for p, s, m in rows).encode()).hexdigest()
    present = [s for _, s, _ in rows if s >= 0]
    return {"files": len(present), "bytes": int(sum(present)), "mtimes_sha256": sha}


class PreparedImages:
    """Rows of a prepared copy's memory-mapped array by item id; pickles without the array (each DataLoader worker
    maps the file itself, sharing the page cache)."""

    def __init__(self, folder: Path, ids, problems, size: int):
        self.folder, self.size = Path(folder), int(size)
        self.rows = {str(i): n for n, i in enumerate(ids)}
        self.problems = {str(i): p for i, p in zip(ids, problems, strict=True) if p}
        self._array = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.folder / IMAGES, mmap_mode="r")
        return self._array

    def __len__(self) -> int:
        return len(self.rows)

    def problem(self, item_id) -> tuple[str, str] | None:
        """(problem, detail) recorded for the item's image when the copy was written, None when it decoded."""
        found = self.problems.get(str(item_id))
        return (found.split(": ", 1) + [""])[:2] if found else None

    def image(self, item_id, mode: str = "L"):
        """The item's (size, size) image as a PIL image in `mode`."""
        from PIL import Image

        row = self.rows.get(str(item_id))
        if row is None:
            raise DataFormatError(f"{self.folder}: item {item_id!r} is not in the prepared copy; rebuild it with --force")
        image = Image.fromarray(np.array(self.array[row]))
        return image if mode == "L" else image.convert(mode)


def candidate_dirs(name: str, size: int | None = None) -> list[Path]:
    """Complete copies (with a manifest) of `name`, largest size first; only `size` when given."""
    parent = data_root() / "prepared"
    if size is not None:
        folder = prepared_dir(name, size)
        return [folder] if (folder / MANIFEST).is_file() else []
    found = [p for p in parent.glob(f"{name}-*") if re.fullmatch(rf"{re.escape(name)}-\d+", p.name)
             and (p / MANIFEST).is_file()] if parent.is_dir() else []
    return sorted(found, key=lambda p: -int(p.name.rsplit("-", 1)[1]))


def read_manifest(folder: Path) -> dict:
    """The manifest of a prepared copy (DataFormatError naming --force when unreadable)."""
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"cannot read {folder / MANIFEST}: {exc}; rebuild the copy with --force") from exc


def check_manifest(folder: Path, manifest: dict, name: str) -> None:
    """Refuse a copy written for another dataset, size or format version (a foreign copy)."""
    size = int(folder.name.rsplit("-", 1)[1])
    wanted = {"dataset": name, "size": size, "format": PREPARED_FORMAT}
    for key, value in wanted.items():
        if manifest.get(key) != value:
            raise MedvlError(f"{folder} is not a prepared copy of {name} at {size} px for this code ({key} "
                             f"{manifest.get(key)!r}, expected {value!r}); rebuild it: {force_hint(name, size)}")


def check_source(folder: Path, manifest: dict, name: str, relpaths) -> None:
    """Refuse a stale copy: the source files' digest differs from the manifest's."""
    now, then = digest_entries(stat_entries(Path(manifest["root"]), relpaths)), manifest["source"]
    if now != then:
        raise MedvlError(f"{folder} is stale: the source images under {manifest['root']} changed since it was "
                         f"written ({then['files']} files / {then['bytes']} bytes then, {now['files']} / "
                         f"{now['bytes']} now, or newer mtimes); rebuild it: "
                         f"{force_hint(name, manifest['size'], Path(manifest['root']))}")


def open_copy(folder: Path, name: str, root: Path) -> PreparedImages | None:
    """The checked copy in `folder` when it was written from `root` (None for another root); the index is read and
    the source files checked once per process and manifest."""
    import pandas as pd

    manifest = read_manifest(folder)
    check_manifest(folder, manifest, name)
    if Path(manifest.get("root", "")).resolve() != root.resolve():
        return None
    key = (str(folder), (folder / MANIFEST).stat().st_mtime_ns)
    if key not in _opened:
        index = pd.read_csv(folder / INDEX, usecols=["id", "path", "problem"], dtype=str, keep_default_na=False)
        check_source(folder, manifest, name, index["path"].tolist())
        _opened[key] = PreparedImages(folder, index["id"].tolist(), index["problem"].tolist(), manifest["size"])
    return _opened[key]


def attach(dataset, name: str, root: Path, prepared="auto") -> None:
    """Make `dataset` read its images from a matching prepared copy (`prepared`: "auto", a size, or "off"/False).

    Without a copy, a paper-scale dataset gets one line with the measured decode time per epoch."""
    load = getattr(dataset, "loader", None)
    if prepared in (False, None, "off") or name not in PREPARABLE or not getattr(load, "images", False):
        return
    size = None if prepared == "auto" else _size_option(prepared)
    for folder in candidate_dirs(name, size):
        copy = open_copy(folder, name, root)
        if copy is not None:
            _use(dataset, copy, name)
            return
    if size is not None:
        raise UsageError(f"prepared={prepared!r}: no prepared copy of {name} from {root} at {size} px; write one "
                         f"with `medvl prepare {name} --root {root} --size {size}`")
    if len(dataset) >= ESTIMATE_MIN_ITEMS:
        _say(f"estimate {name} {root}", decode_estimate(dataset, name))


def _size_option(prepared) -> int:
    """The size a `prepared=` option names."""
    try:
        return int(prepared)
    except (TypeError, ValueError):
        raise UsageError(f"prepared={prepared!r}; use 'auto', 'off' or a size in pixels such as 256") from None


def _use(dataset, copy: PreparedImages, name: str) -> None:
    """Point the dataset's image access at the copy, after checking it holds every item."""
    missing = [r["id"] for r in dataset.records if str(r["id"]) not in copy.rows]
    if missing:
        raise MedvlError(f"{copy.folder} lacks {len(missing)} of the {len(dataset)} items asked for (e.g. "
                         f"{missing[0]!r}: other views or splits); rebuild it with the views you train on: "
                         f"`medvl prepare {name} --views all --size {copy.size} --force`")
    dataset.loader.prepared = copy
    dataset.prepared = copy
    _say(str(copy.folder), f"{name}: reading the prepared copy {copy.folder} ({copy.size} px, {len(copy)} images)")


def _say(key: str, line: str) -> None:
    """Print `line` once per process."""
    if key not in _said:
        _said.add(key)
        print(line, flush=True)


def decode_estimate(dataset, name: str, sample: int = 3) -> str:
    """One line: decoding every image of `dataset` once, timed on `sample` of them, and the prepare command."""
    from .images import load_image

    records = dataset.records
    picks = [records[i]["path"] for i in np.linspace(0, len(records) - 1, min(sample, len(records))).astype(int)]
    start = time.process_time()
    for path in picks:
        try:
            load_image(path, dataset.loader.mode)
        except MedvlError:
            continue
    per_image = (time.process_time() - start) / max(1, len(picks))
    hours = per_image * len(records) / 3600
    return (f"{name}: no prepared copy; decoding its {len(records)} full-size images takes about {hours:.1f} CPU "
            f"hours per epoch ({per_image * 1000:.0f} ms each, measured on {len(picks)}); `medvl prepare {name}` "
            f"decodes them once into {data_root() / 'prepared'}")
