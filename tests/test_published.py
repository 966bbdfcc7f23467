"""papers/<id>/published.yaml: every paper's tables load, validate, and hold the values read from the papers;
medvl_core.compare puts this run's numbers beside them."""

import fnmatch
from pathlib import Path

import pytest
import yaml

from medvl_core.compare import beside, beside_spec, coverage, headline_pairs, paper_tables, render_text
from medvl_core.errors import MedvlError
from medvl_core.notebook import recorded_metrics
from medvl_core.papers import PAPERS, parse_published, published

CHECKS = Path(__file__).parent / "data" / "published_checks"


@pytest.mark.parametrize("paper_id", list(PAPERS))
def test_shapes_match_the_paper(paper_id):
    checks = yaml.safe_load((CHECKS / f"{paper_id}.yaml").read_text())
    tables = published(paper_id).tables
    assert set(tables) == set(checks["shapes"])
    for tid, shape in checks["shapes"].items():
        assert (len(tables[tid].rows), len(tables[tid].columns)) == (shape["rows"], shape["columns"]), tid


@pytest.mark.parametrize("paper_id", list(PAPERS))
def test_spot_values_read_from_the_paper(paper_id):
    checks = yaml.safe_load((CHECKS / f"{paper_id}.yaml").read_text())["values"]
    assert len(checks) >= 8
    tables = published(paper_id).tables
    for check in checks:
        cell = tables[check["table"]].cell(check["row"], check["column"])
        assert cell.value == pytest.approx(check["value"]), check
        if "std" in check:
            assert cell.std == pytest.approx(check["std"]), check
        if "ci" in check:
            assert list(cell.ci) == pytest.approx(check["ci"]), check


def test_known_values_of_each_paper():
    assert published("m3g_answer_generation").tables["table1"].cell("Img (2 Calls)", "dBLEU").value == 10.415
    assert published("perturbed_report_discrimination").tables["table_IV"].cell("Ours", "Open-I").value == 49.0
    assert published("meems").tables["table_1"].cell("MEEMS", "AUC").value == 0.79
    lr = published("loss_relaxation").tables["table_2"]
    assert (lr.cell("SLIP_ensemble w/ ours", "Mean F1").value, lr.cell("UniCLIP_ensemble w/ ours", "Mean MCC").value) == (0.625, 0.544)
    assert "Takeda" in published("vlm_feature_probing").citation and "IF250081" in published("vlm_feature_probing").citation


def _minimal(**table):
    base = {"caption": "c", "source": "Table 9", "unit": "fraction", "columns": ["AUC", "F1"],
            "rows": [{"label": "ours", "cells": {"AUC": {"value": 0.8, "std": 0.01}, "F1": {"value": 0.5}}},
                     {"label": "base", "cells": {"AUC": {"value": 0.7}}}]}
    return {"citation": "x", "title": "t", "headline": {"value": 0.8, "table": "t9", "row": "ours", "column": "AUC"},
            "tables": {"t9": {**base, **table}}}


def test_validation_names_file_and_table():
    assert parse_published("p", _minimal()).tables["t9"].cell("ours", "AUC").std == 0.01
    bad_cell = [{"label": "ours", "cells": {"AUC": {"value": "0.8"}}}]
    with pytest.raises(MedvlError, match=r"x.yaml, table 't9', row 'ours', column 'AUC': value '0.8' is not a number"):
        parse_published("p", _minimal(rows=bad_cell), "x.yaml")
    with pytest.raises(MedvlError, match=r"table 't9', row 'ours': column 'MCC' is not in `columns`"):
        parse_published("p", _minimal(rows=[{"label": "ours", "cells": {"MCC": {"value": 1}}}]), "x.yaml")
    with pytest.raises(MedvlError, match=r"table 't9': unknown unit 'percents'"):
        parse_published("p", _minimal(unit="percents"), "x.yaml")
    with pytest.raises(MedvlError, match=r"table 't9': missing 'columns'"):
        parse_published("p", {**_minimal(), "tables": {"t9": {"caption": "c", "source": "s", "unit": "count", "rows": []}}}, "x.yaml")
    twice = [{"label": "a", "cells": {}}, {"label": "a", "cells": {}}]
    with pytest.raises(MedvlError, match="appears twice"):
        parse_published("p", _minimal(rows=twice), "x.yaml")
    with pytest.raises(MedvlError, match="headline"):
        parse_published("p", {**_minimal(), "headline": {"value": 0.9, "table": "t9", "row": "ours", "column": "AUC"}})


