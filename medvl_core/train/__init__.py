"""medvl_core.train layer: one training engine (Accelerate) shared by every paper."""

from .engine import CHECKPOINT_NAME, TrainConfig, TrainResult, launch_in_notebook, lr_factor, train

__all__ = ["CHECKPOINT_NAME", "TrainConfig", "TrainResult", "launch_in_notebook", "lr_factor", "train"]
