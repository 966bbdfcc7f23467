"""`medvl` CLI on a tiny stand-in notebook (via $MEDVL_NOTEBOOKS), executed for real by papermill."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from stand_in import write_stand_in

from medvl_core import cli
from medvl_core.cli import run as cli_run
from medvl_core.cli.parser import build_parser, dataset_names
from medvl_core.errors import DataFormatError, ParameterError
from medvl_core.notebook import check_overrides, clean_notebook, notebook_parameters

BODY = """from medvl_core import runs
runs.start_run("meems")
if fail:
    raise ValueError("boom in the body")
runs.record(value=seed * scale, seed=seed)
print("recorded", seed * scale)
import matplotlib.pyplot as plt
plt.plot([0, 1], [0, seed])
plt.show()"""


@pytest.fixture
def fake_notebooks(tmp_path, monkeypatch):
    """A notebooks folder whose meems.ipynb is a three-cell stand-in."""
    folder = write_stand_in(tmp_path / "notebooks", "seed = 0  # random seed\nscale = 1.0  # multiplier\nfail = False  # raise",
                            [BODY])
    monkeypatch.setenv("MEDVL_NOTEBOOKS", str(folder))
    monkeypatch.chdir(tmp_path)
    return folder


def test_parameters_are_read_from_the_tagged_cell(fake_notebooks):
    assert notebook_parameters(fake_notebooks / "meems.ipynb") == {"seed": 0, "scale": 1.0, "fail": False}


def test_check_overrides_types_and_names():
    defaults = {"seed": 0, "lr": 0.1, "flag": False, "name": "x", "opt": None}
    assert check_overrides(defaults, {"lr": 1, "opt": [1]}, "p")["lr"] == 1
    with pytest.raises(ParameterError, match="unknown parameter 'sed'.*did you mean 'seed'"):
        check_overrides(defaults, {"sed": 1}, "p")
    with pytest.raises(ParameterError, match="expects int"):
        check_overrides(defaults, {"seed": "a"}, "p")
    with pytest.raises(ParameterError, match="expects bool"):
        check_overrides(defaults, {"flag": 1}, "p")


def test_unknown_paper_and_parameter_exit_2_with_one_line(fake_notebooks, capsys):
    assert cli.main(["run", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown paper 'nope'" in err[0] and "loss_relaxation" in err[0]
    assert cli.main(["run", "meems", "-p", "bogus", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown parameter 'bogus'" in err[0] and "seed" in err[0]
    assert cli.main(["run", "meems", "-f", "missing.yaml"]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def _subcommands() -> dict:
    """`medvl`'s sub-parsers by command name."""
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_help_documents_commands_environment_and_exit_codes(capsys):
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for name in ("MEDVL_DATA", "~/.cache/medvl", "MEDVL_RUNS", "MEDVL_NOTEBOOKS", "ANTHROPIC_API_KEY",
                 "OPENAI_API_KEY", "exit status", "0  ok", "1  a run or check failed", "2  usage error"):
        assert name in text
    assert all(command in cli.__doc__ for command in _subcommands())


def test_every_positional_has_help_and_params_file_explains_names():
    for command, parser in _subcommands().items():
        for action in parser._actions:
            assert action.help, f"medvl {command} {action.dest} has no help"
    run = _subcommands()["run"]
    params_file = next(a for a in run._actions if a.dest == "params_file")
    assert "`full`" in params_file.help and "papers/<paper>/params/full.yaml" in params_file.help


@pytest.mark.parametrize("argv", [["compare", "nope", "x"], ["refresh", "meems", "nope"], ["check-data", "nope"],
                                  ["run", "meems", "--processes", "two"], ["batch", "s.yaml", "--executor", "k8s"]])
def test_usage_mistakes_exit_2_with_one_line(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0]


def test_dataset_choices_match_the_registry_without_importing_torch():
    from medvl_core.data import DATASETS

    assert dataset_names() == sorted(DATASETS)
    code = "import sys, medvl_core.cli.parser as c; c.build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_version_prints_the_package_version(capsys):
    from importlib.metadata import version

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"medvl {version('medvl')}"


@pytest.fixture
def fake_execute(monkeypatch):
    """Replace the notebook execution of `medvl run` by a recorder; returns the list of run folders asked for."""
    folders = []

    def execute(paper_id, overrides, out, **options):
        folders.append(out)
        return 0

    monkeypatch.setattr(cli_run, "execute", execute)
    return folders


def test_run_without_out_goes_under_medvl_runs(fake_execute, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVL_RUNS", str(tmp_path / "elsewhere"))
    assert cli.main(["run", "meems"]) == 0
    assert fake_execute[-1].parent == tmp_path / "elsewhere" / "meems"
    monkeypatch.delenv("MEDVL_RUNS")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "meems", "--quiet"]) == 0
    assert fake_execute[-1].parent == Path("runs") / "meems"


def test_params_file_names_the_paper_folder(fake_execute, capsys):
    assert cli.main(["run", "meems", "-f", "nonesuch"]) == 2
    err = capsys.readouterr().err
    assert "papers/meems/params/nonesuch.yaml" in err and "full" in err and not fake_execute


