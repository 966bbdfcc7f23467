"""What `medvl run` asks of every training in a notebook, through the environment of the kernel it starts (no torch).

- MEDVL_CHECKPOINT_ROOT: each `train` call without its own `checkpoint_dir` checkpoints into
  `<root>/<NNN>-<Model>-<digest>`, NNN counting the trainings of this process in order and the digest hashing the
  settings and parameter shapes, so the same notebook rerun into the same run folder finds each training's
  checkpoint again: finished trainings are loaded instead of retrained, an interrupted one resumes.
- MEDVL_RUN_LOG: one line per epoch (epoch/N, loss, validation metric, time per epoch, ETA) is appended to this
  file; `medvl run` prints the file's new lines to the terminal, so the notebook's outputs stay free of them.
- MEDVL_PROCESSES: trainings run on this many processes (Accelerate's data parallelism) at the global batch the
  notebook asked for (`TrainConfig.global_batch_size`; `train` derives and prints the per-process batch).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from pathlib import Path

CHECKPOINT_ROOT_ENV = "MEDVL_CHECKPOINT_ROOT"
RUN_LOG_ENV = "MEDVL_RUN_LOG"
PROCESSES_ENV = "MEDVL_PROCESSES"

_trainings = itertools.count(1)  # train() calls in this process


def training_dir(model, settings: dict) -> Path | None:
    """This training's folder under $MEDVL_CHECKPOINT_ROOT (None when unset); counts the call either way."""
    index = next(_trainings)
    root = os.environ.get(CHECKPOINT_ROOT_ENV)
    if not root:
        return None
    shapes = [[name, list(value.shape)] for name, value in model.state_dict().items()]
    digest = hashlib.sha256(json.dumps([settings, shapes], sort_keys=True, default=str).encode()).hexdigest()[:10]
    return Path(root) / f"{index:03d}-{type(model).__name__}-{digest}"


def processes() -> int:
    """The number of training processes asked for by $MEDVL_PROCESSES (1 when unset)."""
    try:
        return max(1, int(os.environ.get(PROCESSES_ENV, "1")))
    except ValueError:
        return 1


def log_line(text: str) -> None:
    """Append one time-stamped line to $MEDVL_RUN_LOG (nothing when unset)."""
    path = os.environ.get(RUN_LOG_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{time.strftime('%H:%M:%S')} {text}\n")


def epoch_line(name: str, row: dict, epochs: int, seconds_per_epoch: float, monitor: str | None) -> str:
    """'NAME epoch 3/25 loss 0.4321 val_auc 0.8123 2.1 s/epoch ETA 46 s' from an engine history row."""
    parts = [f"{name} epoch {row['epoch']}/{epochs}"]
    if "train_loss" in row:
        parts.append(f"loss {row['train_loss']:.4f}")
    shown = monitor if monitor in row and monitor != "train_loss" else next(
        (k for k in row if k.startswith("val_") and k != "val_seconds"), None)
    if shown and isinstance(row.get(shown), int | float):
        parts.append(f"{shown} {row[shown]:.4f}")
    left = max(0, epochs - int(row["epoch"])) * seconds_per_epoch
    parts.append(f"{seconds_per_epoch:.1f} s/epoch ETA {_duration(left)}")
    return " ".join(parts)


def _duration(seconds: float) -> str:
    """'46 s', '3 min 05 s' or '2 h 04 min'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
