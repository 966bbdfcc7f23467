"""Headless Chromium for the browser tests: find the system's binary, serve a folder on localhost, watch a page.

The tests drive Debian's `chromium` through Playwright (never `playwright install`). Without a browser they skip,
unless MEDVL_REQUIRE_BROWSER=1 (set by .ci/run after .ci/browser-up installed it): then they fail.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


def chromium_path() -> str | None:
    """The Chromium binary: $MEDVL_CHROMIUM, Debian's (without its wrapper script), or one on PATH."""
    for name in (os.environ.get("MEDVL_CHROMIUM"), *CANDIDATES):
        found = name and (name if Path(name).is_file() and os.access(name, os.X_OK) else shutil.which(name))
        if found:
            return found
    return None


def require_browser() -> str:
    """Chromium's path; skips the test when there is none (fails instead under MEDVL_REQUIRE_BROWSER=1)."""
    path = chromium_path()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path, why = None, "the playwright package is not installed (make install)"
    else:
        why = "no Chromium found (apt-get install chromium, or .ci/browser-up as root; or set MEDVL_CHROMIUM)"
    if path is None:
        if os.environ.get("MEDVL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MEDVL_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    return path


@contextlib.contextmanager
def chromium():
    """A headless Chromium (Playwright browser) for the duration of the block."""
    from playwright.sync_api import sync_playwright

    path = require_browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test reports what failed; no access log
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """Serve `folder` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def is_outside(url: str) -> bool:
    """An http(s)/ws(s) URL whose host is not this machine (data:, blob: and about: are local)."""
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https", "ws", "wss") and (parsed.hostname or "") not in LOCAL_HOSTS


class Watch:
    """Records a page's console errors, uncaught exceptions, failed requests and requests outside localhost
    (those are aborted, so a test never reaches out)."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.failed: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"exception: {e}"))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        page.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        if is_outside(url):
            self.outside.append(url)
            route.abort()
        else:
            route.continue_()

    def reset(self) -> None:
        """Forget what was recorded (before the next page)."""
        self.errors.clear()
        self.outside.clear()
        self.failed.clear()

    def problems(self) -> list[str]:
        """Everything that went wrong since the last reset."""
        return [*self.errors, *(f"outside request: {u}" for u in self.outside),
                *(f"failed request: {u}" for u in self.failed)]
