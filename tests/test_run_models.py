"""Contrastive models in run folders: image-side encoder, cached features, seeded random controls."""

import numpy as np
import torch
from PIL import Image

from medvl_core.data import open_dataset
from medvl_core.models.dual_encoder import build_dual_encoder
from medvl_core.models.run_models import (
    extract_features,
    image_encoder_from_run,
    is_random_init,
    probe_encoder,
)


def _saved(root):
    torch.manual_seed(0)
    model = build_dual_encoder("tiny:cnn-32", "tiny:text-32", embed_dim=8, image_size=64)
    return model, model.save_pretrained(root / "paper-a" / "model")


def _folder(root, n=3):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return open_dataset("image-folder", root=root)


def test_image_encoder_from_run_matches_dual_encoder(tmp_path):
    model, folder = _saved(tmp_path / "runs")
    encoder = image_encoder_from_run(folder)
    assert encoder.spec == f"run:{folder.as_posix()}" and encoder.embed_dim == 8 and encoder.image_size == 64
    images = [Image.new("RGB", (40, 40), c) for c in ("white", "gray", "black")]
    pixels = torch.stack([encoder.preprocess(img) for img in images])
    with torch.no_grad():
        out = encoder(pixels)
        assert out.shape == (3, 8)
        torch.testing.assert_close(out.norm(dim=-1), torch.ones(3))
        torch.testing.assert_close(out, model.encode_images(pixels))
    assert torch.equal(encoder.encode(images), out)
    assert probe_encoder(encoder.spec).spec == encoder.spec


def test_extract_features_cached_per_run_weights(tmp_path, data_root):
    dataset = _folder(tmp_path / "imgs")
    _, folder = _saved(tmp_path / "runs")
    first = extract_features(f"run:{folder}", dataset, batch_size=4, progress=False)
    assert first.shape == (6, 8)
    assert torch.equal(extract_features(f"run:{folder}", dataset, progress=False), first)
    torch.manual_seed(1)
    build_dual_encoder("tiny:cnn-32", "tiny:text-32", embed_dim=8, image_size=64).save_pretrained(folder)  # retrained
    assert not torch.equal(extract_features(f"run:{folder}", dataset, progress=False), first)


def test_random_init_controls_are_seeded(tmp_path, data_root):
    dataset = _folder(tmp_path / "imgs")
    assert is_random_init("tiny:cnn-32") and is_random_init("timm:resnet18@random")
    assert not is_random_init("bundled:efficientnet_lite0") and not is_random_init("run:runs/x")
    a = extract_features("tiny:cnn-32", dataset, image_size=32, seed=0, progress=False)
    b = probe_encoder("tiny:cnn-32", image_size=32, seed=0)
    assert b.spec == "tiny:cnn-32#seed=0"
    torch.testing.assert_close(b.encode([dataset[i]["image"] for i in range(len(dataset))]), a)
    c = extract_features("tiny:cnn-32", dataset, image_size=32, seed=1, progress=False)
    assert not torch.allclose(a, c)
