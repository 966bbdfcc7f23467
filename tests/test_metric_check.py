"""The committed-metrics comparison used by the notebook smoke tests, on hand-built metrics."""

import json

import nbformat
import pytest
from metric_check import (
    guard_problems,
    load_tolerances,
    metric_differences,
    rule_problems,
    tolerance_for,
    unknown_guard_keys,
)

from medvl_core.errors import MedvlError
from medvl_core.notebook import recorded_metrics
from medvl_core.papers import PAPERS

RULES = {"n_*": {"exact": True}, "auc_*": {"abs": 0.02}, "*": {"abs": 0.5}}
SE = {"abs": 0.02, "measured": 0.04, "basis": "binomial SE x 0.5"}


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


def test_rules_need_a_basis_and_stay_at_most_their_measure():
    rules = {"n_*": {"exact": True}, "auc_*": SE, "f1_*": {"abs": 0.05}, "bleu": {**SE, "abs": 0.05}}
    problems = rule_problems(rules)
    assert len(problems) == 2
    assert problems[0].startswith("f1_*:") and "needs abs, measured and basis" in problems[0]
    assert problems[1] == "bleu: abs 0.05 above measured 0.04 (binomial SE x 0.5)"


def test_a_tolerance_wider_than_a_guarded_gap_fails():
    committed = {"auc_a": 0.90, "auc_b": 0.912, "n_pos": 10}
    problems = guard_problems([["auc_a", "auc_b"]], {"auc_*": SE}, committed)
    assert problems == ["auc_a vs auc_b: committed gap 0.012, tolerances 0.02 + 0.02 = 0.04 do not stay below it"]
    narrow = {"auc_*": {**SE, "abs": 0.005}}
    assert not guard_problems([["auc_a", "auc_b"]], narrow, committed)


def test_a_constant_or_exact_key_counts_no_tolerance():
    committed = {"auc_a": 0.90, "n_pos": 10}
    rules = {"n_*": {"exact": True}, "auc_*": {**SE, "abs": 0.009}}
    assert not guard_problems([["auc_a", 0.89], ["n_pos", 9]], rules, committed)
    assert guard_problems([["auc_a", 0.895]], rules, committed)  # gap 0.005 < 0.009


def test_a_guard_with_an_offset_compares_against_the_shifted_key():
    committed = {"auc_a": 0.86, "auc_b": 0.82}
    rules = {"auc_*": {**SE, "abs": 0.004}}
    assert not guard_problems([["auc_a", "auc_b", 0.05]], rules, committed)  # 0.86 vs 0.87: gap 0.01
    assert guard_problems([["auc_a", "auc_b", 0.045]], rules, committed)  # gap 0.005 < 0.008


def test_guard_keys_that_are_not_recorded_are_named():
    guards = [["auc_a", "auc_typo"], ["auc_a", 0.5], ["auc_gone", "auc_a", 0.1]]
    assert unknown_guard_keys(guards, {"auc_a": 0.9}) == ["auc_gone", "auc_typo"]


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
