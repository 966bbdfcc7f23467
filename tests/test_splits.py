"""The one split vocabulary: canonical_split and every reader that takes a split."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from medvl_core.data.splits import SPLITS, canonical_split
from medvl_core.errors import ParameterError

PACKAGE = Path(__file__).resolve().parents[1] / "medvl_core"


def test_canonical_names_pass_through():
    assert [canonical_split(s) for s in SPLITS] == ["train", "val", "test"]
    assert canonical_split("all", (*SPLITS, "all"), "open-i") == "all"


def test_unknown_split_names_the_dataset_and_the_allowed_names():
    with pytest.raises(ParameterError, match=r"mimic-cxr: unknown split 'validate' \(the validation split is called "
                                             r"'val'\); use one of \['train', 'val', 'test'\]"):
        canonical_split("validate", SPLITS, "mimic-cxr")
    with pytest.raises(ParameterError, match=r"vindr-cxr: unknown split 'all'; use one of \['train', 'test'\]"):
        canonical_split("all", ("train", "test"), "vindr-cxr")


def test_no_other_module_keeps_its_own_split_aliases():
    """Split aliases are normalised in data/splits.py only (no SPLIT_ALIASES tables, no second canonical_split)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "splits.py" and path.parent.name == "data":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            if isinstance(node, ast.FunctionDef) and node.name == "canonical_split" or "SPLIT_ALIASES" in names:
                offenders.append(str(path.relative_to(PACKAGE.parent)))
    assert not offenders, f"split aliases handled outside medvl_core/data/splits.py: {offenders}"
