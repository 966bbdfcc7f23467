"""Paper-scale run safety through `medvl run` on a stand-in notebook that trains with the engine like the papers do:
checkpoints in the run folder (trainable state only), SIGKILL then resume to the same metrics, a foreign
checkpoint's error naming --fresh, epoch lines in run.log and on the terminal, --processes 2 (gloo) vs 1 (and the
--processes 2 folder rerun on one process), and `medvl batch --executor local` through submitit."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from stand_in import write_stand_in

from medvl_core import cli
from medvl_core.cli.batch import slurm_parameters
from medvl_core.errors import ParameterError

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("own-resume")]  # one worker: the clean run is shared

BODY = """import time
import torch
from medvl_core import runs
from medvl_core.train import TrainConfig, train

runs.start_run("meems")
metrics = {}
for arm in range(2):
    torch.manual_seed(arm)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    model[0].requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    items = [{"x": torch.randn(4, generator=g), "y": torch.randn(1, generator=g)} for _ in range(30)]

    def loss(m, batch):
        time.sleep(sleep)
        return torch.nn.functional.mse_loss(m(batch["x"]), batch["y"])

    config = TrainConfig(epochs=epochs, global_batch_size=8, lr=0.05, optimizer="adam", device="cpu", progress=False,
                         seed=arm, log_every=1)
    result = train(model, items, loss, config)
    metrics[f"loss_{arm}"] = result.history[-1]["train_loss"]
    metrics[f"weight_{arm}"] = float(model[2].weight.double().sum())
    metrics[f"draw_{arm}"] = float(torch.rand(1))
