"""JupyterLab as a student meets it: `make lab`'s server, the loss relaxation notebook, the project kernel.

Starts JupyterLab headless on localhost from the project's venv (as `make lab` does, with a token, the first-run
news notification off and throwaway settings), opens a temporary copy of notebooks/loss_relaxation.ipynb in
Chromium, switches to the kernel "medvl (.venv)", runs the setup and parameters cells and reads their output
in the page. The copy's outputs are cleared first, so the output found is this run's; the committed notebook is
never opened, so nothing can be saved into it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from medvl_core import config
from tests.browser_support import Watch, chromium, require_browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "loss_relaxation.ipynb"
KERNEL = "medvl (.venv)"
SETUP_OUTPUT = "medvl 0.1.0 | python"  # config.environment_summary(), printed by the setup cell

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(folder: Path) -> Path:
    """A user settings folder with the first-run news notification and the update check off."""
    plugin = folder / "@jupyterlab" / "apputils-extension"
    plugin.mkdir(parents=True)
    (plugin / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return folder


def _wait_up(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Poll the server's API until it answers (or the process dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"jupyter lab did not answer {url} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base URL, token, root folder): JupyterLab serving a folder with a copy of the notebook."""
    require_browser()
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    root.mkdir()
    notebook = json.loads(NOTEBOOK.read_text())
    for cell in notebook["cells"]:  # outputs cleared, so that the output the test finds is this run's
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    (root / NOTEBOOK.name).write_text(json.dumps(notebook))
    port, token = _free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd = [str(jupyter), "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
           f"--LabApp.user_settings_dir={_settings(tmp / 'settings')}", f"--LabApp.workspaces_dir={tmp / 'ws'}"]
    cmd += ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    env = {**os.environ, "MEDVL_RUNS": str(tmp / "runs"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    log = (tmp / "lab.log").open("w")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(f"{base}/api/status?token={token}", proc)
        yield base, token, root
    finally:
        _stop(proc, base, token)
        log.close()


def _stop(proc: subprocess.Popen, base: str, token: str) -> None:
    """Shut the server down through its API (which stops its kernels), then make sure the process is gone."""
    try:
        req = urllib.request.Request(f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(req, timeout=10)
    except OSError:
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _select_kernel(page, name: str) -> None:
    """Kernel menu -> Change Kernel… -> `name` in the dialog's list -> Select."""
    page.click("text=Kernel", timeout=60_000)
    page.click("text=Change Kernel…")
    dialog = page.locator(".jp-Dialog")
    dialog.locator("select").select_option(label=name)
    dialog.locator("button.jp-mod-accept").click()
    page.wait_for_selector(f".jp-Toolbar-kernelName:has-text('{name}')", timeout=60_000)


def test_student_runs_the_first_cells(lab):
    base, token, root = lab
    committed = NOTEBOOK.read_bytes()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        watch = Watch(page)
        page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", wait_until="load", timeout=120_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        _select_kernel(page, KERNEL)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        cells.nth(0).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")  # setup: imports, run folder, environment summary
        page.keyboard.press("Shift+Enter")  # parameters
        page.wait_for_selector(f".jp-OutputArea-output:has-text('{SETUP_OUTPUT}')", timeout=300_000)
        page.wait_for_function("Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')).slice(0, 2)"
                               ".map(p => p.textContent.trim()).join(' ') === '[1]: [2]:'", timeout=120_000)
        outputs = [cells.nth(i).locator(".jp-OutputArea").inner_text() for i in range(2)]
        dialogs = page.locator(".jp-Dialog").all_inner_texts()
        shots = Path(config.runs_root()) / "book-screens"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "04-lab-loss-relaxation.png"))
    assert not dialogs, f"dialogs open: {dialogs}"
    assert SETUP_OUTPUT in outputs[0], outputs
    assert not any(re.search(r"Traceback|\w+Error\b", text) for text in outputs), outputs
    assert not [e for e in watch.problems() if "outside request" in e], watch.problems()
    assert NOTEBOOK.read_bytes() == committed, "the committed notebook changed"
