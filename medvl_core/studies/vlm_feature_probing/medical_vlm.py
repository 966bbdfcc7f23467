"""The demo's medical image-text model: a small CNN image tower trained from random init on SynthCXR pixels,
contrastively against the report (CLIP loss with sentence sampling and relaxed positives, as in the loss-relaxation
recipe) with a frozen MiniLM text tower whose features are cached; the epoch kept is chosen by zero-shot AUROC on
SynthCXR's CheXpert-style validation set only (`eval.contrastive_fit.validation_scores`). Saved under the data root's cache,
keyed by its settings, so later runs reuse it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from torch.utils.data import Dataset

MEDICAL_VLM = {"image_encoder": "tiny:cnn", "text_encoder": "bundled:minilm", "image_size": 64, "epochs": 12,
               "global_batch_size": 64, "lr": 3e-3, "embed_dim": 128, "sentences_per_report": 3, "text_rounds": 2,
               "relax": [0.5, 10.0]}  # text_rounds: distinct sentence draws per report (epoch e uses draw e mod rounds)
SMALL_SYNTH_CXR = {"n_studies": 600, "n_test_images": 100}  # a SynthCXR world of its own, small enough for the demo
MODEL_VERSION = 2  # bump when the training recipe changes (part of the cache key)


def medical_vlm_label(**overrides) -> str:
    """What the medical model is, in one line (for tables and row labels)."""
    o = {**MEDICAL_VLM, **overrides}
    return (f"{o['image_encoder']} trained on SynthCXR pixels ({o['image_size']} px, {o['epochs']} epochs, "
            f"contrastive vs frozen {o['text_encoder']} reports)")


class PixelReportPairs(Dataset):
    """Training pairs: each image's pixels (`data.pairs.ImageTextPairs`, seeded per epoch) with the frozen text
    tower's cached features of that epoch's sampled report sentences (`models.cache.EpochTextFeatures`)."""

    def __init__(self, pixels, text_features):
        self.pixels, self.text_features = pixels, text_features
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose sentences and pixels `__getitem__` returns."""
        self.epoch = int(epoch)
        self.pixels.set_epoch(self.epoch)
        self._texts = self.text_features(self.epoch)

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index: int) -> dict:
        return {"images": self.pixels[index]["image"], "text_features": self._texts[index]}


def model_dir(seed: int = 0, world: dict | None = None, **overrides) -> Path:
    """The cache folder of the model trained with these settings (under the data root's cache/vlm_probe_medical)."""
    from ...config import cache_dir

    key = json.dumps({"v": MODEL_VERSION, "seed": int(seed), **MEDICAL_VLM, **overrides,
                      "world": {**SMALL_SYNTH_CXR, **(world or {})}}, sort_keys=True, default=str)
    return cache_dir("vlm_probe_medical") / hashlib.sha256(key.encode()).hexdigest()[:16]


def train_medical_vlm(out_dir=None, seed: int = 0, device: str = "cpu", world: dict | None = None,
                      **overrides) -> Path:
    """Train (or reuse) the small medical image-text model (module docstring) on a SynthCXR world of its own
    (`SMALL_SYNTH_CXR` + `world`, under the data root); saved with `save_pretrained` into `out_dir` (default:
    `model_dir` of these settings), which is returned. Reused when already there."""
    from ...config import dataset_dir
    from ...io import exclusive_lock
    from ...text.observations import CHEXPERT_LABELS

    options, world = {**MEDICAL_VLM, **overrides}, {**SMALL_SYNTH_CXR, **(world or {})}
    out_dir = Path(out_dir) if out_dir is not None else model_dir(seed, world, **overrides)
    from ...models.dual_encoder import CONFIG_NAME

    with exclusive_lock(out_dir.parent / f".{out_dir.name}.lock"):
        if not (out_dir / CONFIG_NAME).is_file():
            labels = [n for n in CHEXPERT_LABELS if n != "No Finding"]
            model = fit_pixel_model({"root": dataset_dir("synth-cxr-vlm-probe"), **world}, labels, seed, device,
                                    options)
            model.save_pretrained(out_dir)
    return out_dir


def fit_pixel_model(world: dict, labels, seed: int, device: str, options: dict):
    """Build the study (uncached), train the image tower + projections on pixels, keep the best validation epoch."""
    from dataclasses import replace

    import torch

    from ...config import seed_everything
    from ...data.pairs import ImageTextPairs
    from ...eval.contrastive_fit import new_model, validation_scores
    from ...eval.report_study import prepare_report_study
    from ...losses import ContrastiveObjective
    from ...models.cache import EpochTextFeatures
    from ...models.encoders import build_image_encoder, build_text_encoder
    from ...train import TrainConfig, train

    seed_everything(seed)
    image = build_image_encoder(options["image_encoder"], device=device, image_size=options["image_size"])
    study = prepare_report_study(image, build_text_encoder(options["text_encoder"], device=device), labels=labels,
                                 name="synth-cxr", cache=False, progress=False, views="frontal",
                                 validation_name="synth-cxr", **world)  # selection: its CheXpert-style valid set
    model = new_model(study, seed, options["embed_dim"], trainable="all")
    model.text.requires_grad_(False)  # the text side is the frozen tower's cached features (and its projection)
    spr = options["sentences_per_report"]
    texts = EpochTextFeatures(study.text_encoder, study.train.texts, spr, seed=0, epochs=options["text_rounds"],
                              progress=False)
    pixels = ImageTextPairs(study.train.dataset, model.preprocess, None, spr, seed=seed, cache_images=True)
    config = TrainConfig(epochs=options["epochs"], global_batch_size=options["global_batch_size"], lr=options["lr"],
                         warmup_steps=10, device=device, progress=False)
    config = replace(config, seed=seed, keep_best=True, monitor="val_auroc_5", monitor_mode="max")
    relax = tuple(options["relax"]) if options.get("relax") else None
    with torch.random.fork_rng(devices=[]):
        train(model, PixelReportPairs(pixels, texts), ContrastiveObjective("clip", relax=relax), config,
              val_fn=lambda m, epoch: validation_scores(m, study))
    return model.eval()
