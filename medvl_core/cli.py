"""`medvl` command line: list, run, batch, compare, refresh, summary, check-data (`medvl --help`)."""

from __future__ import annotations

import argparse
import ast
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from . import run_env as session
from .config import REPO_ROOT, runs_root
from .errors import MedvlError, ParameterError, UsageError
from .io import atomic_write_json, atomic_write_text
from .notebook import check_overrides, notebook_parameters
from .papers import PAPERS, get_paper
from .runs import RUN_DIR_ENV, read_metrics

EXIT_USAGE = 2
EXIT_FAILED = 1
EXECUTORS = ("local", "slurm")
SLURM_KEYS = {"partition": "slurm_partition", "gpus": "gpus_per_node", "time": "timeout_min", "mem": "mem_gb",
              "cpus": "cpus_per_task"}  # sweep file `slurm:` key -> submitit parameter
EPILOG = """\
environment:
  MEDVL_DATA          data root: real datasets, generated synthetic worlds, caches (default ~/.cache/medvl)
  MEDVL_RUNS          where `medvl run` and `medvl batch` put their folders when --out is not given, and
                      where a notebook run outside `medvl run` records (interactive/<paper>); default ./runs
  MEDVL_NOTEBOOKS     folder of the paper notebooks that list, run, batch and refresh use, e.g. your edited
                      copies (default: the repository's notebooks/)
  MEDVL_TRUST_REMOTE_CODE=1
                      let hf: checkpoints that ship their own model code load (it runs that code)
  ANTHROPIC_API_KEY, OPENAI_API_KEY
                      read from the environment only, and only when a parameter asks for a paid call

exit status:
  0  ok
  1  a run or check failed (a notebook cell, a data check finding bad items, an error while running)
  2  usage error: unknown paper, parameter, file or dataset, or a bad option value; nothing ran
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (`medvl run: error: ...`), like every other `medvl` error."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv=None) -> int:
    """Entry point of the `medvl` console script: 0 ok, 1 failed, 2 usage error."""
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error printed by argparse
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return args.func(args)
    except MedvlError as exc:
        print(f"medvl: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILED


def package_version() -> str:
    """The installed medvl version, or pyproject.toml's when the package is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medvl")
    except PackageNotFoundError:
        import tomllib

        return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


def paper_id(text: str) -> str:
    """argparse type of a paper positional: a known id, else one line with the closest id and every id."""
    try:
        return get_paper(text).id
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def dataset_names() -> list[str]:
    """Names `medvl_core.data.open_dataset` knows, read from the data package's source.

    Importing `medvl_core.data` imports torch, which would make every `medvl --help` slow; the names are the
    string first arguments of `register(...)` calls and the keys of `SYNTHETIC_WORLDS`.
    """
    names = set()
    for path in (Path(__file__).parent / "data").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register" and node.args:
                names.add(ast.literal_eval(node.args[0]))
            elif isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "SYNTHETIC_WORLDS":
                names.update(ast.literal_eval(key) for key in node.value.keys)
    return sorted(names)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="medvl", description="Run the medvl executable papers.", epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"medvl {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="list the papers and their parameters").set_defaults(func=cmd_list)
    _add_run(sub)
    _add_batch(sub)
    _add_compare(sub)
    refresh = sub.add_parser("refresh", help="re-execute notebooks with default parameters and commit-ready outputs")
    # a type check, not `choices`: argparse rejects an empty nargs="*" list against choices (Python < 3.13)
    refresh.add_argument("papers", nargs="*", type=paper_id, metavar="PAPER",
                         help=f"paper ids (default: all): {', '.join(PAPERS)}")
    refresh.set_defaults(func=cmd_refresh)
    summary = sub.add_parser("summary", help="headline metric and runtime of every run under a folder")
    summary.add_argument("folder", help="folder whose subfolders are run folders, e.g. runs/demo")
    summary.set_defaults(func=cmd_summary)
    _add_check_data(sub)
    return parser


def _paper_positional(parser, help_text: str) -> None:
    parser.add_argument("paper", type=paper_id, choices=list(PAPERS), metavar="PAPER",
                        help=f"{help_text}: {', '.join(PAPERS)}")


