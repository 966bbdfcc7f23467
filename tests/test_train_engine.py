"""Training engine: learning, accumulation, LR schedule, exact resume, frozen params, hooks, bad checkpoints,
--processes refusing gradient accumulation, the global batch and its per-process share."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from medvl_core.errors import MedvlError, ParameterError
from medvl_core.run_env import PROCESSES_ENV
from medvl_core.train import CHECKPOINT_NAME, TrainConfig, TrainResult, launch_in_notebook, lr_factor, train


class Regression(torch.utils.data.Dataset):
    """y = x @ w + noise; items also draw from numpy and `random` (like augmentations) to test RNG restore."""

    def __init__(self, n=20, dim=4, noisy=False):
        gen = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, dim, generator=gen)
        self.y = self.x @ torch.arange(1.0, dim + 1).unsqueeze(1)
        self.noisy, self.epochs = noisy, []

    def __len__(self):
        return len(self.x)

    def set_epoch(self, epoch):
        self.epochs.append(epoch)

    def __getitem__(self, i):
        x = self.x[i]
        if self.noisy:
            x = x + 0.01 * float(np.random.randn()) + 0.01 * random.random()
        return {"x": x, "y": self.y[i]}


def mse(model, batch):
    return nn.functional.mse_loss(model(batch["x"]), batch["y"])


def linear(seed=0, dim=4):
    torch.manual_seed(seed)
    return nn.Linear(dim, 1)


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))


def cfg(**kw):
    base = dict(epochs=3, global_batch_size=4, lr=0.05, progress=False, device="cpu", log_every=1)
    return TrainConfig(**{**base, **kw})


def test_loss_decreases_and_history():
    data = Regression(40)
    result = train(mlp(), data, mse, cfg(epochs=6, lr=0.02, warmup_steps=3))
    assert sorted(set(data.epochs)) == list(range(6)) and data.epochs == sorted(data.epochs)  # before each epoch
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.3 * losses[0]
    assert isinstance(result, TrainResult) and result.steps == 6 * 10 and result.seconds > 0
    assert {"epoch", "train_loss", "lr", "seconds", "samples_per_s"} <= set(result.history[-1])
    assert result.history[0]["samples_per_s"] > 0
    frame = result.history_frame()
    assert list(frame.index) == [1, 2, 3, 4, 5, 6] and "train_loss" in frame


def test_classification_with_logged_extras():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=gen)
    data = torch.utils.data.TensorDataset(x, (x[:, 0] > x[:, 1]).long())

    def loss_fn(model, batch):
        logits = model(batch[0])
        return {"loss": nn.functional.cross_entropy(logits, batch[1]),
                "acc": (logits.argmax(1) == batch[1]).float().mean()}

    torch.manual_seed(0)
    result = train(nn.Linear(2, 2), data, loss_fn, cfg(epochs=5, global_batch_size=8, lr=0.1))
    assert result.history[-1]["train_acc"] > 0.9
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert "acc" in result.step_log[0]


def test_grad_accumulation_equals_bigger_batch():
    small, big = linear(), linear()
    big.load_state_dict(small.state_dict())
    data = Regression(32)
    train(small, data, mse, cfg(global_batch_size=4, grad_accum_steps=2, schedule="constant", lr=0.01))
    train(big, data, mse, cfg(global_batch_size=8, grad_accum_steps=1, schedule="constant", lr=0.01))
    for a, b in zip(small.parameters(), big.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_lr_factor_values():
    assert lr_factor(0, 4, 20) == pytest.approx(0.25)
    assert lr_factor(3, 4, 20) == pytest.approx(1.0)
    assert lr_factor(4, 4, 20) == pytest.approx(1.0)
    assert lr_factor(12, 4, 20) == pytest.approx(0.5)
    assert lr_factor(20, 4, 20) == pytest.approx(0.0)
    assert lr_factor(99, 4, 20) == pytest.approx(0.0)
    assert lr_factor(1, 4, 20, "constant") == pytest.approx(0.5)
    assert lr_factor(15, 4, 20, "constant") == 1.0
    assert lr_factor(0, 0, 10) == 1.0


def test_lr_used_per_step_follows_warmup_and_cosine():
    # 20 items / batch 4 = 5 batches, accum 2 -> 3 optimizer steps per epoch, 4 epochs -> 12 steps
    result = train(linear(), Regression(20), mse, cfg(epochs=4, lr=0.1, warmup_steps=2, grad_accum_steps=2))
    lrs = [entry["lr"] for entry in result.step_log]
    assert len(lrs) == 12 == result.steps
    expected = [0.1 * lr_factor(s, 2, 12) for s in range(12)]
    assert lrs == pytest.approx(expected)
    assert lrs[:3] == pytest.approx([0.05, 0.1, 0.1]) and lrs[-1] < 0.01


class Stop(Exception):
    pass


def interrupting(after_calls):
    calls = {"n": 0}

    def loss_fn(model, batch):
        calls["n"] += 1
        if calls["n"] > after_calls:
            raise Stop
        return mse(model, batch)

    return loss_fn


@pytest.mark.parametrize("accum", [1, 2])
def test_resume_after_interruption_is_exact(tmp_path, accum):
    config = cfg(epochs=3, grad_accum_steps=accum, warmup_steps=2, checkpoint_dir=tmp_path / "ck", lr=0.01)
    straight = mlp()
    reference = train(straight, Regression(20, noisy=True), mse, cfg(**{**vars(config), "checkpoint_dir": None}))

    with pytest.raises(Stop):  # dies in the middle of epoch 3 (5 batches per epoch)
        train(mlp(), Regression(20, noisy=True), interrupting(12), config)
    state = torch.load(tmp_path / "ck" / CHECKPOINT_NAME, weights_only=True)
    assert state["epoch"] == 2

    resumed_model = mlp(seed=99)  # different init: the checkpoint must overwrite it
    data = Regression(20, noisy=True)
    resumed = train(resumed_model, data, mse, config)
    assert resumed.start_epoch == 2 and set(data.epochs) == {2}
    for a, b in zip(straight.parameters(), resumed_model.parameters()):
        assert torch.equal(a, b)
    assert resumed.steps == reference.steps
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in reference.history]


def test_stop_after_two_epochs_then_extend_to_three(tmp_path):
    base = dict(grad_accum_steps=2, schedule="constant", checkpoint_dir=tmp_path, lr=0.01)
    straight = mlp()
    train(straight, Regression(20, noisy=True), mse, cfg(epochs=3, **{**base, "checkpoint_dir": None}))
    train(mlp(), Regression(20, noisy=True), mse, cfg(epochs=2, **base))
    resumed_model = mlp(seed=5)
    result = train(resumed_model, Regression(20, noisy=True), mse, cfg(epochs=3, **base))
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    for a, b in zip(straight.parameters(), resumed_model.parameters()):
        assert torch.equal(a, b)
    # a finished run resumes as finished: weights restored, nothing trained
    again = mlp(seed=7)
    done = train(again, Regression(20, noisy=True), mse, cfg(epochs=3, **base))
    assert done.start_epoch == 3 and len(done.history) == 3
    assert all(torch.equal(a, b) for a, b in zip(straight.parameters(), again.parameters()))


def test_checkpoint_every_and_progress_bar(tmp_path, capsys):
    with pytest.raises(Stop):  # dies in epoch 2: nothing saved yet with checkpoint_every_epochs=2
        train(linear(), Regression(8), interrupting(3), cfg(epochs=3, checkpoint_dir=tmp_path, checkpoint_every_epochs=2))
    assert not list(tmp_path.iterdir())
    result = train(linear(), Regression(8), mse, cfg(epochs=3, checkpoint_dir=tmp_path, checkpoint_every_epochs=2,
                                                      progress=True))
    assert result.checkpoint == tmp_path / CHECKPOINT_NAME and [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]
    assert torch.load(result.checkpoint, weights_only=True)["epoch"] == 3  # the last epoch is always saved
    assert "epoch 3/3" in capsys.readouterr().err


def test_frozen_params_not_updated():
    model = mlp()
    model[0].requires_grad_(False)
    before = [p.detach().clone() for p in model.parameters()]
    train(model, Regression(16), mse, cfg(epochs=2, weight_decay=0.1))
    after = list(model.parameters())
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    assert not torch.equal(before[2], after[2])
    model.requires_grad_(False)
    with pytest.raises(ParameterError, match="no trainable parameters"):
        train(model, Regression(16), mse, cfg(epochs=1))


def test_param_groups_drop_frozen():
    model = mlp()
    model[3].requires_grad_(False)
    groups = [{"params": model[0].parameters(), "lr": 0.0}, {"params": model[3].parameters()}]
    before = [p.detach().clone() for p in model.parameters()]
    train(model, Regression(16), mse, cfg(epochs=1), param_groups=groups)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_val_fn_metrics_in_history():
    seen = []

    def val_fn(model, epoch):
        seen.append((epoch, model.training, torch.is_grad_enabled()))
        data = Regression(8)
        return {"val_mse": mse(model, {"x": data.x, "y": data.y})}

    result = train(mlp(), Regression(16), mse, cfg(epochs=3), val_fn=val_fn)
    assert seen == [(0, False, False), (1, False, False), (2, False, False)]
    assert all(isinstance(row["val_mse"], float) and "val_seconds" in row for row in result.history)
    assert result.history[-1]["val_mse"] < result.history[0]["val_mse"]


def test_corrupt_checkpoint_raises(tmp_path):
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(MedvlError, match=r"last\.pt.*delete it or pass resume=False"):
        train(linear(), Regression(8), mse, cfg(epochs=1, checkpoint_dir=tmp_path))
    # resume=False ignores it and overwrites it with a valid one
    train(linear(), Regression(8), mse, cfg(epochs=1, checkpoint_dir=tmp_path, resume=False))
    assert torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["epoch"] == 1


def test_mismatched_checkpoint_raises(tmp_path):
    train(linear(), Regression(8), mse, cfg(epochs=1, checkpoint_dir=tmp_path))
    with pytest.raises(MedvlError, match="does not fit this model.*resume=False"):
        train(linear(dim=4).__class__(4, 2), Regression(8), lambda m, b: m(b["x"]).mean(),
              cfg(epochs=2, checkpoint_dir=tmp_path))
    with pytest.raises(MedvlError, match="global_batch_size=4, this run has 2"):
        train(linear(), Regression(8), mse, cfg(epochs=2, global_batch_size=2, checkpoint_dir=tmp_path))


def test_bf16_on_cpu_and_config_errors():
    result = train(mlp(), Regression(16), mse, cfg(epochs=2, mixed_precision="bf16"))
    assert math.isfinite(result.history[-1]["train_loss"])
    with pytest.raises(ParameterError, match="fp16"):
        train(mlp(), Regression(16), mse, cfg(epochs=1, mixed_precision="fp16"))
    with pytest.raises(ParameterError, match="global_batch_size"):
        TrainConfig(global_batch_size=0)
    with pytest.raises(ParameterError, match="schedule"):
        TrainConfig(schedule="linear")
    with pytest.raises(ParameterError, match="drop_last"):
        train(mlp(), Regression(3), mse, cfg(epochs=1, drop_last=True))


def test_bad_loss_fn_output():
    with pytest.raises(MedvlError, match="without 'loss'"):
        train(linear(), Regression(8), lambda m, b: {"mse": mse(m, b)}, cfg(epochs=1))
    with pytest.raises(MedvlError, match="scalar tensor"):
        train(linear(), Regression(8), lambda m, b: m(b["x"]), cfg(epochs=1))
    with pytest.raises(MedvlError, match="non-finite"):
        train(linear(), Regression(8), lambda m, b: mse(m, b) * float("nan"), cfg(epochs=1))


def test_launch_in_notebook_single_process_runs_directly():
    assert launch_in_notebook(lambda a, b: a + b, 2, 3, num_processes=1) == 5


def test_processes_with_grad_accumulation_are_refused(monkeypatch):
    monkeypatch.setenv(PROCESSES_ENV, "2")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    model = linear()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ParameterError, match=r"--processes 2 with grad_accum_steps=2 is not supported: "
                                             r"raise global_batch_size instead, or use --processes 1"):
        train(model, Regression(8), mse, cfg(epochs=1, global_batch_size=4, grad_accum_steps=2))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # refused before any training


def test_per_process_batch_is_the_global_batch_split_evenly():
    config = TrainConfig(global_batch_size=8)
    assert [config.per_process_batch_size(n) for n in (1, 2, 4, 8)] == [8, 4, 2, 1]
    with pytest.raises(ParameterError, match="global_batch_size=8 must split evenly over 3 processes"):
        config.per_process_batch_size(3)


def test_processes_checkpoint_the_global_batch_so_one_process_reruns_it(tmp_path, monkeypatch, capsys):
    """Checkpointed under --processes 2, a training records the global batch: a rerun on one process (a new kernel:
    the training counter starts over) finds its folder and loads it. The forked processes are stubbed out, so the
    parent's own loop writes the checkpoint here."""
    import itertools

    import torch.multiprocessing

    from medvl_core import run_env

    forked = []
    monkeypatch.setattr(torch.multiprocessing, "start_processes", lambda fn, args, **kw: forked.append(args))
    monkeypatch.setenv(run_env.CHECKPOINT_ROOT_ENV, str(tmp_path))
    monkeypatch.setenv(PROCESSES_ENV, "2")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(run_env, "_trainings", itertools.count(1))
    train(linear(), Regression(8), mse, cfg(epochs=2))
    assert "global batch 4 = 2 x 2 per process" in capsys.readouterr().out
    assert forked[0][5].global_batch_size == 4  # the processes get the global batch and take their share of it
    (folder,) = tmp_path.iterdir()
    assert torch.load(folder / CHECKPOINT_NAME, weights_only=True)["config"]["global_batch_size"] == 4
    monkeypatch.setenv(PROCESSES_ENV, "1")
    monkeypatch.setattr(run_env, "_trainings", itertools.count(1))
    again = train(linear(), Regression(8), mse, cfg(epochs=2))
    assert again.start_epoch == 2 and [p.name for p in tmp_path.iterdir()] == [folder.name]  # loaded, not retrained


