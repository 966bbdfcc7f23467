"""The five papers: ids, titles, headline metrics, and their files in the repository."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import notebooks_dir, papers_dir
from .errors import MedvlError, UsageError


@dataclass(frozen=True)
class Paper:
    """One executable paper: id (= notebook stem), short title and the metric `medvl` summarises."""

    id: str
    title: str
    headline: str

    @property
    def notebook(self) -> Path:
        return notebooks_dir() / f"{self.id}.ipynb"

    @property
    def folder(self) -> Path:
        return papers_dir() / self.id

    def params_file(self, name: str) -> Path:
        """papers/<id>/params/<name>.yaml (name may include .yaml)."""
        return self.folder / "params" / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")


PAPERS: dict[str, Paper] = {
    p.id: p
    for p in (
        Paper("m3g_answer_generation", "WangLab at MEDIQA-M3G 2024: dermatology answer generation", "knn_top1_accuracy"),
        Paper("perturbed_report_discrimination", "Zhong, Sun, Batmanghelich: perturbed report discrimination",
              "adjective_antonym_coverage"),
        Paper("meems", "Cooper & Vainio: MEEMS multimodal embeddings", "captioner_vocab_size"),
        Paper("loss_relaxation", "Jang et al. 2024: loss relaxation for zero-shot CXR classification",
              "zero_shot_macro_auroc_both"),
        Paper("vlm_feature_probing", "Takeda et al.: VLM feature probing", "mean_cv_accuracy_encoder"),
    )
}


def get_paper(paper_id: str) -> Paper:
    """The paper with this id, or a one-line error listing the valid ids."""
    if paper_id in PAPERS:
        return PAPERS[paper_id]
    close = difflib.get_close_matches(paper_id, PAPERS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(f"unknown paper {paper_id!r}{hint}; choose one of: {', '.join(PAPERS)}")


UNITS = ("percent", "fraction", "score", "count", "ratio", "seconds", "text", "other")
CELL_KEYS = {"value", "std", "ci", "marker", "note", "text"}


@dataclass(frozen=True)
class Cell:
    """One published cell: a number as printed (`value`, optional `std`, `ci`, `marker`) or a `text`."""

    value: float | None = None
    std: float | None = None
    ci: tuple[float, float] | None = None
    marker: str | None = None
    note: str | None = None
    text: str | None = None

    def show(self) -> str:
        """As a reader would print it: '0.832 ± 0.004', '0.81 [0.78, 0.84]', or the text."""
        if self.text is not None:
            return self.text
        shown = f"{self.value:g}"
        if self.std is not None:
            shown += f" ± {self.std:g}"
        if self.ci is not None:
            shown += f" [{self.ci[0]:g}, {self.ci[1]:g}]"
        return shown + (self.marker if self.marker and len(self.marker) <= 2 else "")


@dataclass(frozen=True)
class Row:
    """A table row: its label as printed, optional group heading, cells by column."""

    label: str
    cells: dict[str, Cell]
    group: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Table:
    """One published table in the paper's layout (rows and columns as printed)."""

    id: str
    caption: str
    source: str
    unit: str
    columns: list[str]
    rows: list[Row]
    column_units: dict[str, str]
    notes: list[str]

    def unit_of(self, column: str) -> str:
        return self.column_units.get(column, self.unit)

    def row(self, label: str) -> Row:
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(f"{self.source} ({self.id}) has no row {label!r}; rows: {[r.label for r in self.rows]}")

    def cell(self, label: str, column: str) -> Cell | None:
        """The cell at (row label, column), None where the paper leaves it empty."""
        if column not in self.columns:
            raise KeyError(f"{self.source} ({self.id}) has no column {column!r}; columns: {self.columns}")
        return self.row(label).cells.get(column)

    @property
    def n_values(self) -> int:
        """How many numeric cells the table holds."""
        return sum(c.value is not None for r in self.rows for c in r.cells.values())


@dataclass(frozen=True)
class Published:
    """A paper's own numbers (papers/<id>/published.yaml), validated."""

    paper_id: str
    citation: str
    title: str
    headline: dict
    protocol: dict
    quirks: list[str]
    tables: dict[str, Table]
    raw: dict  # the whole file, for keys the schema leaves free (e.g. m3g's `official_scorer`)