def _add_run(sub) -> None:
    run = sub.add_parser("run", help="execute a paper notebook with papermill into a run folder")
    _paper_positional(run, "paper id")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="override one parameter (VALUE is parsed as YAML); wins over -f")
    run.add_argument("-f", "--params-file", action="append", default=[], metavar="FILE",
                     help="YAML mapping of parameter overrides: a path, or a bare name such as `full` meaning "
                          "papers/<paper>/params/full.yaml (repeatable; later files win)")
    run.add_argument("--out", help="run folder (default $MEDVL_RUNS/<paper>/<timestamp>; runs/<paper>/<timestamp> "
                                   "when MEDVL_RUNS is unset)")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no epoch lines (run.log keeps them)")
    run.add_argument("--fresh", action="store_true",
                     help="discard the run folder's training checkpoints instead of resuming from them")
    run.add_argument("--processes", type=int, default=1, metavar="N",
                     help="train on N processes (Accelerate data parallelism; one per GPU, or gloo on CPU) at the "
                          "notebook's global batch")
    run.set_defaults(func=cmd_run)


def _add_batch(sub) -> None:
    batch = sub.add_parser("batch", help="run a parameter sweep (grid) and tabulate all runs")
    batch.add_argument("sweep", help="YAML sweep file: paper:, optional params: / params_file:, grid: of value "
                                     "lists, optional slurm:")
    batch.add_argument("--jobs", type=int, default=1, help="runs at the same time")
    batch.add_argument("--out", help="sweep folder (default $MEDVL_RUNS/sweeps/<sweep name>; runs/sweeps/<sweep "
                                     "name> when MEDVL_RUNS is unset)")
    batch.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local: processes on this machine; slurm: one Slurm job per run (submitit; resources "
                            "from the sweep's slurm: block)")
    batch.set_defaults(func=cmd_batch)


def _add_compare(sub) -> None:
    compare = sub.add_parser("compare", help="the paper's tables beside a run folder's numbers")
    _paper_positional(compare, "paper id")
    compare.add_argument("run_dir", help="a run folder of that paper (holding metrics.json)")
    compare.add_argument("--format", choices=("text", "md"), default="text", help="terminal text or Markdown")
    compare.set_defaults(func=cmd_compare)


def _add_check_data(sub) -> None:
    check = sub.add_parser("check-data", help="open every image and report of a dataset once; list the bad ones")
    names = dataset_names()
    check.add_argument("dataset", choices=names, metavar="DATASET", help=f"dataset name: {', '.join(names)}")
    check.add_argument("--root", help="dataset folder (default: its place under $MEDVL_DATA)")
    check.add_argument("--split", default="all", help="split to check (default: all)")
    check.add_argument("--views", help="views to include, e.g. all (default: the loader's, usually frontal)")
    check.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="reader threads")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(func=cmd_check_data)


def cmd_check_data(args) -> int:
    """Exit 0 when every item of the dataset reads, else print the bad items and exit 1."""
    import pandas as pd

    from .data import open_dataset
    from .data.check import check_dataset

    options = {"views": args.views} if args.views else {}
    dataset = open_dataset(args.dataset, args.root, split=args.split, **options)
    bad = check_dataset(dataset, args.workers, progress=not args.quiet)
    if bad.empty:
        print(f"{args.dataset} ({args.split}): {len(dataset)} items, no bad items")
        return 0
    with pd.option_context("display.max_rows", None, "display.max_colwidth", 120, "display.width", 200):
        print(bad.to_string(index=False))
    counts = ", ".join(f"{n} {problem}" for problem, n in bad["problem"].value_counts().items())
    print(f"{args.dataset} ({args.split}): {bad['index'].nunique()} bad items of {len(dataset)} ({counts})")
    return 1


def cmd_list(args) -> int:
    """Print each paper id, title and parameter names."""
    for paper in PAPERS.values():
        names = ", ".join(notebook_parameters(paper.notebook)) if paper.notebook.exists() else "(notebook missing)"
        print(f"{paper.id:34s} {paper.title}\n{'':34s} parameters: {names}")
    return 0


