"""Compare a run's metrics.json with the committed notebook's recorded metrics, within tests/metric_tolerances.yaml."""

from __future__ import annotations

import fnmatch
import math
from pathlib import Path

import yaml

TOLERANCES = Path(__file__).with_name("metric_tolerances.yaml")


def load_tolerances(path: Path = TOLERANCES) -> dict:
    """{paper: {key pattern: {abs: x, measured: m, basis: text} | {exact: true}}} in file order (first match wins)."""
    return yaml.safe_load(path.read_text())["papers"]


def load_guards(path: Path = TOLERANCES) -> dict:
    """{paper: [[a, b] | [a, b, offset], ...]}: the orderings and verdicts each notebook prints (b: key or constant)."""
    return yaml.safe_load(path.read_text()).get("guards") or {}


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
            problems.append(f"{key}: {ours} here vs {theirs} committed (allowed: {_allowed_text(rule)})")
    return problems


def rule_problems(patterns: dict) -> list[str]:
    """One line per numeric rule without `basis` and `measured`, or whose abs exceeds the quantity it is derived from."""
    problems = []
    for pattern, rule in patterns.items():
        if rule.get("exact"):
            continue
        if not rule.get("basis") or not _is_number(rule.get("measured")) or not _is_number(rule.get("abs")):
            problems.append(f"{pattern}: {rule} needs abs, measured and basis")
        elif rule["abs"] > rule["measured"]:
            problems.append(f"{pattern}: abs {rule['abs']} above measured {rule['measured']} ({rule['basis']})")
    return problems


def unknown_guard_keys(guards: list, committed: dict) -> list[str]:
    """Guard keys that are not among the committed notebook's recorded metrics (typos, renamed metrics)."""
    return sorted({key for guard in guards for key in guard[:2] if isinstance(key, str) and key not in committed})


def guard_problems(guards: list, patterns: dict, committed: dict) -> list[str]:
    """One line per guard whose two tolerances together reach its committed gap (a flipped order would pass)."""
    problems = []
    for guard in guards:
        a, b, offset = _parts(guard)
        gap = abs(_value(committed, a) - _value(committed, b) - offset)
        tol_a, tol_b = allowed_move(patterns, a), allowed_move(patterns, b)
        if not tol_a + tol_b < gap:
            shown = f"{a} vs {b}" + (f" + {offset}" if offset else "")
            problems.append(f"{shown}: committed gap {gap:.4g}, tolerances {tol_a:g} + {tol_b:g} = {tol_a + tol_b:.4g} "
                            "do not stay below it")
    return problems


def allowed_move(patterns: dict, key) -> float:
    """How far `key` may move under its rule: abs, 0 for an exact rule or a constant."""
    if not isinstance(key, str):
        return 0.0
    rule = tolerance_for(patterns, key)
    if rule is None:
        raise KeyError(f"{key}: no tolerance in {TOLERANCES.name}")
    return 0.0 if rule.get("exact") else float(rule["abs"])


def _parts(guard) -> tuple:
    """(a, b, offset) of a guard [a, b] or [a, b, offset]."""
    if len(guard) not in (2, 3):
        raise ValueError(f"a guard is [a, b] or [a, b, offset], got {guard!r}")
    return guard[0], guard[1], float(guard[2]) if len(guard) == 3 else 0.0


def _value(committed: dict, key) -> float:
    """The committed value of a guard key, or the constant itself."""
    return float(committed[key]) if isinstance(key, str) else float(key)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _allowed_text(rule: dict) -> str:
    """'exact' or '±abs (basis)'."""
    return "exact" if rule.get("exact") else f"±{rule['abs']} ({rule.get('basis', 'no basis')})"


def _close(ours, theirs, rule: dict) -> bool:
    numbers = all(_is_number(v) for v in (ours, theirs))
    if rule.get("exact") or not numbers:
        return ours == theirs
    return math.isclose(ours, theirs, rel_tol=0.0, abs_tol=float(rule["abs"]) + 1e-12)
