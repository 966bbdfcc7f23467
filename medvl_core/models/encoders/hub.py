"""Hub access for the encoder backends: the offline fail-fast probe, loading through the Hugging Face cache,
local model folders, and the remote-code policy (which repos may run their own model code)."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from ...errors import ParameterError, UnknownSpecError

HF_HOST = "huggingface.co"
SCHEMAS = ("hf-hub:", "local-dir:")  # open_clip / timm names that carry their own weights (no @TAG)

# Hub repos whose model class lives in the repo (transformers' trust_remote_code), allowed by name;
# MEDVL_TRUST_REMOTE_CODE=1 allows any (it runs that repo's Python code).
REMOTE_CODE_REPOS = frozenset({"microsoft/BiomedVLP-CXR-BERT-specialized", "microsoft/BiomedVLP-CXR-BERT-general",
                               "microsoft/LLM2CLIP-Openai-L-14-336"})


@functools.lru_cache(maxsize=8)
def hub_reachable(host: str = HF_HOST, port: int = 443, timeout: float = 3.0) -> bool:
    """True when a TCP connection to `host` (or the HTTPS proxy) opens within `timeout` s; cached per process."""
    if host == HF_HOST and os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = parts.hostname or host, parts.port or 80
    result: list[bool] = []

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except Exception:  # any failure to connect means "not reachable"
            result.append(False)

    # a thread bounds DNS resolution too, which ignores socket timeouts
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


@contextlib.contextmanager
def hub_offline():
    """Make huggingface_hub (and timm/open_clip/transformers through it) use only its local cache."""
    from huggingface_hub import constants

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


@contextlib.contextmanager
def quiet_loading():
    """Hide transformers' per-load progress bars (noise in notebook outputs)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def load_remote(spec: str, load, alternative: str):
    """Run `load()`, which may download from the HF hub; offline it uses the cache only and fails fast."""
    offline = not hub_reachable(HF_HOST)
    try:
        with hub_offline() if offline else contextlib.nullcontext(), quiet_loading():
            return load()
    except (UnknownSpecError, ParameterError):
        raise
    except Exception as exc:  # hub/download errors come in many types (OSError, HTTPError, RuntimeError...)
        if offline:
            raise UnknownSpecError(f"cannot download {spec} (no network?); offline use {alternative}") from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnknownSpecError(f"cannot load {spec}: {first}; offline use {alternative}") from exc


def trust_remote_code(source: str) -> bool:
    """Whether transformers may run the model code shipped in `source` (allow-listed repo, or opted in by env)."""
    return source in REMOTE_CODE_REPOS or os.environ.get("MEDVL_TRUST_REMOTE_CODE") == "1"


@contextlib.contextmanager
def remote_code_guard(spec: str, source: str):
    """Turn transformers' "pass trust_remote_code=True" error into one naming REMOTE_CODE_REPOS and the opt-in flag."""
    try:
        yield
    except ValueError as exc:
        if "trust_remote_code" not in str(exc):
            raise
        raise UnknownSpecError(
            f"{spec!r}: {source} ships its own model code, which runs only for the repos allowed by name "
            f"({', '.join(sorted(REMOTE_CODE_REPOS))}) or when you set MEDVL_TRUST_REMOTE_CODE=1 (it executes "
            "that repository's Python code; read it first)") from None


def hf_source(spec: str, name: str) -> tuple[str, bool]:
    """(path or repo id, is_local) for an hf: spec."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path), True
    if path.exists() or name.startswith((".", "/", "~")):
        raise UnknownSpecError(f"{spec!r}: {path} is not a model folder (config.json etc.); check the path")
    return name, False


def hf_load(spec: str, name: str, load, alternative: str):
    """Load from a local folder directly, or from the hub through the offline guard."""
    source, local = hf_source(spec, name)
    if local:
        with quiet_loading():
            return load(source)
    return load_remote(spec, lambda: load(source), alternative)
