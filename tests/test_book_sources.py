"""docs/book/build.py's pieces without Sphinx: link rewriting, the calls scan, the outside-resource check."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def book():
    return _load("medvl_book_build", ROOT / "docs" / "book" / "build.py")


def test_links_to_site_pages_are_kept_and_others_become_plain_text(book):
    readme = ROOT / "papers" / "meems" / "README.md"
    pages = {(ROOT / "notebooks" / "meems.ipynb").resolve(): "papers/meems/notebook.ipynb"}
    text = ("[the notebook](../../notebooks/meems.ipynb#setup) and [`claims.yaml`](claims.yaml), "
            "[card](../../data_cards/synth-cxr.md), [web](https://example.org/x) ![fig](fig.png)")
    out = book.rewrite_links(text, readme, book.site_targets_for("papers/meems", pages))
    assert "[the notebook](notebook.ipynb#setup)" in out
    assert "`claims.yaml`" in out and "(claims.yaml)" not in out
    assert "card (`data_cards/synth-cxr.md` in the repository)" in out
    assert "[web](https://example.org/x)" in out and "![fig](fig.png)" in out


def test_calls_are_found_through_imports_and_aliases(book):
    cell = {"cell_type": "code", "source": [
        "from medvl_core.studies import loss_relaxation as study\n",
        "from medvl_core import runs\n",
        "import numpy as np\n",
        "run = runs.start_run('x')\n",
        "table = study.show_tables(np.zeros(3))\n",
        "%matplotlib inline\n"]}
    names = book.called_names({"cells": [cell, {"cell_type": "markdown", "source": ["`study.nothing`"]}]})
    assert names == ["medvl_core.runs", "medvl_core.runs.start_run", "medvl_core.studies.loss_relaxation",
                     "medvl_core.studies.loss_relaxation.show_tables"]


def test_calls_resolve_to_the_documented_definition(book):
    documented = set(book.modules())
    assert book.resolve("medvl_core.runs.record", documented) == ("func", "medvl_core.runs.record")
    assert book.resolve("medvl_core.runs", documented) == ("mod", "medvl_core.runs")
    assert book.resolve("medvl_core.runs.no_such_name", documented) is None


def test_outside_resources_are_found_and_local_ones_pass(book, tmp_path):
    (tmp_path / "a.html").write_text(
        '<script src="_static/x.js"></script><script src="https://cdn.example.com/m.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.com/f.css"><img src="http://127.0.0.1:8000/i.png">'
        '<a href="https://example.org">a link is not a resource</a>')
    (tmp_path / "s.css").write_text("@import 'https://example.com/x.css'; b { background: url(img/b.png) }")
    bad = book.outside_resources(tmp_path)
    assert bad == ["a.html: https://cdn.example.com/m.js", "a.html: //fonts.example.com/f.css",
                   "s.css: https://example.com/x.css"]


def test_plain_docstrings_become_safe_restructuredtext():
    conf = _load("medvl_book_conf", ROOT / "docs" / "book" / "conf.py")
    lines = conf.plain_docstring(["The |a - b| of `x`s and *args:", "    - one `item`", "      goes on", "",
                                  "Next ``literal`` para_ [1]_"])
    assert lines == ["The \\|a - b\\| of ``x``\\ s and \\*args:", "", "- one ``item``", "  goes on", "",
                     "Next ``literal`` para\\_ \\[1\\]\\_"]


def test_without_chromium_the_browser_tests_skip_or_fail_in_ci(monkeypatch):
    from tests import browser_support

    monkeypatch.setattr(browser_support, "CANDIDATES", ())
    monkeypatch.delenv("MEDVL_CHROMIUM", raising=False)
    monkeypatch.delenv("MEDVL_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium found"):
        browser_support.require_browser()
    monkeypatch.setenv("MEDVL_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="MEDVL_REQUIRE_BROWSER=1 but no Chromium found"):
        browser_support.require_browser()
