"""Dual encoder: shapes, normalisation, temperature, trainable modes, save/load round trip."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from medvl_core.errors import DataFormatError, ParameterError
from medvl_core.models.dual_encoder import (
    CONFIG_NAME,
    build_dual_encoder,
    last_stage,
    load_dual_encoder,
)
from medvl_core.models.encoders import build_image_encoder

TEXTS = ["Small left pleural effusion.", "No pneumothorax.", "Heart size is normal.", "Mild cardiomegaly."]


def tiny(**options):
    torch.manual_seed(0)
    return build_dual_encoder("tiny:cnn-32", "tiny:text-32", embed_dim=16, image_size=32, **options)


@pytest.fixture(scope="module")
def model():
    return tiny()


@pytest.fixture(scope="module")
def images():
    return [Image.linear_gradient("L").resize((40, 36)).rotate(a) for a in (0, 30, 60)]


def count(params) -> int:
    return sum(p.numel() for p in params)


def trainable(model) -> list[str]:
    """Names of the parameters that will be trained."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


def test_shapes_and_normalisation(model, images):
    pixels = torch.stack([model.preprocess(im) for im in images])
    assert pixels.shape == (3, 3, model.image_size, model.image_size)
    tokens = model.tokenize(TEXTS[:3])
    img, txt, scale = model(pixels, tokens["input_ids"], tokens["attention_mask"])
    assert img.shape == txt.shape == (3, 16)
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(txt.norm(dim=-1), torch.ones(3))
    assert scale.item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_images(images), model.encode_images(pixels))
    slip = tiny(ssl_dim=8, ssl_hidden_dim=16).eval()
    *_, z = slip(pixels, tokens["input_ids"], tokens["attention_mask"], views=pixels.repeat(2, 1, 1, 1))
    assert z.shape == (6, 8)


def test_encode_text_is_batched_and_normalised(model):
    full, chunked = model.encode_text(TEXTS), model.encode_text(TEXTS, batch_size=3)
    assert full.shape == (4, 16) and full.device.type == "cpu" and not full.requires_grad
    torch.testing.assert_close(full, chunked, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(full.norm(dim=-1), torch.ones(4))
    tokens = model.tokenize(TEXTS)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_tokens(tokens["input_ids"], tokens["attention_mask"]), full)
    assert model.encode_text([]).shape == (0, 16)
    assert model.tokenize(TEXTS, max_length=10_000)["input_ids"].shape[1] <= model.max_length


def test_temperature_learnable_and_clamped():
    model = tiny()
    assert model.log_logit_scale.requires_grad
    model.logit_scale.backward()
    assert model.log_logit_scale.grad.item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        model.log_logit_scale.fill_(math.log(1000.0))
    model.log_logit_scale.grad = None
    model.logit_scale.backward()
    assert model.logit_scale.item() == pytest.approx(100.0, rel=1e-5)
    assert model.log_logit_scale.grad.item() == 0.0  # clamped: no push further up
    fixed = tiny(learn_temperature=False, init_temperature=0.1, max_logit_scale=50)
    assert not fixed.log_logit_scale.requires_grad and fixed.logit_scale.item() == pytest.approx(10.0)
    for mode in ("all", "projections", "last"):
        assert not fixed.set_trainable(mode).log_logit_scale.requires_grad
    with pytest.raises(ParameterError, match="init_temperature"):
        tiny(init_temperature=0.001)


def test_trainable_modes_freeze_what_they_say():
    model = tiny(ssl_dim=8, ssl_hidden_dim=16)
    heads = count(model.image_projection.parameters()) + count(model.text_projection.parameters())
    heads += count(model.ssl_head.parameters()) + 1  # + log logit scale
    last = count(p for _, part in last_stage(model.visual) for p in part.parameters())
    last += count(p for _, part in last_stage(model.text) for p in part.parameters())
    assert [n for n, _ in last_stage(model.visual)] == ["body.12", "body.13"]  # last conv + BN (+ ReLU)
    assert [n for n, _ in last_stage(model.text)] == ["tower.encoder.layer.1"]
    assert trainable(model) == [name for name, _ in model.named_parameters()]
    head_names = {"image_projection", "text_projection", "ssl_head", "log_logit_scale"}
    model.set_trainable("projections")
    assert count(p for p in model.parameters() if p.requires_grad) == heads
    assert {name.split(".")[0] for name in trainable(model)} == head_names
    model.set_trainable("last")
    assert count(p for p in model.parameters() if p.requires_grad) == heads + last
    stages = ("visual.body.12.", "visual.body.13.", "text.tower.encoder.layer.1.")
    assert all(name.startswith(stages) or name.split(".")[0] in head_names for name in trainable(model))
    # frozen parts get no gradient; frozen BatchNorm keeps its running statistics in train mode
    model.train()
    frozen_bn = model.visual.body[1]
    before = frozen_bn.running_mean.clone()
    tokens = model.tokenize(TEXTS)
    img, txt, scale = model(torch.randn(4, 3, 32, 32), tokens["input_ids"], tokens["attention_mask"])
    (scale * (img * txt).sum()).backward()
    assert not frozen_bn.training and torch.equal(frozen_bn.running_mean, before)
    assert model.visual.body[13].training
    assert all(p.grad is None for p in model.visual.body[0].parameters())
    assert all(p.grad is None for p in model.text.tower.embeddings.parameters())
    assert model.visual.body[12].weight.grad is not None
    assert model.text.tower.encoder.layer[1].output.dense.weight.grad is not None
    with pytest.raises(ParameterError, match="trainable"):
        model.set_trainable("some")


def test_builder_modes_and_bundled_last_stage():
    projections = build_dual_encoder("tiny:cnn-32", "tiny:text-32", embed_dim=8, image_size=32, trainable="projections")
    assert projections.trainable == "projections" and not projections.training
    assert count(p for p in projections.parameters() if p.requires_grad) == (32 + 32) * 8 + 1
    with pytest.raises(ParameterError, match="trainable"):
        build_dual_encoder("tiny:cnn-32", "tiny:text-32", trainable="top")
    names = [n for n, _ in last_stage(build_image_encoder("bundled:efficientnet_lite0"))]
    assert names == ["model.blocks.6", "model.conv_head", "model.bn2"]


def test_save_load_round_trip(tmp_path, images):
    model = tiny(ssl_dim=8, ssl_hidden_dim=16).set_trainable("last")
    with torch.no_grad():  # move away from the init so the round trip is not trivially equal
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.eval()
    folder = model.save_pretrained(tmp_path / "run" / "model")
    assert sorted(p.name for p in folder.iterdir()) == ["dual_encoder.json", "dual_encoder.pt"]
    loaded = load_dual_encoder(folder)
    assert loaded.config() == model.config() and loaded.trainable == "last" and not loaded.training
    torch.testing.assert_close(loaded.encode_images(images), model.encode_images(images), rtol=0, atol=0)
    torch.testing.assert_close(loaded.encode_text(TEXTS), model.encode_text(TEXTS), rtol=0, atol=0)
    assert loaded.logit_scale.item() == model.logit_scale.item()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(DataFormatError, match="save_pretrained"):
        load_dual_encoder(tmp_path / "nothing")
    folder = tiny().save_pretrained(tmp_path / "m")
    (folder / CONFIG_NAME).write_text("{not json")
    with pytest.raises(DataFormatError, match="JSON"):
        load_dual_encoder(folder)
