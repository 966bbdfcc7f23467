import json
import os
import random
import time

import numpy as np
import pytest
import torch

from medvl_core import config, io
from medvl_core.errors import MedvlError


def test_data_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDVL_DATA", str(tmp_path / "d"))
    assert config.data_root() == tmp_path / "d"
    assert config.cache_dir("features").is_dir()
    monkeypatch.delenv("MEDVL_DATA")
    assert config.data_root().parts[-2:] == (".cache", "medvl")


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    config.seed_everything(7)
    first = draw()
    config.seed_everything(7)
    assert draw() == first
    config.seed_everything(8)
    assert draw() != first


def test_choose_device():
    assert config.choose_device("cpu") == "cpu"
    assert config.choose_device("auto") in {"cpu", "cuda", "mps"}
    with pytest.raises(MedvlError, match="unknown device"):
        config.choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(MedvlError, match="no CUDA GPU"):
            config.choose_device("cuda")


def test_atomic_write_json_roundtrip_and_numpy(tmp_path):
    path = io.atomic_write_json(tmp_path / "a" / "m.json", {"x": np.float32(0.5), "v": np.arange(3)})
    assert json.loads(path.read_text()) == {"v": [0, 1, 2], "x": 0.5}
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "m.json"
    io.atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        io.atomic_write_json(target, {"bad": object()})
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["m.json"]


def test_atomic_write_uses_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = io.atomic_write_text(tmp_path / "x.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def _hold_lock(lock, out, ready):
    from medvl_core.io import exclusive_lock

    with exclusive_lock(lock):
        ready.set()
        time.sleep(0.5)
        with open(out, "a") as fh:
            fh.write("first ")


def test_exclusive_lock_makes_a_second_process_wait(tmp_path):
    import multiprocessing as mp

    from medvl_core.io import exclusive_lock

    ctx = mp.get_context("fork")
    ready, out, lock = ctx.Event(), tmp_path / "out.txt", tmp_path / "sub" / ".x.lock"
    holder = ctx.Process(target=_hold_lock, args=(lock, out, ready))
    holder.start()
    assert ready.wait(10)
    with exclusive_lock(lock):
        with open(out, "a") as fh:
            fh.write("second")
    holder.join(10)
    assert out.read_text() == "first second"  # the holder finished its write before we got the lock


def test_seed_everything_asks_torch_for_deterministic_kernels():
    torch.use_deterministic_algorithms(False)
    try:
        config.seed_everything(0)
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
