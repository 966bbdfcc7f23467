"""Every spec family of the feature-probing poster's 15 encoders builds offline from a tiny local checkpoint saved in
the format the real one ships in, and gives (N, embed_dim) features; missing files/packages fail clearly."""

import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from medvl_core.errors import UnknownSpecError
from medvl_core.models.encoders import build_image_encoder
from tests.cxr_test_trees import tiny_open_clip

IMAGES = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 48, 3), dtype=np.uint8)) for i in range(2)]


def _features(spec):
    encoder = build_image_encoder(spec)
    x = encoder.encode(IMAGES)
    assert x.shape == (2, encoder.embed_dim) and torch.isfinite(x).all()
    return encoder, x


def test_open_clip_hub_layout(tmp_path):
    """BiomedCLIP, CLIP ViT-B/16, ViT-H/14, ViT-G/14, EVA02: open_clip's hub layout (local-dir: = hf-hub: offline)."""
    encoder, x = _features(f"open_clip:local-dir:{tiny_open_clip(tmp_path / 'clip')}")
    assert encoder.embed_dim == 32


def test_timm_local_dir_uni_layout(tmp_path):
    """UNI: a timm config.json with model_args (init_values: layer scale) + weights, as MahmoodLab/UNI ships."""
    import timm
    from timm.models._hub import save_for_hf

    args = {"img_size": 32, "patch_size": 16, "embed_dim": 32, "depth": 1, "num_heads": 2, "init_values": 1e-5,
            "num_classes": 0}
    model = timm.create_model("vit_base_patch16_224", pretrained=False, **args)
    save_for_hf(model, str(tmp_path / "uni"), model_args=args, safe_serialization=True)
    encoder, x = _features(f"timm:local-dir:{tmp_path / 'uni'}")
    assert encoder.embed_dim == 32 and encoder.image_size == 32
    reference = model.eval()(encoder.preprocess(IMAGES[0])[None])
    assert torch.allclose(x[:1], reference, atol=1e-5)  # the saved weights, not a fresh init


def tiny_llava(folder, projector_seed=0):
    import transformers as tr

    vision = tr.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                 image_size=32, patch_size=8, projection_dim=16)
    text = tr.LlamaConfig(hidden_size=48, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                          num_key_value_heads=2, vocab_size=64)
    torch.manual_seed(projector_seed)
    model = tr.LlavaForConditionalGeneration(tr.LlavaConfig(vision_config=vision, text_config=text, image_token_index=3))
    model.save_pretrained(folder)
    tr.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_llava_family_projector_and_tower(tmp_path):
    """LLaVA, LLaVA-Med, LLaVA-Med++: llava-hf save_pretrained folders; features after the projector (LLM width)."""
    folder = tiny_llava(tmp_path / "llava")
    encoder, x = _features(f"llava:{folder}")
    assert encoder.embed_dim == 48 and encoder.image_size == 32
    tower, _ = _features(f"llava:{folder}@tower")
    assert tower.embed_dim == 32
    other, y = _features(f"llava:{tiny_llava(tmp_path / 'llava-med', projector_seed=1)}")
    assert not torch.allclose(x, y)  # the checkpoint's own projector and tower weights are used
    with pytest.raises(UnknownSpecError, match="@tower"):
        build_image_encoder(f"llava:{folder}@other")


def test_cxr_clip_checkpoint(tmp_path):
    """CXR-CLIP: a torch checkpoint {'model': state dict} with a transformers Swin under image_encoder.image_encoder,
    in the transformers 4 key names the released checkpoints were saved with."""
    from transformers import SwinConfig, SwinModel

    from medvl_core.models.encoders.cxr_clip import SWIN_RENAMES

    swin = SwinModel(SwinConfig(embed_dim=16, depths=[1, 1], num_heads=[1, 2], window_size=7))
    old_names = {}
    for key, value in swin.state_dict().items():
        for old, new in SWIN_RENAMES:
            key = key.replace(new, old)
        old_names[key] = value
    assert any("attention.self.query" in k for k in old_names)
    state = {f"image_encoder.image_encoder.{k}": v for k, v in old_names.items()}
    state["image_projection.projection.weight"] = torch.randn(8, swin.num_features)
    torch.save({"model": state}, tmp_path / "swint_mcc.tar")
    encoder, _ = _features(f"cxr_clip:{tmp_path / 'swint_mcc.tar'}")
    assert encoder.embed_dim == 8 and encoder.grid_dim == swin.num_features and encoder.image_size == 224
    with pytest.raises(UnknownSpecError, match="kakaobrain/cxr-clip"):
        build_image_encoder(f"cxr_clip:{tmp_path / 'missing.tar'}")