def cmd_run(args) -> int:
    """Validate parameters, execute the notebook, report success or the failing cell."""
    paper = get_paper(args.paper)
    overrides = {}
    for file in args.params_file:
        overrides.update(load_params_file(params_path(paper, file)))
    overrides.update({name: _parse_value(value) for name, value in args.param})
    out = Path(args.out) if args.out else runs_root() / paper.id / time.strftime("%Y%m%d-%H%M%S")
    if args.processes < 1:
        raise ParameterError(f"--processes {args.processes}: give 1 or more")
    return execute(paper.id, overrides, out, progress=not args.quiet, fresh=args.fresh, processes=args.processes)


def params_path(paper, file: str) -> Path:
    """-f FILE: an existing path, else papers/<paper>/params/FILE[.yaml]; a usage error naming both when neither exists."""
    if Path(file).is_file():
        return Path(file)
    path = paper.params_file(file)
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml"))) or "none"
        raise ParameterError(f"params file {file!r} not found: neither a file nor papers/{paper.id}/params/"
                             f"{path.name} (names there: {names})")
    return path


def load_params_file(path: Path) -> dict:
    """A YAML mapping of parameter overrides, or a clear error naming the file."""
    if not path.is_file():
        raise ParameterError(f"params file {path} not found; give a path or a name under papers/<paper>/params/")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ParameterError(f"{path} must be a mapping of parameter names to values")
    return data


