"""Contrastive losses and the training engine on 2 CPU processes (gloo) equal 1 process on the global batch."""

import socket

import distributed_cases as cases
import pytest
import torch
import torch.multiprocessing as mp


def _spawn(case: str, world: int, out) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(cases.run, args=(world, port, case, str(out)), nprocs=world, join=True)
    return [torch.load(out / f"{r}.pt", weights_only=True) for r in range(world if case.startswith("loss_and") else 1)]


@pytest.mark.parametrize("case", ["loss_and_grads", "loss_and_grads_uneven"])
def test_each_rank_gets_the_global_batch_loss_and_gradients(tmp_path, case):
    heads = cases.projections()
    for p in heads.parameters():
        p.grad = torch.zeros_like(p)
    single = {}
    for name, loss in cases.losses(heads, cases.global_inputs()).items():
        heads.zero_grad(set_to_none=False)
        loss.backward(retain_graph=True)
        single[name] = (loss.detach(), {k: p.grad.clone() for k, p in heads.named_parameters()})
    ranks = _spawn(case, 2, tmp_path)
    for name, (loss, grads) in single.items():
        for rank in ranks:
            assert rank[name][0].item() == pytest.approx(loss.item(), abs=1e-6), name
            for key, grad in grads.items():
                torch.testing.assert_close(rank[name][1][key], grad, atol=1e-6, rtol=1e-5, msg=f"{name} {key}")


def test_a_local_only_loss_would_differ(tmp_path):
    """The check above can fail: one rank's half batch alone gives another loss."""
    heads = cases.projections()
    full = cases.losses(heads, cases.global_inputs())["clip_relaxed"].item()
    half = cases.losses(heads, cases.shard(cases.global_inputs(), 0, 2))["clip_relaxed"].item()
    assert abs(full - half) > 1e-3


@pytest.mark.slow
def test_engine_on_two_processes_trains_the_same_parameters(tmp_path):
    (one,) = _spawn("train_dual_encoder", 1, tmp_path / "one")
    (two,) = _spawn("train_dual_encoder", 2, tmp_path / "two")
    assert len(one["losses"]) == len(two["losses"]) == 12  # 3 epochs x 32 items / global batch 8
    assert two["losses"] == pytest.approx(one["losses"], abs=1e-5)
    for key, value in one["params"].items():
        torch.testing.assert_close(two["params"][key], value, atol=1e-5, rtol=1e-4, msg=key)
