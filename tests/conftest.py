"""Shared fixtures; every test session writes runs and data under a fresh temporary folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before nbval starts kernels so notebooks executed by nbval record into this session's folder.
_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="medvl-test-"))
os.environ.setdefault("MEDVL_RUNS", str(_SESSION_ROOT / "runs"))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty data root ($MEDVL_DATA) for one test."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("MEDVL_DATA", str(root))
    return root
