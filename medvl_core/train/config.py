"""The settings and the result of one `train` call: TrainConfig (validated on creation) and TrainResult."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParameterError

MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
SCHEDULES = ("cosine", "constant", "plateau")
OPTIMIZERS = ("adamw", "adam", "sgd")
MONITOR_MODES = ("min", "max")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Hyperparameters and run settings of one `train` call.

    `global_batch_size` is the number of examples one optimizer micro-step sees, summed over all processes (the same
    under `--processes N` and `accelerate launch`); each process takes `per_process_batch_size(N)` of them, and
    gradient accumulation multiplies it further (an optimizer step sees global_batch_size * grad_accum_steps).
    """

    epochs: int = 1
    global_batch_size: int = 32  # examples per micro-step over all processes (see above)
    lr: float = 1e-4
    optimizer: str = "adamw"  # "adamw" (decoupled decay), "adam" (L2 decay in the gradient) or "sgd"
    weight_decay: float = 0.0  # 0 with "adamw" = plain Adam
    betas: tuple[float, float] = (0.9, 0.999)  # Adam/AdamW
    momentum: float = 0.9  # SGD only
    warmup_steps: int = 0  # linear warm-up, in optimizer steps
    schedule: str = "cosine"  # "cosine" (to 0 at the last step), "constant", or "plateau" (see below)
    plateau_factor: float = 0.1  # "plateau": multiply the lr by this ...
    plateau_patience: int = 3  # ... after this many epochs without improvement of `monitor`
    monitor: str = "val_loss"  # history key watched by "plateau" and early stopping (val_fn key or train_<term>)
    monitor_mode: str = "min"  # "min" or "max": which direction is an improvement
    early_stopping_patience: int | None = None  # stop after this many epochs without improvement; None = never
    keep_best: bool = False  # at the end, load the weights of the best epoch by `monitor`
    grad_accum_steps: int = 1
    max_grad_norm: float | None = None
    mixed_precision: str = "auto"  # "auto" = bf16 on CUDA (fp16 if no bf16), else "no"
    seed: int = 0
    num_workers: int = 0  # loader worker processes; -1: the cores minus one on CUDA, 0 on the CPU (train.loader)
    checkpoint_dir: str | os.PathLike | None = None  # None = no checkpoints
    checkpoint_every_epochs: int = 1
    resume: bool = True
    log_every: int = 10  # optimizer steps between step-log entries / progress updates
    device: str = "auto"
    progress: bool = True
    drop_last: bool = False

    def __post_init__(self):
        """Validate values; raise one clear ParameterError."""
        for name in ("epochs", "global_batch_size", "grad_accum_steps", "checkpoint_every_epochs", "log_every"):
            _check(name, getattr(self, name) >= 1, ">= 1")
        for name in ("warmup_steps", "weight_decay", "momentum", "plateau_patience"):
            _check(name, getattr(self, name) >= 0, ">= 0")
        _check("num_workers", self.num_workers >= -1, ">= 0, or -1 for the available cores minus one on CUDA")
        _check("plateau_factor", 0 < self.plateau_factor < 1, "in (0, 1)")
        _check("early_stopping_patience", self.early_stopping_patience is None or self.early_stopping_patience >= 1,
               ">= 1 or None")
        _check("optimizer", self.optimizer in OPTIMIZERS, f"one of {OPTIMIZERS}")
        _check("monitor_mode", self.monitor_mode in MONITOR_MODES, f"one of {MONITOR_MODES}")
        _check("monitor", not self.monitor.startswith("test"), "a validation or training key (epochs are never chosen on test data)")
        _check("lr", self.lr > 0, "> 0")
        _check("max_grad_norm", self.max_grad_norm is None or self.max_grad_norm > 0, "> 0 or None")
        _check("betas", len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "two values in [0, 1)")
        _check("mixed_precision", self.mixed_precision in MIXED_PRECISION, f"one of {MIXED_PRECISION}")
        _check("schedule", self.schedule in SCHEDULES, f"one of {SCHEDULES}")
        _check("device", self.device in DEVICES, f"one of {DEVICES}")
        self.betas = tuple(float(b) for b in self.betas)

    def per_process_batch_size(self, processes: int) -> int:
        """global_batch_size split over `processes`; ParameterError unless it divides evenly."""
        if self.global_batch_size % processes:
            raise ParameterError(f"global_batch_size={self.global_batch_size} must split evenly over {processes} "
                                 f"processes (--processes or accelerate launch); choose a multiple of {processes}")
        return self.global_batch_size // processes


def _check(name: str, ok: bool, rule: str) -> None:
    """Raise ParameterError for TrainConfig.`name` unless `ok`."""
    if not ok:
        raise ParameterError(f"TrainConfig.{name} must be {rule}; fix the value you passed")


@dataclass
class TrainResult:
    """What `train` returns: per-epoch history, step log and totals."""

    history: list[dict] = field(default_factory=list)
    step_log: list[dict] = field(default_factory=list)
    steps: int = 0  # optimizer steps taken in total (including epochs before a resume)
    seconds: float = 0.0  # wall-clock time of this call
    start_epoch: int = 0  # first epoch trained by this call (> 0 after a resume)
    checkpoint: Path | None = None
    model: Any = field(default=None, repr=False)
    stopped_early: bool = False  # early stopping ended training before config.epochs
    best_epoch: int | None = None  # 1-based epoch with the best `monitor` (None when nothing was monitored)

    def history_frame(self):
        """The history as a pandas DataFrame indexed by epoch."""
        import pandas as pd

        return pd.DataFrame(self.history).set_index("epoch") if self.history else pd.DataFrame()
