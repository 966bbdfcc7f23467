"""Session-wide test environment, set before nbval starts any kernel: runs go to a fresh temp folder, no API keys."""

import os
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


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook turns the group into the node id
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`--dist loadgroup`): one unit of work per test module, per notebook.

    A notebook's nbval cells share one kernel, and the smoke tests marked `xdist_group("nb-<paper>")` read the
    metrics that execution recorded, so both go to the same worker, notebook first (collection order). A test
    module stays together so that its module-scoped fixtures are built once; `xdist_group("own")` sends a slow
    test to a worker of its own.
    """
    for item in items:
        path = Path(str(item.fspath))
        marker = item.get_closest_marker("xdist_group")
        if path.suffix == ".ipynb":
            group = f"nb-{path.stem}"
        elif marker is None:
            group = f"module-{path.stem}"
        elif marker.args and marker.args[0] == "own":
            group = f"own-{item.nodeid}"
        else:
            continue
        if marker is not None:
            item.own_markers = [m for m in item.own_markers if m.name != "xdist_group"]
        item.add_marker(pytest.mark.xdist_group(group))
