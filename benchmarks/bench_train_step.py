"""Contrastive training step: our engine vs an open_clip-style loop (peer: open_clip's training script).

Same model (``build_dual_encoder("tiny:cnn-64", "tiny:text-64", embed_dim=64, trainable="all")``,
fixed seed), same in-memory data (random 64-px images + short tokenised texts), batch 32,
30 optimizer steps after a warm-up of 3, CPU (2 threads). Ours: ``medvl_core.train.train`` with
``medvl_core.losses.ContrastiveObjective``. Peer: the loop open_clip's ``train_one_epoch`` runs
(autocast context, ``model(images, ids, mask)``, ``clip_loss``, backward, AdamW step, cosine LR by a
lambda). Each side runs in its own subprocess so peak RSS (``resource.getrusage``) is its own.
Prints samples/s and peak RSS of both, ratio ours/peer last. Not part of ``make test``.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time

BATCH, STEPS, WARMUP, SEED = 32, 30, 3, 0


def model_and_data(n_items: int):
    import torch

    from medvl_core.models.dual_encoder import build_dual_encoder

    torch.manual_seed(SEED)
    model = build_dual_encoder("tiny:cnn-64", "tiny:text-64", embed_dim=64, trainable="all")
    g = torch.Generator().manual_seed(SEED)
    images = torch.rand(n_items, 3, 64, 64, generator=g)
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
    cfg = dict(batch_size=BATCH, lr=1e-4, warmup_steps=2, progress=False, checkpoint_dir=None, seed=SEED,
               device="cpu")
    train(model, data[: BATCH * WARMUP], ContrastiveObjective(), TrainConfig(**cfg))  # warm-up
    t0 = time.perf_counter()
    result = train(model, data, ContrastiveObjective(), TrainConfig(**cfg))
    wall = time.perf_counter() - t0
    assert result.steps == STEPS
    return BATCH * STEPS / wall


def run_peer() -> float:
    import torch
    from torch.utils.data import DataLoader

    from medvl_core.losses.contrastive import clip_loss

    model, data = model_and_data(BATCH * STEPS)

    def loop(items):
        # open_clip train_one_epoch, single process, CPU: autocast = nullcontext-like cpu autocast off
        loader = DataLoader(items, batch_size=BATCH, shuffle=True,
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
            with torch.autocast("cpu", enabled=False):
                img, txt, scale = model(batch["images"], batch["input_ids"], batch["attention_mask"])
                loss = clip_loss(img, txt, scale)
            loss.backward()
            optimizer.step()
            sched.step()
        return total

    loop(data[: BATCH * WARMUP])  # warm-up
    t0 = time.perf_counter()
    steps = loop(data)
    wall = time.perf_counter() - t0
    assert steps == STEPS
    return BATCH * STEPS / wall


def child(which: str) -> None:
    sps = run_ours() if which == "ours" else run_peer()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"samples_per_s": sps, "peak_rss_mib": rss_mib}))


def main() -> None:
    out = {}
    for which in ("peer", "ours"):
        res = subprocess.run([sys.executable, __file__, which], capture_output=True, text=True, check=True)
        out[which] = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"{which:>4}: {out[which]['samples_per_s']:8.1f} samples/s  peak RSS {out[which]['peak_rss_mib']:7.1f} MiB "
              f"(batch {BATCH}, {STEPS} steps, CPU)")
    ratio = out["ours"]["samples_per_s"] / out["peer"]["samples_per_s"]
    print(f"train-step ratio ours/open_clip-style loop (samples/s): {ratio:.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1])
    else:
        main()
