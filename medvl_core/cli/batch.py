"""`medvl batch`: a sweep's grid of runs, on this machine or as Slurm jobs (submitit), tabulated in results.csv/.md."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ..config import runs_root
from ..errors import ParameterError
from ..io import atomic_write_text
from ..notebook import check_overrides, notebook_parameters
from ..papers import PAPERS, get_paper
from ..runs import read_metrics
from .run import EXIT_FAILED, load_params_file

EXECUTORS = ("local", "slurm")
SLURM_KEYS = {"partition": "slurm_partition", "gpus": "gpus_per_node", "time": "timeout_min", "mem": "mem_gb",
              "cpus": "cpus_per_task"}  # sweep file `slurm:` key -> submitit parameter
SLURM_DEFAULT_TIME_MIN = 24 * 60  # a job's time limit when the sweep gives no `time:` (submitit's own is 5 minutes)
LOCAL_TIME_MIN = 7 * 24 * 60  # a local run's time limit (submitit's local default, 2 minutes, kills most notebook runs)
SLURM_POLL_S = 2.0  # seconds between two looks at the Slurm queue while the jobs run
SLURM_GRACE_S = 30.0  # how long after a job ended its result file may take to appear (shared file systems)
SLURM_ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
                "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}
SLURM_LOST = {"CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED",
              "REVOKED", "SPECIAL_EXIT"}  # ended states after which no result file can come


def cmd_batch(args) -> int:
    """Expand a sweep's grid, run missing combinations (N at a time), write results.csv/.md."""
    sweep_path = Path(args.sweep)
    sweep = load_params_file(sweep_path)
    if "paper" not in sweep:
        raise ParameterError(f"{sweep_path} needs a `paper:` key naming one of: {', '.join(PAPERS)}")
    paper = get_paper(sweep["paper"])
    base = dict(sweep.get("params") or {})
    if sweep.get("params_file"):
        base = {**load_params_file(paper.params_file(sweep["params_file"])), **base}
    runs = expand_grid(base, sweep.get("grid") or {})
    defaults = notebook_parameters(paper.notebook)
    for params in runs:
        check_overrides(defaults, params, f"paper {paper.id} in {sweep_path}")
    out = (Path(args.out) if args.out else runs_root() / "sweeps" / sweep_path.stem).resolve()  # jobs may start elsewhere
    todo = [(params, out / run_name(params, sweep.get("grid") or {})) for params in runs]
    pending = [(p, d) for p, d in todo if not is_complete(d)]
    print(f"medvl: {len(todo)} runs in {out}, {len(todo) - len(pending)} already complete, running {len(pending)}"
          f" ({args.executor})")
    codes = submit_runs(paper.id, pending, out, args.executor, max(1, args.jobs), sweep.get("slurm") or {})
    table = results_table([d for _, d in todo], sorted((sweep.get("grid") or {}).keys()))
    atomic_write_text(out / "results.csv", table.to_csv(index=False))
    atomic_write_text(out / "results.md", table.to_markdown(index=False) + "\n")
    print(table.to_string(index=False))
    return EXIT_FAILED if any(codes) else 0


def expand_grid(base: dict, grid: dict) -> list[dict]:
    """Every combination of the grid's value lists on top of the base parameters."""
    for name, values in grid.items():
        if not isinstance(values, list):
            raise ParameterError(f"grid entry {name!r} must be a list of values, got {values!r}")
    names = list(grid)
    return [{**base, **dict(zip(names, combo))} for combo in itertools.product(*(grid[n] for n in names))]


def run_name(params: dict, grid: dict) -> str:
    """Folder name for one grid point, e.g. 'seed=1,threshold=0.3'."""
    parts = [f"{name}={params[name]}" for name in sorted(grid)] or ["default"]
    return re.sub(r"[^A-Za-z0-9_.=,+-]", "_", ",".join(parts))


