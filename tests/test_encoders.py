"""Encoder factory: every spec kind gives the uniform interface; bad or unreachable specs fail fast and clearly."""

from __future__ import annotations

import time

import pytest
import torch
from PIL import Image

from medvl_core.errors import ParameterError, UnknownSpecError
from medvl_core.models import encoders
from medvl_core.models.encoders import build_image_encoder, build_text_encoder, hub, parse_spec

TEXTS = ["small left pleural effusion", "no pleural effusion"]


@pytest.fixture(scope="module")
def gray_image():
    return Image.linear_gradient("L").resize((96, 80))


def check_image_encoder(enc, image, batch=2):
    """Shapes of preprocess / forward / forward_grid / encode against the encoder's declared dims."""
    x = enc.preprocess(image)
    assert x.shape == (3, enc.image_size, enc.image_size) and x.dtype == torch.float32
    x = x.unsqueeze(0).repeat(batch, 1, 1, 1)
    with torch.no_grad():
        pooled, grid = enc(x), enc.forward_grid(x)
    assert pooled.shape == (batch, enc.embed_dim)
    assert grid.ndim == 4 and grid.shape[:2] == (batch, enc.grid_dim) and grid.shape[2] * grid.shape[3] > 1
    assert enc.encode([image]).shape == (1, enc.embed_dim)
    return pooled, grid


def check_text_encoder(enc):
    """Shapes of tokenize / forward / forward_tokens / encode against the encoder's declared dims."""
    batch = enc.tokenize(TEXTS)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == mask.shape and ids.shape[0] == 2 and ids.shape[1] <= enc.max_length
    with torch.no_grad():
        pooled, tokens = enc(ids, mask), enc.forward_tokens(ids, mask)
    assert pooled.shape == (2, enc.embed_dim)
    assert tokens.shape == (2, ids.shape[1], enc.token_dim)
    embeddings = enc.encode(TEXTS, batch_size=1)
    assert embeddings.shape == (2, enc.embed_dim) and embeddings.device.type == "cpu"
    return embeddings


def test_parse_spec():
    assert parse_spec("timm:resnet50@random") == ("timm", "resnet50", "random")
    assert parse_spec("open_clip:ViT-B-32@openai") == ("open_clip", "ViT-B-32", "openai")
    assert parse_spec("open_clip:hf-hub:org/name") == ("open_clip", "hf-hub:org/name", None)
    assert parse_spec("hf:/tmp/a@b") == ("hf", "/tmp/a@b", None)
    assert parse_spec("tiny:cnn-64") == ("tiny", "cnn-64", None)


@pytest.mark.parametrize("spec", ["resnet50", "nope:x", "timm:", "", None])
def test_unknown_spec_lists_accepted_forms(spec):
    with pytest.raises(UnknownSpecError, match=r"open_clip:ARCH\[@TAG\].*timm:NAME.*bundled:minilm.*tiny:"):
        build_image_encoder(spec)
    assert "bundled:efficientnet_lite0" in encoders.ACCEPTED_SPECS


def test_bad_names_are_clear():
    with pytest.raises(UnknownSpecError, match="multiple of 32"):
        build_text_encoder("tiny:text-33")
    with pytest.raises(UnknownSpecError, match="image-only"):
        build_text_encoder("timm:resnet18@random")
    with pytest.raises(UnknownSpecError, match="timm has no model"):
        build_image_encoder("timm:not_a_model@random")
    with pytest.raises(UnknownSpecError, match="bundled:efficientnet_lite0"):
        build_image_encoder("bundled:resnet")
    with pytest.raises(ParameterError, match="image_size=64: 'open_clip:RN50' keeps its official input size 224"):
        build_image_encoder("open_clip:RN50", image_size=64)
    assert build_image_encoder("open_clip:RN50", image_size=224).image_size == 224  # restating it is fine (full.yaml)
    with pytest.raises(ParameterError, match="token model"):
        build_image_encoder("timm:vit_tiny_patch16_224@random", image_size=64)


