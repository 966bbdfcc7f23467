"""torchvision towers: the ResNet family (pretrained download, @random, or @PATH to a local state dict) and VGG /
ViT (IMAGENET1K_V1 weights, @random, or @PATH); image only."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ...errors import UnknownSpecError
from . import hub
from .base import ImageEncoder
from .preprocess import RGB, imagenet_transform


class _TorchvisionResNet(ImageEncoder):
    """A torchvision ResNet without its fc layer; grid = layer4 output."""

    def __init__(self, spec: str, model: nn.Module, preprocess, image_size: int):
        dim = model.fc.in_features
        model.fc = nn.Identity()
        super().__init__(spec, dim, dim, image_size, preprocess)
        self.model = model

    def forward(self, x):
        return self.model(x)

    def forward_grid(self, x):
        m = self.model
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        return m.layer4(m.layer3(m.layer2(m.layer1(x))))


def torchvision_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """torchvision:RESNET (pretrained, downloads from download.pytorch.org) or @random (offline)."""
    import torchvision

    if name.startswith(("vgg", "vit_")) and name in torchvision.models.list_models():  # feature-probing encoders
        return _vgg_vit_image(spec, name, tag)
    if not name.startswith(("resnet", "resnext", "wide_resnet")) or name not in torchvision.models.list_models():
        raise UnknownSpecError(
            f"{spec!r}: only torchvision's ResNet family is wrapped; use 'timm:{name}' for other models"
        )
    if tag == "random":
        return _TorchvisionResNet(spec, torchvision.models.get_model(name, weights=None), imagenet_transform(224), 224)
    if tag:  # a local state dict (feature probing: the official weights saved offline)
        model = torchvision.models.get_model(name, weights=None)
        model.load_state_dict(_local_state(spec, tag))
        preprocess = torchvision.models.get_model_weights(name).DEFAULT.transforms()
        return _TorchvisionResNet(spec, model, RGB(preprocess), preprocess.crop_size[0])
    weights = torchvision.models.get_model_weights(name).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    if not cached.is_file() and not hub.hub_reachable("download.pytorch.org"):
        raise UnknownSpecError(
            f"cannot download {spec} (no network?); offline use 'bundled:efficientnet_lite0' or '{spec.split('@')[0]}@random'"
        )
    model = torchvision.models.get_model(name, weights=weights)
    preprocess = weights.transforms()
    return _TorchvisionResNet(spec, model, RGB(preprocess), preprocess.crop_size[0])


class _TorchvisionTower(ImageEncoder):
    """A torchvision classifier without its head: VGG = global average of the last conv block (512), ViT = CLS."""

    def __init__(self, spec: str, model: nn.Module, preprocess, image_size: int):
        vit = hasattr(model, "heads")
        dim = model.hidden_dim if vit else model.features[-3].out_channels
        super().__init__(spec, dim, dim, image_size, preprocess)
        self.model, self.vit = model, vit

    def forward(self, x):
        if self.vit:
            tokens = self.model.encoder(torch.cat([self.model.class_token.expand(x.shape[0], -1, -1),
                                                   self.model._process_input(x)], dim=1))
            return tokens[:, 0]
        return self.model.features(x).mean(dim=(2, 3))

    def forward_grid(self, x):
        if self.vit:
            patches = self.model._process_input(x)
            side = int(patches.shape[1] ** 0.5)
            tokens = self.model.encoder(torch.cat([self.model.class_token.expand(x.shape[0], -1, -1), patches], 1))
            return tokens[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, side, side)
        return self.model.features(x)


def _torchvision_weights(name: str):
    """The ImageNet-1k weights enum entry (IMAGENET1K_V1: 224-px preprocessing) of a torchvision model."""
    import torchvision

    enum = torchvision.models.get_model_weights(name)
    return getattr(enum, "IMAGENET1K_V1", None) or enum.DEFAULT


def _vgg_vit_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """torchvision:NAME[@random|@PATH]: VGG or ViT (IMAGENET1K_V1, downloads), random init, or a local state dict."""
    import torchvision

    weights = _torchvision_weights(name)
    preprocess = weights.transforms()
    if tag == "random":
        model = torchvision.models.get_model(name, weights=None)
    elif tag:
        model = torchvision.models.get_model(name, weights=None)
        state = _local_state(spec, tag)
        missing, _ = model.load_state_dict(state, strict=False)
        needed = [k for k in missing if not k.startswith(("classifier.", "heads."))]
        if needed:
            raise UnknownSpecError(f"{spec}: {tag} lacks {len(needed)} weights of {name}, e.g. {needed[0]}")
    else:
        model = hub.load_remote(spec, lambda: torchvision.models.get_model(name, weights=weights),
                                f"'torchvision:{name}@/path/to/state_dict.pth' or '@random'")
    return _TorchvisionTower(spec, model, RGB(preprocess), preprocess.crop_size[0])


def _local_state(spec: str, path: str) -> dict:
    """A local torchvision state dict file (weights-only)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UnknownSpecError(f"{spec}: no state dict at {file}; save one with torch.save(model.state_dict(), path)")
    return torch.load(file, map_location="cpu", weights_only=True)
