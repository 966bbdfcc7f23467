"""One training engine for every paper: HF Accelerate, AMP, gradient accumulation, LR schedules, early stopping,
checkpoint/resume.

Usage::

    from medvl_core.train import TrainConfig, train

    result = train(model, dataset, loss_fn, TrainConfig(epochs=5, batch_size=32, lr=1e-4),
                   collate_fn=collate, val_fn=lambda model, epoch: {"val_auroc": ...})
    result.history_frame()

`loss_fn(model, batch)` returns a scalar tensor or a dict with "loss" (other scalars are logged as
`train_<key>`). It must run the network through `model(...)`: under multi-GPU the model is wrapped
in DistributedDataParallel and only `forward` synchronises gradients. `val_fn(model, epoch)` runs
after each epoch in eval mode under `torch.no_grad()` on the main process; its dict goes into the
history verbatim.

Determinism: `train` seeds everything from `config.seed`; each epoch's shuffle comes from a
`torch.Generator` seeded from (seed, epoch), and `dataset.set_epoch(epoch)` is called before the
epoch when the dataset has it (Accelerate's loader may call it again with the same epoch: keep it
idempotent, e.g. seed the epoch's sampling from (seed, epoch)). A checkpoint (`checkpoint_dir/last.pt`) holds model, optimizer, scheduler, scaler,
history and every RNG state, so a run that was interrupted and resumed ends with exactly the same
parameters as one that never stopped (same config, same hardware).

Multi-GPU: the same script runs under Accelerate's launcher, e.g.::

    accelerate launch --multi_gpu --num_processes 4 my_script.py      # or: accelerate config, then accelerate launch

`batch_size` is per process (effective batch = batch_size * processes * grad_accum_steps) and
`warmup_steps` counts optimizer steps. Only the main process shows progress and writes
checkpoints. From a notebook use `launch_in_notebook(fn, *args)` (do not touch CUDA in the
notebook before it). DDP (Accelerate's default multi-GPU mode) is what this engine is written for;
FSDP/DeepSpeed configs are untested.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from .. import run_env as session
from ..config import choose_device, seed_everything
from ..errors import MedvlError, ParameterError
from ..io import atomic_path

CHECKPOINT_NAME = "last.pt"
CHECKPOINT_FORMAT = "medvl-train-v1"
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
SCHEDULES = ("cosine", "constant", "plateau")
OPTIMIZERS = ("adamw", "adam", "sgd")
MONITOR_MODES = ("min", "max")
DEVICES = ("auto", "cpu", "cuda")
# settings a checkpoint must share with the config that resumes it (epochs may grow)
RESUME_KEYS = ("batch_size", "lr", "weight_decay", "betas", "warmup_steps", "grad_accum_steps",
               "max_grad_norm", "seed", "drop_last", "schedule", "optimizer", "momentum")


@dataclass
class TrainConfig:
    """Hyperparameters and run settings of one `train` call."""

    epochs: int = 1
    batch_size: int = 32
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
    num_workers: int = 0
    checkpoint_dir: str | os.PathLike | None = None  # None = no checkpoints
    checkpoint_every_epochs: int = 1
    resume: bool = True
    log_every: int = 10  # optimizer steps between step-log entries / progress updates
    device: str = "auto"
    progress: bool = True
    drop_last: bool = False

    def __post_init__(self):
        """Validate values; raise one clear ParameterError."""
        for name in ("epochs", "batch_size", "grad_accum_steps", "checkpoint_every_epochs", "log_every"):
            _check(name, getattr(self, name) >= 1, ">= 1")
        for name in ("warmup_steps", "num_workers", "weight_decay", "momentum", "plateau_patience"):
            _check(name, getattr(self, name) >= 0, ">= 0")
        _check("plateau_factor", 0 < self.plateau_factor < 1, "in (0, 1)")
        _check("early_stopping_patience", self.early_stopping_patience is None or self.early_stopping_patience >= 1,
               ">= 1 or None")
        _check("optimizer", self.optimizer in OPTIMIZERS, f"one of {OPTIMIZERS}")
        _check("monitor_mode", self.monitor_mode in MONITOR_MODES, f"one of {MONITOR_MODES}")
        _check("lr", self.lr > 0, "> 0")
        _check("max_grad_norm", self.max_grad_norm is None or self.max_grad_norm > 0, "> 0 or None")
        _check("betas", len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "two values in [0, 1)")
        _check("mixed_precision", self.mixed_precision in MIXED_PRECISION, f"one of {MIXED_PRECISION}")
        _check("schedule", self.schedule in SCHEDULES, f"one of {SCHEDULES}")
        _check("device", self.device in DEVICES, f"one of {DEVICES}")
        self.betas = tuple(float(b) for b in self.betas)


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

    @property
    def final_metrics(self) -> dict:
        """The last epoch's history row."""
        return dict(self.history[-1]) if self.history else {}

    def history_frame(self):
        """The history as a pandas DataFrame indexed by epoch."""
        import pandas as pd

        return pd.DataFrame(self.history).set_index("epoch") if self.history else pd.DataFrame()


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str = "cosine") -> float:
    """Multiplier of the base lr at optimizer step `step` (0-based): linear warm-up, then cosine to 0 or constant.

    "plateau" is constant here; its epoch-level reductions are applied by `Plateau`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule in ("constant", "plateau"):
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def train(model: torch.nn.Module, train_dataset, loss_fn: Callable, config: TrainConfig | None = None,
          collate_fn: Callable | None = None, val_fn: Callable | None = None, param_groups=None) -> TrainResult:
    """Train `model` in place on `train_dataset` with `loss_fn(model, batch)`; resume from a checkpoint if any.

    Under `medvl run` (see `train.session`) a config without `checkpoint_dir` checkpoints into the run folder, epoch
    lines go to its run.log, and $MEDVL_PROCESSES > 1 trains on that many processes at the same global batch.
    """
    config = config or TrainConfig()
    if config.checkpoint_dir is None:
        folder = session.training_dir(model, _fingerprint(config, len(train_dataset)))
        config = replace(config, checkpoint_dir=folder) if folder is not None else config
    n = session.processes()
    if n > 1 and not _distributed():
        return _train_on_processes(n, model, train_dataset, loss_fn, config, collate_fn, val_fn, param_groups)
    return _train(model, train_dataset, loss_fn, config, collate_fn, val_fn, param_groups)


def _train(model, train_dataset, loss_fn, config: TrainConfig, collate_fn, val_fn, param_groups) -> TrainResult:
    """The training loop of `train` in this process (one of several under a distributed launch)."""
    t0 = time.perf_counter()
    seed_everything(config.seed)
    accelerator = _accelerator(config)
    loader_len = len(_loader(train_dataset, config, collate_fn, 0, accelerator))
    if loader_len == 0:
        raise ParameterError(f"train_dataset has {len(train_dataset)} items, fewer than batch_size={config.batch_size} "
                             "per process; lower batch_size or set drop_last=False")
    total = config.epochs * math.ceil(loader_len / config.grad_accum_steps)
    optimizer = _optimizer(model, config, param_groups)
    tracker = Plateau(config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, config.warmup_steps, total, config.schedule) * tracker.scale)
    path = Path(config.checkpoint_dir) / CHECKPOINT_NAME if config.checkpoint_dir else None
    state = _resume(path, model, optimizer, scheduler, config, len(train_dataset)) if config.resume else None
    model, optimizer = accelerator.prepare(model, optimizer)
    run = _Run(accelerator, model, optimizer, scheduler, loss_fn, config, path, tracker)
    run.start(state, len(train_dataset))
    for epoch in range(run.epoch, config.epochs):
        if tracker.should_stop:
            break
        run.epoch_loop(train_dataset, collate_fn, val_fn, epoch)
    result = run.result()
    result.seconds = time.perf_counter() - t0
    return result


def _train_on_processes(n: int, model, train_dataset, loss_fn, config: TrainConfig, collate_fn, val_fn,
                        param_groups) -> TrainResult:
    """Train on `n` forked processes (gloo on CPU, NCCL on GPUs) at the global batch `config.batch_size`, then load
    the finished checkpoint into `model` here."""
    import tempfile

    from torch.multiprocessing import start_processes

    if config.batch_size % n:
        raise ParameterError(f"batch_size={config.batch_size} is the global batch and must split evenly over "
                             f"{n} processes (--processes); choose a multiple of {n}")
    if config.grad_accum_steps > 1:  # our sharded loader does not tell Accelerate where an epoch ends
        raise ParameterError(f"--processes {n} with grad_accum_steps={config.grad_accum_steps} is not supported: "
                             "raise the global batch_size instead, or use --processes 1")
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        raise ParameterError(f"--processes {n}: CUDA was used in this kernel before the training; multi-GPU "
                             "training forks its processes, which needs CUDA untouched (run the towers on the "
                             "CPU before training, or use --processes 1)")
    folder = config.checkpoint_dir or tempfile.mkdtemp(prefix="medvl-train-")
    child = replace(config, batch_size=config.batch_size // n, checkpoint_dir=folder)
    note = f"training on {n} processes: global batch {config.batch_size} = {n} x {child.batch_size} per process"
    print(f"medvl: {note}")
    session.log_line(f"{Path(folder).name} {note}")
    with _free_port_env(n):
        start_processes(_process_main, args=(n, model, train_dataset, loss_fn, child, collate_fn, val_fn, param_groups),
                        nprocs=n, start_method="fork")
    return _train(model, train_dataset, loss_fn, child, collate_fn, val_fn, param_groups)


def _process_main(rank: int, n: int, model, train_dataset, loss_fn, config, collate_fn, val_fn, param_groups) -> None:
    """One forked training process: its rank's environment, fresh Accelerate state, the loop."""
    from accelerate.state import AcceleratorState, GradientState

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(n), LOCAL_WORLD_SIZE=str(n))
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    torch.set_num_threads(max(1, torch.get_num_threads() // n))
    _train(model, train_dataset, loss_fn, config, collate_fn, val_fn, param_groups)


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


# --- setup -----------------------------------------------------------------------------------------


def _distributed() -> bool:
    """Whether this process is one of several (accelerate launch / notebook_launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _mixed_precision(config: TrainConfig, device: str) -> str:
    """Resolve "auto" and refuse fp16 without CUDA."""
    mp = config.mixed_precision
    if mp == "auto":
        if not device.startswith("cuda"):
            return "no"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if mp == "fp16" and not device.startswith("cuda"):
        raise ParameterError("TrainConfig.mixed_precision='fp16' needs a CUDA GPU; use 'bf16' or 'no' on this device")
    return mp


def _accelerator(config: TrainConfig):
    """An Accelerator for `config`; a previous single-process run's conflicting global state is forgotten."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState, PartialState

    device = "cuda" if _distributed() and torch.cuda.is_available() else choose_device(config.device)
    mp = _mixed_precision(config, device)
    cpu = device == "cpu"
    old_device = PartialState._shared_state.get("device")
    old_mp = AcceleratorState._shared_state.get("_mixed_precision")
    if not _distributed() and ((old_device is not None and (old_device.type == "cpu") != cpu)
                               or (old_mp is not None and old_mp != mp)):
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    from accelerate.utils import DataLoaderConfiguration

    # pinned host batches copied without blocking the host (Accelerate's default blocks on every batch)
    loaders = DataLoaderConfiguration(non_blocking=not cpu)
    return Accelerator(cpu=cpu, mixed_precision=mp, gradient_accumulation_steps=config.grad_accum_steps,
                       dataloader_config=loaders)


def _epoch_seed(seed: int, epoch: int) -> int:
    """Seed of epoch `epoch`'s shuffle generator."""
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1)


def _seed_worker(worker_id: int) -> None:
    """Seed NumPy and `random` in a DataLoader worker from its torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _loader(dataset, config: TrainConfig, collate_fn, epoch: int, accelerator):
    """This epoch's shuffled DataLoader (generator seeded from (seed, epoch)), sharded by Accelerate."""
    generator = torch.Generator().manual_seed(_epoch_seed(config.seed, epoch))
    common = {"collate_fn": collate_fn, "num_workers": config.num_workers, "pin_memory": accelerator.device.type == "cuda",
              "worker_init_fn": _seed_worker if config.num_workers else None}
    if accelerator.num_processes > 1:
        shards = GlobalBatchShards(len(dataset), config.batch_size * accelerator.num_processes,
                                   accelerator.process_index, accelerator.num_processes, generator, config.drop_last)
        # the loader draws its base seed from `generator` before the order, as the one-process loader does
        return _OnDevice(DataLoader(dataset, batch_sampler=shards, generator=generator, **common), accelerator.device)
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, generator=generator,
                        drop_last=config.drop_last, **common)
    loader = accelerator.prepare_data_loader(loader)
    if hasattr(loader, "iteration"):  # Accelerate's loader calls dataset.set_epoch(iteration) when iterated
        loader.iteration = epoch
    return loader


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


