"""Layering rules of medvl_core: the import-linter contract (.importlinter) holds with no exception, no module imports
a private name of another, the architecture guide's layer table is the contract's, and readers open synthetic
worlds only by name."""

import ast
import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "medvl_core"
CONTRACT = ROOT / ".importlinter"


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


def test_import_contract_holds_without_exceptions():
    contract = CONTRACT.read_text()
    assert "ignore_imports" not in contract  # zero ignored imports
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--config", str(CONTRACT)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def private_imports(path: Path) -> list[str]:
    """`from medvl_core.x import _name` lines of `path` (a module's own package excepted: none are allowed)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("medvl_core")):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_") and a.name != "__version__"]
    return found


def test_no_module_imports_a_private_name_of_another():
    offenders = {p.relative_to(PACKAGE).as_posix(): private_imports(p) for p in modules_under("")}
    assert not {k: v for k, v in offenders.items() if v}


def contract_layers() -> list[list[str]]:
    """The layers of .importlinter's layers contract, bottom up, each a list of sibling module names."""
    parser = configparser.ConfigParser()
    parser.read(CONTRACT)
    lines = [line.strip() for line in parser["importlinter:contract:layers"]["layers"].splitlines() if line.strip()]
    return [re.split(r"\s*[|:]\s*", line) for line in reversed(lines)]


def test_architecture_guide_lists_the_contract_layers_in_order():
    guide = (ROOT / "docs" / "architecture.md").read_text()
    section = guide.split("## Layers of `medvl_core`, bottom up", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"\| \d+\.", line)]
    documented = [sorted(re.findall(r"`(\w+)`", row.split("|")[2])) for row in rows]
    assert documented == [sorted(layer) for layer in contract_layers()]


def test_no_module_over_500_lines():
    long = {p.relative_to(PACKAGE).as_posix(): n for p in modules_under("")
            if (n := len(p.read_text().splitlines())) > 500}
    assert not long


def test_readme_layout_lists_the_contract_layers_top_down():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("medvl_core/   the shared package", 1)[1].split("\n", 1)[1]
    lines = []
    for line in block.splitlines():  # the indented layer lines, up to the next top-level folder
        if not line.startswith("  "):
            break
        lines.append(line)
    listed = [sorted(set(re.findall(r"[a-z_]+", line.strip().split("  ")[0])) - {"id"}) for line in lines]
    assert listed == [sorted(layer) for layer in reversed(contract_layers())]