def test_cnn_input_size_can_be_set(gray_image):
    enc = build_image_encoder("bundled:efficientnet_lite0", image_size=128)
    x = enc.preprocess(gray_image)
    assert enc.image_size == 128 and x.shape == (3, 128, 128)
    assert enc(x[None]).shape == (1, 1280) and enc.forward_grid(x[None]).shape == (1, 1280, 4, 4)


@pytest.mark.parametrize("spec, grid_side", [("tiny:cnn", 2), ("tiny:vit-64", 4)])
def test_tiny_image_towers(spec, grid_side, gray_image):
    enc = build_image_encoder(spec, device="cpu", image_size=64)
    assert not enc.training
    _, grid = check_image_encoder(enc, gray_image)
    assert grid.shape[2:] == (grid_side, grid_side)


def test_tiny_text_tower():
    enc = build_text_encoder("tiny:text-64")
    assert (enc.embed_dim, enc.token_dim) == (64, 64)
    check_text_encoder(enc)


def test_bundled_efficientnet(gray_image):
    enc = build_image_encoder("bundled:efficientnet_lite0")
    assert (enc.embed_dim, enc.grid_dim, enc.image_size) == (1280, 1280, 224)
    _, grid = check_image_encoder(enc, gray_image, batch=1)
    assert grid.shape[2:] == (7, 7)


def test_bundled_minilm():
    enc = build_text_encoder("bundled:minilm")
    assert (enc.embed_dim, enc.max_length) == (384, 256)
    a, b = check_text_encoder(enc)
    assert torch.cosine_similarity(a, b, dim=0).item() == pytest.approx(0.80, abs=0.03)


def test_open_clip_random_init(gray_image):
    image = build_image_encoder("open_clip:ViT-S-32")
    assert (image.embed_dim, image.grid_dim) == (384, 384)
    _, grid = check_image_encoder(image, gray_image, batch=1)
    assert grid.shape[2:] == (7, 7)
    text = build_text_encoder("open_clip:ViT-S-32")
    assert text.max_length == 77 and text.embed_dim == image.embed_dim
    check_text_encoder(text)
    short = text.tokenize(TEXTS, max_length=5)
    assert short["input_ids"].shape == (2, 77) and short["attention_mask"].sum(1).max() == 5


def test_hf_local_folders(tmp_path, gray_image):
    import transformers as tr

    from medvl_core import assets

    tokenizer = tr.AutoTokenizer.from_pretrained(assets.minilm_dir())
    tokenizer.save_pretrained(tmp_path / "bert")
    bert = tr.BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    tr.BertModel(bert).save_pretrained(tmp_path / "bert")
    vit = tr.ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    tr.ViTModel(vit).save_pretrained(tmp_path / "vit")

    text = build_text_encoder(f"hf:{tmp_path / 'bert'}")
    assert (text.embed_dim, text.token_dim) == (32, 32)
    check_text_encoder(text)
    image = build_image_encoder(f"hf:{tmp_path / 'vit'}")
    assert (image.embed_dim, image.grid_dim, image.image_size) == (32, 32, 32)
    _, grid = check_image_encoder(image, gray_image)
    assert grid.shape[2:] == (4, 4)
    with pytest.raises(UnknownSpecError, match="not a model folder"):
        build_text_encoder(f"hf:{tmp_path / 'missing'}")


def test_hf_dual_model_uses_its_towers(tmp_path, gray_image):
    import transformers as tr

    small = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    text_config = dict(vocab_size=99, max_position_embeddings=16, eos_token_id=2, **small)
    config = tr.CLIPConfig(
        text_config=text_config, vision_config=dict(image_size=32, patch_size=8, **small), projection_dim=16
    )
    tr.CLIPModel(config).save_pretrained(tmp_path)
    image = build_image_encoder(f"hf:{tmp_path}")
    assert (image.embed_dim, image.grid_dim) == (16, 32)
    check_image_encoder(image, gray_image)