class _OnDevice:
    """A DataLoader whose batches are moved to `device` (what Accelerate's prepared loader does)."""

    def __init__(self, loader, device):
        self.loader, self.device = loader, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        from accelerate.utils import send_to_device

        for batch in self.loader:
            yield send_to_device(batch, self.device)


def _optimizer(model: torch.nn.Module, config: TrainConfig, param_groups=None) -> torch.optim.Optimizer:
    """config.optimizer over the trainable parameters (or over `param_groups`, frozen ones dropped)."""
    groups = param_groups if param_groups is not None else [{"params": list(model.parameters())}]
    groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in groups]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ParameterError("train(): the model has no trainable parameters (all requires_grad=False); "
                             "unfreeze some or pass param_groups")
    # multi-tensor updates: torch picks them on CUDA only; on the CPU they save ~3 % of a small model's step
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                               foreach=True)
    adam = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return adam(groups, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, foreach=True)


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


# --- checkpoints -----------------------------------------------------------------------------------


def _fingerprint(config: TrainConfig, n_items: int) -> dict:
    """The settings a resumed run must share with its checkpoint."""
    values = {k: getattr(config, k) for k in RESUME_KEYS}
    values["betas"] = list(values["betas"])
    return {**values, "dataset_len": int(n_items)}


