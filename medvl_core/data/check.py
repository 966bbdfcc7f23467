"""Bad items found before training: missing or unreadable images, missing, empty or section-less reports.

An item's images are its `path` and, for multi-image cases (DermaVQA), every one of its `image_paths`.

`check_dataset` opens every image and report of a dataset once (threads, progress bar; a dataset read from a
prepared copy takes its images' problems from the copy, found when it was written) and returns one row
per problem; `screen` applies a training run's `bad_items` policy: "error" (default) fails before the first
step listing every bad item, "skip" drops them and says how many. A report without Findings/Impression headers is
listed but not bad (its last paragraph is the text, as the loaders read it). `medvl check-data` prints the table.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from ..errors import DataFormatError, ParameterError
from ..text.sections import findings_impression, has_findings_or_impression
from .base import RecordDataset
from .images import load_image

POLICIES = ("error", "skip")
COLUMNS = ["index", "id", "problem", "file", "detail"]
SECTIONLESS = "no findings/impression section"  # listed by check-data; training uses the last paragraph


def _first_line(exc: Exception) -> str:
    """The first line of an exception message (its type when empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _image_problem(path: str) -> tuple[str, str] | None:
    """("missing file" | "unreadable image", detail) for an image path, None when it decodes."""
    if not Path(path).is_file():
        return "missing file", "no such file"
    try:
        load_image(path)
    except Exception as exc:  # PIL, pydicom and our DataFormatError all signal a broken file
        return "unreadable image", _first_line(exc.__cause__ or exc)
    return None


def _report_problem(record: dict) -> tuple[str, str, str] | None:
    """(problem, file, detail) for a record's report (a report file, or its stored text), None when usable."""
    path = record.get("report_path")
    if path is not None:
        if not Path(path).is_file():
            return "missing file", path, "report file not found"
        raw = Path(path).read_text(encoding="utf-8", errors="replace")
        if not raw.strip():
            return "empty report", path, "the file is empty"
        if not findings_impression(raw).strip():
            return "empty report", path, "no text in Findings/Impression or in the last paragraph"
        if not has_findings_or_impression(raw):
            return SECTIONLESS, path, "no Findings/Impression header: the last paragraph stands in"
        return None
    if "text" in record and not str(record["text"]).strip():
        return "empty report", "", "the item's text is empty"
    return None


def check_record(index: int, record: dict, prepared=None) -> list[dict]:
    """Every problem of one record, as table rows; its `path` image as the prepared copy `prepared` recorded it
    (when given) instead of decoding the source again."""
    rows = []
    for path in ([record["path"]] if "path" in record else []) + list(record.get("image_paths") or []):
        from_copy = prepared is not None and path == record.get("path")
        found = prepared.problem(record["id"]) if from_copy else _image_problem(path)
        if found:
            rows.append({"index": index, "id": record.get("id"), "problem": found[0], "file": path,
                         "detail": found[1]})
    found = _report_problem(record)
    if found:
        rows.append({"index": index, "id": record.get("id"), "problem": found[0], "file": found[1], "detail": found[2]})
    return rows


def check_dataset(dataset: RecordDataset, workers: int = 4, progress: bool = True) -> pd.DataFrame:
    """Open every image and report of `dataset` once, in `workers` threads; one row per problem (empty: all good)."""
    from tqdm.auto import tqdm

    records = dataset.records
    prepared = [getattr(dataset, "prepared", None)] * len(records)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(tqdm(pool.map(check_record, range(len(records)), records, prepared), total=len(records),
                            desc=f"checking {dataset.name or 'dataset'}", unit="item", disable=not progress))
    rows = [row for found in results for row in found]
    return pd.DataFrame(rows, columns=COLUMNS)


def bad_items_message(bad: pd.DataFrame, name: str, shown: int = 20) -> str:
    """One message listing (the first `shown`) bad items of a dataset, with the two ways out."""
    lines = [f"  {r.problem}: {r.file or r.id} ({r.detail})" for r in bad.head(shown).itertuples()]
    more = f"\n  ... and {len(bad) - shown} more" if len(bad) > shown else ""
    return (f"{name}: {bad['index'].nunique()} bad items found before training:\n" + "\n".join(lines) + more +
            f"\nfix or remove them (medvl check-data {name} lists them all), or set bad_items='skip' to drop them")


def screen(dataset: RecordDataset, policy: str = "error", workers: int = 4,
           progress: bool = False) -> tuple[RecordDataset, list[int]]:
    """Apply a `bad_items` policy before training: (the dataset, or it without its bad items; kept indices)."""
    if policy not in POLICIES:
        raise ParameterError(f"bad_items={policy!r} is not a policy; use one of {POLICIES}")
    found = check_dataset(dataset, workers, progress)
    bad = found[found["problem"] != SECTIONLESS]
    everything = list(range(len(dataset.records)))
    if bad.empty:
        return dataset, everything
    if policy == "error":
        raise DataFormatError(bad_items_message(bad, dataset.name or "dataset"))
    drop = set(bad["index"])
    kept = [i for i in everything if i not in drop]
    warnings.warn(f"{dataset.name}: skipped {len(drop)} bad items of {len(dataset.records)} (bad_items='skip')",
                  stacklevel=2)
    return dataset.subset(kept), kept
