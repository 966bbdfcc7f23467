"""The paper beside this run: each published table in the paper's layout, cells "paper | ours".

`papers/<id>/beside.yaml` says which recorded metric (metrics.json key) stands beside which published
cell, the factor from our metric's unit to the table's (`scale: 100` for a fraction beside a percent),
and why the other cells show "—" (a recorded NaN, e.g. an AUROC of a label without positives, shows "—"
too). Optional `extra_rows` add this run's own rows (e.g. our encoders beside the paper's) in the paper's
columns; `descriptive` names columns shown as printed (e.g. "# of label").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from .errors import MedvlError
from .eval.claims import NOT_RESOLVED, NOT_TESTABLE, Judgement, format_p, judge, resamples_for
from .eval.claims import counts as claim_counts
from .io import atomic_write_json
from .papers import Published, Table, get_paper, paper_claims, published, published_cell
from .runs import current_run

DASH = "—"
INCOMPARABLE = "†"  # our value is on another scale than the paper's (beside.yaml `incomparable: why`)
SYNTHETIC = "synthetic"  # produced_by's word for a synthetic world


@dataclass
class Beside:
    """One paper table with this run's numbers beside the paper's."""

    table: Table
    frame: pd.DataFrame
    caption: str
    n_published: int
    n_filled: int  # the paper's own cells that hold a value of ours
    ours: dict  # (row, column) -> our value in the table's unit, in beside.yaml's order
    n_extra: int = 0  # cells of our extra rows (this run's own rows, not the paper's cells)

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
    ours, flagged = {}, {}
    for entry in spec.get("cells") or []:
        table.cell(entry["row"], entry["column"])  # a KeyError names the table when the mapping is stale
        value = metrics.get(entry["metric"])
        if _number(value):
            ours[(entry["row"], entry["column"])] = value * float(entry.get("scale", scale))
            reason = entry.get("incomparable", spec.get("incomparable"))
            if reason and SYNTHETIC in produced_by:  # the scale differs on a synthetic world, not on the real data
                flagged[(entry["row"], entry["column"])] = reason
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
                mark = INCOMPARABLE if (row.label, column) in flagged else ""
                shown = f"{shown} | {_fmt(mine) + mark if mine is not None else DASH}"
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
    extra = sum(1 for row in spec.get("extra_rows") or [] for m in row["cells"].values() if _number(metrics.get(m)))
    reason = spec.get("missing") or ("this run measures none of this table's quantities" if not ours else "")
    if mapped:
        caption = f"cells: paper | ours. Ours: {produced_by}." + (f" {DASH}: {reason}" if reason else "")
        caption += "".join(f" {INCOMPARABLE} {why}" for why in dict.fromkeys(flagged.values()))
    else:
        caption = f"the paper's values only; ours {DASH}: {reason}"
    return Beside(table, frame, caption, table.n_values, len(ours), ours, extra)


def _number(value) -> bool:
    """A finite int/float (not a bool): a measured value to show."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class _Blank(dict):
    """str.format_map mapping that leaves unknown {names} as '?'."""

    def __missing__(self, key):
        return "?"


def produced_by(data: str, model: str) -> str:
    """The caption naming the data and model behind our numbers ('synthetic' stated for synth-* data)."""
    kind = f"{SYNTHETIC}: not clinical performance" if data.startswith("synth") else "real data"
    return f"{data} ({kind}); {model}"


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.4g}"


