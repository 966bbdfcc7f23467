"""Learning-rate schedules and the epoch-level watch of a monitored metric: warm-up with cosine or constant decay
(`lr_factor`), plateau reductions, early stopping and the best epoch (`Plateau`)."""

from __future__ import annotations

import math

from ..errors import MedvlError, ParameterError
from .config import TrainConfig


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str = "cosine") -> float:
    """Multiplier of the base lr at optimizer step `step` (0-based): linear warm-up, then cosine to 0 or constant.

    "plateau" is constant here; its epoch-level reductions are applied by `Plateau`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule in ("constant", "plateau"):
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class Plateau:
    """Epoch-level watch of `config.monitor`: best value, lr reductions ("plateau") and early stopping."""

    def __init__(self, config: TrainConfig):
        """Start with no best value and the full learning rate."""
        self.config = config
        self.scale, self.best, self.best_epoch = 1.0, None, None
        self.stale, self.since_reduce, self.should_stop = 0, 0, False

    @property
    def active(self) -> bool:
        """Whether anything watches the monitored value."""
        c = self.config
        return c.schedule == "plateau" or c.early_stopping_patience is not None or c.keep_best

    def improved(self, value: float) -> bool:
        """Whether `value` beats the best so far (strictly, in monitor_mode's direction)."""
        if self.best is None:
            return True
        return value < self.best if self.config.monitor_mode == "min" else value > self.best

    def update(self, row: dict) -> bool:
        """Take one epoch's history row; return True when it is the best epoch so far."""
        if not self.active:
            return False
        value = _monitored(row, self.config.monitor)
        best = self.improved(value)
        if best:
            self.best, self.best_epoch, self.stale, self.since_reduce = value, int(row["epoch"]), 0, 0
        else:
            self.stale, self.since_reduce = self.stale + 1, self.since_reduce + 1
        if self.config.schedule == "plateau" and self.since_reduce > self.config.plateau_patience:
            self.scale, self.since_reduce = self.scale * self.config.plateau_factor, 0
        patience = self.config.early_stopping_patience
        self.should_stop = patience is not None and self.stale >= patience
        return best

    def state_dict(self) -> dict:
        """What a checkpoint must hold to resume the watch exactly."""
        return {"scale": self.scale, "best": self.best, "best_epoch": self.best_epoch, "stale": self.stale,
                "since_reduce": self.since_reduce, "should_stop": self.should_stop}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`'s values."""
        for key, value in state.items():
            setattr(self, key, value)


def _monitored(row: dict, key: str) -> float:
    """The monitored value of a history row, or one clear error naming the keys there are."""
    if key not in row:
        raise ParameterError(f"TrainConfig.monitor={key!r} is not in the epoch's metrics {sorted(row)}; "
                             "return it from val_fn or monitor one of these")
    value = float(row[key])
    if not math.isfinite(value):
        raise MedvlError(f"monitored metric {key!r} is {value} at epoch {row['epoch']}; check val_fn or lower the lr")
    return value
