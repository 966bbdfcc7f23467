"""tests/metric_tolerances.yaml against the committed notebooks: each tolerance derived from a measured quantity and
narrower than every ordering or verdict the notebook prints from its recorded metrics."""

import pytest
from metric_check import guard_problems, load_guards, load_tolerances, rule_problems, unknown_guard_keys

from medvl_core.notebook import recorded_metrics
from medvl_core.papers import PAPERS


@pytest.fixture(scope="module")
def committed():
    """paper id -> the metrics its committed notebook recorded."""
    return {paper_id: recorded_metrics(paper.notebook) for paper_id, paper in PAPERS.items()}


@pytest.mark.parametrize("paper_id", list(PAPERS))
def test_every_numeric_tolerance_is_at_most_what_it_was_derived_from(paper_id):
    assert not rule_problems(load_tolerances()[paper_id])


@pytest.mark.parametrize("paper_id", list(PAPERS))
def test_every_paper_guards_what_its_notebook_says(paper_id, committed):
    guards = load_guards().get(paper_id, [])
    assert guards, f"no guards for {paper_id} in metric_tolerances.yaml"
    assert not unknown_guard_keys(guards, committed[paper_id])


@pytest.mark.parametrize("paper_id", list(PAPERS))
def test_tolerances_stay_below_every_guarded_gap(paper_id, committed):
    guards, patterns = load_guards()[paper_id], load_tolerances()[paper_id]
    assert not guard_problems(guards, patterns, committed[paper_id])