def is_complete(run_dir: Path) -> bool:
    """A run is complete when run.json says ok and metrics.json exists."""
    try:
        status = json.loads((run_dir / "run.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return False
    return status == "ok" and (run_dir / "metrics.json").is_file()


def _run_subprocess(paper_id: str, params: dict, run_dir: Path) -> int:
    """One run in its own process (own kernel env), parameters passed through a params file; resumes its trainings."""
    run_dir.mkdir(parents=True, exist_ok=True)
    params_file = run_dir / "overrides.yaml"
    atomic_write_text(params_file, yaml.safe_dump(params, sort_keys=False))
    cmd = [sys.executable, "-m", "medvl_core.cli", "run", paper_id, "-f", str(params_file), "--out", str(run_dir), "--quiet"]
    return subprocess.call(cmd)


def submit_runs(paper_id: str, pending: list, out: Path, executor: str, jobs: int, slurm: dict) -> list[int]:
    """Run (params, run_dir) pairs through submitit: `jobs` at a time on this machine, or as Slurm jobs."""
    import submitit

    if executor not in EXECUTORS:
        raise ParameterError(f"--executor {executor!r}: use one of {EXECUTORS}")
    if not pending:
        return []
    pool = submitit.AutoExecutor(folder=out / "submitit", cluster=executor)
    pool.update_parameters(name=f"medvl-{paper_id}",
                           **slurm_parameters(slurm, jobs) if executor == "slurm" else {"timeout_min": LOCAL_TIME_MIN})
    codes = []
    waves = [pending] if executor == "slurm" else [pending[i:i + jobs] for i in range(0, len(pending), jobs)]
    for wave in waves:
        with pool.batch():
            handles = [pool.submit(_run_subprocess, paper_id, params, run_dir) for params, run_dir in wave]
        if executor == "slurm":
            print(f"medvl: submitted Slurm job(s) {', '.join(h.job_id for h in handles)}; logs in {out / 'submitit'}")
            codes += wait_slurm(handles)
        else:
            codes += [_job_code(handle) for handle in handles]
    return codes


def slurm_parameters(slurm: dict, jobs: int) -> dict:
    """submitit parameters from a sweep file's `slurm:` block (partition, gpus, time in minutes, mem in GB, cpus)."""
    unknown = set(slurm) - set(SLURM_KEYS)
    if unknown:
        raise ParameterError(f"sweep slurm: keys {sorted(unknown)} unknown; use {sorted(SLURM_KEYS)}")
    return {"slurm_array_parallelism": jobs, "timeout_min": SLURM_DEFAULT_TIME_MIN,
            **{SLURM_KEYS[key]: value for key, value in slurm.items()}}


def wait_slurm(handles, poll_s: float = SLURM_POLL_S, grace_s: float = SLURM_GRACE_S) -> list[int]:
    """Exit codes of Slurm jobs: each once its result file is there, or it ended without one (squeue; no sacct)."""
    codes: dict[int, int] = {}
    ended_at: dict[int, float] = {}
    while True:
        states = slurm_states([h.job_id for h in handles])
        for i, handle in enumerate(handles):
            if i in codes:
                continue
            state = None if states is None else states.get(handle.job_id, "ENDED")
            if handle.paths.result_pickle.exists() or (states is None and handle.done()):  # no squeue: sacct
                codes[i] = _job_code(handle, state)
            elif state in SLURM_LOST:
                codes[i] = _lost_job(handle, state)
            elif state is not None and state not in SLURM_ACTIVE:  # ended: its result file may still be on its way
                ended_at.setdefault(i, time.monotonic())
                if time.monotonic() - ended_at[i] >= grace_s:
                    codes[i] = _lost_job(handle, state)
        if len(codes) == len(handles):
            return [codes[i] for i in range(len(handles))]
        time.sleep(poll_s)


def slurm_states(job_ids: list[str]) -> dict[str, str] | None:
    """Slurm state of each job the controller still knows (array tasks as A_i), from squeue; None when squeue fails."""
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i %T", "-j", ",".join(arrays)],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # squeue also fails when every id has left the controller's memory
        return {} if "Invalid job id" in out.stderr else None
    return dict(line.split(maxsplit=1) for line in out.stdout.splitlines() if len(line.split()) == 2)


def _lost_job(handle, state: str) -> int:
    """EXIT_FAILED for a job that ended without a result file (cancelled, timed out, killed), with its last log line."""
    try:
        lines = [ln for ln in handle.paths.stderr.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    last = lines[-1].strip() if lines else "no log line"
    print(f"medvl: job {handle.job_id} ended {state} without a result: {last}; "
          f"log {handle.paths.stderr}", file=sys.stderr)
    return EXIT_FAILED


def _job_code(handle, state: str | None = None) -> int:
    """A finished submitit job's exit status (1 when the job failed or was killed), reported on stderr when not 0."""
    try:
        code = int(handle.result())
    except Exception as exc:  # noqa: BLE001 - submitit raises its own failure types; the table shows the run
        print(f"medvl: job {handle.job_id} failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}",
              file=sys.stderr)
        return EXIT_FAILED
    if code:
        how = f"was killed by signal {-code}" if code < 0 else f"exited {code}"
        print(f"medvl: job {handle.job_id}{f' ({state})' if state else ''}: its medvl run {how}; log "
              f"{handle.paths.stderr}", file=sys.stderr)
    return EXIT_FAILED if code < 0 else code


def results_table(run_dirs: list[Path], param_names: list[str]):
    """One row per run: grid parameters, status, runtime and every recorded metric."""
    import pandas as pd

    rows = []
    for run_dir in run_dirs:
        row = {"run": run_dir.name}
        params = yaml.safe_load((run_dir / "params.yaml").read_text()) if (run_dir / "params.yaml").exists() else {}
        row.update({name: params.get(name) for name in param_names})
        status = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
        row.update(status=status.get("status", "missing"), runtime_s=status.get("runtime_s"))
        if (run_dir / "metrics.json").exists():
            row.update({k: v for k, v in read_metrics(run_dir).items() if not isinstance(v, (dict, list))})
        rows.append(row)
    return pd.DataFrame(rows)
