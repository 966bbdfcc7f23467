"""Teaching helpers (notebook.show_source, viz.exercise_figure, runs.exercise_results) and the committed exercise sweeps.

A notebook shows an exercise's committed sweep as
`viz.exercise_figure(runs.exercise_results("<paper>", "<name>"), x="<grid parameter>", y=[...metric keys])`
with literal `x` and `y` (the paper may be a name such as PAPER: the notebook's own id is used then); every
`papers/<id>/exercises/<name>.csv` must be such a copy of `medvl batch papers/<id>/params/sweep-exercise-<name>.yaml`.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import yaml

from medvl_core import notebook, runs, viz
from medvl_core.cli.batch import expand_grid
from medvl_core.errors import MedvlError

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parent.parent
EXERCISE_CSVS = sorted(REPO.glob("papers/*/exercises/*.csv"))


def test_show_source_renders_the_real_source_and_the_equation():
    shown = notebook.show_source(notebook.check_overrides, equation=r"\mathcal{L} = -\log p", source="Eq. (3), Section 3.2")
    text = shown.data
    assert "$$\n\\mathcal{L} = -\\log p\n$$" in text
    assert "Eq. (3), Section 3.2" in text
    assert "**`medvl_core.notebook.check_overrides`**" in text
    assert "`medvl_core/notebook.py`, line " in text
    import inspect

    assert "```python\n" + inspect.getsource(notebook.check_overrides).rstrip() + "\n```" in text
    assert text.index("$$") < text.index("check_overrides")  # the equation comes first


def test_show_source_shows_several_objects_and_methods_in_order():
    text = notebook.show_source(runs.record, runs.Run.savefig).data
    assert text.index("medvl_core.runs.record") < text.index("medvl_core.runs.Run.savefig")
    assert "$$" not in text
    assert "def savefig(self, fig, name: str" in text


def test_show_source_errors_name_the_object():
    with pytest.raises(MedvlError, match="builtins.len"):
        notebook.show_source(len)
    with pytest.raises(MedvlError, match="3 \\(int\\)"):
        notebook.show_source(3)
    with pytest.raises(TypeError, match="at least one"):
        notebook.show_source(equation="x")


def test_notebook_module_imports_no_torch_or_ipython():
    import subprocess
    import sys

    code = "import sys, medvl_core.notebook; print('torch' in sys.modules, 'IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def _frame():
    return pd.DataFrame({"relax_threshold": [0.5, 0.1, 0.3, 0.1, 0.3, 0.5], "arm": ["a"] * 3 + ["b"] * 3,
                         "auroc": [0.7, 0.6, 0.65, 0.55, 0.5, None], "f1": [0.3, 0.2, 0.25, 0.1, 0.1, 0.1]})


def test_exercise_figure_one_series_per_metric_and_reference_lines(tmp_path):
    path = tmp_path / "results.csv"
    _frame().to_csv(path, index=False)
    fig = viz.exercise_figure(path, "relax_threshold", ["auroc", "f1"], title="t " * 80, references={"chance": 0.5})
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["auroc", "f1", "chance: 0.5"]
    assert len({str(line.get_color()) for line in ax.lines}) == 3
    assert ax.get_xlabel() == "relax_threshold" and ax.get_ylabel() == "value"
    assert list(ax.lines[0].get_xdata()) == [0.1, 0.1, 0.3, 0.3, 0.5]  # sorted by x, the NaN row dropped
    assert ax.get_title(loc="left").count("\n") >= 1  # wrapped


def test_exercise_figure_one_series_per_hue_value():
    fig = viz.exercise_figure(_frame(), "relax_threshold", "auroc", hue="arm")
    ax = fig.axes[0]
    assert viz.exercise_figure(_frame(), "relax_threshold", "auroc", ylabel="AUROC (test)").axes[0].get_ylabel() == "AUROC (test)"
    assert [line.get_label() for line in ax.lines] == ["arm = a", "arm = b"]
    assert list(ax.lines[1].get_ydata()) == [0.55, 0.5]
    assert ax.get_ylabel() == "auroc"


def test_exercise_figure_text_x_uses_ordered_ticks():
    frame = pd.DataFrame({"encoder": ["tiny", "bundled"], "acc": [0.4, 0.6]})
    ax = viz.exercise_figure(frame, "encoder", "acc").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bundled", "tiny"]
    assert list(ax.lines[0].get_xdata()) == [0, 1] and list(ax.lines[0].get_ydata()) == [0.6, 0.4]


def test_exercise_figure_errors_name_missing_columns_and_files(tmp_path):
    with pytest.raises(MedvlError, match="no column.*'nope'"):
        viz.exercise_figure(_frame(), "relax_threshold", ["auroc", "nope"])
    with pytest.raises(MedvlError, match="no results table"):
        viz.exercise_figure(tmp_path / "missing.csv", "x", "y")


def test_exercise_results_reads_the_committed_copy_and_names_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setattr("medvl_core.config.REPO_ROOT", tmp_path)
    with pytest.raises(MedvlError, match="medvl batch papers/p/params/sweep-exercise-ex.yaml"):
        runs.exercise_results("p", "ex")
    (tmp_path / "papers" / "p" / "exercises").mkdir(parents=True)
    _frame().to_csv(tmp_path / "papers" / "p" / "exercises" / "ex.csv", index=False)
    assert runs.exercise_results("p", "ex").shape == (6, 4)


def test_exercise_table_keeps_the_swept_column_and_the_prefixed_metrics_rounded(tmp_path, monkeypatch):
    monkeypatch.setattr("medvl_core.config.REPO_ROOT", tmp_path)
    (tmp_path / "papers" / "p" / "exercises").mkdir(parents=True)
    pd.DataFrame({"t": [0.1, 0.5], "status": ["ok", "ok"], "auc_a": [0.61234, 0.7], "auc_b": [0.5, 0.44449],
                  "f1": [0.3, 0.4]}).to_csv(tmp_path / "papers" / "p" / "exercises" / "ex.csv", index=False)
    table = runs.exercise_table("p", "ex", "t", "auc_")
    assert list(table.columns) == ["t", "auc_a", "auc_b"]
    assert table["auc_a"].tolist() == [0.612, 0.7] and table["auc_b"].tolist() == [0.5, 0.444]
    assert list(runs.exercise_table("p", "ex", "t", ("auc_b", "f1")).columns) == ["t", "auc_b", "f1"]


def _plotted(nb_path: Path) -> dict[tuple[str, str], tuple[str, list, str | None]]:
    """(paper, exercise) -> (x, y list, hue) of each exercise_figure(exercise_results(...)) call in a notebook."""
    out = {}
    for cell in json.loads(nb_path.read_text())["cells"]:
        if cell["cell_type"] != "code" or "exercise_results" not in "".join(cell["source"]):
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "exercise_figure"):
                continue
            inner = node.args[0]
            paper = inner.args[0].value if isinstance(inner.args[0], ast.Constant) else nb_path.stem
            kw = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg in ("x", "y", "hue")}
            args = [ast.literal_eval(a) for a in node.args[1:3]]
            x, y = (args + [kw.get("x"), kw.get("y")])[:2] if args else (kw["x"], kw["y"])
            out[(paper, inner.args[1].value)] = (x, [y] if isinstance(y, str) else list(y), kw.get("hue"))
    return out


PLOTTED = {key: value for nb in sorted((REPO / "notebooks").glob("*.ipynb")) for key, value in _plotted(nb).items()}


@pytest.mark.parametrize("path", EXERCISE_CSVS, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_each_exercise_csv_is_a_complete_sweep_the_notebook_plots(path):
    paper, name = path.parent.parent.name, path.stem
    sweep_path = REPO / "papers" / paper / "params" / f"sweep-exercise-{name}.yaml"
    assert sweep_path.is_file(), f"{path} has no sweep file {sweep_path.relative_to(REPO)}"
    sweep = yaml.safe_load(sweep_path.read_text())
    assert sweep["paper"] == paper
    grid = sweep["grid"]
    assert 2 <= len(expand_grid({}, grid)) <= 4, "an exercise sweep is small"
    table = pd.read_csv(path)
    assert (table["status"] == "ok").all()
    points = sorted(tuple(str(p[k]) for k in sorted(grid)) for p in expand_grid({}, grid))
    assert sorted(tuple(str(v) for v in row) for row in table[sorted(grid)].itertuples(index=False)) == points
    assert (paper, name) in PLOTTED, f"notebooks/{paper}.ipynb shows no exercise_figure(exercise_results(..., {name!r}))"
    x, ys, hue = PLOTTED[(paper, name)]
    assert x in grid or hue in grid, f"the figure's x {x!r} is not the swept parameter ({sorted(grid)})"
    assert set(ys) <= set(table.columns), f"{path} lacks the plotted metrics {sorted(set(ys) - set(table.columns))}"
    assert table[ys].notna().all().all()


def test_every_plotted_exercise_has_its_committed_results():
    committed = {(p.parent.parent.name, p.stem) for p in EXERCISE_CSVS}
    assert set(PLOTTED) <= committed


def test_local_batch_runs_get_no_two_minute_limit(tmp_path, monkeypatch):
    """`medvl batch` (the exercises' command) on this machine: submitit's local default limit (2 min) is lifted."""
    import submitit

    from medvl_core.cli import batch

    seen = {}

    class Pool:
        def __init__(self, folder, cluster):
            seen["cluster"] = cluster

        def update_parameters(self, **kwargs):
            seen.update(kwargs)

        def batch(self):
            import contextlib

            return contextlib.nullcontext()

        def submit(self, fn, *args):
            return type("Handle", (), {"result": lambda self: 0})()

    monkeypatch.setattr(submitit, "AutoExecutor", Pool)
    assert batch.submit_runs("meems", [({}, tmp_path / "a")], tmp_path, "local", 1, {}) == [0]
    assert seen["cluster"] == "local" and seen["timeout_min"] >= 24 * 60
