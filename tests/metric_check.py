"""Compare a run's metrics.json with the committed notebook's recorded metrics, within tests/metric_tolerances.yaml."""

from __future__ import annotations

import fnmatch
import math
from pathlib import Path

import yaml

TOLERANCES = Path(__file__).with_name("metric_tolerances.yaml")


def load_tolerances(path: Path = TOLERANCES) -> dict:
    """{paper: {key pattern: {abs: x} | {exact: true}}} in file order (first matching pattern wins)."""
    return yaml.safe_load(path.read_text())["papers"]


def tolerance_for(patterns: dict, key: str) -> dict | None:
    """The first entry whose fnmatch pattern matches `key`, or None."""
    return next((rule for pattern, rule in patterns.items() if fnmatch.fnmatchcase(key, pattern)), None)


def metric_differences(measured: dict, committed: dict, patterns: dict) -> list[str]:
    """One line per metric that is missing, new, without a tolerance, or further from the committed value than allowed."""
    problems = [f"{key}: recorded by the committed notebook, missing here" for key in committed.keys() - measured.keys()]
    problems += [f"{key}: new metric; refresh the notebook (make notebooks)" for key in measured.keys() - committed.keys()]
    for key in sorted(committed.keys() & measured.keys()):
        rule, ours, theirs = tolerance_for(patterns, key), measured[key], committed[key]
        if rule is None:
            problems.append(f"{key}: no tolerance in {TOLERANCES.name}; add one")
        elif not _close(ours, theirs, rule):
            problems.append(f"{key}: {ours} here vs {theirs} committed (allowed: {rule})")
    return problems


def _close(ours, theirs, rule: dict) -> bool:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (ours, theirs))
    if rule.get("exact") or not numbers:
        return ours == theirs
    return math.isclose(ours, theirs, rel_tol=0.0, abs_tol=float(rule["abs"]) + 1e-12)
