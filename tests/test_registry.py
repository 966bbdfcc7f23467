"""One paper registry: medvl_core.papers.PAPERS. The CLI, the Makefile, the benchmarks, the README table and the
paper folders follow it; a hand-typed list of paper ids anywhere else fails here."""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medvl_core.cli import commands
from medvl_core.cli.parser import build_parser
from medvl_core.papers import PAPERS

ROOT = Path(__file__).resolve().parents[1]
IDS = list(PAPERS)


def _paper_choices(parser: argparse.ArgumentParser) -> dict[str, list]:
    """Subcommand -> the choices of its `paper` positional (subcommands that take one)."""
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for arg in sub._actions:
                    if arg.dest == "paper" and arg.choices:
                        out[name] = list(arg.choices)
    return out


def test_cli_choices_and_list_follow_the_registry(capsys):
    choices = _paper_choices(build_parser())
    assert {"run", "compare"} <= set(choices) and all(c == IDS for c in choices.values()), choices
    commands.cmd_list(None)
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line and not line[0].isspace()]
    assert listed == IDS


def _makefile_papers() -> list[str]:
    """$(PAPERS) as make expands it (the registry call runs with this interpreter)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-s", "--no-print-directory", "-f", "Makefile", f"PY={sys.executable}",
                          "--eval", "registry-papers: ; @echo $(PAPERS)", "registry-papers"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out.split()


def test_makefile_reads_the_registry():
    assert _makefile_papers() == IDS


def test_readme_table_lists_the_registry_in_order():
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| [^|]+ \| \[notebooks/([a-z0-9_]+)\.ipynb\]\(notebooks/([a-z0-9_]+)\.ipynb\) \|$",
                      (ROOT / "README.md").read_text(encoding="utf-8"), re.MULTILINE)
    assert [r[0] for r in rows] == IDS
    assert all(a == b == c for a, b, c in rows), rows


def test_paper_folders_and_notebooks_are_the_registry():
    assert sorted(p.name for p in (ROOT / "papers").iterdir() if p.is_dir()) == sorted(IDS)
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) == sorted(IDS)


def _hand_typed_id_lists(path: Path) -> list[str]:
    """Lines of list/tuple/set literals in `path` holding two or more paper ids (a copy of the registry)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            ids = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in PAPERS]
            if len(ids) >= 2:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            words = node.value.split()
            if len(words) >= 2 and sum(w in PAPERS for w in words) >= 2:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_copy_of_the_paper_list_outside_the_registry():
    files = [*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "medvl_core").rglob("*.py")]
    found = [hit for path in files if path != ROOT / "medvl_core" / "papers.py" for hit in _hand_typed_id_lists(path)]
    assert not found, f"paper ids typed by hand (read medvl_core.papers.PAPERS instead): {found}"