def test_flair_checkpoint(tmp_path):
    """FLAIR: ResNet-50 under vision_model.model + a 2048->512 projection, at 512 px."""
    import torchvision

    resnet = torchvision.models.resnet50(weights=None)
    state = {f"vision_model.model.{k}": v for k, v in resnet.state_dict().items() if not k.startswith("fc.")}
    state["vision_model.projection_head_vision.projection.weight"] = torch.randn(16, 2048)
    torch.save(state, tmp_path / "flair_resnet.pth")
    encoder, _ = _features(f"flair:{tmp_path / 'flair_resnet.pth'}")
    assert encoder.embed_dim == 16 and encoder.image_size == 512
    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(UnknownSpecError, match="FLAIR checkpoint"):
        build_image_encoder(f"flair:{tmp_path / 'bad.pth'}")


def test_torchvision_vgg_resnet_vit(tmp_path):
    """VGG16 / ResNet50 from local state dicts (torchvision format), ViT via the same wrapper at random init."""
    import torchvision

    vgg = torchvision.models.vgg16(weights=None)
    torch.save({k: v for k, v in vgg.state_dict().items() if k.startswith("features.")}, tmp_path / "vgg16.pth")
    encoder, x = _features(f"torchvision:vgg16@{tmp_path / 'vgg16.pth'}")
    assert encoder.embed_dim == 512 and encoder.image_size == 224
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "resnet50.pth")
    assert _features(f"torchvision:resnet50@{tmp_path / 'resnet50.pth'}")[0].embed_dim == 2048
    assert _features("torchvision:vit_b_32@random")[0].embed_dim == 768
    with pytest.raises(UnknownSpecError, match="no state dict"):
        build_image_encoder(f"torchvision:vgg16@{tmp_path / 'missing.pth'}")


def test_conch_through_its_package(tmp_path, monkeypatch):
    """CONCH loads through the authors' package (faked here: its create_model_from_pretrained + encode_image)."""
    with pytest.raises(UnknownSpecError, match="mahmoodlab/CONCH"):
        build_image_encoder(f"conch:{tmp_path / 'pytorch_model.bin'}")
    calls = {}

    class Fake(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = types.SimpleNamespace(image_size=(32, 32))
            self.proj = torch.nn.Linear(3, 12)

        def encode_image(self, x, proj_contrast=True, normalize=True):
            calls["flags"] = (proj_contrast, normalize)
            return self.proj(x.mean(dim=(2, 3)))

    def create(name, checkpoint_path):
        calls["args"] = (name, checkpoint_path)
        import torchvision.transforms as T

        return Fake(), T.Compose([T.Resize((32, 32)), T.ToTensor()])

    custom = types.ModuleType("conch.open_clip_custom")
    custom.create_model_from_pretrained = create
    monkeypatch.setitem(sys.modules, "conch", types.ModuleType("conch"))
    monkeypatch.setitem(sys.modules, "conch.open_clip_custom", custom)
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    encoder, _ = _features(f"conch:{tmp_path / 'pytorch_model.bin'}")
    assert encoder.embed_dim == 12 and calls["args"][0] == "conch_ViT-B-16" and calls["flags"] == (False, False)


def test_full_profile_specs_parse():
    """The 16 encoder rows of params/full.yaml are all accepted spec forms (parsed, not built: they need weights)."""
    from pathlib import Path

    import yaml

    from medvl_core.models.encoders import parse_spec

    full = yaml.safe_load((Path(__file__).parents[1] / "papers/vlm_feature_probing/params/full.yaml").read_text())
    kinds = [parse_spec(spec)[0] for spec in full["encoders"]]
    assert len(full["encoders"]) == 16 and {"open_clip", "llava", "conch", "cxr_clip", "flair", "timm",
                                             "torchvision", "hf"} <= set(kinds)
