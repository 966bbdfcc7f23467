"""Global-batch contrastive losses under torch.distributed (open_clip's `gather_with_grad` semantics, our code).

With world size W > 1 every contrastive loss gathers the embeddings of all processes (in rank order, so a
rank's positives sit at offset rank * local_batch) and computes the loss of the GLOBAL batch on every rank:
each rank's loss equals the single-process loss on the concatenated batch. The gather is differentiable: its
backward sums the gradients that every rank's (identical) loss sends to each slot, so a rank's local embeddings
get W times the single-process gradient, and DDP's averaging over W ranks gives parameter gradients EQUAL to
the single-process ones (no rescaling of the learning rate or the loss). With one process, nothing changes.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..errors import ParameterError


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather along dim 0 whose backward all-reduces (sums) the gradient and returns this rank's slice."""

    @staticmethod
    def forward(ctx, x):
        rank, size = world()
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.n = rank, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def _sizes(x: torch.Tensor, dim: int) -> list[int]:
    """Every rank's size of `x` along `dim`."""
    _, size = world()
    mine = torch.tensor([x.shape[dim]], device=x.device)
    sizes = [torch.zeros_like(mine) for _ in range(size)]
    dist.all_gather(sizes, mine)
    return [int(s) for s in sizes]


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """(B, ...) per rank -> (W*B, ...) in rank order, differentiable; `x` itself with one process."""
    if world()[1] == 1:
        return x
    batches = _sizes(x, 0)
    if len(set(batches)) > 1:
        raise ParameterError(f"contrastive losses need the same batch on every process, got {batches}; keep "
                             "Accelerate's even_batches (the default) or drop the last incomplete batch")
    return _GatherWithGrad.apply(x)


def gather_padded(x: torch.Tensor, dim: int = 1, value: float = 0.0) -> torch.Tensor:
    """`gather_batch` after padding `dim` (e.g. the words of a report) to the longest on any rank with `value`."""
    if world()[1] == 1:
        return x
    longest = max(_sizes(x, dim))
    pad = [0, 0] * (x.ndim - 1 - dim) + [0, longest - x.shape[dim]]
    return gather_batch(F.pad(x, pad, value=value))
