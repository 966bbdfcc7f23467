"""Shared fixtures (the session environment is set by the repository's root conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty data root ($MEDVL_DATA) for one test."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("MEDVL_DATA", str(root))
    return root
