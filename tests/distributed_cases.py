"""Worker functions for tests/test_distributed.py: run in spawned gloo processes (importable, so spawn can pickle them)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

N_GLOBAL, D_IN, D = 8, 6, 5


def global_inputs(seed: int = 0) -> dict:
    """A global batch of raw image/text features, views and words (same on every process)."""
    g = torch.Generator().manual_seed(seed)
    words = torch.randn(N_GLOBAL, 4, D_IN, generator=g)
    mask = torch.ones(N_GLOBAL, 4)
    mask[: N_GLOBAL // 2, 3] = 0  # the first rank's reports have 3 words, the second rank's 4
    return {"img": torch.randn(N_GLOBAL, D_IN, generator=g), "txt": torch.randn(N_GLOBAL, D_IN, generator=g),
            "v1": torch.randn(N_GLOBAL, D_IN, generator=g), "v2": torch.randn(N_GLOBAL, D_IN, generator=g),
            "regions": torch.randn(N_GLOBAL, 3, D_IN, generator=g), "words": words, "mask": mask}


def projections(seed: int = 1) -> torch.nn.ModuleDict:
    torch.manual_seed(seed)
    return torch.nn.ModuleDict({"image": torch.nn.Linear(D_IN, D), "text": torch.nn.Linear(D_IN, D)})


def losses(heads, batch: dict) -> dict:
    """Every batch-contrastive loss of medvl_core.losses on projected features (relaxation on for CLIP)."""
    from medvl_core.losses import clip_loss, local_contrastive_loss, simclr_loss

    img, txt = heads["image"](batch["img"]), heads["text"](batch["txt"])
    return {"clip_relaxed": clip_loss(img, txt, 10.0, relax=(0.5, 10.0)),
            "simclr": simclr_loss(heads["image"](batch["v1"]), heads["image"](batch["v2"]), 0.1),
            "local": local_contrastive_loss(heads["image"](batch["regions"]), heads["text"](batch["words"]), batch["mask"])}


def shard(batch: dict, rank: int, world: int, sizes=None) -> dict:
    """This rank's rows (`sizes` per rank, equal by default); its words trimmed to its own longest report."""
    sizes = sizes or [N_GLOBAL // world] * world
    start = sum(sizes[:rank])
    part = {k: v[start : start + sizes[rank]] for k, v in batch.items()}
    width = int(part["mask"].sum(1).max())
    part["words"], part["mask"] = part["words"][:, :width], part["mask"][:, :width]
    return part


def loss_and_grads_uneven(rank: int, world: int, out: str) -> None:
    """`loss_and_grads` with ranks holding 5 and 3 rows of the global batch (a partial last batch split unevenly)."""
    loss_and_grads(rank, world, out, sizes=[5, 3])


def loss_and_grads(rank: int, world: int, out: str, sizes=None) -> None:
    """Each loss and the DDP-averaged gradients of the heads, saved as out/<rank>.pt."""
    heads = projections()
    for p in heads.parameters():
        p.grad = torch.zeros_like(p)
    result = {}
    for name, loss in losses(heads, shard(global_inputs(), rank, world, sizes)).items():
        heads.zero_grad(set_to_none=False)
        loss.backward(retain_graph=True)
        grads = {k: p.grad.clone() for k, p in heads.named_parameters()}
        for g in grads.values():  # what DistributedDataParallel does
            dist.all_reduce(g)
            g /= world
        result[name] = (loss.detach(), grads)
    torch.save(result, os.path.join(out, f"{rank}.pt"))


def train_dual_encoder(rank: int, world: int, out: str) -> None:
    """The training engine on a projections-only dual encoder at global batch 8 (8/world per process, as under
    `accelerate launch`: the same TrainConfig on any number of processes)."""
    from medvl_core.losses import ContrastiveObjective
    from medvl_core.models.dual_encoder import DualEncoder
    from medvl_core.models.encoders import build_image_encoder, build_text_encoder
    from medvl_core.train import TrainConfig, train

    torch.manual_seed(0)
    model = DualEncoder(build_image_encoder("tiny:cnn-32"), build_text_encoder("tiny:text-32"), embed_dim=8)
    model.set_trainable("projections")
    g = torch.Generator().manual_seed(3)
    items = [{"image_features": torch.randn(32, generator=g), "text_features": torch.randn(32, generator=g)}
             for _ in range(32)]
    config = TrainConfig(epochs=3, global_batch_size=8, lr=0.05, optimizer="adam", warmup_steps=2, device="cpu",
                         seed=0, progress=False, log_every=1)
    result = train(model, items, ContrastiveObjective("clip", relax=(0.5, 10.0)), config)
    if rank == 0:
        torch.save({"params": {k: v.detach().clone() for k, v in model.state_dict().items() if "projection" in k
                               or "logit" in k}, "losses": [e["loss"] for e in result.step_log]},
                   os.path.join(out, "0.pt"))


def run(rank: int, world: int, port: int, case: str, out: str) -> None:
    """Entry point of one spawned process: join the gloo group (as `accelerate launch` would), run `case`."""
    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                          WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world))
        if case.startswith("loss_and_grads"):
            dist.init_process_group("gloo", rank=rank, world_size=world)
    globals()[case](rank, world, out)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
