"""Every paper notebook follows the notebook contract (docs/architecture.md) without executing it."""

import ast

import nbformat
import pytest

from medvl_core.notebook import notebook_parameters
from medvl_core.papers import PAPERS


def _cells(paper_id):
    return nbformat.read(str(PAPERS[paper_id].notebook), as_version=4).cells


@pytest.mark.parametrize("paper_id", list(PAPERS))
def test_skeleton_and_parameters_cell(paper_id):
    cells = _cells(paper_id)
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    assert f"papers/{paper_id}/README.md" in cells[0].source and "data_cards/" in cells[0].source
    assert cells[1].source.startswith("# NBVAL_IGNORE_OUTPUT") and "medvl_core" in cells[1].source
    params = cells[2]
    assert params.metadata.get("tags") == ["parameters"]
    tree = ast.parse(params.source)
    names = [node.targets[0].id for node in tree.body]
    assert all(isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.List)) for node in tree.body)
    assert all("#" in line for line in params.source.splitlines()), "one comment per parameter"
    assert list(notebook_parameters(PAPERS[paper_id].notebook)) == names, "papermill must parse every parameter"
    assert "seed" in names


@pytest.mark.parametrize("paper_id", list(PAPERS))
def test_ends_by_recording_metrics_and_imports_only_medvl(paper_id):
    cells = _cells(paper_id)
    assert "runs.record(" in cells[-1].source
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    defined = [n for n in ast.walk(ast.parse(code)) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
    assert not defined, "methods live in medvl_core, not in notebooks"
    assert f'start_run("{paper_id}")' in code
    assert PAPERS[paper_id].headline in code