# --- optimizers, plateau schedule, early stopping ---------------------------------------------------


def scripted_val(values):
    """val_fn returning values[epoch] as val_loss (a scripted validation curve)."""
    return lambda model, epoch: {"val_loss": values[epoch]}


def test_sgd_momentum_and_adam_are_used():
    data = Regression(20)
    sgd = train(linear(), data, mse, cfg(epochs=1, optimizer="sgd", momentum=0.5, weight_decay=1e-3))
    assert sgd.history[0]["train_loss"] > 0
    one_step = cfg(epochs=1, global_batch_size=20, optimizer="sgd", momentum=0.0, schedule="constant", lr=0.1)
    model, reference = linear(), linear()
    train(model, data, mse, one_step)
    reference.zero_grad()
    mse(reference, {"x": data.x, "y": data.y}).backward()
    with torch.no_grad():
        expected = reference.weight - 0.1 * reference.weight.grad
    assert torch.allclose(model.weight, expected, atol=1e-6)  # one plain SGD step
    adam = train(linear(), data, mse, cfg(epochs=1, optimizer="adam", weight_decay=0.1))
    adamw = train(linear(), data, mse, cfg(epochs=1, optimizer="adamw", weight_decay=0.1))
    assert not torch.equal(adam.model.weight, adamw.model.weight)  # L2-in-gradient differs from decoupled decay


