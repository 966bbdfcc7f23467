"""Checkpoints of a training: what `checkpoint_dir/last.pt` holds (model, optimizer, scheduler, scaler, history,
every RNG state), written atomically, and the checks that let a run resume only from a checkpoint that fits it."""

from __future__ import annotations

import os
import random
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from .. import run_env as session
from ..errors import MedvlError
from ..io import atomic_path
from .config import TrainConfig

CHECKPOINT_NAME = "last.pt"
CHECKPOINT_FORMAT = "medvl-train-v1"
# settings a checkpoint must share with the config that resumes it (epochs may grow; the global batch, so a run
# checkpointed on N processes resumes on any number that splits it)
RESUME_KEYS = ("global_batch_size", "lr", "weight_decay", "betas", "warmup_steps", "grad_accum_steps",
               "max_grad_norm", "seed", "drop_last", "schedule", "optimizer", "momentum")


def fingerprint(config: TrainConfig, n_items: int) -> dict:
    """The settings a resumed run must share with its checkpoint."""
    values = {k: getattr(config, k) for k in RESUME_KEYS}
    values["betas"] = list(values["betas"])
    return {**values, "dataset_len": int(n_items)}


def _bad_checkpoint(path: Path, why: str) -> MedvlError:
    """The one error for an unusable checkpoint."""
    fix = ("rerun `medvl run` with --fresh (or delete it)" if os.environ.get(session.CHECKPOINT_ROOT_ENV)
           else "delete it or pass resume=False")
    return MedvlError(f"checkpoint {path} cannot be resumed ({why}); {fix}")


def resume(path: Path | None, model, optimizer, scheduler, config: TrainConfig, n_items: int) -> dict | None:
    """Load `path` into model/optimizer/scheduler if it exists; return the rest of its state."""
    if path is None or not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user problem
        raise _bad_checkpoint(path, f"unreadable: {type(err).__name__}") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise _bad_checkpoint(path, "not a medvl training checkpoint")
    _check_fingerprint(path, state.get("config") or {}, fingerprint(config, n_items))
    try:
        missing, unexpected = model.load_state_dict(state["model"], strict=False)
        if unexpected or set(missing) - frozen_names(model):
            raise ValueError(f"missing keys {sorted(set(missing) - frozen_names(model))[:3]}, unexpected {unexpected[:3]}")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise _bad_checkpoint(path, f"it does not fit this model/optimizer: {str(err).splitlines()[0]}") from err
    return state


def frozen_names(model: torch.nn.Module) -> set[str]:
    """Names of the parameters that do not train: a checkpoint leaves them out (frozen towers are large)."""
    return {name for name, p in model.named_parameters() if not p.requires_grad}


def trainable_state(state: dict, frozen: set[str]) -> dict:
    """A state dict without the frozen parameters, on the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items() if k not in frozen}


def _check_fingerprint(path: Path, saved: dict, current: dict) -> None:
    """Raise if a setting that changes the result differs between checkpoint and config."""
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    if "batch_size" in saved:  # written before the rename to global_batch_size (the one-process value)
        saved = {"global_batch_size": saved["batch_size"], **saved}
    for key, value in current.items():
        if key not in saved and value == defaults.get(key):  # written before the setting existed
            continue
        if saved.get(key) != value:
            raise _bad_checkpoint(path, f"it was written with {key}={saved.get(key)!r}, this run has {value!r}")


def rng_state() -> dict:
    """Python, NumPy, torch CPU and CUDA RNG states in a weights_only-loadable form."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` captured."""
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), gauss))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save `state` to `path` atomically (temp file, fsync, rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
