"""Input pipeline of loss relaxation's full.yaml on MIMIC-CXR-JPG: raw JPGs vs the prepared copy vs plain torchvision.

Writes a MIMIC-CXR-JPG tree of full-resolution JPGs (smooth radiograph-like images of 2,500 x 3,000 px with a
little grain, quality 95: 1-2 MB each, as the real files) and its reports and CSVs, then runs one epoch of the
training input pipeline of full.yaml (``ImageTextPairs``: 3 report sentences drawn per item, the paper's
augmentation, the ViT-B/16 preprocess at 224 px, ``PairCollator`` tokenising each batch with a BERT WordPiece
tokenizer, the bundled MiniLM one) in a torch DataLoader with the same workers for
  (a) raw: ``open_dataset("mimic-cxr", prepared="off")``, every JPG decoded at full size (today's raw path),
  (a') raw with ``draft_side=SIZE`` (PIL draft mode: the JPG decoded at a reduced DCT scale),
  (b) the prepared copy written by ``medvl prepare mimic-cxr --size SIZE`` (default 256; the loader reads rows of
      its memmap),
  (c) a plain torchvision reference: ``PIL.Image.open`` + Resize + the same augmentation as torchvision transforms
      + CenterCrop, ToTensor, Normalize, the same sentence draws and tokenizer.
The prepared copy's items are repeated (to about 2,000) so its pass lasts long enough to measure; the four
pipelines alternate for ``--rounds`` rounds (default 3) and their medians are compared. Each rate is per core:
images / CPU seconds of the main process and its DataLoader workers (wall-clock rates on a shared machine mislead),
and wall images/s is printed beside it. Projection: per-core rate x 16 cores, and the epoch time of the 377,110
MIMIC-CXR-JPG images at that rate. Ratios last: b/a and b/c per core. Not part of ``make test``.

    python benchmarks/bench_input_pipeline.py [--images 64] [--workers 2] [--size 256] [--record]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MIMIC_IMAGES = 377_110
CORES = 16
SHAPE = (3000, 2500)  # height, width of a MIMIC-CXR-JPG radiograph, about
REPORT = ("FINAL REPORT\n\n FINDINGS:\n The heart size is normal. The mediastinal contours are unremarkable. "
          "There is no focal consolidation. No pleural effusion or pneumothorax is seen. Mild degenerative changes "
          "of the spine.\n\n IMPRESSION:\n No acute cardiopulmonary process. No change from the prior study.\n")


def write_tree(root: Path, n: int, seed: int = 0) -> int:
    """A MIMIC-CXR-JPG tree of `n` full-size JPGs (one per study) with reports and CSVs; total JPG bytes."""
    import pandas as pd
    from PIL import Image
    from tqdm.auto import tqdm

    from medvl_core.data.labels import CHEXPERT_LABELS

    h, w = SHAPE
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    y, x = y / h, x / w
    body = 175 - 95 * np.exp(-(((x - 0.3) / 0.12) ** 2 + ((y - 0.5) / 0.3) ** 2))
    body -= 95 * np.exp(-(((x - 0.7) / 0.12) ** 2 + ((y - 0.5) / 0.3) ** 2))
    body += 10 * np.sin(2 * np.pi * y * 9) * np.exp(-((x - 0.5) / 0.35) ** 2)
    grain = np.random.default_rng(seed).normal(0, 2.0, (h, w)).astype(np.float32)
    rows, total = [], 0
    for i in tqdm(range(n), desc="writing JPGs", unit="image"):
        subject, study, dicom = 10000000 + i, 50000000 + i, f"{i:08x}-dicom"
        folder = root / "files" / f"p{str(subject)[:2]}" / f"p{subject}" / f"s{study}"
        folder.mkdir(parents=True)
        pixels = np.clip(body * (0.9 + 0.2 * (i % 5) / 4) + np.roll(grain, 97 * i, axis=1), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{dicom}.jpg", quality=95)
        total += (folder / f"{dicom}.jpg").stat().st_size
        (folder.parent / f"s{study}.txt").write_text(REPORT)
        rows.append({"dicom_id": dicom, "subject_id": subject, "study_id": study,
                     "ViewPosition": ("PA", "AP", "LATERAL")[i % 3], "split": "train"})
    frame = pd.DataFrame(rows)
    frame.drop(columns="split").to_csv(root / "mimic-cxr-2.0.0-metadata.csv", index=False)
    frame[["dicom_id", "study_id", "subject_id", "split"]].to_csv(root / "mimic-cxr-2.0.0-split.csv", index=False)
    labels = frame[["subject_id", "study_id"]].assign(**{name: 0.0 for name in CHEXPERT_LABELS})
    labels.to_csv(root / "mimic-cxr-2.0.0-chexpert.csv", index=False)
    return total


class Tokens:
    """`tokenizer(texts, max_length=...)` -> dict(input_ids, attention_mask), as a text tower's `tokenize`."""

    def __init__(self):
        from transformers import AutoTokenizer

        from medvl_core.assets import minilm_dir

        self.tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))

    def __call__(self, texts, max_length=128):
        out = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}


