"""Session-wide test environment, set before nbval starts any kernel: runs go to a fresh temp folder, no API keys."""

import os
import tempfile
from pathlib import Path

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="medvl-test-"))
os.environ.setdefault("MEDVL_RUNS", str(_SESSION_ROOT / "runs"))
os.environ.setdefault("MPLBACKEND", "Agg")
# An exported key must not turn a test (or a kernel it starts) into a paid, non-deterministic call: tests that
# need a key set a fake one for a loopback server themselves.
for _name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
    os.environ.pop(_name, None)