def test_plateau_reduces_lr_after_patience_stale_epochs():
    curve = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.85]
    result = train(linear(), Regression(20), mse, cfg(epochs=8, lr=0.01, schedule="plateau", plateau_patience=3,
                                                        plateau_factor=0.1), val_fn=scripted_val(curve))
    lrs = [row["lr"] for row in result.history]
    # best at epoch 2; epochs 3-6 stale; more than 3 stale epochs -> reduced after epoch 6
    assert lrs[:6] == pytest.approx([0.01] * 6) and lrs[6:] == pytest.approx([0.001] * 2)
    assert result.best_epoch == 7 and not result.stopped_early


def test_early_stopping_and_keep_best():
    curve = [1.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]
    snapshots = []

    def val_fn(model, epoch):
        snapshots.append(model.weight.detach().clone())
        return {"val_loss": curve[epoch]}

    config = cfg(epochs=8, early_stopping_patience=3, keep_best=True)
    result = train(linear(), Regression(20), mse, config, val_fn=val_fn)
    assert len(result.history) == 5 and result.stopped_early and result.best_epoch == 2
    assert torch.equal(result.model.weight, snapshots[1])  # epoch 2's weights restored
    maxed = cfg(epochs=6, monitor="val_acc", monitor_mode="max", early_stopping_patience=2)
    rising = train(linear(), Regression(20), mse, maxed, val_fn=lambda m, e: {"val_acc": [0.5, 0.6, 0.6, 0.7, 0.8, 0.9][e]})
    assert rising.best_epoch == 6 and not rising.stopped_early
    flat = train(linear(), Regression(20), mse, maxed, val_fn=lambda m, e: {"val_acc": [0.5, 0.6, 0.6, 0.6, 0.9, 0.9][e]})
    assert flat.best_epoch == 2 and flat.stopped_early and len(flat.history) == 4


