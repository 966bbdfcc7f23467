"""No dead code: every public function, class and method of medvl_core is used by library code or a notebook.

Uses are found by name in the abstract syntax trees of medvl_core and the notebooks' code cells (names,
attributes, "module:function" registry strings, identifier strings as for getattr) and in pyproject.toml's entry
points; a test calling a function does not count. A method that overrides one of a base class (forward, ...) and
a function registered with a decorator call (`@register(...)`) are used. What must stay without such a use is
listed in EXCEPTIONS with the reason.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "medvl_core"
IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
TARGET = re.compile(r"^[\w.]+:(\w+)$")  # a "module:function" registry string

EXCEPTIONS = {  # qualified name -> why it stays without a caller in the library or a notebook
    "medvl_core.assets.describe_assets": "reads assets.ASSET_TABLE, the asset registry of the architecture guide; "
                                         "tests/test_assets.py checks through it that every asset is installed",
    "medvl_core.data.dermavqa.read_submission": "public API in data_cards/dermavqa.md: reads a submission file "
                                                "(write_submission's counterpart)",
    "medvl_core.eval.umap_grid.clear_cache": "benchmarks/bench_probing.py empties the UMAP cache between timed runs",
    "medvl_core.eval.zeroshot.ZeroShotClassifier.predict_dataset": "batch-by-batch scoring of a whole dataset, "
                                                                   "measured at scale by benchmarks/bench_zero_shot.py",
    "medvl_core.studies.m3g_answer_generation.claude.answer_cases": "public API in papers/m3g_answer_generation/"
                                                                    "README.md (the Claude pipeline in code)",
    "medvl_core.train.distributed.launch_in_notebook": "how a notebook starts multi-process training (train.distributed "
                                                       "docstring; the notebooks run one process by default)",
    "medvl_core.worlds.synth_cxr.generate_synth_cxr": "public API in data_cards/synth-cxr.md; the world benchmarks "
                                                      "call it",
    "medvl_core.worlds.synth_derm.generate_synth_derm": "public API in data_cards/synth-derm.md; the world benchmarks "
                                                        "call it",
}


def _module_name(path: Path) -> str:
    """medvl_core/a/b.py -> medvl_core.a.b (a package's __init__ -> the package)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _registered(node: ast.AST) -> bool:
    """Decorated by a call of something named `register` (a registry entry, used through its name)."""
    for dec in getattr(node, "decorator_list", []):
        func = dec.func if isinstance(dec, ast.Call) else None
        if isinstance(func, (ast.Name, ast.Attribute)) and getattr(func, "id", getattr(func, "attr", "")) == "register":
            return True
    return False


def definitions() -> dict[str, tuple[str, str | None, str, bool]]:
    """Qualified name -> (module, class or None, name, registered) of every public top-level def and method."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or node.name.startswith("_"):
                continue
            out[f"{module}.{node.name}"] = (module, None, node.name, _registered(node))
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and not sub.name.startswith("_"):
                        out[f"{module}.{node.name}.{sub.name}"] = (module, node.name, sub.name, _registered(sub))
    return out


def _all_strings(tree: ast.AST) -> set[int]:
    """ids of the string constants inside `__all__ = [...]` (a re-export is not a use)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            ids |= {id(c) for c in ast.walk(node.value) if isinstance(c, ast.Constant)}
    return ids


def used_names(tree: ast.AST) -> set[str]:
    """Names a tree uses: loaded names, attributes, identifier strings and "module:function" targets."""
    skip, out = _all_strings(tree), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            target = TARGET.match(node.value)
            if target or IDENTIFIER.match(node.value):
                out.add(target.group(1) if target else node.value)
    return out


def _notebook_code(path: Path) -> str:
    """The code cells of a notebook, IPython magics and shell lines dropped."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = [line for c in cells if c["cell_type"] == "code" for line in "".join(c["source"]).splitlines()]
    return "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def all_uses() -> set[str]:
    """Every name used by medvl_core, the notebooks and pyproject.toml's entry points."""
    trees = [ast.parse(p.read_text(encoding="utf-8")) for p in PACKAGE.rglob("*.py")]
    trees += [ast.parse(_notebook_code(p)) for p in (ROOT / "notebooks").glob("*.ipynb")]
    uses = set().union(*(used_names(t) for t in trees))
    return uses | set(re.findall(r"=\s*\"[\w.]+:(\w+)\"", (ROOT / "pyproject.toml").read_text(encoding="utf-8")))


def _overrides(module: str, cls: str, name: str) -> bool:
    """Whether method `name` of `module.cls` overrides a base class's (called by the framework, e.g. forward)."""
    klass = getattr(importlib.import_module(module), cls)
    return inspect.isclass(klass) and any(hasattr(base, name) for base in klass.__mro__[1:])


def unused() -> list[str]:
    """Qualified names of the public definitions that nothing in the library or the notebooks uses."""
    uses, out = all_uses(), []
    for qualified, (module, cls, name, registered) in definitions().items():
        if name in uses or registered or qualified in EXCEPTIONS:
            continue
        if cls is not None and _overrides(module, cls, name):
            continue
        out.append(qualified)
    return out


def test_every_public_definition_is_used_by_the_library_or_a_notebook():
    dead = unused()
    assert not dead, (f"unused by medvl_core and the notebooks (tests do not count): {dead}; delete them, or add "
                      "them to EXCEPTIONS in tests/test_dead_code.py with the reason")


def test_exceptions_are_still_needed():
    defined, uses = definitions(), all_uses()
    stale = [q for q in EXCEPTIONS if q not in defined or defined[q][2] in uses]
    assert not stale, f"EXCEPTIONS entries that are gone or now used: {stale}"
