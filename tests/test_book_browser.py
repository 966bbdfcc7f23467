"""The course site (`make book`) in headless Chromium: every page clean, images decoded, equations, search.

Builds the site with docs/book/build.py (or reuses it when no input changed), serves it on localhost and opens
every page. Screenshots of three pages go to $MEDVL_RUNS/book-screens/ (default runs/book-screens/).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser_support import Watch, chromium, require_browser, serve

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "book"
SCREENS = {"index.html": "01-index.png", "verdicts.html": "02-verdicts.png",
           "papers/loss_relaxation/notebook.html": "03-loss-relaxation-notebook.png"}
MATH = "mjx-container svg"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def site() -> dict:
    """The built site's record (pages, digest); builds it when stale."""
    require_browser()
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "book" / "build.py"), "--if-stale"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, f"make book failed:\n{done.stderr}{done.stdout}"
    return json.loads((SITE / "stamp.json").read_text())


@pytest.fixture(scope="module")
def browser_page(site):
    """(base URL, page, watch): the site served on localhost and one Chromium tab."""
    with serve(SITE / "html") as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield base, page, Watch(page)


def _open(page, watch, url: str) -> None:
    """Load `url` and wait for its images; the watch starts afresh."""
    watch.reset()
    page.goto(url, wait_until="load", timeout=60_000)
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=60_000)
    page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise "
                  "? MathJax.startup.promise.then(() => true) : true")


def test_site_has_every_part(site):
    pages = set(site["pages"])
    for paper in ("loss_relaxation", "meems", "m3g_answer_generation", "perturbed_report_discrimination",
                  "vlm_feature_probing"):
        assert {f"papers/{paper}/index.html", f"papers/{paper}/notebook.html", f"papers/{paper}/calls.html"} <= pages
    assert {"index.html", "verdicts.html", "architecture.html", "api/index.html", "search.html"} <= pages


def test_every_page_loads_clean(browser_page, site):
    base, page, watch = browser_page
    problems, images = {}, 0
    for name in site["pages"]:
        _open(page, watch, f"{base}/{name}")
        broken = page.evaluate("Array.from(document.images).filter(i => i.naturalWidth === 0).map(i => i.src)")
        images += page.evaluate("document.images.length")
        found = watch.problems() + [f"image does not decode: {src}" for src in broken]
        if found:
            problems[name] = found
    assert not problems, json.dumps(problems, indent=1)
    assert images >= 5, "the notebooks' figures are missing from the site"


@pytest.mark.parametrize("name", ["verdicts.html", "papers/loss_relaxation/notebook.html"])
def test_equations_render(browser_page, name):
    base, page, watch = browser_page
    _open(page, watch, f"{base}/{name}")
    page.wait_for_function("document.querySelectorAll('mjx-container').length > 0", timeout=60_000)
    rendered = page.evaluate(f"document.querySelectorAll('{MATH}').length")
    unrendered = page.evaluate("Array.from(document.querySelectorAll('.math.notranslate')).filter("
                               "e => !e.querySelector('mjx-container')).length")
    assert rendered > 0 and unrendered == 0, f"{name}: {rendered} rendered, {unrendered} left as TeX"
    assert not watch.problems(), watch.problems()


def test_search_finds_relaxation(browser_page):
    base, page, watch = browser_page
    _open(page, watch, f"{base}/search.html?q=relaxation")
    page.wait_for_selector("ul.search li", timeout=60_000)
    hits = page.eval_on_selector_all("ul.search li a", "links => links.map(a => a.getAttribute('href'))")
    assert any("loss_relaxation" in h for h in hits), hits
    assert not watch.problems(), watch.problems()


def test_screenshots_for_a_person(browser_page, tmp_path):
    from medvl_core import config

    base, page, watch = browser_page
    out = Path(config.runs_root()) / "book-screens"
    out.mkdir(parents=True, exist_ok=True)
    for name, shot in SCREENS.items():
        _open(page, watch, f"{base}/{name}")
        page.screenshot(path=str(out / shot))
        assert (out / shot).stat().st_size > 10_000, f"{shot} is nearly empty"
    print(f"screenshots: {out}")
