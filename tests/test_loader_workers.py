"""The engine's loader: the same batches with 0 and with 2 persistent workers, every epoch's sentence draw and
augmentation reaching the workers; -1 workers resolved from the cores on CUDA only."""

from __future__ import annotations

import multiprocessing

import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from medvl_core.data.pairs import ImageTextPairs
from medvl_core.errors import ParameterError
from medvl_core.train import TrainConfig
from medvl_core.train.loader import EpochBatches, available_cores, epoch_loader, resolve_workers, start_epoch

SENTENCES = ["The heart is normal.", "Small left effusion.", "No pneumothorax.", "Mild atelectasis.",
             "Spine degenerated.", "Lungs are clear."]


class Reports(torch.utils.data.Dataset):
    """Items like open_dataset's (a small grayscale gradient turned per item, a six-sentence report); counts the
    items read in every process (shared memory)."""

    def __init__(self, n=10):
        self.n, self.reads = n, multiprocessing.Value("i", 0)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        with self.reads.get_lock():
            self.reads.value += 1
        image = Image.linear_gradient("L").resize((24, 20)).rotate(15 * i)
        return {"id": f"s{i}", "image": image, "text": " ".join(SENTENCES[i % 6:] + SENTENCES[:i % 6])}


def tokenize(texts, max_length=16):
    """Word ids from the characters of each word (deterministic in every process), padded to the longest text."""
    ids = [[sum(map(ord, w)) % 997 + 1 for w in t.split()][:max_length] for t in texts]
    width = max(map(len, ids))
    return {"input_ids": torch.tensor([row + [0] * (width - len(row)) for row in ids]),
            "attention_mask": torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in ids])}


def pairs():
    """Pairs drawing 2 of 6 sentences and a random crop and flip per (seed, epoch, index), decoded images cached."""
    preprocess = T.Compose([T.Resize(16), T.CenterCrop(16), T.ToTensor()])
    augment = T.Compose([T.RandomResizedCrop(20, scale=(0.5, 1.0)), T.RandomHorizontalFlip()])
    return ImageTextPairs(Reports(), preprocess, tokenize, sentences_per_report=2, augment=augment, seed=3,
                          cache_images=True, max_length=16)


def epochs_of(workers: int, n_epochs: int = 2, data=None) -> list[list[dict]]:
    """Each epoch's batches from one loader kept across epochs (as `train` keeps it)."""
    data = data or pairs()
    loader = epoch_loader(data, 4, seed=11, collate_fn=data.collate, num_workers=workers)
    assert loader.persistent_workers == (workers > 0)
    out = []
    for epoch in range(n_epochs):
        data.set_epoch(epoch)  # reaches the main process's copy only; the loader carries the epoch to the workers
        start_epoch(loader, epoch)
        out.append(list(loader))
    return out


def test_same_batches_with_0_and_2_persistent_workers_every_epoch():
    serial, parallel = epochs_of(0), epochs_of(2)
    for one, two in zip(serial, parallel):
        assert len(one) == len(two) == 3  # 10 items in batches of 4
        for a, b in zip(one, two):
            assert torch.equal(a["images"], b["images"]) and torch.equal(a["input_ids"], b["input_ids"])
    first, second = serial
    assert [b["images"].shape[0] for b in first] == [4, 4, 2]
    assert not torch.equal(torch.cat([b["images"] for b in first]), torch.cat([b["images"] for b in second]))
    assert any(not torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(first, second))  # other sentences


def test_only_the_main_process_caches_decoded_images():
    serial, parallel = pairs(), pairs()
    epochs_of(0, 2, serial), epochs_of(2, 2, parallel)
    assert serial.dataset.reads.value == 10  # decoded once, then cached
    assert parallel.dataset.reads.value == 20  # workers decode every epoch: no copy of the set per worker


def test_workers_see_the_epoch_without_set_epoch_in_the_main_process():
    data = pairs()
    loader = epoch_loader(data, 10, seed=11, collate_fn=data.collate, num_workers=2)
    start_epoch(loader, 4)  # data.epoch stays 0 here: only the loader says "epoch 4"
    (batch,) = list(loader)
    order = EpochBatches(10, 10, seed=11)
    order.set_epoch(4)
    (keys,) = list(order)
    data.set_epoch(4)
    expected = data.collate([data[index] for _, index in keys])
    assert torch.equal(batch["images"], expected["images"]) and torch.equal(batch["input_ids"], expected["input_ids"])
    data.set_epoch(0)
    assert not torch.equal(batch["images"], data.collate([data[index] for _, index in keys])["images"])


def test_auto_workers_are_the_cores_minus_one_on_cuda_and_none_on_the_cpu():
    cores = available_cores()
    assert resolve_workers(-1, "cuda") == max(0, cores - 1)
    assert resolve_workers(-1, "cuda", processes=cores) == 0  # the cores are shared by the training processes
    assert resolve_workers(-1, "cpu") == 0 and resolve_workers(3, "cpu") == 3
    assert TrainConfig(num_workers=-1).num_workers == -1
    with pytest.raises(ParameterError, match="num_workers"):
        TrainConfig(num_workers=-2)


class EpochNoise(torch.utils.data.Dataset):
    """x plus noise drawn from (epoch, index): an item that changes every epoch, as augmentations do."""

    def __init__(self, n=24):
        self.x, self.epoch = torch.randn(n, 3, generator=torch.Generator().manual_seed(0)), 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        noise = torch.randn(3, generator=torch.Generator().manual_seed(1000 * self.epoch + i))
        return {"x": self.x[i] + noise, "y": self.x[i].sum(0, keepdim=True)}


def test_training_with_2_workers_ends_with_the_same_weights_as_with_none():
    from medvl_core.train import train

    def fit(workers):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        config = TrainConfig(epochs=3, global_batch_size=8, lr=0.05, progress=False, device="cpu", num_workers=workers)
        train(model, EpochNoise(), lambda m, b: torch.nn.functional.mse_loss(m(b["x"]), b["y"]), config)
        return model.state_dict()

    serial, parallel = fit(0), fit(2)
    assert all(torch.equal(serial[k], parallel[k]) for k in serial)