def test_plateau_state_survives_resume(tmp_path):
    curve = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5]
    whole = train(linear(), Regression(20), mse, cfg(epochs=6, schedule="plateau", plateau_patience=1),
                  val_fn=scripted_val(curve))
    first = cfg(epochs=6, schedule="plateau", plateau_patience=1, checkpoint_dir=tmp_path)

    class Interrupt(Exception):
        pass

    def stop_at_4(model, epoch):
        if epoch == 3:
            raise Interrupt
        return {"val_loss": curve[epoch]}

    with pytest.raises(Interrupt):
        train(linear(), Regression(20), mse, first, val_fn=stop_at_4)
    resumed = train(linear(), Regression(20), mse, first, val_fn=scripted_val(curve))
    assert [r["lr"] for r in resumed.history] == pytest.approx([r["lr"] for r in whole.history])
    assert torch.equal(resumed.model.weight, whole.model.weight)


def test_unknown_monitor_and_bad_values_are_named():
    with pytest.raises(ParameterError, match="monitor='val_auc'"):
        train(linear(), Regression(20), mse, cfg(epochs=2, schedule="plateau", monitor="val_auc"),
              val_fn=scripted_val([1.0, 1.0]))
    for bad in (dict(optimizer="lamb"), dict(plateau_factor=1.5), dict(early_stopping_patience=0),
                dict(monitor_mode="up")):
        with pytest.raises(ParameterError, match=next(iter(bad))):
            cfg(**bad)
