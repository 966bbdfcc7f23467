"""`open-i`: Indiana University chest X-rays (NLM XML reports or the Kaggle CSV form) + PNG images."""

from __future__ import annotations

import functools
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from ..assets import openi_reports_archive
from ..errors import DataFormatError, MedvlError
from .base import RecordDataset
from .cxr_common import (
    FRONTAL_VIEWS,
    find_file,
    hash_split,
    image_loader,
    normalize_views,
    read_table,
)
from .labels import CHEXPERT_LABELS
from .openi_mesh import mesh_labels
from .registry import register
from .splits import canonical_split

SECTIONS = ("findings", "impression", "indication", "comparison")


# ---------------------------------------------------------------- XML reports

def _text(node) -> str:
    """Whitespace-normalised text of an element (or "" when absent/empty)."""
    return " ".join("".join(node.itertext()).split()) if node is not None else ""


def parse_openi_xml(data: bytes, name: str = "<xml>") -> dict:
    """One NLM Open-I XML report -> dict(uid, findings, impression, indication, comparison, mesh_*, image_ids)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DataFormatError(f"cannot parse Open-I XML {name}: {exc}; re-extract the report archive") from exc
    uid_node = root.find("uId")
    if uid_node is None or not uid_node.get("id"):
        raise DataFormatError(f"Open-I XML {name} has no <uId id=...>; is this an NLMCXR report file?")
    record = {"uid": uid_node.get("id")}
    abstracts = {(n.get("Label") or "").lower(): _text(n) for n in root.iter("AbstractText")}
    record.update({key: abstracts.get(key, "") for key in SECTIONS})
    record["mesh_major"] = [_text(n) for n in root.findall("./MeSH/major") if _text(n)]
    record["mesh_automatic"] = [_text(n) for n in root.findall("./MeSH/automatic") if _text(n)]
    record["image_ids"] = [n.get("id") for n in root.iter("parentImage") if n.get("id")]
    return record


def _iter_xml(source: Path):
    """Yield (name, bytes) of every .xml report in a folder or a .tgz/.tar archive."""
    if source.is_dir():
        for path in sorted(source.rglob("*.xml")):
            yield str(path), path.read_bytes()
        return
    try:
        with tarfile.open(source) as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if member.isfile() and member.name.endswith(".xml"):
                    yield f"{source}:{member.name}", tar.extractfile(member).read()
    except (tarfile.TarError, OSError) as exc:
        raise DataFormatError(f"cannot read Open-I archive {source}: {exc}; pass a folder of XML files or a .tgz") from exc


def read_openi_xml(source) -> list[dict]:
    """Read every Open-I XML report from a folder or a .tgz, sorted by uid number."""
    source = Path(source).expanduser()
    if not source.exists():
        raise DataFormatError(f"Open-I reports not found: {source}; pass a folder of NLMCXR XML files or NLMCXR_reports.tgz")
    records = [parse_openi_xml(data, name) for name, data in _iter_xml(source)]
    if not records:
        raise DataFormatError(f"no .xml reports in {source}; expected NLMCXR XML files (ecgen-radiology/*.xml)")
    return sorted(records, key=_uid_key)


def _uid_key(record: dict):
    """Sort key: numeric part of "CXR123" first, then the uid itself."""
    digits = "".join(ch for ch in record["uid"] if ch.isdigit())
    return (int(digits) if digits else 0, record["uid"])


@functools.lru_cache(maxsize=1)
def _bundled() -> tuple[dict, ...]:
    """Parsed bundled archive, cached once per process."""
    return tuple(read_openi_xml(openi_reports_archive()))


def bundled_openi_reports() -> list[dict]:
    """The 3,955 Open-I reports shipped inside torchxrayvision (CC BY-NC-ND 4.0), read in place."""
    return [{k: (list(v) if isinstance(v, list) else v) for k, v in r.items()} for r in _bundled()]


# ---------------------------------------------------------------- Kaggle CSV form

def _split_terms(value) -> list[str]:
    """"A/b;C" -> ["A/b", "C"] (blank -> [])."""
    if not isinstance(value, str):
        return []
    return [t.strip() for t in value.split(";") if t.strip()]


def read_openi_csv(root: Path) -> list[dict]:
    """indiana_reports.csv + indiana_projections.csv -> report dicts with the keys of `read_openi_xml`."""
    reports_path = find_file(root, ["indiana_reports.csv"], "Open-I reports CSV")
    proj_path = find_file(root, ["indiana_projections.csv"], "Open-I projections CSV")
    reports = read_table(reports_path, ["uid", "MeSH", "findings", "impression"], "Open-I reports CSV")
    proj = read_table(proj_path, ["uid", "filename", "projection"], "Open-I projections CSV")
    by_uid = {uid: group for uid, group in proj.groupby(proj["uid"].astype(str))}
    records = []
    for row in reports.to_dict("records"):
        group = by_uid.get(str(row["uid"]))
        files = [] if group is None else list(group["filename"].astype(str))
        record = {"uid": f"CXR{row['uid']}", "mesh_major": _split_terms(row.get("MeSH")), "mesh_automatic": []}
        record.update({k: " ".join(str(row[k]).split()) if isinstance(row.get(k), str) else "" for k in SECTIONS})
        record["image_ids"] = [f"CXR{f.split('.')[0]}" for f in files]
        record["image_files"] = files
        record["image_views"] = [] if group is None else list(group["projection"].fillna("").astype(str).str.upper())
        records.append(record)
    return records


# ---------------------------------------------------------------- views, images

def _view_code(value) -> str:
    """Normalise a view value: FRONTAL/PA/AP/LATERAL/LL/... upper-case, L -> LATERAL, blank -> ""."""
    code = str(value).strip().upper() if isinstance(value, str) else ""
    return {"L": "LATERAL", "LARGE LATERAL": "LATERAL"}.get(code, code)


@functools.lru_cache(maxsize=1)
def bundled_image_views() -> dict[str, str]:
    """Image id -> view from torchxrayvision's NLMCXR tables: its t-SNE-derived PA/L view, else the DICOM header."""
    folder = openi_reports_archive().parent
    views: dict[str, str] = {}  # the header's View Position is noisy (180 "PA" images look lateral), so t-SNE wins
    for name, column in (("nlmcxr_dicom_metadata.csv.gz", "View Position"), ("nlmcxr_tsne_pa.csv.gz", "tsne-view")):
        if (folder / name).is_file():
            table = pd.read_csv(folder / name, usecols=["imageid", column], low_memory=False).dropna()
            views.update({k: _view_code(v) for k, v in zip(table["imageid"], table[column], strict=True)})
    return views