def medvl_pairs(root: Path, tokens, repeat: int = 1, **options):
    """full.yaml's training pairs over the tree, its items `repeat` times: ImageTextPairs as `eval.contrastive_fit`
    builds them (3 sentences, paper augmentation, 224 px, cache_images=True: each item decoded once per epoch, as
    a fresh, non-persistent DataLoader worker does)."""
    from medvl_core.data import open_dataset
    from medvl_core.data.pairs import ImageTextPairs
    from medvl_core.data.transforms import paper_augmentation
    from medvl_core.models.encoders.preprocess import imagenet_transform

    dataset = open_dataset("mimic-cxr", root, split="train", views="all", **options)
    dataset = dataset.subset(list(range(len(dataset))) * repeat)
    return ImageTextPairs(dataset, imagenet_transform(224), tokens, sentences_per_report=3,
                          augment=paper_augmentation(), seed=0, cache_images=True)


class ReferencePairs:
    """Plain torchvision: PIL decode, Resize, RandomAffine/flip/ColorJitter, CenterCrop, ToTensor, Normalize; the
    report's 3 sentences drawn with NumPy."""

    def __init__(self, root: Path, repeat: int = 1):
        import pandas as pd
        from torchvision import transforms as T

        from medvl_core.data.cxr import mimic_image_path, mimic_report_path

        frame = pd.read_csv(root / "mimic-cxr-2.0.0-metadata.csv")
        self.items = [(mimic_image_path(root, r.subject_id, r.study_id, r.dicom_id),
                       mimic_report_path(root / "files", r.subject_id, r.study_id)) for r in frame.itertuples()] * repeat
        self.transform = T.Compose([
            T.Resize(224, interpolation=T.InterpolationMode.BICUBIC),
            T.RandomAffine(20, scale=(0.9, 1.1)), T.RandomHorizontalFlip(),
            T.ColorJitter(brightness=(0.5, 2.0), contrast=(0.5, 2.0)), T.CenterCrop(224), T.ToTensor(),
            T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        from PIL import Image

        from medvl_core.text.sections import findings_impression
        from medvl_core.text.sentences import split_sentences

        image_path, report_path = self.items[index]
        image = Image.open(image_path).convert("RGB")
        sentences = split_sentences(findings_impression(report_path.read_text()))
        rng = np.random.default_rng(index)
        picked = rng.choice(len(sentences), size=min(3, len(sentences)), replace=False)
        return {"image": self.transform(image), "text": " ".join(sentences[i] for i in sorted(picked))}


class ReferenceCollate:
    """Stack images, tokenise texts (the reference's collate)."""

    def __init__(self, tokens):
        self.tokens = tokens

    def __call__(self, items):
        import torch

        return {"images": torch.stack([i["image"] for i in items]), **self.tokens([i["text"] for i in items])}


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children (the DataLoader workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def one_pass(dataset, collate, workers: int, batch: int) -> dict:
    """One epoch of `dataset` in a DataLoader; images, wall s, CPU s."""
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers,
                        collate_fn=collate, generator=torch.Generator().manual_seed(0))
    cpu, start, seen = cpu_seconds(), time.perf_counter(), 0
    for out in loader:
        seen += len(out["images"])
    wall = time.perf_counter() - start
    return {"images": seen, "wall": wall, "cpu": cpu_seconds() - cpu}


def report(name: str, row: dict) -> float:
    """Print one pipeline's rates; its images per CPU second."""
    per_core = row["images"] / row["cpu"]
    print(f"{name:34s} {row['images']:6d} images  {row['images'] / row['wall']:8.1f} images/s wall  "
          f"{per_core:8.1f} images/s per core  x{CORES}: {per_core * CORES:9.0f} images/s, "
          f"MIMIC-CXR epoch {MIMIC_IMAGES / (per_core * CORES) / 60:7.1f} min")
    return per_core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="full-size JPGs to write (default 64)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="DataLoader workers")
    parser.add_argument("--batch", type=int, default=32, help="batch size")
    parser.add_argument("--size", type=int, default=256, help="side of the prepared copy and of draft decoding")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are compared (default 3)")
    parser.add_argument("--record", action="store_true", help="write the rows to benchmarks/timings.md")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        os.environ["MEDVL_DATA"] = str(data)
        root = data / "mimic-cxr"
        total = write_tree(root, args.images)
        print(f"{args.images} JPGs of {SHAPE[1]} x {SHAPE[0]} px, {total / args.images / 1e6:.2f} MB each on average; "
              f"{args.workers} workers, batch {args.batch}, load average {os.getloadavg()[0]:.2f} "
              f"on {os.cpu_count()} cores")
        rows = measure(root, args)
    ratios = {"b/a": rows["prepared"] / rows["raw"], "b/c": rows["prepared"] / rows["reference"],
              "a'/a": rows["raw, draft"] / rows["raw"]}
    print("medians: " + ", ".join(f"{k} {v:.1f}" for k, v in rows.items()) + " images/s per core")
    print(f"projected prepared input pipeline on {CORES} cores: {rows['prepared'] * CORES:.0f} images/s (goal 1,500)")
    print("per core: " + ", ".join(f"{k} {v:.1f}" for k, v in ratios.items()) + " (goals: b/a >= 30, b/c > 1)")
    if args.record:
        record(rows, ratios, args)


def measure(root: Path, args) -> dict:
    """Median per-core rates of the four pipelines over `args.rounds` alternating rounds (and the prepare pass's)."""
    from medvl_core.data.prepare import prepare_dataset

    tokens = Tokens()
    cpu, start = cpu_seconds(), time.perf_counter()
    prepare_dataset("mimic-cxr", root, size=args.size, workers=args.workers, progress=False)
    prepare = args.images / (cpu_seconds() - cpu)
    print(f"{f'medvl prepare --size {args.size} (once)':34s} {args.images:6d} images  "
          f"{args.images / (time.perf_counter() - start):8.1f} images/s wall  {prepare:8.1f} images/s per core")
    pipelines = {
        "raw": ("(a) raw JPGs", lambda: medvl_pairs(root, tokens, prepared="off")),
        "raw, draft": (f"(a') raw JPGs, draft_side={args.size}",
                       lambda: medvl_pairs(root, tokens, prepared="off", draft_side=args.size)),
        "prepared": (f"(b) prepared copy ({args.size} px memmap)",
                     lambda: medvl_pairs(root, tokens, repeat=max(1, 2000 // args.images))),
        "reference": ("(c) torchvision reference", lambda: ReferencePairs(root)),
    }
    rates = {key: [] for key in pipelines}
    for round_ in range(args.rounds):
        print(f"round {round_ + 1} of {args.rounds}, load average {os.getloadavg()[0]:.2f}")
        for key, (label, build) in pipelines.items():
            pairs = build()
            collate = ReferenceCollate(tokens) if key == "reference" else pairs.collate
            rates[key].append(report(label, one_pass(pairs, collate, args.workers, args.batch)))
    return {key: float(np.median(values)) for key, values in rates.items()}


def record(rows: dict, ratios: dict, args) -> None:
    """One timings.md row per pipeline: the projected MIMIC-CXR-JPG epoch on 16 cores, and the rates in the note."""
    sys.path.insert(0, str(Path(__file__).parent))
    import timings

    load = f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    for key, label in (("raw", "(a) raw JPGs"), ("raw, draft", f"(a') raw JPGs, draft_side={args.size}"),
                       ("prepared", f"(b) prepared copy {args.size} px"), ("reference", "(c) torchvision reference")):
        epoch = MIMIC_IMAGES / (rows[key] * CORES)
        timings.record(f"input pipeline {label}: MIMIC-CXR-JPG epoch on {CORES} cores (projected)", round(epoch, 1),
                       note=f"bench_input_pipeline.py, {args.images} JPGs 2500x3000 q95, {args.workers} workers, "
                            f"batch {args.batch}; median of {args.rounds} rounds {rows[key]:.1f} images/s per core "
                            f"(images / CPU s) x {CORES}; "
                            f"b/a {ratios['b/a']:.1f}, b/c {ratios['b/c']:.1f}; {load}")


if __name__ == "__main__":
    main()
