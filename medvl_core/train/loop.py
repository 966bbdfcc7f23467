"""The training loop `train` (HF Accelerate, AMP, gradient accumulation) and what it prepares: the Accelerator,
each epoch's loader, the optimizer. Schedules, checkpoints and multi-process training are in `schedules`,
`checkpoints` and `distributed`.

Usage::

    from medvl_core.train import TrainConfig, train

    result = train(model, dataset, loss_fn, TrainConfig(epochs=5, global_batch_size=32, lr=1e-4),
                   collate_fn=collate, val_fn=lambda model, epoch: {"val_auroc": ...})
    result.history_frame()

`loss_fn(model, batch)` returns a scalar tensor or a dict with "loss" (other scalars are logged as
`train_<key>`). It must run the network through `model(...)`: under multi-GPU the model is wrapped
in DistributedDataParallel and only `forward` synchronises gradients. `val_fn(model, epoch)` runs
after each epoch in eval mode under `torch.no_grad()` on the main process; its dict goes into the
history verbatim.

Determinism: `train` seeds everything from `config.seed`; each epoch's shuffle comes from a
`torch.Generator` seeded from (seed, epoch), and `dataset.set_epoch(epoch)` is called before the
epoch when the dataset has it, in this process and, through the loader, in every worker process
(`loader.epoch_loader`: workers persist across epochs; keep `set_epoch` idempotent, e.g. seed the epoch's
sampling from (seed, epoch), and the batches are the same whatever `config.num_workers`).
A checkpoint (`checkpoint_dir/last.pt`) holds model, optimizer, scheduler, scaler, history and every RNG state, so a run that was interrupted and resumed ends with exactly the same
parameters as one that never stopped (same config, same hardware).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .. import run_env as session
from ..config import choose_device, seed_everything
from ..errors import MedvlError, ParameterError
from .checkpoints import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    fingerprint,
    frozen_names,
    resume,
    rng_state,
    save_checkpoint,
    set_rng_state,
    trainable_state,
)
from .config import TrainConfig, TrainResult
from .distributed import announce_split, is_distributed, train_on_processes, world_size
from .loader import epoch_loader, start_epoch
from .schedules import Plateau, lr_factor


def train(model: torch.nn.Module, train_dataset, loss_fn: Callable, config: TrainConfig | None = None,
          collate_fn: Callable | None = None, val_fn: Callable | None = None, param_groups=None) -> TrainResult:
    """Train `model` in place on `train_dataset` with `loss_fn(model, batch)`; resume from a checkpoint if any.

    Under `medvl run` (see `run_env`) a config without `checkpoint_dir` checkpoints into the run folder, epoch
    lines go to its run.log, and $MEDVL_PROCESSES > 1 trains on that many processes at the same global batch (as
    `accelerate launch` does: either way each process takes `config.per_process_batch_size(N)` of it).
    """
    config = config or TrainConfig()
    if config.checkpoint_dir is None:
        folder = session.training_dir(model, fingerprint(config, len(train_dataset)))
        config = replace(config, checkpoint_dir=folder) if folder is not None else config
    n = session.processes()
    if n > 1 and not is_distributed():
        return train_on_processes(n, run_loop, model, train_dataset, loss_fn, config, collate_fn, val_fn, param_groups)
    if is_distributed():  # accelerate launch / launch_in_notebook
        announce_split(config, world_size())
    return run_loop(model, train_dataset, loss_fn, config, collate_fn, val_fn, param_groups)


def run_loop(model, train_dataset, loss_fn, config: TrainConfig, collate_fn, val_fn, param_groups) -> TrainResult:
    """The training loop of `train` in this process (one of several under a distributed launch)."""
    t0 = time.perf_counter()
    seed_everything(config.seed)
    accelerator = _accelerator(config)
    config.per_process_batch_size(accelerator.num_processes)  # refuses a global batch that does not split evenly
    loader = _loader(train_dataset, config, collate_fn, accelerator)
    loader_len = len(loader)
    if loader_len == 0:
        raise ParameterError(f"train_dataset has {len(train_dataset)} items, too few for one batch of "
                             f"global_batch_size={config.global_batch_size} on {accelerator.num_processes} "
                             "process(es); lower global_batch_size or set drop_last=False")
    total = config.epochs * math.ceil(loader_len / config.grad_accum_steps)
    optimizer = _optimizer(model, config, param_groups)
    tracker = Plateau(config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, config.warmup_steps, total, config.schedule) * tracker.scale)
    path = Path(config.checkpoint_dir) / CHECKPOINT_NAME if config.checkpoint_dir else None
    state = resume(path, model, optimizer, scheduler, config, len(train_dataset)) if config.resume else None
    model, optimizer = accelerator.prepare(model, optimizer)
    run = _Run(accelerator, model, optimizer, scheduler, loss_fn, config, path, tracker)
    run.start(state, len(train_dataset))
    for epoch in range(run.epoch, config.epochs):
        if tracker.should_stop:
            break
        run.epoch_loop(train_dataset, loader, val_fn, epoch)
    result = run.result()
    result.seconds = time.perf_counter() - t0
    return result


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

    device = "cuda" if is_distributed() and torch.cuda.is_available() else choose_device(config.device)
    mp = _mixed_precision(config, device)
    cpu = device == "cpu"
    old_device = PartialState._shared_state.get("device")
    old_mp = AcceleratorState._shared_state.get("_mixed_precision")
    if not is_distributed() and ((old_device is not None and (old_device.type == "cpu") != cpu)
                               or (old_mp is not None and old_mp != mp)):
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    from accelerate.utils import DataLoaderConfiguration

    # pinned host batches copied without blocking the host (Accelerate's default blocks on every batch)
    loaders = DataLoaderConfiguration(non_blocking=not cpu)
    return Accelerator(cpu=cpu, mixed_precision=mp, gradient_accumulation_steps=config.grad_accum_steps,
                       dataloader_config=loaders)


def _loader(dataset, config: TrainConfig, collate_fn, accelerator):
    """The loader of every epoch (`loader.epoch_loader`: seeded order per epoch, persistent workers)."""
    return epoch_loader(dataset, config.global_batch_size, config.seed, collate_fn, config.num_workers,
                        config.drop_last, accelerator)


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


class _Run:
    """Mutable state of one `train` call: counters, history, logging and checkpointing."""

    def __init__(self, accelerator, model, optimizer, scheduler, loss_fn, config, path, tracker):
        """Keep the prepared objects."""
        self.acc, self.model, self.optimizer, self.scheduler = accelerator, model, optimizer, scheduler
        self.loss_fn, self.config, self.path, self.tracker = loss_fn, config, path, tracker
        self.best_state = None
        self.epoch, self.step, self.history, self.step_log = 0, 0, [], []
        self.start_epoch, self.fingerprint, self.lr_used = 0, None, float("nan")
        self.frozen = frozen_names(accelerator.unwrap_model(model))
        self.name = path.parent.name if path is not None else "training"
        self.seconds = []  # per epoch trained by this call (for the ETA)
        self.batch = config.per_process_batch_size(accelerator.num_processes)

    def start(self, state: dict | None, n_items: int) -> None:
        """Take over a loaded checkpoint's counters, scaler and RNG states."""
        self.fingerprint = fingerprint(self.config, n_items)
        if state is None:
            return
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history, self.step_log = list(state["history"]), list(state["step_log"])
        if self.acc.scaler is not None and state.get("scaler"):
            self.acc.scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        set_rng_state(rngs[self.acc.process_index % len(rngs)])
        self.tracker.load_state_dict(state.get("plateau") or {})
        self.best_state = state.get("best_model")
        self.start_epoch = self.epoch
        if self.acc.is_main_process:
            done = self.epoch >= self.config.epochs or self.tracker.should_stop
            session.log_line(f"{self.name} " + (f"finished earlier ({self.epoch} epochs): loaded from its checkpoint"
                                               if done else f"resumed after epoch {self.epoch}/{self.config.epochs}"))

    def epoch_loop(self, dataset, loader, val_fn, epoch: int) -> None:
        """Train one epoch of `loader` (over `dataset`), validate, record history, checkpoint."""
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        start_epoch(loader, epoch)
        t0 = time.perf_counter()
        means, n_samples = self._train_epoch(loader, epoch)
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, **means, "lr": self.lr_used,
               "seconds": seconds, "samples_per_s": n_samples * self.acc.num_processes / max(seconds, 1e-9)}
        row.update(self._validate(val_fn, epoch))
        scale = self.tracker.scale
        if self.tracker.update(row) and self.config.keep_best:
            self.best_state = trainable_state(self.acc.unwrap_model(self.model).state_dict(), self.frozen)
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
            n_batches, n_samples = n_batches + 1, n_samples + _batch_len(batch, self.batch)
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

        rngs = gather_object([rng_state()])
        model_state = trainable_state(self.acc.get_state_dict(self.model), self.frozen)
        if self.acc.is_main_process:
            save_checkpoint(self.path, {
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
