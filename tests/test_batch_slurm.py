"""How `medvl batch --executor slurm` asks Slurm for resources and follows its jobs without sacct: squeue states,
cancelled jobs, result files (a fake squeue on PATH; tests/test_slurm_real.py runs a real cluster)."""

import os
import stat
import time
from pathlib import Path
from types import SimpleNamespace

from medvl_core.cli import batch
from medvl_core.cli.batch import SLURM_DEFAULT_TIME_MIN, slurm_parameters, slurm_states, wait_slurm


def fake_squeue(folder: Path, monkeypatch, stdout: str = "", stderr: str = "", code: int = 0) -> Path:
    """A `squeue` on PATH that prints `stdout`/`stderr`, exits `code` and logs its arguments to squeue.args."""
    script = folder / "squeue"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {folder}/squeue.args\nprintf '%s' '{stdout}'\n"
                      f"printf '%s' '{stderr}' >&2\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder / "squeue.args"


def handle(tmp_path: Path, job_id: str, result=None, log: str = "", done: bool = False):
    """A stand-in for a submitit job: its result file exists when `result` is given."""
    paths = SimpleNamespace(result_pickle=tmp_path / f"{job_id}_result.pkl", stderr=tmp_path / f"{job_id}_log.err")
    if result is not None:
        paths.result_pickle.write_text("done")
    paths.stderr.write_text(log)
    return SimpleNamespace(job_id=job_id, paths=paths, result=lambda: result, done=lambda: done)


def test_time_limit_defaults_to_a_day_not_submitits_five_minutes():
    assert slurm_parameters({}, 3) == {"slurm_array_parallelism": 3, "timeout_min": SLURM_DEFAULT_TIME_MIN}
    assert SLURM_DEFAULT_TIME_MIN == 1440
    assert slurm_parameters({"time": 30, "cpus": 2, "mem": 4}, 1) == {
        "slurm_array_parallelism": 1, "timeout_min": 30, "cpus_per_task": 2, "mem_gb": 4}


def test_squeue_states_of_array_tasks(tmp_path, monkeypatch):
    args = fake_squeue(tmp_path, monkeypatch, stdout="7_0 COMPLETED\n7_1 RUNNING\n")
    assert slurm_states(["7_0", "7_1"]) == {"7_0": "COMPLETED", "7_1": "RUNNING"}
    assert args.read_text().split() == ["-h", "-r", "-t", "all", "-o", "%i", "%T", "-j", "7"]


def test_squeue_forgot_the_jobs_or_is_missing(tmp_path, monkeypatch):
    fake_squeue(tmp_path, monkeypatch, stderr="slurm_load_jobs error: Invalid job id specified", code=1)
    assert slurm_states(["9_0"]) == {}
    fake_squeue(tmp_path, monkeypatch, stderr="Unable to contact slurm controller", code=1)
    assert slurm_states(["9_0"]) is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert slurm_states(["9_0"]) is None


def test_wait_reads_results_and_reports_a_cancelled_job(tmp_path, monkeypatch, capsys):
    fake_squeue(tmp_path, monkeypatch, stdout="5_0 COMPLETED\n5_1 CANCELLED\n5_2 CANCELLED\n5_3 COMPLETED\n")
    jobs = [handle(tmp_path, "5_0", result=0),
            handle(tmp_path, "5_1", log="slurmstepd: error: *** JOB 6 ON vm CANCELLED AT 2026-12-08T00:20:01 ***\n"),
            handle(tmp_path, "5_2", result=-15),  # scancel's SIGTERM reached `medvl run` before submitit stopped
            handle(tmp_path, "5_3", result=2)]
    assert wait_slurm(jobs, poll_s=0.01) == [0, batch.EXIT_FAILED, batch.EXIT_FAILED, 2]
    err = capsys.readouterr().err
    assert "job 5_1 ended CANCELLED without a result" in err and "JOB 6 ON vm CANCELLED" in err
    assert str(tmp_path / "5_1_log.err") in err
    assert "job 5_2 (CANCELLED): its medvl run was killed by signal 15" in err
    assert "job 5_3 (COMPLETED): its medvl run exited 2" in err and "job 5_0" not in err


def test_wait_gives_an_ended_job_a_grace_for_its_result_file(tmp_path, monkeypatch, capsys):
    fake_squeue(tmp_path, monkeypatch, stderr="Invalid job id specified", code=1)  # purged from the controller
    assert wait_slurm([handle(tmp_path, "8_0")], poll_s=0.01, grace_s=0.05) == [batch.EXIT_FAILED]
    assert "job 8_0 ended ENDED without a result: no log line" in capsys.readouterr().err


def test_wait_keeps_polling_a_running_job(tmp_path, monkeypatch):
    fake_squeue(tmp_path, monkeypatch, stdout="4_0 RUNNING\n")
    job = handle(tmp_path, "4_0")
    sleeps = []

    def finish_after_two_polls(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            job.paths.result_pickle.write_text("done")
            job.result = lambda: 0

    monkeypatch.setattr(batch, "time", SimpleNamespace(sleep=finish_after_two_polls, monotonic=time.monotonic))
    assert wait_slurm([job], poll_s=0.5, grace_s=0) == [0]
    assert sleeps == [0.5, 0.5]


def test_wait_without_squeue_asks_submitit(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    job = handle(tmp_path, "3", done=True)  # no result file here yet; submitit's sacct says the job is done
    job.result = lambda: 2
    assert wait_slurm([job], poll_s=0.01) == [2]
