"""Global-batch contrastive losses under torch.distributed (open_clip's `gather_with_grad` semantics, our code).

With world size W > 1 every contrastive loss gathers the embeddings of all processes (in rank order, so a
rank's positives sit at the offset of the batches of the ranks before it) and computes the loss of the GLOBAL batch on every rank:
each rank's loss equals the single-process loss on the concatenated batch. The gather is differentiable: its
backward sums the gradients that every rank's (identical) loss sends to each slot, so a rank's local embeddings
get W times the single-process gradient, and DDP's averaging over W ranks gives parameter gradients EQUAL to
the single-process ones (no rescaling of the learning rate or the loss). With one process, nothing changes.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather along dim 0 (ranks may hold different batch sizes) whose backward all-reduces (sums) the gradient
    and returns this rank's slice."""

    @staticmethod
    def forward(ctx, x, sizes):
        rank, _ = world()
        longest = max(sizes)
        padded = F.pad(x, [0, 0] * (x.ndim - 1) + [0, longest - x.shape[0]]).contiguous()
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        ctx.start, ctx.stop = sum(sizes[:rank]), sum(sizes[:rank + 1])
        return torch.cat([part[:n] for part, n in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start:ctx.stop], None


def _sizes(x: torch.Tensor, dim: int) -> list[int]:
    """Every rank's size of `x` along `dim`."""
    _, size = world()
    mine = torch.tensor([x.shape[dim]], device=x.device)
    sizes = [torch.zeros_like(mine) for _ in range(size)]
    dist.all_gather(sizes, mine)
    return [int(s) for s in sizes]


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """(B_r, ...) per rank -> (sum of B_r, ...) in rank order, differentiable; `x` itself with one process.

    Ranks may hold different batch sizes (the engine splits a partial last batch as evenly as it can)."""
    if world()[1] == 1:
        return x
    return _GatherWithGrad.apply(x, _sizes(x, 0))


def gather_padded(x: torch.Tensor, dim: int = 1, value: float = 0.0) -> torch.Tensor:
    """`gather_batch` after padding `dim` (e.g. the words of a report) to the longest on any rank with `value`."""
    if world()[1] == 1:
        return x
    longest = max(_sizes(x, dim))
    pad = [0, 0] * (x.ndim - 1 - dim) + [0, longest - x.shape[dim]]
    return gather_batch(F.pad(x, pad, value=value))
