"""SynthCXR sanity: generation speed of the default world, and per-label test AUROC of a small supervised CNN.

Run: .venv/bin/python benchmarks/synth_cxr_sanity.py [--root DIR] [--epochs 8] [--workers N]
Peers: generation time against the 60 s default-world budget (docs/architecture.md); AUROC against chance (0.5).
The AUROCs are measured against the drawn ground truth (synth_truth.csv), on the MIMIC-layout
test split and on the CheXpert-style held-out test set.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score
from torch import nn

from medvl_core.data.labels import CHEXPERT_LABELS
from medvl_core.worlds.synth_cxr import generate_synth_cxr, read_truth
from medvl_core.worlds.synth_cxr_plan import WorldParams

BUDGET_S = 60.0
MIN_POSITIVES = 3


class SmallCNN(nn.Module):
    """Four strided conv blocks, then global average and max pooling (small findings survive) and a linear head."""

    def __init__(self, n_out: int):
        super().__init__()

        def block(cin, cout, k=3):
            return [nn.Conv2d(cin, cout, k, stride=2, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(*block(1, 24, 5), *block(24, 48), *block(48, 96), *block(96, 128),
                                      nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(inplace=True))
        self.head = nn.Linear(256, n_out)

    def forward(self, x):
        """Logits (N, n_out)."""
        f = self.features(x)
        return self.head(torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1))


def load_part(root: Path, truth, rows) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """(images N x 1 x H x W in [0, 1], stated training targets, drawn truth) for truth-table rows."""
    images = np.stack([np.asarray(Image.open(root / path), dtype=np.uint8) for path in truth.loc[rows, "image"]])
    stated = truth.loc[rows, [f"{name}.stated" for name in CHEXPERT_LABELS]].to_numpy(dtype=np.float32)
    drawn = truth.loc[rows, list(CHEXPERT_LABELS)].to_numpy(dtype=np.float32)
    return torch.from_numpy(images).unsqueeze(1).float().div_(255.0), stated, drawn


def train(x: torch.Tensor, stated: np.ndarray, epochs: int, seed: int = 0) -> nn.Module:
    """BCE on report labels (unmentioned -> 0, uncertain masked), rare positives up-weighted (pos_weight <= 20)."""
    torch.manual_seed(seed)
    target = torch.from_numpy(np.nan_to_num(stated, nan=0.0))
    mask = (target != -1).float()
    target = target.clamp(min=0.0)
    positives = (target * mask).sum(0)
    pos_weight = ((mask.sum(0) - positives) / positives.clamp(min=1.0)).clamp(1.0, 20.0)
    model = SmallCNN(len(CHEXPERT_LABELS))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * (-(-len(x) // 64))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            xb = (x[idx] - 0.5) / 0.25
            loss = nn.functional.binary_cross_entropy_with_logits(model(xb), target[idx], weight=mask[idx], pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Sigmoid scores, batch by batch."""
    return torch.cat([torch.sigmoid(model((xb - 0.5) / 0.25)) for xb in x.split(256)]).numpy()


def aurocs(scores: np.ndarray, truth: np.ndarray) -> list[tuple[float | None, int]]:
    """(AUROC or None when fewer than MIN_POSITIVES positives/negatives, positives) per label."""
    out = []
    for j in range(truth.shape[1]):
        pos = int(truth[:, j].sum())
        ok = MIN_POSITIVES <= pos <= len(truth) - MIN_POSITIVES
        out.append((float(roc_auc_score(truth[:, j], scores[:, j])) if ok else None, pos))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="world folder (default: a fresh temp folder)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--report-source", default="openi", choices=("openi", "template"),
                        help="openi = the default world; template = CheXpert label co-occurrence (more positives)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    scratch = Path(tempfile.mkdtemp(prefix="synth-cxr-bench-")) if args.root is None else None
    root = args.root or scratch / "synth-cxr"
    try:
        run(root, args)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def run(root: Path, args) -> None:
    """Generate (timed), train, evaluate, print."""
    params = WorldParams(report_source=args.report_source)
    fresh = not (root / "world.json").is_file()
    start = time.perf_counter()
    generate_synth_cxr(root, report_source=args.report_source, workers=args.workers)
    gen_s = time.perf_counter() - start
    n_images = params.n_studies + params.n_test_images
    if fresh:
        print(f"generation ({args.report_source} reports): {n_images} images at {params.image_size}px in {gen_s:.1f} s = {n_images / gen_s:.0f} images/s "
              f"({gen_s / BUDGET_S:.2f} x the {BUDGET_S:.0f} s budget)")
    truth = read_truth(root)
    parts = {
        "train": truth.index[(truth["part"] == "mimic") & (truth["split"] == "train")],
        "mimic test split": truth.index[(truth["part"] == "mimic") & (truth["split"] == "test")],
        "chexpert-test": truth.index[truth["part"] == "chexpert-test"],
    }
    x, stated, _ = load_part(root, truth, parts["train"])
    start = time.perf_counter()
    model = train(x, stated, args.epochs)
    print(f"training: {len(x)} images, {args.epochs} epochs, {time.perf_counter() - start:.0f} s on "
          f"{torch.get_num_threads()} threads")
    results = {}
    for name in ("mimic test split", "chexpert-test"):
        xt, _, drawn = load_part(root, truth, parts[name])
        results[name] = (len(xt), aurocs(predict(model, xt), drawn))
    header = " | ".join(f"{name} (n={n}) AUROC [pos]" for name, (n, _) in results.items())
    print(f"\n{'label':28s} | {header}")
    for j, label in enumerate(CHEXPERT_LABELS):
        cells = []
        for _, (_, values) in results.items():
            auc, pos = values[j]
            cells.append(f"{auc:.3f} ({auc / 0.5:.2f} x chance) [{pos}]" if auc is not None else f"n/a [{pos}]")
        print(f"{label:28s} | " + " | ".join(f"{c:32s}" for c in cells))
    for name, (_, values) in results.items():
        valid = [a for a, _ in values if a is not None]
        print(f"mean AUROC {name}: {np.mean(valid):.3f} over {len(valid)} labels")


if __name__ == "__main__":
    main()