def _bad_checkpoint(path: Path, why: str) -> MedvlError:
    """The one error for an unusable checkpoint."""
    fix = ("rerun `medvl run` with --fresh (or delete it)" if os.environ.get(session.CHECKPOINT_ROOT_ENV)
           else "delete it or pass resume=False")
    return MedvlError(f"checkpoint {path} cannot be resumed ({why}); {fix}")


def _resume(path: Path | None, model, optimizer, scheduler, config: TrainConfig, n_items: int) -> dict | None:
    """Load `path` into model/optimizer/scheduler if it exists; return the rest of its state."""
    if path is None or not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user problem
        raise _bad_checkpoint(path, f"unreadable: {type(err).__name__}") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise _bad_checkpoint(path, "not a medvl training checkpoint")
    _check_fingerprint(path, state.get("config") or {}, _fingerprint(config, n_items))
    try:
        missing, unexpected = model.load_state_dict(state["model"], strict=False)
        if unexpected or set(missing) - _frozen(model):
            raise ValueError(f"missing keys {sorted(set(missing) - _frozen(model))[:3]}, unexpected {unexpected[:3]}")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise _bad_checkpoint(path, f"it does not fit this model/optimizer: {str(err).splitlines()[0]}") from err
    return state


def _frozen(model: torch.nn.Module) -> set[str]:
    """Names of the parameters that do not train: a checkpoint leaves them out (frozen towers are large)."""
    return {name for name, p in model.named_parameters() if not p.requires_grad}


