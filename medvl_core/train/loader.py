"""The training engine's one DataLoader factory: a seeded order per epoch, worker processes that live across
epochs (persistent) and still load each epoch's draws, pinned host memory on CUDA.

The epoch travels with every index: the batch sampler (`EpochBatches`) yields (epoch, index) pairs and the dataset
wrapper (`EpochItems`) calls `dataset.set_epoch(epoch)` in whichever process loads the item. A worker copied before
epoch 0 therefore draws epoch 3's sentences and augmentations in epoch 3, and the batches are the same with 0 and
with N workers (given a dataset whose items depend on (seed, epoch, index) only, as `data.pairs` datasets do).

`num_workers=-1` (`AUTO_WORKERS`) means: on CUDA, the cores this process may use, shared by the training processes,
minus one for the training process itself; on the CPU, 0 (the training process's threads already use the cores).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .distributed import GlobalBatchShards, OnDevice

AUTO_WORKERS = -1
PREFETCH_BATCHES = 2  # batches each worker keeps ready (a batch of 1024 images at 224 px is about 600 MB)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def resolve_workers(num_workers: int, device_type: str, processes: int = 1) -> int:
    """Loader workers per training process: `num_workers`, or for -1 the cores per process minus one on CUDA, else 0."""
    if num_workers != AUTO_WORKERS:
        return int(num_workers)
    if device_type != "cuda":
        return 0
    return max(0, available_cores() // max(1, processes) - 1)


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of epoch `epoch`'s shuffle generator."""
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1)


def seed_worker(worker_id: int) -> None:
    """Seed NumPy and `random` in a DataLoader worker from its torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class EpochBatches(Sampler):
    """This process's share of every global batch of epoch `set_epoch(e)` as (e, index) pairs, shuffled by a
    generator seeded from (seed, e) (`GlobalBatchShards`; one process takes whole batches)."""

    def __init__(self, n_items: int, global_batch: int, seed: int, rank: int = 0, world: int = 1,
                 drop_last: bool = False):
        self.n_items, self.global_batch, self.seed = n_items, global_batch, int(seed)
        self.rank, self.world, self.drop_last, self.epoch = rank, world, drop_last, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches `__iter__` yields."""
        self.epoch = int(epoch)

    def _shards(self, generator) -> GlobalBatchShards:
        """The index batches of this process for `generator`."""
        return GlobalBatchShards(self.n_items, self.global_batch, self.rank, self.world, generator, self.drop_last)

    def __iter__(self):
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        # a DataLoader built per epoch drew its worker seed from this generator before the order: the draw keeps
        # the orders (and so the trained numbers) of that engine
        torch.empty((), dtype=torch.int64).random_(generator=generator)
        for batch in self._shards(generator):
            yield [(self.epoch, int(index)) for index in batch]

    def __len__(self) -> int:
        return len(self._shards(None))


class EpochItems(Dataset):
    """`dataset` indexed by (epoch, index): sets the dataset's epoch in the process that loads the item."""

    def __init__(self, dataset):
        self.dataset, self.epoch = dataset, None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        epoch, index = key
        if hasattr(self.dataset, "set_epoch") and getattr(self.dataset, "epoch", self.epoch) != epoch:
            self.dataset.set_epoch(epoch)
        self.epoch = epoch
        return self.dataset[index]


def epoch_loader(dataset, global_batch: int, seed: int, collate_fn=None, num_workers: int = 0,
                 drop_last: bool = False, accelerator=None):
    """A DataLoader of `dataset` for every epoch: call `start_epoch(loader, e)` before iterating epoch e.

    Workers persist across epochs; `num_workers=-1` resolves as `resolve_workers`. With an Accelerate
    `accelerator`, one process's loader is prepared by it (batches on its device) and N processes each take their
    share of every global batch; without one, batches stay on the host.
    """
    device = accelerator.device if accelerator is not None else torch.device("cpu")
    world = accelerator.num_processes if accelerator is not None else 1
    rank = accelerator.process_index if accelerator is not None else 0
    workers = resolve_workers(num_workers, device.type, world)
    batches = EpochBatches(len(dataset), global_batch, seed, rank, world, drop_last)
    options = {"prefetch_factor": PREFETCH_BATCHES, "persistent_workers": True, "worker_init_fn": seed_worker} \
        if workers else {}
    # the loader's own generator only seeds its workers; the order comes from the batch sampler's
    loader = DataLoader(EpochItems(dataset), batch_sampler=batches, collate_fn=collate_fn, num_workers=workers,
                        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(int(seed)), **options)
    if accelerator is None:
        return loader
    return OnDevice(loader, device) if world > 1 else accelerator.prepare_data_loader(loader)


def start_epoch(loader, epoch: int) -> None:
    """Make `loader` (from `epoch_loader`) yield epoch `epoch`'s batches when next iterated."""
    if hasattr(loader, "iteration"):  # Accelerate's loader calls set_epoch(iteration) when iterated
        loader.iteration = epoch
    (loader.loader if isinstance(loader, OnDevice) else loader).batch_sampler.set_epoch(epoch)
