"""Contrastive training step: our engine vs an open_clip-style loop (peer: open_clip's training script).

Same model (``build_dual_encoder("tiny:cnn-64", "tiny:text-64", embed_dim=64, trainable="all")``,
fixed seed), same in-memory data (random 64-px images + short tokenised texts), batch 32,
60 optimizer steps after a warm-up of 3, CPU (2 threads), three alternating rounds per side, median
reported. Ours: ``medvl_core.train.train`` with ``medvl_core.losses.ContrastiveObjective``. Peer: the loop open_clip's ``train_one_epoch`` runs
(autocast context, ``model(images, ids, mask)``, ``clip_loss``, backward, AdamW step, cosine LR by a
lambda). Each side runs in its own subprocess so peak RSS (``resource.getrusage``) is its own.
Prints samples/s and peak RSS of both, ratio ours/peer last. Not part of ``make test``.

``--gpu``: the same comparison on one CUDA GPU at a realistic size: open_clip ViT-B-32 image and text
towers (random init, offline) in our DualEncoder, 224 px, batch 256, bf16 autocast on both sides,
inputs moved to the GPU per batch as open_clip's loop does. Also prints peak GPU memory and model
FLOP utilisation (FLOPs of one forward+backward counted by ``torch.utils.flop_counter``, over the
H100 SXM's dense bf16 peak of 989 TFLOP/s).
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time

BATCH, STEPS, WARMUP, SEED = 32, 60, 3, 0
ROUNDS = 3  # peer and ours alternate, each in a fresh process; the median round of each is compared
PROFILES = {  # name: image spec, text spec, embed dim, image size, batch, device
    "cpu": ("tiny:cnn-64", "tiny:text-64", 64, 64, 32, "cpu"),
    "gpu": ("open_clip:ViT-B-32", "open_clip:ViT-B-32", 512, 224, 256, "cuda"),
}
PEAK_BF16_FLOPS = 989e12  # H100 SXM dense bf16 (NVIDIA datasheet)
PROFILE = PROFILES["gpu" if "--gpu" in sys.argv else "cpu"]
BATCH = PROFILE[4]
STEPS = 100 if PROFILE[5] == "cuda" else STEPS  # ~100 ms steps on a GPU: enough to amortise each side's setup


def model_and_data(n_items: int):
    import torch

    from medvl_core.models.dual_encoder import build_dual_encoder

    image_spec, text_spec, dim, size, _, _ = PROFILE
    torch.manual_seed(SEED)
    model = build_dual_encoder(image_spec, text_spec, embed_dim=dim, trainable="all")
    g = torch.Generator().manual_seed(SEED)
    images = torch.rand(n_items, 3, size, size, generator=g)
    words = "no acute cardiopulmonary process small left effusion mild cardiomegaly clear lungs".split()
    texts = [" ".join(words[(i + k) % len(words)] for k in range(3 + i % 6)) for i in range(n_items)]
    tok = model.tokenize(texts, max_length=32)
    data = [{"images": images[i], "input_ids": tok["input_ids"][i], "attention_mask": tok["attention_mask"][i]}
            for i in range(n_items)]
    return model, data


def run_ours() -> float:
    from medvl_core.losses import ContrastiveObjective
    from medvl_core.train import TrainConfig, train

    model, data = model_and_data(BATCH * STEPS)
    cfg = dict(global_batch_size=BATCH, lr=1e-4, warmup_steps=2, progress=False, checkpoint_dir=None, seed=SEED,
               device=PROFILE[5], mixed_precision="bf16" if PROFILE[5] == "cuda" else "no")
    train(model, data[: BATCH * WARMUP], ContrastiveObjective(), TrainConfig(**cfg))  # warm-up
    _sync()
    t0 = time.perf_counter()
    result = train(model, data, ContrastiveObjective(), TrainConfig(**cfg))
    _sync()
    wall = time.perf_counter() - t0
    assert result.steps == STEPS
    print(f"ours in-loop samples/s (setup excluded): {result.history[-1]['samples_per_s']:.1f}", file=sys.stderr)
    return BATCH * STEPS / wall


def run_peer() -> float:
    import torch
    from torch.utils.data import DataLoader

    from medvl_core.losses.contrastive import clip_loss

    model, data = model_and_data(BATCH * STEPS)
    device = torch.device(PROFILE[5])
    model.to(device)

    def loop(items):
        # open_clip train_one_epoch, single process, CPU: autocast = nullcontext-like cpu autocast off
        loader = DataLoader(items, batch_size=BATCH, shuffle=True, pin_memory=device.type == "cuda",
                            generator=torch.Generator().manual_seed(SEED))
        total = len(loader)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        warm = 2
        sched = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: (s + 1) / warm if s < warm
            else 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, total - warm)))))
        model.train()
        for batch in loader:
            optimizer.zero_grad()
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                img, txt, scale = model(batch["images"], batch["input_ids"], batch["attention_mask"])
                loss = clip_loss(img, txt, scale)
            loss.backward()
            optimizer.step()
            sched.step()
        return total

    loop(data[: BATCH * WARMUP])  # warm-up
    _sync()
    t0 = time.perf_counter()
    steps = loop(data)
    _sync()
    wall = time.perf_counter() - t0
    assert steps == STEPS
    return BATCH * STEPS / wall


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def flops_per_sample() -> float:
    """FLOPs of one forward + backward of the benchmark model, per sample (torch's flop counter)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from medvl_core.losses.contrastive import clip_loss

    model, data = model_and_data(8)
    device = torch.device(PROFILE[5])
    model.to(device)
    batch = torch.utils.data.default_collate(data)
    batch = {k: v.to(device) for k, v in batch.items()}
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            img, txt, scale = model(batch["images"], batch["input_ids"], batch["attention_mask"])
            loss = clip_loss(img, txt, scale)
        loss.backward()
    return counter.get_total_flops() / len(data)


def child(which: str) -> None:
    import torch

    if which == "flops":
        print(json.dumps({"flops_per_sample": flops_per_sample()}))
        return
    sps = run_ours() if which == "ours" else run_peer()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu_mib = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    print(json.dumps({"samples_per_s": sps, "peak_rss_mib": rss_mib, "peak_gpu_mib": gpu_mib}))


def _child(which: str) -> dict:
    flags = ["--gpu"] if PROFILE[5] == "cuda" else []
    res = subprocess.run([sys.executable, __file__, which, *flags], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"{which} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    out, where = {}, f"{PROFILE[0]} / {PROFILE[1]}, {PROFILE[3]} px, batch {BATCH}, {STEPS} steps, {PROFILE[5]}"
    gpu = PROFILE[5] == "cuda"
    flops = _child("flops")["flops_per_sample"] if gpu else None
    rounds = {"peer": [], "ours": []}
    for _ in range(1 if gpu else ROUNDS):  # single 30-step runs on 2 busy cores varied by +-30 %
        for which in rounds:
            rounds[which].append(_child(which))
    for which, runs in rounds.items():
        out[which] = r = sorted(runs, key=lambda run: run["samples_per_s"])[len(runs) // 2]
        if len(runs) > 1:
            print(f"{which:>4}: rounds " + ", ".join(f"{run['samples_per_s']:.1f}" for run in runs) + " samples/s")
        line = f"{which:>4}: {r['samples_per_s']:8.1f} samples/s  peak RSS {r['peak_rss_mib']:7.1f} MiB"
        if gpu:
            mfu = r["samples_per_s"] * flops / PEAK_BF16_FLOPS
            line += f"  peak GPU {r['peak_gpu_mib']:7.0f} MiB  MFU {mfu:.1%}"
        print(f"{line} ({where}{', median round' if not gpu else ''})")
    if gpu:
        print(f"model FLOPs per sample (forward + backward): {flops / 1e9:.1f} GFLOP")
    ratio = out["ours"]["samples_per_s"] / out["peer"]["samples_per_s"]
    print(f"train-step ratio ours/open_clip-style loop (samples/s): {ratio:.2f}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--gpu"]
    if args:
        child(args[0])
    else:
        main()
