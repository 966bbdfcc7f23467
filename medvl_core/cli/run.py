"""`medvl run`: a paper notebook executed by papermill into a run folder; parameter files; the exit statuses."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from .. import run_env as session
from ..config import runs_root
from ..errors import ParameterError
from ..io import atomic_write_json, atomic_write_text
from ..notebook import check_overrides, notebook_parameters
from ..papers import get_paper
from ..runs import RUN_DIR_ENV

EXIT_USAGE = 2
EXIT_FAILED = 1


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
