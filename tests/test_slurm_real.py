"""`medvl batch --executor slurm` through sbatch on a real Slurm cluster: a 2-point M3G sweep at toy size (one run
finishes, the other is cancelled with scancel mid-training and resumes from its checkpoint), then a rerun that
submits nothing. Needs a running cluster (`sinfo`); as root with MEDVL_REQUIRE_SLURM=1 (CI: .ci/run) it starts a
single-node one with .ci/slurm-up and fails instead of skipping when it cannot."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("own-slurm")]  # a worker of its own, mostly waiting on jobs

REPO = Path(__file__).resolve().parents[1]
SLURM_UP = REPO / ".ci" / "slurm-up"
# The cheapest paper that trains with checkpoints: M3G on the default SynthDerm world, two seeds (its claims need
# two), one batch size. epochs=1 finishes; epochs=40 leaves time to cancel its first training after an epoch.
SWEEP = """paper: m3g_answer_generation
params:
  seeds: [0, 1]
  global_batch_sizes: [256]
grid:
  epochs: [1, 40]
slurm: {time: 20, cpus: 1, mem: 4}
"""


def _sinfo_idle() -> bool:
    """True when `sinfo` answers and a node is idle (or already running jobs)."""
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(s.strip() in ("idle", "mixed", "allocated") for s in out.stdout.split())


@pytest.fixture(scope="module")
def slurm():
    """A Slurm cluster that takes jobs: the running one, or one started by .ci/slurm-up (root, MEDVL_REQUIRE_SLURM)."""
    required = os.environ.get("MEDVL_REQUIRE_SLURM") == "1"
    started = None
    if not _sinfo_idle() and os.geteuid() == 0 and (required or shutil.which("sinfo")):
        started = subprocess.run([str(SLURM_UP)], capture_output=True, text=True, timeout=600)
    if _sinfo_idle():
        return subprocess.run(["sinfo"], capture_output=True, text=True, timeout=30).stdout
    why = "no Slurm cluster answers `sinfo`"
    if started is not None:
        why += f" and .ci/slurm-up failed: {(started.stderr.strip().splitlines() or ['no message'])[-1]}"
    elif os.geteuid() != 0:
        why += " and starting one with .ci/slurm-up needs root"
    else:
        why += "; start one with .ci/slurm-up (as root: installs slurm-wlm and munge with apt-get, one node here)"
    if required:
        pytest.fail(f"MEDVL_REQUIRE_SLURM=1 but {why}")
    pytest.skip(why)


@pytest.fixture
def batches(tmp_path):
    """The `medvl batch` processes a test starts; on the way out, those still running are killed and every job they
    submitted (the ids in the sweep's submitit folder) is cancelled, so that a failed test leaves nothing queued."""
    started: list[subprocess.Popen] = []
    yield started
    for job in started:
        if job.poll() is None:
            job.kill()
            job.communicate()
    ids = {p.name.split("_")[0] for p in tmp_path.glob("sweep/submitit/*_submitted.pkl")}
    if ids:
        subprocess.run(["scancel", *sorted(ids)], capture_output=True, timeout=60)


def medvl_batch(sweep: Path, out: Path) -> subprocess.Popen:
    """`medvl batch SWEEP --executor slurm --jobs 1 --out OUT` as a child process (the jobs run one at a time)."""
    return subprocess.Popen([sys.executable, "-m", "medvl_core.cli", "batch", str(sweep), "--executor", "slurm",
                             "--jobs", "1", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})


def finish(job: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of a finished `medvl batch`."""
    out, err = job.communicate(timeout=timeout)
    return job.returncode, out, err


def wait_for(path_glob, folder: Path, timeout: float) -> Path:
    """The first file matching `path_glob` under `folder`, waiting for it up to `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = sorted(folder.glob(path_glob))
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no {path_glob} under {folder} after {timeout} s")


def queued(job_id: str) -> bool:
    """Whether Slurm still lists the job as pending or running."""
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-j", job_id.split("_")[0]], capture_output=True,
                         text=True, timeout=30)
    return job_id in out.stdout.split()


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_sweep_through_sbatch_skips_complete_runs_and_resumes_a_cancelled_one(slurm, tmp_path, batches):
    sweep, out = tmp_path / "sweep-epochs.yaml", tmp_path / "sweep"
    sweep.write_text(SWEEP)
    short, long = out / "epochs=1", out / "epochs=40"
    batch = medvl_batch(sweep, out)
    batches.append(batch)

    # --jobs 1: a job array run one task at a time; the second starts once the first has finished
    checkpoint = wait_for("checkpoints/001-*/last.pt", long, timeout=1500)  # an empty data root: worlds, caches
    assert (short / "metrics.json").is_file() and checkpoint.stat().st_mtime >= (short / "metrics.json").stat().st_mtime
    job_id = wait_for("*_1_submitted.pkl", out / "submitit", 5).name.removesuffix("_submitted.pkl")
    subprocess.run(["scancel", job_id], check=True, timeout=30)
    code, stdout, stderr = finish(batch)
    assert code == 1 and f"medvl: job {job_id}" in stderr, stderr  # killed by SIGTERM, or CANCELLED without a result
    assert "killed by signal 15" in stderr or "CANCELLED without a result" in stderr, stderr
    assert "2 runs in" in stdout and "running 2 (slurm)" in stdout
    assert not queued(job_id) and not (long / "metrics.json").exists()
    epoch = torch.load(next(long.glob("checkpoints/001-*/last.pt")), weights_only=True)["epoch"]
    assert 1 <= epoch < 40  # cancelled mid-training
    assert "CANCELLED AT" in (out / "submitit" / f"{job_id}_0_log.err").read_text()  # Slurm's own line
    # the job script: the sweep's slurm: block, one array task at a time, this environment's Python
    script = next((out / "submitit").glob("*_submission.sh")).read_text()
    for line in ("--time=20", "--cpus-per-task=1", "--mem=4GB", "--array=0-1%1", "--job-name=medvl-m3g_answer_generation"):
        assert f"#SBATCH {line}\n" in script, script
    assert f" {sys.executable} -u -m submitit.core._submit " in script
    assert "threads 1" in (short / "m3g_answer_generation.ipynb").read_text()  # the job saw OMP_NUM_THREADS=1
    first = metrics(short)
    assert first["n_seeds"] == 2 and "dbleu_clip_best" in first
    short_mtime = (short / "metrics.json").stat().st_mtime_ns

    # the same sweep again: the complete run is skipped, the cancelled one resumes from its checkpoint
    batches.append(medvl_batch(sweep, out))
    code, stdout, stderr = finish(batches[-1], timeout=1200)
    assert code == 0, stderr
    assert "1 already complete, running 1 (slurm)" in stdout
    log = (long / "run.log").read_text()
    assert f"resumed after epoch {epoch}" in log and "epoch 40/40" in log, log
    assert (short / "metrics.json").stat().st_mtime_ns == short_mtime and metrics(short) == first
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("run,epochs,status,runtime_s,") and "dbleu_clip_best" in rows[0]
    assert sorted(row.split(",")[:3] for row in rows[1:]) == [["epochs=1", "1", "ok"], ["epochs=40", "40", "ok"]]
    assert metrics(long)["n_seeds"] == 2

    # a third time: nothing to run, no job submitted, no run folder touched
    submitted = sorted(p.name for p in (out / "submitit").iterdir())
    long_mtime = (long / "metrics.json").stat().st_mtime_ns
    batches.append(medvl_batch(sweep, out))
    code, stdout, stderr = finish(batches[-1], timeout=300)
    assert code == 0, stderr
    assert "2 already complete, running 0 (slurm)" in stdout and "submitted Slurm job" not in stdout
    assert sorted(p.name for p in (out / "submitit").iterdir()) == submitted
    assert (short / "metrics.json").stat().st_mtime_ns == short_mtime
    assert (long / "metrics.json").stat().st_mtime_ns == long_mtime


def test_slurm_up_leaves_a_running_cluster_alone(slurm):
    pid_file = Path("/run/slurmctld.pid")
    before = pid_file.read_text() if pid_file.exists() else None
    done = subprocess.run([str(SLURM_UP)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "slurm-up: already up" in done.stderr, done.stderr
    assert (pid_file.read_text() if pid_file.exists() else None) == before  # the controller was not restarted
