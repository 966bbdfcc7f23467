"""The committed-metrics comparison used by the notebook smoke tests, on hand-built metrics."""

import json

import nbformat
import pytest
from metric_check import load_tolerances, metric_differences, tolerance_for

from medvl_core.errors import MedvlError
from medvl_core.notebook import recorded_metrics
from medvl_core.papers import PAPERS

RULES = {"n_*": {"exact": True}, "auc_*": {"abs": 0.02}, "*": {"abs": 0.5}}


def test_first_matching_pattern_wins():
    assert tolerance_for(RULES, "n_images") == {"exact": True}
    assert tolerance_for(RULES, "auc_x") == {"abs": 0.02}
    assert tolerance_for({"auc_*": {"abs": 1}}, "bleu") is None


def test_differences_name_each_failing_metric():
    committed = {"n_images": 10, "auc_a": 0.80, "auc_b": 0.80, "label": "x", "gone": 1}
    measured = {"n_images": 11, "auc_a": 0.815, "auc_b": 0.83, "label": "x", "new": 2}
    problems = metric_differences(measured, committed, RULES)
    assert any(p.startswith("n_images: 11 here vs 10") for p in problems)
    assert any(p.startswith("auc_b: 0.83 here vs 0.8") for p in problems)
    assert not any(p.startswith(("auc_a", "label")) for p in problems)
    assert any(p.startswith("gone:") for p in problems) and any(p.startswith("new:") for p in problems)
    assert metric_differences({"q": 1.0}, {"q": 1.0}, {"n_*": {"exact": True}}) == ["q: no tolerance in metric_tolerances.yaml; add one"]


@pytest.mark.parametrize("paper_id", list(PAPERS))
def test_every_committed_metric_has_a_tolerance(paper_id):
    patterns = load_tolerances()[paper_id]
    missing = [k for k in recorded_metrics(PAPERS[paper_id].notebook) if tolerance_for(patterns, k) is None]
    assert not missing


def test_recorded_metrics_read_back_from_a_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("stored = runs.record(**metrics)\nruns.print_metrics(stored)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=json.dumps({"a": 1.5}, indent=1))]
    nb.cells = [cell]
    nbformat.write(nb, str(tmp_path / "x.ipynb"))
    assert recorded_metrics(tmp_path / "x.ipynb") == {"a": 1.5}
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a 1.5\n")]
    nbformat.write(nb, str(tmp_path / "x.ipynb"))
    with pytest.raises(MedvlError, match="make notebooks"):
        recorded_metrics(tmp_path / "x.ipynb")
