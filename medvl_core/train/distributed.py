"""Training on several processes: `--processes N` (`medvl run`, $MEDVL_PROCESSES) forks N processes, each stepping
through its share of the one-process batches (`GlobalBatchShards`); `launch_in_notebook` starts a function on every
GPU from a notebook.

The same training script also runs under Accelerate's launcher, e.g.::

    accelerate launch --multi_gpu --num_processes 4 my_script.py      # or: accelerate config, then accelerate launch

Either way `TrainConfig.global_batch_size` is the batch of all processes together (each process takes
`per_process_batch_size(N)` of it; an optimizer step sees global_batch_size * grad_accum_steps) and
`warmup_steps` counts optimizer steps. Only the main process shows progress and writes
checkpoints. From a notebook use `launch_in_notebook(fn, *args)` (do not touch CUDA in the
notebook before it). DDP (Accelerate's default multi-GPU mode) is what this engine is written for;
FSDP/DeepSpeed configs are untested.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .. import run_env as session
from ..errors import ParameterError
from .config import TrainConfig, TrainResult


def is_distributed() -> bool:
    """Whether this process is one of several (accelerate launch / notebook_launcher)."""
    return world_size() > 1


def world_size() -> int:
    """The number of processes of this launch ($WORLD_SIZE, 1 when unset)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def announce_split(config: TrainConfig, n: int) -> None:
    """Print and log once (rank 0) how the global batch splits over `n` processes: 'global batch 8 = 2 x 4 ...'."""
    if int(os.environ.get("RANK", "0")):
        return
    note = (f"training on {n} processes: global batch {config.global_batch_size} = {n} x "
            f"{config.per_process_batch_size(n)} per process")
    print(f"medvl: {note}")
    session.log_line(f"{Path(config.checkpoint_dir).name if config.checkpoint_dir else 'training'} {note}")


def train_on_processes(n: int, run_loop: Callable, model, train_dataset, loss_fn, config: TrainConfig, collate_fn,
                       val_fn, param_groups) -> TrainResult:
    """Train on `n` forked processes (gloo on CPU, NCCL on GPUs) at the global batch `config.global_batch_size`, then
    load the finished checkpoint into `model` here; `run_loop` is the one-process loop (`loop.run_loop`)."""
    import tempfile

    from torch.multiprocessing import start_processes

    config.per_process_batch_size(n)  # refuses a global batch that does not split evenly
    if config.grad_accum_steps > 1:  # our sharded loader does not tell Accelerate where an epoch ends
        raise ParameterError(f"--processes {n} with grad_accum_steps={config.grad_accum_steps} is not supported: "
                             "raise global_batch_size instead, or use --processes 1")
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        raise ParameterError(f"--processes {n}: CUDA was used in this kernel before the training; multi-GPU "
                             "training forks its processes, which needs CUDA untouched (run the towers on the "
                             "CPU before training, or use --processes 1)")
    folder = config.checkpoint_dir or tempfile.mkdtemp(prefix="medvl-train-")
    child = replace(config, checkpoint_dir=folder)  # the global batch: each process takes its share in the loop
    announce_split(child, n)
    with _free_port_env(n):
        start_processes(_process_main, args=(n, run_loop, model, train_dataset, loss_fn, child, collate_fn, val_fn,
                                             param_groups), nprocs=n, start_method="fork")
    return run_loop(model, train_dataset, loss_fn, child, collate_fn, val_fn, param_groups)


def _process_main(rank: int, n: int, run_loop: Callable, model, train_dataset, loss_fn, config, collate_fn, val_fn,
                  param_groups) -> None:
    """One forked training process: its rank's environment, fresh Accelerate state, the loop."""
    from accelerate.state import AcceleratorState, GradientState

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(n), LOCAL_WORLD_SIZE=str(n))
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    torch.set_num_threads(max(1, torch.get_num_threads() // n))
    run_loop(model, train_dataset, loss_fn, config, collate_fn, val_fn, param_groups)


@contextlib.contextmanager
def _free_port_env(n: int):
    """MASTER_ADDR/PORT (a free local port) for the `n` processes of one launch; restored afterwards."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        values = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(sock.getsockname()[1])}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def launch_in_notebook(fn: Callable, *args, num_processes: int | None = None):
    """Run `fn(*args)` on every visible GPU via accelerate.notebook_launcher; directly when <= 1 process."""
    n = torch.cuda.device_count() if num_processes is None else int(num_processes)
    if n <= 1:
        return fn(*args)
    from accelerate import notebook_launcher

    return notebook_launcher(fn, args, num_processes=n)


class GlobalBatchShards(torch.utils.data.Sampler):
    """This process's share of every global batch of the one-process run (same seeded order, same batches), the last
    partial batch split as evenly as possible, so N processes step through exactly the one-process batches
    (Accelerate's own sharding pads a partial last batch with repeated items)."""

    def __init__(self, n_items: int, global_batch: int, rank: int, world: int, generator, drop_last: bool = False):
        self.n_items, self.global_batch, self.rank, self.world = n_items, global_batch, rank, world
        self.generator, self.drop_last = generator, drop_last

    def _batches(self) -> list[list[int]]:
        order = torch.randperm(self.n_items, generator=self.generator).tolist()
        batches = [order[i:i + self.global_batch] for i in range(0, self.n_items, self.global_batch)]
        if batches and len(batches[-1]) < max(self.global_batch if self.drop_last else 1, self.world):
            batches.pop()  # dropped, or too small to give every process an item
        return batches

    def __iter__(self):
        for batch in self._batches():
            yield np.array_split(np.asarray(batch), self.world)[self.rank].tolist()

    def __len__(self) -> int:
        full, rest = divmod(self.n_items, self.global_batch)
        return full + int(rest >= max(self.global_batch if self.drop_last else 1, self.world))


class OnDevice:
    """A DataLoader whose batches are moved to `device` (what Accelerate's prepared loader does)."""

    def __init__(self, loader, device):
        self.loader, self.device = loader, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        from accelerate.utils import send_to_device

        for batch in self.loader:
            yield send_to_device(batch, self.device)