def coverage(tables: list[Beside]) -> pd.DataFrame:
    """Per table: the paper's numeric cells, how many of them hold a value of ours, and our extra rows' cells apart."""
    return pd.DataFrame([{"table": b.table.source, "paper's cells": b.n_published,
                          "paper's cells with ours beside": b.n_filled, "cells in our extra rows": b.n_extra}
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


SCHEME = ("paired bootstrap of our difference a - b over the test items ({resamples} resamples: at least 4 x claims "
          "/ 0.05, seed {seed}); "
          "several seeds: each side is the mean over seeds on the same resample (unit 'items'), or the seeds are "
          "resampled too ('both') or alone ('seeds'); 95% percentile CI; two-sided p, Holm-corrected across the "
          "{n} claims judged; verdict at Holm p < 0.05 (see medvl_core/eval/claims.py)")


def judge_claims(paper_id: str, evidence: dict, n_resamples: int = 1000, seed: int = 0) -> list[Judgement]:
    """The paper's claims (claims.yaml) judged on this run's evidence, in the paper's order."""
    return judge(paper_claims(paper_id), evidence, n_resamples, seed)


def claims_frame(paper_id: str, judged: list[Judgement]) -> pd.DataFrame:
    """One row per claim: the paper's words, numbers and effect, ours, the difference [95% CI], the smallest effect
    this run could detect, p (Holm) and the verdict."""
    pub = published(paper_id)
    rows = []
    for j in judged:
        c = j.claim
        paper = "; ".join(f"{_cell_name(ref)}: {published_cell(pub, ref).show()}" for ref in c.published) or DASH
        testable = j.verdict != NOT_TESTABLE
        effect = paper_effect(pub, j)
        rows.append({
            "claim": f"“{c.quote}” ({c.section})" + (f" Note: {c.note}" if c.note else ""),
            "paper": paper,
            "paper's effect": _claim_number(effect, True),
            "ours (a vs b)": f"{_claim_number(j.a)} vs {_claim_number(j.b)}" if testable else DASH,
            "difference [95% CI]": (f"{_claim_number(j.diff, True)} [{_claim_number(j.low, True)}, "
                                    f"{_claim_number(j.high, True)}]" + _boundary(c)) if testable else DASH,
            "detectable here": _power_text(j.detectable, effect) if testable else DASH,
            "p (Holm)": f"{format_p(j)} ({format_p(j, holm_corrected=True)})" if testable else DASH,
            "verdict": _verdict_text(j),
        })
    return pd.DataFrame(rows)


def paper_effect(pub: Published, j: Judgement) -> float | None:
    """The paper's own a - b for a claim citing two numeric cells (or one cell and a numeric b), in our units:
    a percent table's difference becomes a fraction when our a is a fraction."""
    cells = [published_cell(pub, ref) for ref in j.claim.published]
    values = [cell.value for cell in cells if cell.value is not None]
    if len(values) == 2 and len(cells) == 2:
        effect = float(values[0]) - float(values[1])
    elif len(values) == 1 and len(cells) == 1 and isinstance(j.claim.b, int | float) and not isinstance(j.claim.b, bool):
        effect = float(values[0]) - float(j.claim.b) * (100.0 if _is_percent(pub, j.claim.published[0]) else 1.0)
    else:
        return None
    if _is_percent(pub, j.claim.published[0]) and (j.a is None or abs(j.a) <= 1.0):
        effect /= 100.0
    return effect


def _is_percent(pub: Published, ref: str) -> bool:
    """Whether the published cell `ref` is printed in percent."""
    table_id, _, rest = ref.partition("/")
    return pub.tables[table_id].unit_of(rest.rpartition("/")[2]) == "percent"


def is_powered(detectable: float | None, effect: float | None) -> bool | None:
    """Whether this run could detect the paper's effect (None when either is unknown)."""
    if detectable is None or effect is None or not math.isfinite(detectable):
        return None
    return detectable <= abs(effect)


def _power_text(detectable: float | None, effect: float | None) -> str:
    """'±0.021', with a warning when the paper's own effect is smaller than what this run can detect."""
    if detectable is None or not math.isfinite(detectable):
        return DASH
    shown = f"±{detectable:.2g}"
    return shown + (" (paper's effect is smaller: underpowered)" if is_powered(detectable, effect) is False else "")


def _claim_number(value: float | None, signed: bool = False) -> str:
    """One format for every number of the claims table: 3 decimals (2 above 10), a sign for differences."""
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value:{'+' if signed else ''}.{3 if abs(value) < 10 else 2}f}"


def claims_text(frame: pd.DataFrame) -> str:
    """The claims table for a terminal: one numbered block per claim, nothing cut."""
    blocks = []
    for i, row in enumerate(frame.to_dict("records"), 1):
        ours = row["ours (a vs b)"]
        effect = row["paper's effect"]
        effect = f" (effect {effect})" if effect != DASH else ""
        numbers = (f"\n   paper: {row['paper']}{effect}\n   ours: {ours}; difference {row['difference [95% CI]']}; "
                   f"detectable {row['detectable here']}; p {row['p (Holm)']}"
                   if ours != DASH else (f"\n   paper: {row['paper']}{effect}" if row["paper"] != DASH else ""))
        blocks.append(f"{i}. [{row['verdict']}]\n   {row['claim']}{numbers}")
    return "\n".join(blocks)


def _cell_name(ref: str) -> str:
    """'table_IV/Ours (w/o local loss)/Open-I' -> 'Ours (w/o local loss), Open-I' (row labels may hold '/')."""
    row, _, column = ref.partition("/")[2].rpartition("/")
    return f"{row}, {column}"


def _boundary(c) -> str:
    """What the difference is compared with, when it is not 0."""
    if c.comparison == "at_least":
        return f"; paper: ≥ {c.margin:g}"
    if c.comparison == "equal":
        return f"; within ±{c.margin:g} ({c.margin_source})"
    return ""


def _verdict_text(j: Judgement) -> str:
    if j.verdict == NOT_TESTABLE:
        return f"{NOT_TESTABLE}: {j.reason}"
    if j.verdict == NOT_RESOLVED:
        return f"{NOT_RESOLVED} (detectable here: |effect| ≥ {j.detectable:.2g})"
    return j.verdict


def claims_record(paper_id: str, judged: list[Judgement], produced_by: str, n_resamples: int = 1000,
                  seed: int = 0) -> dict:
    """claims.json of a run folder: the scheme, every judgement and the verdict counts."""
    n = sum(j.verdict != NOT_TESTABLE for j in judged)
    resamples = resamples_for(n, n_resamples)
    pub = published(paper_id)
    claims = [{**j.as_dict(), "paper_effect": paper_effect(pub, j)} for j in judged]
    return {"paper": paper_id, "produced_by": produced_by, "scheme": SCHEME.format(resamples=resamples, seed=seed, n=n),
            "counts": claim_counts(judged), "claims": claims}


def show_claims(paper_id: str, evidence: dict, produced_by: str, metrics: dict | None = None,
                n_resamples: int = 1000, seed: int = 0) -> list:
    """Judge, display (notebook) and record (claims.json in the run folder) the paper's claims; returns them.

    With `metrics`, each evidence's value must equal a metric already recorded under the same key (so a claim is
    judged on exactly the number the run reports); the evidence values not yet in it and the verdict counts
    (`claims_reproduced`, ...) join it."""
    from IPython.display import HTML, Markdown, display

    check_evidence(evidence, metrics or {})
    judged = judge_claims(paper_id, evidence, n_resamples, seed)
    record = claims_record(paper_id, judged, produced_by, n_resamples, seed)
    atomic_write_json(current_run().dir / "claims.json", record)
    if metrics is not None:
        metrics.update({key: ev.point() for key, ev in evidence.items() if key not in metrics})
        metrics.update(count_metrics(judged))
    counts = ", ".join(f"{n} {v}" for v, n in record["counts"].items())
    table = HTML(claims_frame(paper_id, judged).to_html(index=False))  # to_html keeps every quote whole
    display(Markdown(f"**The paper's claims on this run** ({produced_by}): {counts}."), table,
            Markdown(f"<small>Scheme: {record['scheme']}.</small>"))
    return judged


def count_metrics(judged: list[Judgement]) -> dict[str, int]:
    """The verdict counts as metric keys: claims_reproduced, claims_contradicted, claims_not_resolved, ..."""
    return {f"claims_{verdict.split(' here')[0].replace(' ', '_')}": n for verdict, n in claim_counts(judged).items()}


def claims_summary(recorded: dict[str, dict]) -> pd.DataFrame:
    """One row per paper from each run's recorded metrics ({paper: metrics}): its claims' verdict counts."""
    rows = []
    for paper_id, metrics in recorded.items():
        keys = count_metrics([])
        rows.append({"paper": paper_id, **{k.removeprefix("claims_").replace("_", " "): metrics.get(k) for k in keys}})
    return pd.DataFrame(rows)


def check_evidence(evidence: dict, metrics: dict, rel: float = 1e-6) -> None:
    """Each evidence's point value equals the recorded metric of the same key (where one is recorded), to the
    precision the metric is recorded at (a mean of values rounded to d decimals may differ by one unit in the last)."""
    for key, ev in evidence.items():
        value = metrics.get(key)
        if _number(value) and not math.isclose(ev.point(), value, rel_tol=rel, abs_tol=_last_unit(value)):
            raise MedvlError(f"claims evidence {key!r} is {ev.point():.8g} but the run records {value:.8g}; build "
                             "the evidence from the same predictions as the metric")


def _last_unit(value: float) -> float:
    """1.5 units of the last decimal of a number recorded rounded to 3-6 decimals, else 1e-9 (0.7 or 0.75 may be exact)."""
    decimals = len(repr(float(value)).split(".")[1].rstrip("0")) if "e" not in repr(float(value)) else 99
    return 1.5 * 10.0 ** -decimals if 3 <= decimals <= 6 else 1e-9


def recorded_claims(paper_id: str, run_dir) -> list[Judgement]:
    """The judgements a run folder's claims.json holds, matched to the paper's current claims.yaml."""
    path = Path(run_dir) / "claims.json"
    if not path.is_file():
        raise MedvlError(f"{path} not found: the run predates claims.json or failed before its claims section; "
                         f"rerun `medvl run {paper_id} --out {run_dir}`")
    stored = {c["id"]: c for c in json.loads(path.read_text())["claims"]}
    out = []
    for claim in paper_claims(paper_id):
        s = stored.get(claim.id)
        if s is None:
            out.append(Judgement(claim, NOT_TESTABLE, reason="not in this run's claims.json (added to claims.yaml later)"))
            continue
        out.append(Judgement(claim, **{k: v for k, v in s.items() if k not in ("id", "paper_effect")}))
    return out