def _trainable_state(state: dict, frozen: set[str]) -> dict:
    """A state dict without the frozen parameters, on the CPU."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items() if k not in frozen}


def _check_fingerprint(path: Path, saved: dict, current: dict) -> None:
    """Raise if a setting that changes the result differs between checkpoint and config."""
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    for key, value in current.items():
        if key not in saved and value == defaults.get(key):  # written before the setting existed
            continue
        if saved.get(key) != value:
            raise _bad_checkpoint(path, f"it was written with {key}={saved.get(key)!r}, this run has {value!r}")


def _rng_state() -> dict:
    """Python, NumPy, torch CPU and CUDA RNG states in a weights_only-loadable form."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict) -> None:
    """Restore what `_rng_state` captured."""
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), gauss))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save(path: Path, state: dict) -> None:
    """torch.save `state` to `path` atomically (temp file, fsync, rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())


# --- the loop --------------------------------------------------------------------------------------


class _Run:
    """Mutable state of one `train` call: counters, history, logging and checkpointing."""

    def __init__(self, accelerator, model, optimizer, scheduler, loss_fn, config, path, tracker):
        """Keep the prepared objects."""
        self.acc, self.model, self.optimizer, self.scheduler = accelerator, model, optimizer, scheduler
        self.loss_fn, self.config, self.path, self.tracker = loss_fn, config, path, tracker
        self.best_state = None
        self.epoch, self.step, self.history, self.step_log = 0, 0, [], []
        self.start_epoch, self.fingerprint, self.lr_used = 0, None, float("nan")
        self.frozen = _frozen(accelerator.unwrap_model(model))
        self.name = path.parent.name if path is not None else "training"
        self.seconds = []  # per epoch trained by this call (for the ETA)

    def start(self, state: dict | None, n_items: int) -> None:
        """Take over a loaded checkpoint's counters, scaler and RNG states."""
        self.fingerprint = _fingerprint(self.config, n_items)
        if state is None:
            return
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history, self.step_log = list(state["history"]), list(state["step_log"])
        if self.acc.scaler is not None and state.get("scaler"):
            self.acc.scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        _set_rng_state(rngs[self.acc.process_index % len(rngs)])
        self.tracker.load_state_dict(state.get("plateau") or {})
        self.best_state = state.get("best_model")
        self.start_epoch = self.epoch
        if self.acc.is_main_process:
            done = self.epoch >= self.config.epochs or self.tracker.should_stop
            session.log_line(f"{self.name} " + (f"finished earlier ({self.epoch} epochs): loaded from its checkpoint"
                                               if done else f"resumed after epoch {self.epoch}/{self.config.epochs}"))

    def epoch_loop(self, dataset, collate_fn, val_fn, epoch: int) -> None:
        """Train one epoch, validate, record history, checkpoint."""
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        loader = _loader(dataset, self.config, collate_fn, epoch, self.acc)
        t0 = time.perf_counter()
        means, n_samples = self._train_epoch(loader, epoch)
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, **means, "lr": self.lr_used,
               "seconds": seconds, "samples_per_s": n_samples * self.acc.num_processes / max(seconds, 1e-9)}
        row.update(self._validate(val_fn, epoch))
        scale = self.tracker.scale
        if self.tracker.update(row) and self.config.keep_best:
            self.best_state = _trainable_state(self.acc.unwrap_model(self.model).state_dict(), self.frozen)
        if self.tracker.scale != scale:
            self._apply_lr()
        self.history.append(row)
        self.epoch = epoch + 1
        self.seconds.append(seconds + row.get("val_seconds", 0.0))
        if self.acc.is_main_process:
            session.log_line(session.epoch_line(self.name, row, self.config.epochs, float(np.mean(self.seconds)),
                                                self.config.monitor))
        last = self.epoch == self.config.epochs or self.tracker.should_stop
        if self.path is not None and (self.epoch % self.config.checkpoint_every_epochs == 0 or last):
            self._checkpoint()

    def _apply_lr(self) -> None:
        """Set each group's lr from the scheduler now, so a plateau reduction acts from the next step on."""
        step = self.scheduler.last_epoch
        for group, base, factor in zip(self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas):
            group["lr"] = base * factor(step)

    def _train_epoch(self, loader, epoch: int):
        """One pass over `loader`; return the mean loss terms and the number of samples seen."""
        self.model.train()
        bar = self._bar(loader, epoch)
        sums, n_batches, n_samples = {}, 0, 0
        for batch in loader:
            terms = self._micro_step(batch)
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value
            n_batches, n_samples = n_batches + 1, n_samples + _batch_len(batch, self.config.batch_size)
            if self.acc.sync_gradients:
                self._after_optimizer_step(terms, bar)
            bar.update(1)
        means = self._means(sums, n_batches)
        bar.set_postfix(loss=f"{means.get('train_loss', float('nan')):.4f}")
        bar.close()
        return means, n_samples

    def _micro_step(self, batch) -> dict:
        """Forward, backward and (on accumulation boundaries) optimizer step; return detached loss terms."""
        with self.acc.accumulate(self.model):
            with self.acc.autocast():
                loss, extras = _split_loss(self.loss_fn(self.model, batch))
            self.acc.backward(loss)
            if self.acc.sync_gradients and self.config.max_grad_norm:
                self.acc.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
            self.lr_used = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            if self.acc.sync_gradients and not self.optimizer.step_was_skipped:
                self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss.detach(), **extras}

    def _after_optimizer_step(self, terms: dict, bar) -> None:
        """Count the step; every `log_every` steps log it and refresh the progress bar."""
        self.step += 1
        if self.step % self.config.log_every:
            return
        entry = {"step": self.step, "lr": self.lr_used,
                 **{k: float(v) for k, v in terms.items()}}
        if not math.isfinite(entry["loss"]):
            raise MedvlError(f"loss_fn returned a non-finite loss ({entry['loss']}) at optimizer step {self.step}; "
                             "lower TrainConfig.lr, set max_grad_norm, or check the inputs")
        self.step_log.append(entry)
        bar.set_postfix(loss=f"{entry['loss']:.4f}", lr=f"{entry['lr']:.2e}")

    def _means(self, sums: dict, n_batches: int) -> dict:
        """Per-epoch means of the loss terms, averaged over processes, as train_<key> floats."""
        if not n_batches:
            return {}
        keys = sorted(sums)
        totals = torch.stack([torch.as_tensor(sums[k], dtype=torch.float64, device=self.acc.device) for k in keys])
        totals = self.acc.reduce(totals, reduction="mean")
        return {f"train_{k}": float(v) / n_batches for k, v in zip(keys, totals.tolist())}

    def _validate(self, val_fn, epoch: int) -> dict:
        """Run `val_fn(model, epoch)` on the main process in eval mode; share its metrics with all processes."""
        if val_fn is None:
            return {}
        metrics = [None]
        if self.acc.is_main_process:
            net = self.acc.unwrap_model(self.model)
            net.eval()
            t0 = time.perf_counter()
            with torch.no_grad():
                out = val_fn(net, epoch)
            net.train()
            metrics = [{**_scalars(out), "val_seconds": time.perf_counter() - t0}]
        if self.acc.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            broadcast_object_list(metrics)
        return metrics[0]

    def _checkpoint(self) -> None:
        """Save everything needed to resume to `checkpoint_dir/last.pt` (main process writes)."""
        from accelerate.utils import gather_object

        rngs = gather_object([_rng_state()])
        model_state = _trainable_state(self.acc.get_state_dict(self.model), self.frozen)
        if self.acc.is_main_process:
            _save(self.path, {
                "format": CHECKPOINT_FORMAT, "epoch": self.epoch, "step": self.step, "model": model_state,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.acc.scaler.state_dict() if self.acc.scaler is not None else None,
                "history": self.history, "step_log": self.step_log, "rng": rngs, "config": self.fingerprint,
                "plateau": self.tracker.state_dict(), "best_model": self.best_state,
            })
        self.acc.wait_for_everyone()

    def _bar(self, loader, epoch: int):
        """The epoch's tqdm bar (disabled off the main process or when progress=False)."""
        from tqdm.auto import tqdm

        show = self.config.progress and self.acc.is_local_main_process
        return tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{self.config.epochs}", disable=not show,
                    dynamic_ncols=True)

    def result(self) -> TrainResult:
        """The TrainResult of this call (with the best epoch's weights loaded when config.keep_best)."""
        net = self.acc.unwrap_model(self.model)
        if self.config.keep_best and self.best_state is not None:
            net.load_state_dict(self.best_state, strict=False)  # frozen parameters are not in it
        return TrainResult(history=self.history, step_log=self.step_log, steps=self.step,
                           start_epoch=self.start_epoch, checkpoint=self.path if self.path and self.path.exists()
                           else None, model=net, stopped_early=self.tracker.should_stop and self.epoch < self.config.epochs,
                           best_epoch=self.tracker.best_epoch)