def published(paper_id: str) -> Published:
    """The paper's own numbers from papers/<id>/published.yaml, validated (one clear error per problem)."""
    path = get_paper(paper_id).folder / "published.yaml"
    if not path.is_file():
        raise MedvlError(f"{path} not found; every paper has one (see docs/architecture.md, section Contracts)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise MedvlError(f"{path} is not valid YAML: {exc}; fix the file") from exc
    return parse_published(paper_id, data, path)


def parse_published(paper_id: str, data: dict, path: Path | str = "published.yaml") -> Published:
    """Validate a loaded published.yaml mapping into typed tables."""
    for key in ("citation", "title", "headline", "tables"):
        if key not in data:
            raise MedvlError(f"{path}: missing top-level key {key!r}")
    tables = {tid: _table(tid, entry, path) for tid, entry in (data["tables"] or {}).items()}
    headline = data["headline"] or {}
    if headline.get("table") is not None:
        where = f"{path}: headline points at"
        if headline["table"] not in tables:
            raise MedvlError(f"{where} unknown table {headline['table']!r}")
        try:
            cell = tables[headline["table"]].cell(headline["row"], headline["column"])
        except KeyError as exc:
            raise MedvlError(f"{where} a missing cell: {exc.args[0]}") from exc
        if cell is None or cell.value != headline.get("value"):
            raise MedvlError(f"{where} {headline['table']}/{headline['row']}/{headline['column']}, "
                             f"whose value is not the headline value {headline.get('value')}")
    return Published(paper_id, str(data["citation"]).strip(), str(data["title"]).strip(), headline,
                     data.get("protocol") or {}, list(data.get("quirks") or []), tables, data)


def _table(tid: str, entry: dict, path) -> Table:
    where = f"{path}, table {tid!r}"
    for key in ("caption", "source", "unit", "columns", "rows"):
        if key not in (entry or {}):
            raise MedvlError(f"{where}: missing {key!r}")
    column_units = entry.get("column_units") or {}
    for unit in [entry["unit"], *column_units.values()]:
        if unit not in UNITS:
            raise MedvlError(f"{where}: unknown unit {unit!r}; use one of {', '.join(UNITS)}")
    columns = [str(c) for c in entry["columns"]]
    if unknown := set(column_units) - set(columns):
        raise MedvlError(f"{where}: column_units names columns that are not in `columns`: {sorted(unknown)}")
    rows, labels = [], set()
    for raw_row in entry["rows"]:
        label = str(raw_row.get("label"))
        if label in labels:
            raise MedvlError(f"{where}: row label {label!r} appears twice; prefix it with its group")
        labels.add(label)
        cells = {}
        for column, raw in (raw_row.get("cells") or {}).items():
            if str(column) not in columns:
                raise MedvlError(f"{where}, row {label!r}: column {column!r} is not in `columns` {columns}")
            cells[str(column)] = _cell(raw, f"{where}, row {label!r}, column {column!r}")
        rows.append(Row(label, cells, raw_row.get("group"), raw_row.get("note")))
    return Table(tid, str(entry["caption"]), str(entry["source"]), entry["unit"], columns, rows, column_units,
                 list(entry.get("notes") or []))


def _cell(raw, where: str) -> Cell:
    if not isinstance(raw, dict) or not raw.keys() <= CELL_KEYS or ("value" in raw) == ("text" in raw):
        raise MedvlError(f"{where}: a cell is {{value: number, std?, ci?, marker?, note?}} or {{text: ...}}, got {raw!r}")
    for key in ("value", "std"):
        if key in raw and (isinstance(raw[key], bool) or not isinstance(raw[key], int | float)):
            raise MedvlError(f"{where}: {key} {raw[key]!r} is not a number")
    ci = raw.get("ci")
    if ci is not None and (len(ci) != 2 or not all(isinstance(v, int | float) for v in ci)):
        raise MedvlError(f"{where}: ci must be [low, high] numbers, got {ci!r}")
    return Cell(raw.get("value"), raw.get("std"), tuple(ci) if ci else None, raw.get("marker"), raw.get("note"),
                raw.get("text"))
