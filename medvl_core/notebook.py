"""Reading a paper notebook's `parameters` cell and checking overrides against it."""

from __future__ import annotations

import ast
import difflib
from pathlib import Path

from .errors import MedvlError, ParameterError


def notebook_parameters(path: Path) -> dict:
    """Defaults of the notebook's `parameters` cell as Python values, in cell order."""
    import papermill

    inspected = papermill.inspect_notebook(str(path))
    return {name: _literal(info["default"]) for name, info in inspected.items()}


def _literal(source: str):
    """Evaluate a literal default from the parameters cell (kept as text if not a literal)."""
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return source


def check_overrides(defaults: dict, overrides: dict, where: str) -> dict:
    """Reject unknown names and values whose type cannot stand in for the default's type."""
    for name, value in overrides.items():
        if name not in defaults:
            close = difflib.get_close_matches(name, defaults, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParameterError(f"unknown parameter {name!r} for {where}{hint}; valid: {', '.join(defaults)}")
        if not _compatible(defaults[name], value):
            raise ParameterError(
                f"parameter {name!r} for {where} expects {type(defaults[name]).__name__} "
                f"(default {defaults[name]!r}), got {value!r}"
            )
    return {**defaults, **overrides}


def _compatible(default, value) -> bool:
    """Whether `value` may replace `default` (None defaults accept anything; ints may replace floats)."""
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


VOLATILE_METADATA = ("papermill", "execution", "widgets")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # progress-bar widgets: random ids, no saved state


def clean_notebook(path: Path) -> None:
    """Strip timings and machine-specific metadata that papermill/jupyter leave in a notebook."""
    import nbformat

    from .io import atomic_write_text

    nb = nbformat.read(str(path), as_version=4)
    for key in VOLATILE_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in VOLATILE_METADATA:
            cell.metadata.pop(key, None)
        for output in cell.get("outputs", []):
            output.get("data", {}).pop(WIDGET_VIEW, None)
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "display_data" or o.get("data")]
    nb.metadata.get("kernelspec", {}).update(name="python3", display_name="Python 3 (ipykernel)")
    atomic_write_text(path, nbformat.writes(nb) + "\n")


def recorded_metrics(path: Path) -> dict:
    """The metrics a notebook's last `runs.record` cell printed (`runs.print_metrics`) in its saved outputs."""
    import json

    import nbformat

    cells = [c for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code" and "runs.record(" in c.source]
    if not cells:
        raise MedvlError(f"{path} has no cell calling runs.record(...); the notebook contract ends with one")
    text = "".join(o.get("text", "") for o in cells[-1].get("outputs", []) if o.get("name") == "stdout")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MedvlError(f"{path}: the runs.record cell's output is not the JSON of runs.print_metrics ({exc}); "
                         "refresh the notebook with `make notebooks`") from exc


def show_source(*objects, equation: str = "", source: str = ""):
    """Markdown of the paper's equation and each object's qualified name, file, first line and source code."""
    from IPython.display import Markdown

    if not objects:
        raise TypeError("show_source needs at least one function, class or method of medvl_core")
    parts = []
    if equation:
        parts.append(f"$$\n{equation.strip().strip('$').strip()}\n$$")
    if source:
        parts.append(f"*{source}*" if equation else f"*Paper: {source}*")
    parts += [_source_block(obj) for obj in objects]
    return Markdown("\n\n".join(parts))


def _source_block(obj) -> str:
    """One object's heading (qualified name, file:line relative to the repository) and its source in a python block."""
    import inspect

    from .config import REPO_ROOT

    target = inspect.unwrap(obj.fget if isinstance(obj, property) else obj)
    name = _qualified_name(target)
    try:
        lines, first = inspect.getsourcelines(target)
        file = Path(inspect.getsourcefile(target) or "").resolve()
    except (TypeError, OSError) as exc:
        raise MedvlError(f"show_source: {name} ({type(obj).__name__}) has no Python source to show ({exc}); "
                         "pass a function, class or method defined in medvl_core") from exc
    where = file.relative_to(REPO_ROOT).as_posix() if file.is_relative_to(REPO_ROOT) else file.name
    body = "".join(lines).rstrip()
    return f"**`{name}`** — `{where}`, line {first}\n\n```python\n{body}\n```"


def _qualified_name(obj) -> str:
    """module.qualname of a function, class or method (repr for anything without one)."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else repr(obj)
