"""Session-wide test environment, set before nbval starts any kernel: runs go to a fresh temp folder."""

import os
import tempfile
from pathlib import Path

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="medvl-test-"))
os.environ.setdefault("MEDVL_RUNS", str(_SESSION_ROOT / "runs"))
os.environ.setdefault("MPLBACKEND", "Agg")
