"""medvl_core.train layer: one training engine (Accelerate) shared by every paper.

`config` (TrainConfig, TrainResult), `schedules` (lr schedules, plateau, early stopping), `checkpoints` (save,
load, resume), `distributed` (--processes, notebook launcher, global-batch shards) and `loop` (`train`)."""

from .checkpoints import CHECKPOINT_NAME
from .config import TrainConfig, TrainResult
from .distributed import launch_in_notebook
from .loop import train
from .schedules import lr_factor

__all__ = ["CHECKPOINT_NAME", "TrainConfig", "TrainResult", "launch_in_notebook", "lr_factor", "train"]
