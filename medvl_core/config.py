"""Paths, seeds and device choice shared by every layer."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

from .errors import MedvlError

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """Root of real datasets and generated synthetic worlds: $MEDVL_DATA or ~/.cache/medvl."""
    return Path(os.environ.get("MEDVL_DATA") or Path.home() / ".cache" / "medvl").expanduser()


def cache_dir(*parts: str) -> Path:
    """A folder under the data root's cache (created), e.g. cache_dir("features")."""
    path = data_root().joinpath("cache", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def lock_file(kind: str, key: str) -> Path:
    """The lock file (under the data root's cache/locks) that processes building the same `kind`/`key` share."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir("locks") / f"{kind}-{digest}.lock"


def dataset_dir(name: str) -> Path:
    """Default on-disk place of dataset `name` under the data root (not created)."""
    return data_root() / name


def runs_root() -> Path:
    """Where run folders go: $MEDVL_RUNS or ./runs."""
    return Path(os.environ.get("MEDVL_RUNS") or "runs").expanduser()


def papers_dir() -> Path:
    """The repository's papers/ folder (published numbers, params)."""
    return REPO_ROOT / "papers"


def notebooks_dir() -> Path:
    """Folder of the paper notebooks: $MEDVL_NOTEBOOKS (your edited copies) or the repository's notebooks/."""
    return Path(os.environ.get("MEDVL_NOTEBOOKS") or REPO_ROOT / "notebooks").expanduser()


def seed_everything(seed: int) -> int:
    """Seed Python, NumPy and (if importable) torch; ask torch (and cuDNN) for deterministic kernels."""
    seed = int(seed)
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    try:
        import torch
    except ImportError:  # pragma: no cover
        return seed
    torch.manual_seed(seed)
    deterministic_algorithms(torch)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return seed


def deterministic_algorithms(torch) -> None:
    """Ask torch for its deterministic kernels, so that a rerun gives bit-identical numbers.

    Without it, some multi-threaded CPU kernels accumulate in the order threads finish: the backward of an
    index into a parameter (e.g. UniCLIP's per-domain-pair similarity, `offset[pair]`) moved loss relaxation's
    recorded AUROCs by 1e-4 between two identical runs on 2 threads. Ops without a deterministic kernel warn
    instead of failing; cuBLAS needs its workspace setting before CUDA starts.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


def choose_device(preference: str = "auto") -> str:
    """Resolve "auto" | "cpu" | "cuda" | "cuda:N" | "mps" to an available torch device string."""
    import torch

    preference = (preference or "auto").lower()
    if preference == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise MedvlError(f"device={preference!r} asked for but no CUDA GPU is visible; use device='cpu' or 'auto'")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise MedvlError("device='mps' asked for but MPS is not available; use device='cpu' or 'auto'")
    if preference not in {"cpu", "mps"} and not preference.startswith("cuda"):
        raise MedvlError(f"unknown device {preference!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return preference


def environment_summary(device: str = "auto") -> str:
    """One line with the versions and device a notebook ran with (for its setup cell)."""
    import platform

    import torch

    from . import __version__

    return (f"medvl {__version__} | python {platform.python_version()} | torch {torch.__version__} | "
            f"device {choose_device(device)} | threads {torch.get_num_threads()}")