@pytest.mark.parametrize(("error", "code"), [(DataFormatError("bad file x.csv; fix it"), 1),
                                             (ParameterError("bad value; use 1"), 2)])
def test_errors_while_running_exit_1_usage_errors_exit_2(error, code, monkeypatch, capsys):
    def execute(*args, **kwargs):
        raise error

    monkeypatch.setattr(cli_run, "execute", execute)
    assert cli.main(["run", "meems", "--out", "x"]) == code
    assert capsys.readouterr().err.strip() == f"medvl: error: {error}"


def test_compare_without_metrics_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["compare", "meems", str(tmp_path)]) == 2
    assert "metrics.json not found" in capsys.readouterr().err


def test_run_writes_run_folder(fake_notebooks, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as the Makefile sets it: figures must still reach the notebook
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text('{"stale": 1}')
    assert cli.main(["run", "meems", "-p", "seed", "3", "-p", "scale", "0.5", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text()) == {"value": 1.5, "seed": 3}
    assert yaml.safe_load((out / "params.yaml").read_text()) == {"seed": 3, "scale": 0.5, "fail": False}
    assert (out / "meems.ipynb").is_file() and (out / "figures").is_dir()
    outputs = [o for c in nbformat.read(str(out / "meems.ipynb"), 4).cells for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert json.loads((out / "run.json").read_text())["status"] == "ok"
    terminal = "".join(capfd.readouterr())  # the kernel writes to our file descriptors
    assert "medvl: meems done" in terminal and "WARNING" not in terminal and "encryption" not in terminal
    assert cli.main(["compare", "meems", str(out)]) == 0
    assert "cells: paper | ours" in capfd.readouterr().out
    assert cli.main(["compare", "meems", str(out), "--format", "md"]) == 0
    printed = capfd.readouterr().out
    assert printed.count("### ") == 8 and "paper's cells with ours beside" in printed  # every MEEMS table, then coverage


def test_failing_cell_exits_1_and_names_partial_notebook(fake_notebooks, tmp_path, capsys):
    out = tmp_path / "bad"
    assert cli.main(["run", "meems", "-p", "fail", "true", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "ValueError: boom in the body" in err and str(out / "meems.ipynb") in err
    assert (out / "meems.ipynb").is_file()
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


def test_batch_runs_grid_skips_complete_and_tabulates(fake_notebooks, tmp_path):
    sweep = tmp_path / "sweep-seeds.yaml"
    sweep.write_text("paper: meems\nparams: {scale: 2.0}\ngrid:\n  seed: [1, 2]\n")
    out = tmp_path / "sweep"
    assert cli.main(["batch", str(sweep), "--jobs", "2", "--out", str(out)]) == 0
    table = (out / "results.csv").read_text().splitlines()
    assert table[0].startswith("run,seed,status,runtime_s") and len(table) == 3
    assert json.loads((out / "seed=2" / "metrics.json").read_text())["value"] == 4.0
    assert "| seed=1 " in (out / "results.md").read_text()
    mtime = (out / "seed=1" / "metrics.json").stat().st_mtime_ns
    result = subprocess.run([sys.executable, "-m", "medvl_core.cli", "batch", str(sweep), "--out", str(out)],
                            capture_output=True, text=True, check=True)
    assert "2 already complete, running 0" in result.stdout
    assert (out / "seed=1" / "metrics.json").stat().st_mtime_ns == mtime


def test_batch_rejects_bad_grid(fake_notebooks, tmp_path, capsys):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("paper: meems\ngrid:\n  sed: [1]\n")
    assert cli.main(["batch", str(sweep)]) == 2
    assert "unknown parameter 'sed'" in capsys.readouterr().err


def test_summary_lists_headline_and_runtime(fake_notebooks, tmp_path, capsys):
    out = tmp_path / "demo" / "meems"
    assert cli.main(["run", "meems", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert cli.main(["summary", str(tmp_path / "demo")]) == 0
    text = capsys.readouterr().out
    assert "meems" in text and "runtime_s" in text and "ok" in text


def test_clean_notebook_strips_timings(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"duration": 1.0}
    cell = nbformat.v4.new_code_cell("1")
    cell.metadata["execution"] = {"iopub.status.busy": "2026"}
    cell.metadata["papermill"] = {"duration": 0.1}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"3595a5": {}}}}
    cell.outputs = [nbformat.v4.new_output("display_data", {"application/vnd.jupyter.widget-view+json": {"model_id": "3595a5"}}),
                    nbformat.v4.new_output("display_data", {"application/vnd.jupyter.widget-view+json": {"model_id": "7"},
                                                            "text/plain": "epoch 1/3"})]
    nb.cells = [cell]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, str(path))
    clean_notebook(path)
    text = path.read_text()
    assert "duration" not in text and "iopub" not in text and "3595a5" not in text and "model_id" not in text
    assert [o["data"] for o in nbformat.read(str(path), 4).cells[0].outputs] == [{"text/plain": "epoch 1/3"}]
