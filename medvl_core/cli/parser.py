"""The `medvl` argument parser: subcommands, options, help text and the argparse types that check them."""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path

from ..config import REPO_ROOT
from ..errors import UsageError
from ..papers import PAPERS, get_paper
from .batch import EXECUTORS, cmd_batch
from .commands import cmd_check_data, cmd_claims, cmd_compare, cmd_list, cmd_prepare, cmd_refresh, cmd_summary
from .run import EXIT_USAGE, cmd_run

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
    for path in (Path(__file__).parent.parent / "data").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register" and node.args:
                names.add(ast.literal_eval(node.args[0]))
            elif isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "SYNTHETIC_WORLDS":
                names.update(ast.literal_eval(key) for key in node.value.keys)
    return sorted(names)


def preparable_names() -> list[str]:
    """The datasets `medvl prepare` writes copies of (`data.prepared.PREPARABLE`, read from its source: no torch)."""
    tree = ast.parse((Path(__file__).parent.parent / "data" / "prepared.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "PREPARABLE":
            return list(ast.literal_eval(node.value))
    raise UsageError("medvl_core/data/prepared.py defines no PREPARABLE tuple")


def build_parser() -> argparse.ArgumentParser:
    """The `medvl` parser: one subcommand per command, each with its `func`."""
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
    _add_prepare(sub)
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
                          "notebook's global batch (global_batch_size)")
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
    claims = sub.add_parser("claims", help="per run folder, how many of its paper's claims were reproduced, "
                                           "contradicted, not resolved or not testable")
    claims.add_argument("run_dirs", nargs="*", metavar="RUN",
                        help="run folders written by `medvl run` (default: the committed notebooks, as in the README)")
    claims.add_argument("--format", choices=("text", "md"), default="text", help="terminal text or Markdown")
    claims.set_defaults(func=cmd_claims)


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


def _add_prepare(sub) -> None:
    prepare = sub.add_parser("prepare", help="decode a chest X-ray dataset's images once into a prepared copy "
                                             "(memory-mapped, resized) that training reads instead of the JPGs")
    names = preparable_names()
    prepare.add_argument("dataset", choices=names, metavar="DATASET", help=f"dataset name: {', '.join(names)}")
    prepare.add_argument("--root", help="dataset folder in its official layout (default: its place under $MEDVL_DATA)")
    prepare.add_argument("--size", type=int, default=256,
                         help="side in pixels: the shorter side is resized to it, the longer centre-cropped "
                              "(default 256; at least the image tower's input size)")
    prepare.add_argument("--views", default="all", help="views to include, e.g. frontal (default: all)")
    prepare.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="decoding threads (default: all cores)")
    prepare.add_argument("--bad-items", choices=("error", "skip"), default="error",
                         help="unreadable images: error stops listing them (finished chunks are kept), skip marks "
                              "them in the copy")
    prepare.add_argument("--force", action="store_true", help="discard an existing or unfinished copy and start over")
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(func=cmd_prepare)