@pytest.mark.parametrize(
    "build, spec, alternative",
    [
        (build_image_encoder, "timm:resnet50", "bundled:efficientnet_lite0"),
        (build_image_encoder, "open_clip:RN50@openai", "open_clip:RN50"),
        (build_text_encoder, "hf:emilyalsentzer/Bio_ClinicalBERT", "bundled:minilm"),
        (build_image_encoder, "torchvision:resnet50", "torchvision:resnet50@random"),
    ],
)
def test_unreachable_hub_fails_fast(build, spec, alternative, monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # no cached weights
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    start = time.monotonic()
    with pytest.raises(UnknownSpecError, match="no network") as info:
        build(spec)
    assert time.monotonic() - start < 10
    assert alternative in str(info.value)


def test_reachability_probe_is_bounded(monkeypatch):
    import socket

    def hang(*args, **kwargs):
        time.sleep(5)

    monkeypatch.setattr(socket, "create_connection", hang)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    start = time.monotonic()
    assert hub.hub_reachable.__wrapped__("example.invalid", 443, 0.5) is False
    assert time.monotonic() - start < 2


def test_remote_code_only_for_allow_listed_repos_or_opt_in(monkeypatch):
    import transformers as tr

    from medvl_core.models.encoders.hf_towers import hf_text_from

    seen = []

    def record(source, **kwargs):
        seen.append((source, kwargs.get("trust_remote_code")))
        raise RuntimeError("stop after recording")

    monkeypatch.setattr(tr.AutoTokenizer, "from_pretrained", record)
    monkeypatch.delenv("MEDVL_TRUST_REMOTE_CODE", raising=False)
    for repo in ("microsoft/BiomedVLP-CXR-BERT-specialized", "some-org/plain-bert"):
        with pytest.raises(RuntimeError, match="stop after recording"):
            hf_text_from(f"hf:{repo}", repo)
    monkeypatch.setenv("MEDVL_TRUST_REMOTE_CODE", "1")
    with pytest.raises(RuntimeError):
        hf_text_from("hf:some-org/plain-bert", "some-org/plain-bert")
    assert seen == [("microsoft/BiomedVLP-CXR-BERT-specialized", True), ("some-org/plain-bert", False),
                    ("some-org/plain-bert", True)]


def test_open_clip_local_dir_loads_hub_layout_weights(tmp_path, gray_image):
    from cxr_test_trees import tiny_open_clip
    from safetensors.torch import load_file

    folder = tiny_open_clip(tmp_path / "clip")
    spec = f"open_clip:local-dir:{folder}"
    assert parse_spec(spec) == ("open_clip", f"local-dir:{folder}", None)
    image = build_image_encoder(spec)
    saved = load_file(str(folder / "open_clip_model.safetensors"))
    assert torch.equal(image.visual.conv1.weight, saved["visual.conv1.weight"])  # the saved weights, not a new init
    assert image.encode([gray_image]).shape == (1, 32) and image.image_size == 32
    text = build_text_encoder(spec)
    assert text.encode(["no pleural effusion"]).shape == (1, 32)
    with pytest.raises(UnknownSpecError, match="has no open_clip_config.json"):
        build_image_encoder(f"open_clip:local-dir:{tmp_path / 'nowhere'}")


def test_model_code_outside_the_allow_list_names_the_flag(tmp_path, monkeypatch):
    """A checkpoint that ships its own model code loads only when allowed by name or by MEDVL_TRUST_REMOTE_CODE."""
    import json

    from transformers import BertTokenizerFast

    from medvl_core.errors import UnknownSpecError
    from medvl_core.models.encoders import REMOTE_CODE_REPOS

    monkeypatch.delenv("MEDVL_TRUST_REMOTE_CODE", raising=False)
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "lungs", "clear"]))
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "cxr-bert-like", "auto_map": {
        "AutoConfig": "configuration_cxrbert.CXRBertConfig", "AutoModel": "modeling_cxrbert.CXRBertModel"}}))
    with pytest.raises(UnknownSpecError, match="MEDVL_TRUST_REMOTE_CODE=1"):
        build_text_encoder(f"hf:{tmp_path}")
    assert "microsoft/BiomedVLP-CXR-BERT-specialized" in REMOTE_CODE_REPOS
