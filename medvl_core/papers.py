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
        shown = as_printed(self.value)
        if self.std is not None:
            shown += f" ± {as_printed(self.std)}"
        if self.ci is not None:
            shown += f" [{as_printed(self.ci[0])}, {as_printed(self.ci[1])}]"
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


def _printed_type(base: type) -> type:
    """A subclass of `base` (float or int) whose numbers remember how they were written ('49.00', '28160')."""

    class Printed(base):
        text: str

        def __new__(cls, value, text: str):
            number = super().__new__(cls, value)
            number.text = text
            return number

    Printed.__name__ = Printed.__qualname__ = f"Printed{base.__name__.title()}"
    return Printed


PrintedFloat, PrintedInt = _printed_type(float), _printed_type(int)


class PrintedLoader(yaml.SafeLoader):
    """YAML loader whose numbers keep their written form, so a table shows 49.00 as the paper prints it."""


def _printed_number(loader, node):
    text = loader.construct_scalar(node)
    value = yaml.SafeLoader.construct_yaml_float(loader, node) if node.tag.endswith("float") else \
        yaml.SafeLoader.construct_yaml_int(loader, node)
    return PrintedFloat(value, text) if isinstance(value, float) else PrintedInt(value, text)


PrintedLoader.add_constructor("tag:yaml.org,2002:float", _printed_number)
PrintedLoader.add_constructor("tag:yaml.org,2002:int", _printed_number)


def as_printed(value) -> str:
    """A published number as the paper prints it: its written decimals, thousands separated ('28,160')."""
    text = getattr(value, "text", None) or f"{value:g}"
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, dot, frac = digits.partition(".")
    if whole.isdigit() and len(whole) > 4:
        whole = f"{int(whole):,}"
    return sign + whole + dot + frac


def read_paper_yaml(path: Path) -> dict:
    """A paper file (published.yaml, claims.yaml) with numbers as written; one clear error when unreadable."""
    if not path.is_file():
        raise MedvlError(f"{path} not found; every paper has one (see docs/architecture.md, section Contracts)")
    try:
        return yaml.load(path.read_text(), Loader=PrintedLoader) or {}
    except yaml.YAMLError as exc:
        raise MedvlError(f"{path} is not valid YAML: {exc}; fix the file") from exc


def published(paper_id: str) -> Published:
    """The paper's own numbers from papers/<id>/published.yaml, validated (one clear error per problem)."""
    path = get_paper(paper_id).folder / "published.yaml"
    return parse_published(paper_id, read_paper_yaml(path), path)


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


COMPARISONS = ("greater", "at_least", "equal")  # a > b; a - b >= margin; |a - b| <= margin
RESAMPLING_UNITS = ("items", "seeds", "both")
CLAIM_KEYS = {"id", "quote", "section", "published", "a", "b", "comparison", "margin", "margin_source", "unit",
              "testable", "reason", "note"}


@dataclass(frozen=True)
class Claim:
    """One claim of a paper (papers/<id>/claims.yaml): the paper's words, its numbers, and the test of ours.

    `a` and `b` are metric keys of ours (b may be a number, e.g. chance); the paper claims a > b
    ('greater'), a - b >= margin ('at_least') or |a - b| <= margin ('equal'). `testable` false: the demo
    cannot have what the claim needs (`reason`); a run that records `a` and `b` is still judged.
    """

    id: str
    quote: str
    section: str
    published: tuple[str, ...]
    a: str | None
    b: str | float | None
    comparison: str
    margin: float
    margin_source: str
    unit: str
    testable: bool
    reason: str
    note: str


def paper_claims(paper_id: str) -> list[Claim]:
    """The paper's claims from papers/<id>/claims.yaml, in the paper's order, validated against published.yaml."""
    path = get_paper(paper_id).folder / "claims.yaml"
    return parse_claims(read_paper_yaml(path), published(paper_id), path)


def parse_claims(data: dict, pub: Published, path: Path | str = "claims.yaml") -> list[Claim]:
    """Validate a loaded claims.yaml mapping (one clear error per problem)."""
    claims, seen = [], set()
    for i, raw in enumerate(data.get("claims") or []):
        where = f"{path}, claim {raw.get('id', i)!r}"
        _check_claim(raw, where, seen, pub)
        seen.add(raw["id"])
        claims.append(Claim(
            raw["id"], " ".join(str(raw["quote"]).split()), str(raw["section"]), tuple(raw.get("published") or ()),
            raw.get("a"), raw.get("b"), raw.get("comparison", "greater"), float(raw.get("margin", 0.0)),
            str(raw.get("margin_source", "")), raw.get("unit", "items"), bool(raw.get("testable", True)),
            str(raw.get("reason", "")), str(raw.get("note", ""))))
    if not claims:
        raise MedvlError(f"{path}: no claims; list the paper's claims under `claims:`")
    return claims


def _check_claim(raw: dict, where: str, seen: set, pub: Published) -> None:
    """One claims.yaml entry: known keys, the required ones present, references into published.yaml valid."""
    if unknown := set(raw) - CLAIM_KEYS:
        raise MedvlError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(CLAIM_KEYS)}")
    for key in ("id", "quote", "section"):
        if not raw.get(key):
            raise MedvlError(f"{where}: missing {key!r}")
    if raw["id"] in seen:
        raise MedvlError(f"{where}: id {raw['id']!r} appears twice")
    if raw.get("comparison", "greater") not in COMPARISONS:
        raise MedvlError(f"{where}: comparison {raw['comparison']!r}; use one of {', '.join(COMPARISONS)}")
    if raw.get("unit", "items") not in RESAMPLING_UNITS:
        raise MedvlError(f"{where}: unit {raw['unit']!r}; use one of {', '.join(RESAMPLING_UNITS)}")
    if raw.get("comparison") == "equal" and not (raw.get("margin") and raw.get("margin_source")):
        raise MedvlError(f"{where}: an 'equal' claim needs a margin > 0 and its margin_source (the paper's or 'ours: why')")
    if raw.get("testable", True) and not (raw.get("a") and raw.get("b") is not None):
        raise MedvlError(f"{where}: a testable claim names metric keys `a` and `b` (b may be a number)")
    if not raw.get("testable", True) and not raw.get("reason"):
        raise MedvlError(f"{where}: a claim marked testable: false says why in `reason`")
    for ref in raw.get("published") or ():
        published_cell(pub, ref, where)


def published_cell(pub: Published, ref: str, where: str = "") -> Cell:
    """The published cell at 'table/row/column' (row labels may contain '/': the first and last parts are split)."""
    table_id, _, rest = ref.partition("/")
    row, _, column = rest.rpartition("/")
    if table_id not in pub.tables:
        raise MedvlError(f"{where}: {ref!r} names table {table_id!r}, not in published.yaml: {sorted(pub.tables)}")
    try:
        cell = pub.tables[table_id].cell(row, column)
    except KeyError as exc:
        raise MedvlError(f"{where}: {ref!r}: {exc.args[0]}") from exc
    if cell is None:
        raise MedvlError(f"{where}: {ref!r} is a cell the paper leaves empty")
    return cell