def test_beside_fills_scales_and_dashes():
    table = parse_published("p", _minimal(unit="percent")).tables["t9"]
    spec = {"scale": 100, "cells": [{"row": "ours", "column": "AUC", "metric": "auc"}], "missing": "F1 not recorded",
            "extra_rows": [{"label": "{model} here", "cells": {"AUC": "auc2"}}]}
    item = beside(table, spec, {"auc": 0.812, "auc2": 0.5, "model": "tiny"}, "SynthCXR (synthetic)")
    frame = item.frame.reset_index()
    assert frame.loc[0, "AUC"] == "0.8 ± 0.01 | 81.2" and frame.loc[0, "F1"] == "0.5 | —"
    assert frame.loc[1, "F1"] == "— | —" and frame.loc[2, "row"] == "tiny here" and frame.loc[2, "AUC"] == "— | 50"
    assert (item.n_published, item.n_filled, item.n_extra) == (3, 1, 1)  # our extra row is not a paper cell
    assert "Ours: SynthCXR (synthetic)." in item.caption and "—: F1 not recorded" in item.caption
    pairs = headline_pairs([item])
    assert pairs.loc[0, ["paper", "ours"]].tolist() == [0.8, pytest.approx(81.2)]
    assert "### Table 9: c (percent)" in render_text([item], markdown=True)
    nan_and_descriptive = beside(table, {"descriptive": ["F1"], "cells": [{"row": "ours", "column": "AUC", "metric": "auc"}]},
                                 {"auc": float("nan")}, "x").frame.reset_index()
    assert nan_and_descriptive.loc[0, "AUC"] == "0.8 ± 0.01 | —" and nan_and_descriptive.loc[0, "F1"] == "0.5"
    flagged = beside(table, {"incomparable": "dBLEU on SynthDerm: another scale",
                             "cells": [{"row": "ours", "column": "AUC", "metric": "auc"}]}, {"auc": 0.5}, "SynthDerm (synthetic)")
    assert flagged.frame.reset_index().loc[0, "AUC"] == "0.8 ± 0.01 | 0.5†"
    assert flagged.caption.endswith("† dBLEU on SynthDerm: another scale")
    real = beside(table, {"incomparable": "x", "cells": [{"row": "ours", "column": "AUC", "metric": "auc"}]},
                  {"auc": 0.5}, "DermaVQA (real data)")
    assert real.frame.reset_index().loc[0, "AUC"] == "0.8 ± 0.01 | 0.5"  # same data as the paper: no flag
    with pytest.raises(KeyError, match="no row 'nobody'"):
        beside(table, {"cells": [{"row": "nobody", "column": "AUC", "metric": "auc"}]}, {}, "x")


@pytest.mark.parametrize("paper_id", list(PAPERS))
def test_every_table_renders_and_mapped_metrics_are_recorded(paper_id):
    committed = recorded_metrics(PAPERS[paper_id].notebook)
    tables = paper_tables(paper_id, committed, "committed demo")
    assert len(tables) == len(published(paper_id).tables)
    counts = coverage(tables)
    assert int(counts["paper's cells with ours beside"].sum() + counts["cells in our extra rows"].sum()) > 0
    assert (counts["paper's cells with ours beside"] <= counts["paper's cells"]).all()
    path = PAPERS[paper_id].folder / "beside.yaml"
    conditional = (yaml.safe_load(path.read_text()) or {}).get("conditional") or {}
    for tid, spec in beside_spec(paper_id).items():
        mapped = [c["metric"] for c in spec.get("cells") or []]
        mapped += [m for extra in spec.get("extra_rows") or [] for m in extra["cells"].values()]
        stale = [m for m in mapped if m not in committed and not any(fnmatch.fnmatchcase(m, p) for p in conditional)]
        assert not stale, f"{tid}: {stale}"


def test_published_numbers_keep_their_printed_form(tmp_path):
    from medvl_core.papers import as_printed, read_paper_yaml

    path = tmp_path / "published.yaml"
    path.write_text("a: 49.00\nb: 28160\nc: 1.000\nd: 3072\ne: -0.50\n")
    data = read_paper_yaml(path)
    assert [as_printed(data[k]) for k in "abcde"] == ["49.00", "28,160", "1.000", "3072", "-0.50"]
    assert data["a"] == 49.0 and isinstance(data["b"], int) and data["b"] + 1 == 28161