def _image_dir(root: Path, candidates: list[str], sample: str) -> Path:
    """The first candidate folder under `root` holding `sample`, else a DataFormatError listing them."""
    for name in candidates:
        if (root / name / sample).is_file():
            return root / name
    tried = ", ".join(str(root / n / sample) for n in candidates)
    raise DataFormatError(f"Open-I image not found: tried {tried}; put the PNGs there or pass images=False")


def _reports_source(root: Path, reports) -> Path | str:
    """Where the reports are: "bundled", an explicit path, or the first of the layouts under `root`."""
    if reports is not None:
        return reports if reports == "bundled" else Path(reports).expanduser()
    for name in ("indiana_reports.csv", "indiana_reports.csv.gz", "ecgen-radiology", "NLMCXR_reports.tgz", "reports"):
        if (root / name).exists():
            return root / name
    raise DataFormatError(f"no Open-I reports under {root} (looked for indiana_reports.csv, ecgen-radiology/, "
                          f"NLMCXR_reports.tgz); set root=, reports=PATH, or reports=\"bundled\" for the bundled XML")


def load_openi_reports(root: Path, reports=None) -> list[dict]:
    """Report dicts from the layout under `root` (CSV or XML form) or from `reports` (path or "bundled")."""
    source = _reports_source(root, reports)
    if source == "bundled":
        return bundled_openi_reports()
    if source.name.startswith("indiana_reports"):
        return read_openi_csv(source.parent)
    return read_openi_xml(source)


def _images(record: dict) -> list[tuple[str, str, str]]:
    """(image_id, file name, view) for each image of a report."""
    files = record.get("image_files") or [f"{i}.png" for i in record["image_ids"]]
    views = record.get("image_views") or [bundled_image_views().get(i, "") for i in record["image_ids"]]
    return list(zip(record["image_ids"], files, [_view_code(v) for v in views], strict=True))


# ---------------------------------------------------------------- the dataset

def report_text(record: dict, sections=("findings", "impression")) -> str:
    """An Open-I report's text: its non-empty `sections`, joined by a space."""
    return " ".join(record[s] for s in sections if record.get(s))


def _item(record: dict, labels: np.ndarray, sections) -> dict:
    """The text/label part of an Open-I item."""
    text = report_text(record, sections)
    keys = ("findings", "impression", "indication", "comparison", "mesh_major", "image_ids")
    return {"id": record["uid"], "uid": record["uid"], "text": text, "labels": labels, **{k: record[k] for k in keys}}


def _image_items(base: dict, record: dict, keep_views, unit: str) -> list[dict]:
    """Items with an image: the report's first image in `keep_views` (unit="report") or each of them."""
    matching = [im for im in _images(record) if keep_views is None or im[2] in keep_views]
    chosen = matching[:1] if unit == "report" else matching
    return [{**base, "id": image_id if unit == "image" else record["uid"], "image_id": image_id, "view": view,
             "filename": filename} for image_id, filename, view in chosen]


@register("open-i", "Open-I / IU X-ray: NLM XML (or Kaggle CSV) reports with MeSH tags + PNG images")
def open_i(root: Path, split: str = "train", views=FRONTAL_VIEWS, images: bool = True, unit: str = "report",
           reports=None, sections=("findings", "impression"), mode: str = "L", transform=None):
    """Items per report (image = its first image in `views`) or per image (`unit="image"`); text = Findings+Impression."""
    split = canonical_split(split, ("train", "val", "test", "all"), "open-i")
    if unit not in ("report", "image"):
        raise MedvlError(f"open-i: unit={unit!r} is not known; use 'report' or 'image'")
    records = load_openi_reports(root, reports)
    uids = pd.Series([r["uid"] for r in records])
    records = [r for r, keep in zip(records, hash_split(uids, split), strict=True) if keep]
    labels = mesh_labels([r["mesh_major"] for r in records])  # 1 present / 0 absent / NaN row if unindexed
    keep_views = normalize_views(views)
    items = []
    for record, row in zip(records, labels, strict=True):
        base = _item(record, row, sections)
        items += _image_items(base, record, keep_views, unit) if images else [base]
    if images and items:
        folder = _image_dir(root, ["images/images_normalized", "images", "NLMCXR_png", "."], items[0]["filename"])
        for item in items:
            item["path"] = str(folder / item.pop("filename"))
    return RecordDataset(items, CHEXPERT_LABELS, image_loader(images, mode), transform, "open-i")
