"""Layering rules of medvl_core: readers never import synthetic worlds; only studies import studies."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "medvl_core"


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every medvl_core module `path` imports (relative imports resolved)."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.startswith("medvl_core")}


def modules_under(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).glob("*.py")) if folder else sorted(PACKAGE.rglob("*.py"))


def test_import_resolution_sees_relative_imports():
    assert "medvl_core.worlds.common" in imported_modules(PACKAGE / "worlds" / "synth_derm.py")
    assert "medvl_core.data.cxr" in imported_modules(PACKAGE / "worlds" / "synth_cxr.py")


@pytest.mark.parametrize("path", modules_under("data"), ids=lambda p: p.name)
def test_readers_never_import_worlds_or_studies(path):
    bad = {m for m in imported_modules(path) if m.startswith(("medvl_core.worlds", "medvl_core.studies"))}
    assert not bad, f"{path.name} imports {bad}"


def test_only_studies_import_studies():
    offenders = {p.relative_to(PACKAGE).as_posix(): m for p in modules_under("") if "studies" not in p.parts
                 for m in imported_modules(p) if m.startswith("medvl_core.studies")}
    assert not offenders


def test_opening_real_loaders_leaves_worlds_unimported():
    code = ("import sys, medvl_core.data as d; assert 'synth-cxr' in d.DATASETS; "
            "print(any(m.startswith('medvl_core.worlds') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_synthetic_name_resolves_to_the_world_factory():
    from medvl_core.data import DATASETS
    from medvl_core.worlds.synth_derm import synth_derm

    assert DATASETS["synth-derm"].factory is synth_derm