runs.record(**metrics)"""


@pytest.fixture(scope="module")
def stand_in_folder(tmp_path_factory):
    """A notebooks folder whose meems.ipynb trains two small models (one frozen layer each, 30 items: a partial last
    batch) with the engine."""
    return write_stand_in(tmp_path_factory.mktemp("stand-in") / "notebooks",
                          "epochs = 4  # epochs per training\nsleep = 0.0  # seconds per step", [BODY])


@pytest.fixture
def trainer_notebook(stand_in_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVL_NOTEBOOKS", str(stand_in_folder))
    monkeypatch.chdir(tmp_path)
    return stand_in_folder


@pytest.fixture(scope="module")
def clean_run(stand_in_folder, tmp_path_factory):
    """(folder, seconds, terminal stderr) of one uninterrupted run with the default parameters, `--out` relative to
    the working directory: the metrics every other run of the stand-in must record (the sleep parameter only slows
    a run down)."""
    cwd = tmp_path_factory.mktemp("clean")
    started = time.time()
    job = medvl("run", "meems", "--out", "run", cwd=cwd, env={**os.environ, "MEDVL_NOTEBOOKS": str(stand_in_folder)})
    _, err = job.communicate(timeout=300)
    assert job.returncode == 0, err
    return cwd / "run", time.time() - started, err


def medvl(*args, **options) -> subprocess.Popen:
    """`medvl ARGS` as a child process in its own session (so the kernel can be killed with it)."""
    return subprocess.Popen([sys.executable, "-m", "medvl_core.cli", *args], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)


def metrics(folder) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_killed_run_resumes_to_the_metrics_of_a_clean_run(trainer_notebook, clean_run, tmp_path):
    (clean, clean_seconds, _), killed = clean_run, tmp_path / "killed"
    first = sorted((clean / "checkpoints").iterdir())
    assert [p.name.split("-")[:2] for p in first] == [["001", "Sequential"], ["002", "Sequential"]]
    saved = torch.load(first[0] / "last.pt", weights_only=True)
    assert sorted(saved["model"]) == ["2.bias", "2.weight"] and saved["epoch"] == 4  # frozen layer left out

    job = medvl("run", "meems", "--out", str(killed), "-p", "sleep", "0.1", "--quiet")
    deadline = time.time() + 240
    while not list((killed / "checkpoints").glob("001-*/last.pt")) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)  # medvl and its kernel, mid-training
    job.wait(timeout=30)
    assert not (killed / "metrics.json").exists()
    assert torch.load(next((killed / "checkpoints").glob("001-*/last.pt")), weights_only=True)["epoch"] < 4
    started = time.time()
    assert medvl("run", "meems", "--out", str(killed), "-p", "sleep", "0.1", "--quiet").wait(timeout=300) == 0
    resumed_seconds = time.time() - started
    assert metrics(killed) == metrics(clean)  # bit for bit, RNG draws after the trainings included
    log = (killed / "run.log").read_text()
    assert "001-Sequential" in log and "resumed after epoch" in log
    assert resumed_seconds < clean_seconds + 30  # printed for the note; the metrics are what is compared
    print(f"clean {clean_seconds:.1f} s, resumed {resumed_seconds:.1f} s")

    # a rerun of the finished folder loads every training instead of training again
    assert cli.main(["run", "meems", "--out", str(killed), "-p", "sleep", "0.1", "--quiet"]) == 0
    assert metrics(killed) == metrics(clean)
    assert (killed / "run.log").read_text().count("finished earlier (4 epochs)") >= 2


def test_foreign_checkpoint_names_the_file_and_fresh(trainer_notebook, clean_run, tmp_path, capsys):
    out = shutil.copytree(clean_run[0], tmp_path / "run")
    reference = metrics(out)
    target = next((out / "checkpoints").glob("001-*/last.pt"))
    target.write_bytes(b"not a checkpoint")
    assert cli.main(["run", "meems", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert str(target) in err and "--fresh" in err
    assert cli.main(["run", "meems", "--out", str(out), "--quiet", "--fresh"]) == 0
    assert metrics(out) == reference


def test_epoch_lines_reach_run_log_and_terminal_not_the_notebook(clean_run):
    out, _, terminal = clean_run
    lines = (out / "run.log").read_text().splitlines()
    assert sum(" epoch " in line for line in lines) == 8  # 2 trainings x 4 epochs
    assert "001-Sequential" in lines[0] and "epoch 1/4 loss" in lines[0] and "s/epoch ETA" in lines[0]
    assert "epoch 4/4 loss" in terminal
    assert "s/epoch" not in (out / "meems.ipynb").read_text()


def test_two_processes_reproduce_one(trainer_notebook, clean_run, tmp_path):
    one, two = clean_run[0], tmp_path / "two"
    assert cli.main(["run", "meems", "--out", str(two), "--quiet", "--processes", "2"]) == 0
    a, b = metrics(one), metrics(two)
    assert a.keys() == b.keys()
    for key in a:
        assert b[key] == pytest.approx(a[key], abs=1e-5), key
    notebook = (two / "meems.ipynb").read_text()
    assert "global batch 8 = 2 x 4 per process" in notebook and "2 x 4" in (two / "run.log").read_text()
    # the checkpoints record the global batch: the same folder reruns on one process, loading every training
    assert cli.main(["run", "meems", "--out", str(two), "--quiet", "--processes", "1"]) == 0
    assert (two / "run.log").read_text().count("finished earlier (4 epochs)") >= 2
    assert metrics(two) == b


def test_processes_must_split_the_global_batch(trainer_notebook, tmp_path, capsys):
    assert cli.main(["run", "meems", "--out", str(tmp_path / "r"), "--quiet", "--processes", "3"]) == 1
    assert "must split evenly over 3 processes" in capsys.readouterr().err


def test_batch_local_executor_through_submitit_resumes(trainer_notebook, tmp_path):
    sweep = tmp_path / "sweep-epochs.yaml"
    sweep.write_text("paper: meems\ngrid:\n  epochs: [1, 2]\nslurm: {partition: gpu, gpus: 1, time: 60}\n")
    out = tmp_path / "sweep"
    assert cli.main(["batch", str(sweep), "--executor", "local", "--jobs", "2", "--out", str(out)]) == 0
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("run,epochs,status") and len(rows) == 3 and all(",ok," in row for row in rows[1:])
    assert list((out / "submitit").glob("*_log.out"))  # the jobs went through submitit
    assert list((out / "epochs=2" / "checkpoints").glob("00*-Sequential-*/last.pt"))
    assert slurm_parameters({"partition": "gpu", "gpus": 1, "time": 60}, 4) == {
        "slurm_array_parallelism": 4, "slurm_partition": "gpu", "gpus_per_node": 1, "timeout_min": 60}
    with pytest.raises(ParameterError, match="unknown"):
        slurm_parameters({"queue": "x"}, 1)
