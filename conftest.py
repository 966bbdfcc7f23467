"""Session-wide test environment, set before nbval starts any kernel: runs go to a fresh temp folder, no API keys."""

import os
import re
import tempfile
from pathlib import Path

import pytest

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="medvl-test-"))
os.environ.setdefault("MEDVL_RUNS", str(_SESSION_ROOT / "runs"))
os.environ.setdefault("MPLBACKEND", "Agg")
# An exported key must not turn a test (or a kernel it starts) into a paid, non-deterministic call: tests that
# need a key set a fake one for a loopback server themselves.
for _name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
    os.environ.pop(_name, None)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Under `pytest -n N --dist loadgroup` (make test): one unit of work per test module, per notebook.

    A notebook's nbval cells share one kernel, and the smoke tests marked `xdist_group("nb-<paper>")` read the
    metrics that execution recorded, so both go to the same worker, notebook first (collection order). A test
    module stays together so that its module-scoped fixtures are built once; `xdist_group("own")` gives a slow
    test a unit of its own. xdist groups by the node id's "@group" suffix, which is set here for every item
    (xdist's own marker handling sets an attribute pytest 9 no longer reads).
    """
    if not getattr(config.option, "loadgroup", False):  # set by xdist in its workers for --dist loadgroup
        return
    from _pytest.nodes import coerce_node_id  # pytest 9 keeps the node id in `_id` (xdist 3.8 sets `_nodeid`)

    for item in items:
        base = item.nodeid.split("@")[0]
        item._id = coerce_node_id(f"{base}@{_work_unit(item, base)}")
    # xdist hands out work units in order of first appearance: the long ones (notebooks, then the tests with a
    # unit of their own) first, so that no worker is left with one at the end (a stable sort keeps each unit's order)
    items.sort(key=lambda item: {"nb": 0, "own": 1}.get(item.nodeid.rsplit("@", 1)[1].split("-")[0], 2))


def _work_unit(item, nodeid: str) -> str:
    """The xdist group of a test item (see pytest_collection_modifyitems)."""
    path = Path(str(item.fspath))
    if path.suffix == ".ipynb":
        return f"nb-{path.stem}"
    marker = item.get_closest_marker("xdist_group")
    if marker is None:
        return f"module-{path.stem}"
    return "own-" + re.sub(r"[^A-Za-z0-9_.-]", "_", nodeid) if marker.args[0] == "own" else marker.args[0]
