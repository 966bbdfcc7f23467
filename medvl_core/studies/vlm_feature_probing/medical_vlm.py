"""The demo's medical image-text model: a small SynthCXR dual encoder trained with the loss-relaxation recipe
(`eval.contrastive_fit`), probed beside the non-medical encoders."""

from __future__ import annotations

from pathlib import Path

MEDICAL_VLM = {"image_encoder": "bundled:efficientnet_lite0", "text_encoder": "bundled:minilm", "image_size": 96,
               "epochs": 10, "global_batch_size": 128, "lr": 1e-3, "embed_dim": 128}
SMALL_SYNTH_CXR = {"n_studies": 600, "n_test_images": 100}  # a SynthCXR world of its own, small enough for the demo


def train_medical_vlm(out_dir, seed: int = 0, device: str = "cpu", **overrides) -> Path:
    """Train (or reuse) a small medical image-text model: the loss-relaxation notebook's dual encoder (frozen
    towers, projections trained contrastively on SynthCXR image-report pairs with sentence sampling and relaxed
    positives) on a small SynthCXR world of its own (`SMALL_SYNTH_CXR`, under the data root); saved with
    `save_pretrained` into `out_dir`, which is returned. Reused when already there."""
    from ...config import dataset_dir
    from ...eval.contrastive_fit import ablation_variants, fit_variant
    from ...eval.report_study import prepare_report_study
    from ...models.dual_encoder import CONFIG_NAME
    from ...models.encoders import build_image_encoder, build_text_encoder
    from ...text.observations import CHEXPERT_LABELS
    from ...train import TrainConfig

    out_dir, options = Path(out_dir), {**MEDICAL_VLM, **overrides}
    if (out_dir / CONFIG_NAME).is_file():
        return out_dir
    image = build_image_encoder(options["image_encoder"], device=device, image_size=options["image_size"])
    world = {"root": dataset_dir("synth-cxr-vlm-probe"), **SMALL_SYNTH_CXR, **options.get("world", {})}
    study = prepare_report_study(image, build_text_encoder(options["text_encoder"], device=device),
                                 labels=[n for n in CHEXPERT_LABELS if n != "No Finding"], name="synth-cxr",
                                 progress=False, views="frontal", **world)
    config = TrainConfig(epochs=options["epochs"], global_batch_size=options["global_batch_size"], lr=options["lr"],
                         warmup_steps=10, device=device, progress=False)
    model, _ = fit_variant(study, ablation_variants()[-1], seed, config, embed_dim=options["embed_dim"])
    model.save_pretrained(out_dir)
    return out_dir