def _split_loss(out) -> tuple[torch.Tensor, dict]:
    """(loss, detached extra scalars) from a loss_fn result."""
    if isinstance(out, dict):
        if "loss" not in out:
            raise MedvlError(f"loss_fn returned a dict without 'loss' (keys: {sorted(out)}); "
                             "return {'loss': tensor, ...}")
        extras = {k: v.detach().float().mean() if torch.is_tensor(v) else float(v)
                  for k, v in out.items() if k != "loss"}
        out = out["loss"]
    else:
        extras = {}
    if not torch.is_tensor(out) or out.numel() != 1:
        raise MedvlError(f"loss_fn must return a scalar tensor (or a dict with one under 'loss'), got {_describe(out)}")
    return out.reshape(()), extras


def _describe(value) -> str:
    """Short type/shape description for error messages."""
    return f"tensor of shape {tuple(value.shape)}" if torch.is_tensor(value) else type(value).__name__


def _scalars(metrics) -> dict:
    """val_fn output as a dict of plain Python scalars."""
    if not isinstance(metrics, dict):
        raise MedvlError(f"val_fn(model, epoch) must return a dict of metrics, got {type(metrics).__name__}")
    return {k: v.tolist() if hasattr(v, "tolist") else v for k, v in metrics.items()}


def _batch_len(batch, default: int) -> int:
    """Number of samples in a collated batch (first tensor's length; `default` if none)."""
    if torch.is_tensor(batch):
        return int(batch.shape[0]) if batch.ndim else default
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, list | tuple) else ()
    for value in values:
        if torch.is_tensor(value) and value.ndim:
            return int(value.shape[0])
        if isinstance(value, list):
            return len(value)
    return default


__all__ = ["TrainConfig", "TrainResult", "train", "launch_in_notebook", "lr_factor", "CHECKPOINT_NAME"]
