"""Run folders: where a notebook's metrics, params and figures go; `record` writes metrics.json."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .config import runs_root
from .io import atomic_path, atomic_write_json

RUN_DIR_ENV = "MEDVL_RUN_DIR"


@dataclass
class Run:
    """A run folder: `dir` with metrics.json, params.yaml, figures/."""

    paper: str
    dir: Path

    @property
    def figures(self) -> Path:
        path = self.dir / "figures"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def savefig(self, fig, name: str, dpi: int = 80) -> None:
        """Save a matplotlib figure atomically as figures/<name>.png (returns nothing, so no path is displayed)."""
        safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_")  # names may embed dataset paths or specs
        with atomic_path(self.figures / f"{safe}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")


_current: Run | None = None


def start_run(paper: str) -> Run:
    """Open the current run: $MEDVL_RUN_DIR (set by `medvl run`) or runs/interactive/<paper>."""
    global _current
    folder = Path(os.environ.get(RUN_DIR_ENV) or runs_root() / "interactive" / paper)
    folder.mkdir(parents=True, exist_ok=True)
    _current = Run(paper, folder)
    return _current


def current_run() -> Run:
    """The run opened by `start_run` (opened on demand from $MEDVL_RUN_DIR otherwise)."""
    if _current is None:
        return start_run(Path(os.environ.get(RUN_DIR_ENV, "unnamed")).name)
    return _current


def record(**metrics) -> dict:
    """Atomically write (merge into) the current run's metrics.json; returns the stored metrics."""
    run = current_run()
    path = run.dir / "metrics.json"
    stored = read_metrics(run.dir) if path.exists() else {}
    stored.update({key: _plain(value) for key, value in metrics.items()})
    atomic_write_json(path, stored)
    return stored


def print_metrics(metrics: dict) -> None:
    """Print recorded metrics as sorted JSON (what `notebook.recorded_metrics` reads back from a notebook)."""
    print(json.dumps(metrics, indent=1, sort_keys=True))


def read_metrics(run_dir) -> dict:
    """metrics.json of a run folder."""
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def _plain(value):
    """JSON-friendly value: numpy scalars to Python, NaN to None."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def exercise_results(paper: str, name: str):
    """papers/<paper>/exercises/<name>.csv, the committed results.csv of that paper's sweep-exercise-<name>.yaml."""
    import pandas as pd

    from .config import papers_dir
    from .errors import MedvlError

    path = papers_dir() / paper / "exercises" / f"{name}.csv"
    if not path.is_file():
        sweep = f"papers/{paper}/params/sweep-exercise-{name}.yaml"
        raise MedvlError(f"no committed exercise results at papers/{paper}/exercises/{name}.csv; run "
                         f"`medvl batch {sweep} --out DIR` (with MEDVL_NOTEBOOKS naming notebook copies without the "
                         "cells that read it) and copy DIR/results.csv there")
    return pd.read_csv(path)


def exercise_table(paper: str, name: str, x: str, prefixes):
    """The swept column `x` and the metric columns starting with `prefixes` (a string or a tuple) of
    `exercise_results(paper, name)`, rounded to 3 decimals, for the notebook's printed check."""
    table = exercise_results(paper, name)
    return table[[x, *[c for c in table.columns if c.startswith(prefixes)]]].round(3)
