"""The paper beside this run: each published table in the paper's layout, cells "paper | ours".

`papers/<id>/beside.yaml` says which recorded metric (metrics.json key) stands beside which published
cell, the factor from our metric's unit to the table's (`scale: 100` for a fraction beside a percent),
and why the other cells show "—" (a recorded NaN, e.g. an AUROC of a label without positives, shows "—"
too). Optional `extra_rows` add this run's own rows (e.g. our encoders beside the paper's) in the paper's
columns; `descriptive` names columns shown as printed (e.g. "# of label").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import yaml

from .errors import MedvlError
from .papers import Table, get_paper, published

DASH = "—"


@dataclass
class Beside:
    """One paper table with this run's numbers beside the paper's."""

    table: Table
    frame: pd.DataFrame
    caption: str
    n_published: int
    n_filled: int
    ours: dict  # (row, column) -> our value in the table's unit, in beside.yaml's order

    @property
    def title(self) -> str:
        return f"{self.table.source}: {self.table.caption} ({self.table.unit})"


def beside_spec(paper_id: str) -> dict:
    """papers/<id>/beside.yaml ({} when absent): per table `cells`, `scale`, `missing`, `extra_rows`."""
    path = get_paper(paper_id).folder / "beside.yaml"
    if not path.is_file():
        return {}
    try:
        return (yaml.safe_load(path.read_text()) or {}).get("tables") or {}
    except yaml.YAMLError as exc:
        raise MedvlError(f"{path} is not valid YAML: {exc}; fix the file") from exc


def paper_tables(paper_id: str, metrics: dict, produced_by: str) -> list[Beside]:
    """Every published table of the paper, paper beside ours, in the paper's order."""
    pub, spec = published(paper_id), beside_spec(paper_id)
    unknown = set(spec) - set(pub.tables)
    if unknown:
        raise MedvlError(f"papers/{paper_id}/beside.yaml names tables not in published.yaml: {sorted(unknown)}")
    return [beside(table, spec.get(tid) or {}, metrics, produced_by) for tid, table in pub.tables.items()]


def beside(table: Table, spec: dict, metrics: dict, produced_by: str) -> Beside:
    """One table: rows and columns as printed, each numeric cell 'paper | ours' (ours '—' where not measured)."""
    scale = float(spec.get("scale", 1))
    ours = {}
    for entry in spec.get("cells") or []:
        table.cell(entry["row"], entry["column"])  # a KeyError names the table when the mapping is stale
        value = metrics.get(entry["metric"])
        if _number(value):
            ours[(entry["row"], entry["column"])] = value * float(entry.get("scale", scale))
    descriptive = set(spec.get("descriptive") or [])  # columns that describe a row (e.g. "# of label"): as printed
    numeric = [c for c in table.columns if table.unit_of(c) != "text" and c not in descriptive]
    mapped = bool(spec.get("cells") or spec.get("extra_rows"))  # else: the paper's cells alone, reason below
    body = []
    for row in table.rows:
        line = {"group": row.group or "", "row": row.label}
        for column in table.columns:
            cell = row.cells.get(column)
            shown = cell.show() if cell else DASH
            if mapped and column in numeric and (cell is None or cell.value is not None):
                mine = ours.get((row.label, column))
                shown = f"{shown} | {_fmt(mine) if mine is not None else DASH}"
            line[column] = shown
        body.append(line)
    for extra in spec.get("extra_rows") or []:
        line = {"group": "this run", "row": extra["label"].format_map(_Blank(metrics))}
        for column in table.columns:
            value = metrics.get(extra["cells"].get(column, ""), None)
            line[column] = f"{DASH} | {_fmt(value * scale)}" if _number(value) else DASH
        body.append(line)
    frame = pd.DataFrame(body).set_index(["group", "row"]) if any(r["group"] for r in body) else \
        pd.DataFrame(body).drop(columns="group").set_index("row")
    filled = len(ours) + sum(1 for extra in spec.get("extra_rows") or [] for m in extra["cells"].values()
                             if _number(metrics.get(m)))
    reason = spec.get("missing") or ("this run measures none of this table's quantities" if not filled else "")
    if mapped:
        caption = f"cells: paper | ours. Ours: {produced_by}." + (f" {DASH}: {reason}" if reason else "")
    else:
        caption = f"the paper's values only; ours {DASH}: {reason}"
    return Beside(table, frame, caption, table.n_values, filled, ours)


def _number(value) -> bool:
    """A finite int/float (not a bool): a measured value to show."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class _Blank(dict):
    """str.format_map mapping that leaves unknown {names} as '?'."""

    def __missing__(self, key):
        return "?"


def produced_by(data: str, model: str) -> str:
    """The caption naming the data and model behind our numbers ('synthetic' stated for synth-* data)."""
    kind = "synthetic: not clinical performance" if data.startswith("synth") else "real data"
    return f"{data} ({kind}); {model}"


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.4g}"


def coverage(tables: list[Beside]) -> pd.DataFrame:
    """Per table: published numeric cells and how many this run filled."""
    return pd.DataFrame([{"table": b.table.source, "published cells": b.n_published, "filled by this run": b.n_filled}
                         for b in tables])


def show_paper_tables(paper_id: str, metrics: dict, produced_by: str) -> list[Beside]:
    """Display every paper table beside ours in a notebook (title, table, caption); returns them."""
    tables = paper_tables(paper_id, metrics, produced_by)
    for item in tables:
        _display(item)
    return tables


def show_paper_table(paper_id: str, table_id: str, metrics: dict, produced_by: str) -> Beside:
    """Display one paper table beside ours (the notebook section that reproduces it); returns it."""
    item = beside(published(paper_id).tables[table_id], beside_spec(paper_id).get(table_id) or {}, metrics, produced_by)
    _display(item)
    return item


def _display(item: Beside) -> None:
    """Title, table and caption in a notebook."""
    from IPython.display import Markdown, display

    display(Markdown(f"**{item.title}**"), item.frame, Markdown(f"<small>{item.caption}</small>"))


def render_text(tables: list[Beside], markdown: bool = False) -> str:
    """The same tables for a terminal (`medvl compare`) or as Markdown (`--format md`)."""
    parts = []
    for item in tables:
        frame = item.frame.reset_index()
        if markdown:
            parts.append(f"### {item.title}\n\n{frame.to_markdown(index=False)}\n\n{item.caption}\n")
        else:
            parts.append(f"{item.title}\n{frame.to_string(index=False)}\n{item.caption}\n")
    return "\n".join(parts)


def headline_pairs(tables: list[Beside]) -> pd.DataFrame:
    """(table, quantity, paper, ours) for the first filled cell of each table, in the paper's units (gap figure)."""
    rows = []
    for item in tables:
        for (row, column), ours in item.ours.items():
            paper = item.table.cell(row, column)
            if paper is not None and paper.value is not None:
                rows.append({"table": item.table.source, "quantity": f"{row}, {column}", "paper": float(paper.value),
                             "ours": float(ours), "unit": item.table.unit_of(column)})
                break
    return pd.DataFrame(rows, columns=["table", "quantity", "paper", "ours", "unit"])