def _parse_value(text: str):
    """Parse a -p VALUE as YAML (numbers, booleans, lists), keeping plain words as strings."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if isinstance(value, dict) else value


def execute(paper_id: str, overrides: dict, out: Path, progress: bool = True, fresh: bool = False,
            processes: int = 1) -> int:
    """Run one paper notebook with papermill into `out`; exit status 0 ok, 1 failed cell, 2 bad input.

    Every training of the notebook checkpoints into `out/checkpoints/` and a rerun into the same folder resumes
    (`fresh` discards them first); epoch lines go to `out/run.log` and, with `progress`, to the terminal.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    paper = get_paper(paper_id)
    params = check_overrides(notebook_parameters(paper.notebook), overrides, f"paper {paper.id}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    (out / "metrics.json").unlink(missing_ok=True)  # a rerun into the same folder must not keep stale keys
    if fresh:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    atomic_write_text(out / "params.yaml", yaml.safe_dump(params, sort_keys=False))
    output = out / f"{paper.id}.ipynb"
    started = time.time()
    env = {RUN_DIR_ENV: str(out.resolve()), session.CHECKPOINT_ROOT_ENV: str((out / "checkpoints").resolve()),
           session.RUN_LOG_ENV: str((out / "run.log").resolve()), session.PROCESSES_ENV: str(processes)}
    (out / "run.log").open("a").close()
    # the kernel inherits our environment; a non-inline MPLBACKEND (the Makefile's Agg) would drop every figure
    backend = os.environ.pop("MPLBACKEND", None)
    os.environ.update(env)
    status = {"paper": paper.id, "status": "running", "overrides": overrides, "processes": processes}
    atomic_write_json(out / "run.json", status)
    try:
        with tempfile.TemporaryDirectory(prefix="medvl-kernel-") as sockets, _echo(out / "run.log", progress):
            papermill.execute_notebook(str(paper.notebook), str(output), parameters=overrides,
                                       progress_bar=progress, cwd=str(paper.notebook.parent),
                                       config=local_kernel_config(Path(sockets)))
    except PapermillExecutionError as exc:
        atomic_write_json(out / "run.json", {**status, "status": "failed", "runtime_s": time.time() - started,
                                             "error": f"{exc.ename}: {exc.evalue}"})
        print(f"medvl: {paper.id} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}", file=sys.stderr)
        print(f"medvl: partial notebook: {output}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for key in env:
            os.environ.pop(key, None)
        if backend is not None:
            os.environ["MPLBACKEND"] = backend
    atomic_write_json(out / "run.json", {**status, "status": "ok", "runtime_s": round(time.time() - started, 1)})
    print(f"medvl: {paper.id} done in {time.time() - started:.0f} s -> {out}")
    return 0


@contextlib.contextmanager
def _echo(log: Path, enabled: bool, interval: float = 1.0):
    """While the block runs, print the lines appended to `log` (the trainings' epoch lines) to stderr."""
    if not enabled:
        yield
        return
    log = log.resolve()  # papermill runs the notebook with another working directory
    stop, position = threading.Event(), log.stat().st_size

    def follow():
        nonlocal position
        while True:
            finished = stop.wait(interval)
            with log.open("r", encoding="utf-8") as fh:
                fh.seek(position)
                text = fh.read()
                position = fh.tell()
            for line in text.splitlines():
                print(f"\r\033[K  {line}", file=sys.stderr, flush=True)
            if finished:
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def local_kernel_config(socket_dir: Path):
    """Kernel over local IPC sockets in `socket_dir`: private, and no TCP-without-encryption warning."""
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc", "ip": str(socket_dir / "kernel")}})


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
    out = Path(args.out) if args.out else runs_root() / "sweeps" / sweep_path.stem
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
    pool.update_parameters(name=f"medvl-{paper_id}", **slurm_parameters(slurm, jobs) if executor == "slurm" else {})
    codes = []
    waves = [pending] if executor == "slurm" else [pending[i:i + jobs] for i in range(0, len(pending), jobs)]
    for wave in waves:
        with pool.batch():
            handles = [pool.submit(_run_subprocess, paper_id, params, run_dir) for params, run_dir in wave]
        codes += [_job_code(handle) for handle in handles]
    return codes


def slurm_parameters(slurm: dict, jobs: int) -> dict:
    """submitit parameters from a sweep file's `slurm:` block (partition, gpus, time in minutes, mem in GB, cpus)."""
    unknown = set(slurm) - set(SLURM_KEYS)
    if unknown:
        raise ParameterError(f"sweep slurm: keys {sorted(unknown)} unknown; use {sorted(SLURM_KEYS)}")
    return {"slurm_array_parallelism": jobs, **{SLURM_KEYS[key]: value for key, value in slurm.items()}}


def _job_code(handle) -> int:
    """A finished submitit job's exit status (1 when the job itself failed)."""
    try:
        return int(handle.result())
    except Exception as exc:  # noqa: BLE001 - submitit raises its own failure types; the table shows the run
        print(f"medvl: job {handle.job_id} failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}",
              file=sys.stderr)
        return EXIT_FAILED


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


def cmd_refresh(args) -> int:
    """Execute each notebook with its defaults, clean volatile metadata, replace notebooks/<id>.ipynb."""
    from .notebook import clean_notebook

    for paper_id in args.papers or list(PAPERS):
        paper = get_paper(paper_id)
        out = Path("runs") / "notebooks" / paper.id
        code = execute(paper.id, {}, out, fresh=True)
        if code:
            return code
        clean_notebook(out / f"{paper.id}.ipynb")
        atomic_write_text(paper.notebook, (out / f"{paper.id}.ipynb").read_text())
    return 0


def cmd_compare(args) -> int:
    """Print every paper table with this run's numbers beside the paper's (Markdown with --format md)."""
    from .compare import coverage, paper_tables, render_text

    paper = get_paper(args.paper)
    run_dir = Path(args.run_dir)
    if not (run_dir / "metrics.json").is_file():
        raise UsageError(f"{run_dir}/metrics.json not found; run `medvl run {paper.id} --out {run_dir}` first")
    metrics = read_metrics(run_dir)
    tables = paper_tables(paper.id, metrics, metrics.get("produced_by") or f"the run in {run_dir}")
    print(render_text(tables, markdown=args.format == "md"))
    counts = coverage(tables)
    print(counts.to_markdown(index=False) if args.format == "md" else counts.to_string(index=False))
    return 0


def cmd_summary(args) -> int:
    """Table of paper, headline metric, value and runtime for each run folder under `folder`."""
    import pandas as pd

    folder = Path(args.folder)
    rows = []
    for run_json in sorted(folder.glob("*/run.json")):
        status = json.loads(run_json.read_text())
        paper = PAPERS.get(status.get("paper"))
        metrics = read_metrics(run_json.parent) if (run_json.parent / "metrics.json").exists() else {}
        headline = paper.headline if paper else "-"
        rows.append({"paper": status.get("paper"), "status": status.get("status"), "headline metric": headline,
                     "value": metrics.get(headline), "runtime_s": status.get("runtime_s")})
    if not rows:
        raise UsageError(f"no run folders with run.json under {folder}; run `make demo` or `medvl run PAPER --out {folder}/PAPER`")
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
