"""Encoder factory: spec strings -> image/text towers with one interface (docs/architecture.md, "Contracts")."""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import math
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError, UnknownSpecError

_FORMS = (
    ("open_clip:ARCH[@TAG]", "open_clip config; no tag = random init (offline), a TAG = pretrained download"),
    ("open_clip:hf-hub:ORG/NAME", "open_clip model from the Hugging Face hub (download)"),
    ("open_clip:local-dir:PATH", "open_clip model saved in the hub layout (open_clip_config.json + weights), offline"),
    ("timm:NAME[@random]", "timm model, pretrained (hub download) unless @random (offline); image only"),
    ("torchvision:NAME[@random]", "torchvision ResNet family, pretrained (download) unless @random; image only"),
    ("torchvision:vgg16|vit_l_16[@random|@PATH]", "torchvision VGG / ViT (IMAGENET1K_V1); @PATH = local state dict"),
    ("timm:hf-hub:ORG/NAME | timm:local-dir:PATH", "timm model with its own config.json (e.g. UNI), pretrained"),
    ("llava:REPO_OR_PATH[@tower]", "LLaVA-family vision tower (+ projector) from a llava-hf checkpoint"),
    ("conch:PATH | cxr_clip:PATH | flair:PATH", "CONCH / CXR-CLIP / FLAIR image towers from local checkpoints"),
    (
        "hf:REPO_OR_LOCAL_PATH",
        "transformers Auto classes; a local folder works offline; image specs use the vision tower",
    ),
    ("bundled:efficientnet_lite0", "pretrained ImageNet EfficientNet-Lite0 from a registry package (offline, image)"),
    ("bundled:minilm", "pretrained all-MiniLM-L6-v2 sentence encoder from a registry package (offline, text)"),
    (
        "tiny:cnn[-DIM] | tiny:vit[-DIM] | tiny:text[-DIM]",
        "small random-init towers for tests and demos (DIM: multiple of 32)",
    ),
)
ACCEPTED_SPECS = "\n".join(f"{form:<50} {meaning}" for form, meaning in _FORMS)
_KINDS = ("open_clip", "timm", "torchvision", "hf", "bundled", "tiny", "llava", "conch", "cxr_clip", "flair")
_TAGGED = ("open_clip", "timm", "torchvision", "llava")
_HF_HOST = "huggingface.co"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_TINY_DEFAULT_DIM = 128


_SCHEMAS = ("hf-hub:", "local-dir:")  # open_clip names that carry their own weights (no @TAG)


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """Split an encoder spec into (kind, name, tag), e.g. "timm:resnet50@random" -> ("timm", "resnet50", "random")."""
    kind, sep, rest = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not sep or kind not in _KINDS or not rest:
        raise UnknownSpecError(f"unknown encoder spec {spec!r}; accepted forms: {' | '.join(f for f, _ in _FORMS)}")
    name, tag = rest, None
    if kind in _TAGGED and not rest.startswith(_SCHEMAS):
        name, _, tag = rest.partition("@")
        tag = tag or None
    if not name:
        raise UnknownSpecError(
            f"encoder spec {spec!r} has no model name; accepted forms: {' | '.join(f for f, _ in _FORMS)}"
        )
    return kind, name, tag


def build_image_encoder(spec: str, device=None, image_size: int | None = None) -> ImageEncoder:
    """An ImageEncoder for `spec` in eval mode (on `device` if given).

    `image_size` sets the input side for tiny:*, bundled: and timm: CNNs (e.g. 128 for fast CPU runs on
    small images); other towers keep their official input size, which `image_size` may only restate.
    """
    kind, name, tag = parse_spec(spec)
    if image_size is not None and kind not in ("tiny", "bundled", "timm"):
        encoder = build_image_encoder(spec, device)
        if encoder.image_size != image_size:
            raise ParameterError(f"image_size={image_size}: {spec!r} keeps its official input size "
                                 f"{encoder.image_size}; set image_size to {encoder.image_size} (or null), or resize "
                                 "only tiny:, bundled: and timm: CNN specs")
        return encoder
    builders = {
        "open_clip": _open_clip_image,
        "timm": functools.partial(_timm_image, image_size=image_size),
        "torchvision": _torchvision_image,
        "hf": _hf_image,
        "bundled": functools.partial(_bundled_image, image_size=image_size),
        "tiny": functools.partial(_tiny_image, image_size=image_size or 224),
        **_probe_families(),
    }
    return _finish(builders[kind](spec, name, tag), device)


def _probe_families() -> dict:
    """Builders of the feature-probing poster's extra families (models/probe_encoders.py), imported lazily."""
    def lazy(attr):
        return lambda *args, **kw: getattr(importlib.import_module(f"{__package__}.probe_encoders"), attr)(*args, **kw)

    return {kind: lazy(f"{kind}_image") for kind in ("llava", "conch", "cxr_clip", "flair")}


def build_text_encoder(spec: str, device=None) -> TextEncoder:
    """A TextEncoder for `spec` in eval mode (on `device` if given)."""
    kind, name, tag = parse_spec(spec)
    builders = {"open_clip": _open_clip_text, "hf": _hf_text, "bundled": _bundled_text, "tiny": _tiny_text}
    if kind not in builders:
        raise UnknownSpecError(
            f"{spec!r} is an image-only spec; text specs: open_clip:..., hf:..., bundled:minilm, tiny:text[-DIM]"
        )
    return _finish(builders[kind](spec, name, tag), device)


def _finish(encoder: nn.Module, device) -> nn.Module:
    """Put a freshly built encoder in eval mode and on the requested device."""
    encoder.eval()
    if device is not None:
        from ..config import choose_device

        encoder.to(choose_device(str(device)))
    return encoder


# ---------------------------------------------------------------------------------------------
# Interfaces


class ImageEncoder(nn.Module):
    """Image tower: forward -> (B, embed_dim) pooled; forward_grid -> (B, grid_dim, h, w) spatial features."""

    def __init__(self, spec: str, embed_dim: int, grid_dim: int, image_size: int, preprocess):
        super().__init__()
        self.spec, self.embed_dim, self.grid_dim = spec, int(embed_dim), int(grid_dim)
        self.image_size, self.preprocess = int(image_size), preprocess

    def forward_grid(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, images, batch_size: int = 32) -> torch.Tensor:
        """Pooled embeddings of PIL images (official preprocessing, eval mode), as a float CPU tensor."""
        images, device, outs = list(images), _device_of(self), []
        with _eval_mode(self):
            for i in range(0, len(images), batch_size):
                batch = torch.stack([self.preprocess(img) for img in images[i : i + batch_size]]).to(device)
                outs.append(self(batch).float().cpu())
        return torch.cat(outs) if outs else torch.empty(0, self.embed_dim)


class TextEncoder(nn.Module):
    """Text tower: tokenize -> ids/mask; forward -> (B, embed_dim) pooled; forward_tokens -> (B, T, token_dim)."""

    def __init__(self, spec: str, embed_dim: int, token_dim: int, max_length: int):
        super().__init__()
        self.spec, self.max_length = spec, int(max_length)
        self.embed_dim, self.token_dim = int(embed_dim), int(token_dim)

    def tokenize(self, texts, max_length: int | None = None) -> dict:
        raise NotImplementedError

    def forward_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, texts, batch_size: int = 64) -> torch.Tensor:
        """Pooled embeddings of a list of strings (eval mode), as a float CPU tensor."""
        texts, device, outs = list(texts), _device_of(self), []
        with _eval_mode(self):
            for i in range(0, len(texts), batch_size):
                batch = self.tokenize(texts[i : i + batch_size])
                outs.append(self(batch["input_ids"].to(device), batch["attention_mask"].to(device)).float().cpu())
        return torch.cat(outs) if outs else torch.empty(0, self.embed_dim)


def _device_of(module: nn.Module) -> torch.device:
    """Device of a module's first parameter (CPU for a parameterless module)."""
    return next(module.parameters(), torch.empty(0)).device


@contextlib.contextmanager
def _eval_mode(module: nn.Module):
    """Temporarily switch a module to eval mode (dropout off), restoring its mode after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def _mean_pool(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average token embeddings over the attention mask (sentence-transformers pooling)."""
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


# ---------------------------------------------------------------------------------------------
# Preprocessing


class _RGB:
    """Convert a PIL image to RGB, then apply a transform (medical images are often grayscale)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image):
        return self.transform(image.convert("RGB"))

    def __repr__(self):
        return f"RGB -> {self.transform!r}"


def _imagenet_transform(size: int):
    """Resize (bicubic) + center crop to `size`, ImageNet normalization."""
    from torchvision import transforms as T

    return _RGB(
        T.Compose(
            [
                T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
                T.CenterCrop(size),
                T.ToTensor(),
                T.Normalize(_IMAGENET_MEAN, _IMAGENET_STD),
            ]
        )
    )


class _HFPreprocess:
    """A transformers image processor applied to one PIL image -> 3xHxW float tensor."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, image):
        return self.processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"][0]


# ---------------------------------------------------------------------------------------------
# Network: fail fast offline


@functools.lru_cache(maxsize=8)
def _hub_reachable(host: str = _HF_HOST, port: int = 443, timeout: float = 3.0) -> bool:
    """True when a TCP connection to `host` (or the HTTPS proxy) opens within `timeout` s; cached per process."""
    if host == _HF_HOST and os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = parts.hostname or host, parts.port or 80
    result: list[bool] = []

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except Exception:  # any failure to connect means "not reachable"
            result.append(False)

    # a thread bounds DNS resolution too, which ignores socket timeouts
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


@contextlib.contextmanager
def _hub_offline():
    """Make huggingface_hub (and timm/open_clip/transformers through it) use only its local cache."""
    from huggingface_hub import constants

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


@contextlib.contextmanager
def _quiet_loading():
    """Hide transformers' per-load progress bars (noise in notebook outputs)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _load_remote(spec: str, load, alternative: str):
    """Run `load()`, which may download from the HF hub; offline it uses the cache only and fails fast."""
    offline = not _hub_reachable(_HF_HOST)
    try:
        with _hub_offline() if offline else contextlib.nullcontext(), _quiet_loading():
            return load()
    except (UnknownSpecError, ParameterError):
        raise
    except Exception as exc:  # hub/download errors come in many types (OSError, HTTPError, RuntimeError...)
        if offline:
            raise UnknownSpecError(f"cannot download {spec} (no network?); offline use {alternative}") from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnknownSpecError(f"cannot load {spec}: {first}; offline use {alternative}") from exc


# ---------------------------------------------------------------------------------------------
# timm / torchvision


class _TimmImage(ImageEncoder):
    """A timm model with its classifier removed; grid = last feature map (CNN) or patch tokens (ViT)."""

    def __init__(self, spec: str, model: nn.Module, image_size: int | None = None):
        import timm.data

        model.reset_classifier(0)
        # token models (ViT) and NHWC models (Swin) need timm's intermediates API for an NCHW grid
        tokens = hasattr(model, "num_prefix_tokens") or getattr(model, "output_fmt", "NCHW") != "NCHW"
        config = timm.data.resolve_data_config({}, model=model)
        if image_size is not None:
            if tokens:
                raise ParameterError(f"image_size applies to CNNs; {spec!r} is a token model with a fixed input size")
            config.update(input_size=(3, int(image_size), int(image_size)), crop_pct=1.0)
        preprocess = _RGB(timm.data.create_transform(**config))
        super().__init__(spec, model.num_features, model.num_features, config["input_size"][-1], preprocess)
        self.model, self._tokens = model, tokens

    def forward(self, x):
        return self.model(x)

    def forward_grid(self, x):
        if self._tokens:
            return self.model.forward_intermediates(
                x, indices=1, norm=True, output_fmt="NCHW", intermediates_only=True
            )[-1]
        return self.model.forward_features(x)


def _timm_image(spec: str, name: str, tag: str | None, image_size: int | None = None) -> ImageEncoder:
    """timm:NAME (pretrained, downloads) or timm:NAME@random (offline)."""
    import timm

    if name.startswith(_SCHEMAS):  # hf-hub:ORG/NAME or local-dir:PATH (feature-probing encoders such as UNI)
        from .probe_encoders import timm_source_image

        return timm_source_image(spec, name, tag, image_size)
    full = name if tag in (None, "random") else f"{name}.{tag}"
    if not timm.is_model(full):
        raise UnknownSpecError(f"timm has no model {full!r} (spec {spec!r}); see timm.list_models() for names")
    if tag == "random":
        return _TimmImage(spec, timm.create_model(name, pretrained=False), image_size)
    alternative = f"'bundled:efficientnet_lite0' or 'timm:{name}@random'"
    model = _load_remote(spec, lambda: timm.create_model(full, pretrained=True), alternative)
    return _TimmImage(spec, model, image_size)


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


def _torchvision_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """torchvision:RESNET (pretrained, downloads from download.pytorch.org) or @random (offline)."""
    import torchvision

    if name.startswith(("vgg", "vit_")) and name in torchvision.models.list_models():  # feature-probing encoders
        from .probe_encoders import torchvision_image

        return torchvision_image(spec, name, tag)
    if not name.startswith(("resnet", "resnext", "wide_resnet")) or name not in torchvision.models.list_models():
        raise UnknownSpecError(
            f"{spec!r}: only torchvision's ResNet family is wrapped; use 'timm:{name}' for other models"
        )
    if tag == "random":
        return _TorchvisionResNet(spec, torchvision.models.get_model(name, weights=None), _imagenet_transform(224), 224)
    if tag:  # a local state dict (feature probing: the official weights saved offline)
        from .probe_encoders import _local_state

        model = torchvision.models.get_model(name, weights=None)
        model.load_state_dict(_local_state(spec, tag))
        preprocess = torchvision.models.get_model_weights(name).DEFAULT.transforms()
        return _TorchvisionResNet(spec, model, _RGB(preprocess), preprocess.crop_size[0])
    weights = torchvision.models.get_model_weights(name).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    if not cached.is_file() and not _hub_reachable("download.pytorch.org"):
        raise UnknownSpecError(
            f"cannot download {spec} (no network?); offline use 'bundled:efficientnet_lite0' or '{spec.split('@')[0]}@random'"
        )
    model = torchvision.models.get_model(name, weights=weights)
    preprocess = weights.transforms()
    return _TorchvisionResNet(spec, model, _RGB(preprocess), preprocess.crop_size[0])


# ---------------------------------------------------------------------------------------------
# open_clip


class _OpenClipImage(ImageEncoder):
    """An open_clip visual tower: pooled = projected image embedding; grid = last block's patch tokens/feature map."""

    def __init__(self, spec: str, visual: nn.Module, preprocess):
        size = getattr(visual, "image_size", 224)
        size = size[0] if isinstance(size, (tuple, list)) else size
        super().__init__(spec, visual.output_dim, 0, size, _RGB(preprocess))
        self.visual = visual
        with torch.no_grad(), _eval_mode(self):
            self.grid_dim = int(self.forward_grid(torch.zeros(1, 3, size, size)).shape[1])

    def forward(self, x):
        return self.visual(x)

    def forward_grid(self, x):
        out = self.visual.forward_intermediates(x, indices=1, intermediates_only=True, normalize_intermediates=True)
        return out["image_intermediates"][-1]


class _OpenClipText(TextEncoder):
    """An open_clip text tower: pooled = open_clip's own EOT pooling + text projection."""

    def __init__(self, spec: str, clip: nn.Module, tokenizer):
        clip.visual = None  # the text tower does not need the image tower's weights
        super().__init__(spec, 0, 0, int(getattr(tokenizer, "context_length", 77)))
        self._tokenizer, self.clip = tokenizer, clip
        inner = getattr(tokenizer, "tokenizer", None)
        self.pad_id = int(getattr(inner, "pad_token_id", None) or 0)
        probe = self.tokenize(["probe"])
        with torch.no_grad(), _eval_mode(self):
            self.embed_dim = int(self(**probe).shape[-1])
            self.token_dim = int(self.forward_tokens(**probe).shape[-1])

    def tokenize(self, texts, max_length=None):
        length = int(max_length or self.max_length)
        if length > self.max_length:
            raise ParameterError(f"max_length={length} exceeds {self.spec}'s context length {self.max_length}")
        ids = self._tokenizer(list(texts), context_length=length)
        # positional embeddings are fixed: always pad to the model's context length
        ids = F.pad(ids, (0, self.max_length - ids.shape[1]), value=self.pad_id)
        return {"input_ids": ids, "attention_mask": (ids != self.pad_id).long()}

    def forward(self, input_ids, attention_mask=None):
        return self.clip.encode_text(input_ids)

    def forward_tokens(self, input_ids, attention_mask=None):
        out = self.clip.forward_intermediates(
            text=input_ids, text_indices=1, intermediates_only=True, normalize_intermediates=True
        )
        return out["text_intermediates"][-1]


def _open_clip_model(spec: str, name: str, tag: str | None, alternative: str):
    """(model, eval preprocess) for open_clip:ARCH[@TAG], open_clip:hf-hub:ORG/NAME or open_clip:local-dir:PATH."""
    import open_clip

    if name.startswith("local-dir:"):
        folder = Path(name.removeprefix("local-dir:")).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise UnknownSpecError(f"{spec}: {folder} has no open_clip_config.json; save the model in the hub layout "
                                   "(open_clip_config.json with model_cfg + open_clip_model.safetensors)")
    elif not name.startswith("hf-hub:") and name not in open_clip.list_models():
        raise UnknownSpecError(f"open_clip has no config {name!r} (spec {spec!r}); see open_clip.list_models()")
    if tag and not Path(tag).is_file() and not name.startswith(_SCHEMAS):
        known = [t for arch, t in open_clip.list_pretrained() if arch == name]
        if tag not in known:
            raise UnknownSpecError(f"open_clip {name} has no pretrained tag {tag!r}; known: {known or 'none'}")

    def load():
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=tag)
        return model, preprocess

    return _load_remote(spec, load, alternative)


def _random_clip(name: str) -> str:
    """The offline random-init spec matching an open_clip name."""
    return "'open_clip:ARCH' (random init)" if name.startswith(_SCHEMAS) else f"'open_clip:{name}' (random init)"


def _open_clip_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """open_clip:ARCH (random init, offline), open_clip:ARCH@TAG or hf-hub:ORG/NAME (download)."""
    model, preprocess = _open_clip_model(spec, name, tag, f"{_random_clip(name)} or 'bundled:efficientnet_lite0'")
    return _OpenClipImage(spec, model.visual, preprocess)


def _open_clip_text(spec: str, name: str, tag: str | None) -> TextEncoder:
    """The text tower of open_clip:ARCH[@TAG] / open_clip:hf-hub:ORG/NAME, with its own tokenizer."""
    import open_clip

    alternative = f"{_random_clip(name)} or 'bundled:minilm'"
    model, _ = _open_clip_model(spec, name, tag, alternative)
    tokenizer = _load_remote(spec, lambda: open_clip.get_tokenizer(name), alternative)
    return _OpenClipText(spec, model, tokenizer)


# ---------------------------------------------------------------------------------------------
# transformers (hf:)


class _HFImage(ImageEncoder):
    """A transformers vision tower: pooled = (projected) pooler output; grid = last hidden state as a map."""

    def __init__(self, spec: str, tower: nn.Module, projection, preprocess, image_size: int):
        super().__init__(spec, 0, 0, image_size, preprocess)
        self.tower, self.projection = tower, projection
        self.patch_size = getattr(tower.config, "patch_size", None)
        with torch.no_grad(), _eval_mode(self):
            pooled, grid = self._pooled_and_grid(torch.zeros(1, 3, image_size, image_size))
        self.embed_dim, self.grid_dim = int(pooled.shape[-1]), int(grid.shape[1])

    def _pooled_and_grid(self, x):
        out = self.tower(pixel_values=x)
        hidden = out.last_hidden_state
        grid = hidden if hidden.ndim == 4 else _tokens_to_grid(hidden, x.shape[-2:], self.patch_size)
        pooled = getattr(out, "pooler_output", None)
        pooled = grid.mean(dim=(2, 3)) if pooled is None else pooled.flatten(1)
        return (pooled if self.projection is None else self.projection(pooled)), grid

    def forward(self, x):
        return self._pooled_and_grid(x)[0]

    def forward_grid(self, x):
        return self._pooled_and_grid(x)[1]


def _tokens_to_grid(tokens: torch.Tensor, size, patch_size=None) -> torch.Tensor:
    """(B, T, C) tokens -> (B, C, h, w), dropping leading prefix tokens (CLS, registers)."""
    b, t, c = tokens.shape
    if isinstance(patch_size, int) and patch_size > 0 and size[0] // patch_size * (size[1] // patch_size) <= t:
        h, w = size[0] // patch_size, size[1] // patch_size
    else:  # no usable patch size: the largest square number of trailing tokens
        h = w = math.isqrt(t)
    return tokens[:, t - h * w :].transpose(1, 2).reshape(b, c, h, w)


# Hub repos whose model class lives in the repo (transformers' trust_remote_code), allowed by name;
# MEDVL_TRUST_REMOTE_CODE=1 allows any (it runs that repo's Python code).
REMOTE_CODE_REPOS = frozenset({"microsoft/BiomedVLP-CXR-BERT-specialized", "microsoft/BiomedVLP-CXR-BERT-general",
                               "microsoft/LLM2CLIP-Openai-L-14-336"})


def trust_remote_code(source: str) -> bool:
    """Whether transformers may run the model code shipped in `source` (allow-listed repo, or opted in by env)."""
    return source in REMOTE_CODE_REPOS or os.environ.get("MEDVL_TRUST_REMOTE_CODE") == "1"


@contextlib.contextmanager
def _remote_code_guard(spec: str, source: str):
    """Turn transformers' "pass trust_remote_code=True" error into one naming REMOTE_CODE_REPOS and the opt-in flag."""
    try:
        yield
    except ValueError as exc:
        if "trust_remote_code" not in str(exc):
            raise
        raise UnknownSpecError(
            f"{spec!r}: {source} ships its own model code, which runs only for the repos allowed by name "
            f"({', '.join(sorted(REMOTE_CODE_REPOS))}) or when you set MEDVL_TRUST_REMOTE_CODE=1 (it executes "
            "that repository's Python code; read it first)") from None


def _hf_source(spec: str, name: str) -> tuple[str, bool]:
    """(path or repo id, is_local) for an hf: spec."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path), True
    if path.exists() or name.startswith((".", "/", "~")):
        raise UnknownSpecError(f"{spec!r}: {path} is not a model folder (config.json etc.); check the path")
    return name, False


def _hf_load(spec: str, name: str, load, alternative: str):
    """Load from a local folder directly, or from the hub through the offline guard."""
    source, local = _hf_source(spec, name)
    if local:
        with _quiet_loading():
            return load(source)
    return _load_remote(spec, lambda: load(source), alternative)


def _hf_tower(model: nn.Module, side: str):
    """(tower, projection) of a transformers model: a dual model's vision/text tower and its projection, if any."""
    tower = getattr(model, f"{side}_model", None)
    if tower is None:
        return model, None
    return tower, getattr(model, "visual_projection" if side == "vision" else "text_projection", None)


def _hf_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """hf:REPO_OR_PATH as an image tower (CLIP/SigLIP-style models: the vision tower + its projection)."""
    return _hf_load(spec, name, lambda src: _hf_image_from(spec, src), "'bundled:efficientnet_lite0'")


def _hf_image_from(spec: str, source: str) -> ImageEncoder:
    """Build an _HFImage from a local folder or a (reachable or cached) hub repo."""
    import transformers as tr

    tower, projection = _hf_tower(tr.AutoModel.from_pretrained(source, trust_remote_code=trust_remote_code(source)),
                                  "vision")
    vision = getattr(tower.config, "vision_config", tower.config)
    try:
        processor = tr.AutoImageProcessor.from_pretrained(source)
        size = _processor_size(processor) or getattr(vision, "image_size", 224)
        preprocess = _HFPreprocess(processor)
    except (OSError, ValueError):  # no preprocessor_config.json: fall back to ImageNet values
        size = getattr(vision, "image_size", 224)
        preprocess = _imagenet_transform(size)
    return _HFImage(spec, tower, projection, preprocess, size)


def _processor_size(processor) -> int | None:
    """Output side of a transformers image processor (crop size, else resize size)."""
    for attr in ("crop_size", "size"):
        value = getattr(processor, attr, None)
        if isinstance(value, dict):
            value = value.get("height") or value.get("shortest_edge")
        if isinstance(value, int) and value > 0:
            return value
    return None


class _HFText(TextEncoder):
    """A transformers text tower: mean pooling (BERT-like), or pooler output + projection (CLIP/SigLIP-style)."""

    def __init__(self, spec: str, tower: nn.Module, tokenizer, max_length: int, projection=None, pooling="mean"):
        hidden = tower.config.hidden_size
        embed = projection.out_features if isinstance(projection, nn.Linear) else hidden
        super().__init__(spec, embed, hidden, max_length)
        self.tower, self.projection, self.tokenizer, self.pooling = tower, projection, tokenizer, pooling

    def tokenize(self, texts, max_length=None):
        length = int(max_length or self.max_length)
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=length, return_tensors="pt")
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def forward(self, input_ids, attention_mask):
        out = self.tower(input_ids=input_ids, attention_mask=attention_mask)
        if self.pooling == "mean":
            return _mean_pool(out.last_hidden_state, attention_mask)
        return out.pooler_output if self.projection is None else self.projection(out.pooler_output)

    def forward_tokens(self, input_ids, attention_mask):
        return self.tower(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _hf_text(spec: str, name: str, tag: str | None) -> TextEncoder:
    """hf:REPO_OR_PATH as a text tower (dual models: the text tower + projection; else mean pooling)."""
    return _hf_load(spec, name, lambda src: _hf_text_from(spec, src), "'bundled:minilm'")


def _hf_text_from(spec: str, source: str) -> TextEncoder:
    """Build an _HFText from a local folder or a (reachable or cached) hub repo."""
    import transformers as tr

    remote = trust_remote_code(source)
    with _remote_code_guard(spec, source):
        tokenizer = tr.AutoTokenizer.from_pretrained(source, trust_remote_code=remote)
        model = tr.AutoModel.from_pretrained(source, trust_remote_code=remote)
    tower, projection = _hf_tower(model, "text")
    pooling = "mean" if tower is model else "pooler"
    return _HFText(spec, tower, tokenizer, _max_length(source, tokenizer, tower.config), projection, pooling)


def _max_length(source: str, tokenizer, config) -> int:
    """Sequence limit: sentence-transformers' max_seq_length if present, else tokenizer/model limits."""
    st_config = Path(source) / "sentence_bert_config.json"
    if st_config.is_file():
        return int(json.loads(st_config.read_text())["max_seq_length"])
    text_config = getattr(config, "text_config", config)
    limits = [getattr(text_config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    limits = [int(x) for x in limits if isinstance(x, int) and 0 < x < 100_000]
    return min(limits) if limits else 512


# ---------------------------------------------------------------------------------------------
# bundled: (registry-package weights, offline)


def _bundled_image(spec: str, name: str, tag: str | None, image_size: int | None = None) -> ImageEncoder:
    """bundled:efficientnet_lite0: timm efficientnet_lite0 with the pretrained weights of a registry package."""
    if name != "efficientnet_lite0":
        raise UnknownSpecError(f"no bundled image encoder {name!r}; bundled image specs: 'bundled:efficientnet_lite0'")
    import timm

    from .. import assets

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    model.load_state_dict(assets.efficientnet_lite0_state_dict())
    return _TimmImage(spec, model, image_size)


def _bundled_text(spec: str, name: str, tag: str | None) -> TextEncoder:
    """bundled:minilm: all-MiniLM-L6-v2 (mean pooling) from a registry package."""
    if name != "minilm":
        raise UnknownSpecError(f"no bundled text encoder {name!r}; bundled text specs: 'bundled:minilm'")
    from .. import assets

    source = str(assets.minilm_dir())
    with _quiet_loading():
        return _hf_text_from(spec, source)


# ---------------------------------------------------------------------------------------------
# tiny: (random init, fast on CPU)


def _tiny_dim(spec: str, name: str, arch: str) -> int:
    """DIM of tiny:ARCH[-DIM] (default 128); a positive multiple of 32."""
    dim = name.partition("-")[2] or str(_TINY_DEFAULT_DIM)
    if not dim.isdigit() or int(dim) <= 0 or int(dim) % 32:
        raise UnknownSpecError(f"{spec!r}: DIM must be a positive multiple of 32, e.g. 'tiny:{arch}-64'")
    return int(dim)


class _TinyCNN(ImageEncoder):
    """Five stride-2 conv-BN-ReLU stages (total stride 32); pooled = mean of the last map."""

    def __init__(self, spec: str, dim: int, image_size: int):
        super().__init__(spec, dim, dim, image_size, _imagenet_transform(image_size))
        layers, c_in = [], 3
        for c in (dim // 8, dim // 4, dim // 2, dim, dim):
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        self.body = nn.Sequential(*layers)

    def forward_grid(self, x):
        return self.body(x)

    def forward(self, x):
        return self.forward_grid(x).mean(dim=(2, 3))


class _TinyViT(ImageEncoder):
    """A 2-block pre-norm ViT with 16-pixel patches; pooled = normalized CLS token."""

    patch = 16

    def __init__(self, spec: str, dim: int, image_size: int, depth: int = 2):
        if image_size % self.patch:
            raise ParameterError(f"image_size={image_size} must be a multiple of {self.patch} for {spec!r}")
        super().__init__(spec, dim, dim, image_size, _imagenet_transform(image_size))
        self.embed = nn.Conv2d(3, dim, self.patch, stride=self.patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, (image_size // self.patch) ** 2 + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, dim // 32, 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def _tokens(self, x):
        patches = self.embed(x)
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), patches.flatten(2).transpose(1, 2)], dim=1)
        return self.norm(self.blocks(tokens + self.pos)), patches.shape[-2:]

    def forward(self, x):
        return self._tokens(x)[0][:, 0]

    def forward_grid(self, x):
        tokens, (h, w) = self._tokens(x)
        return tokens[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, h, w)


def _tiny_image(spec: str, name: str, tag: str | None, image_size: int = 224) -> ImageEncoder:
    """tiny:cnn[-DIM] or tiny:vit[-DIM], random init."""
    arch = name.partition("-")[0]
    if arch not in ("cnn", "vit") or tag:
        raise UnknownSpecError(f"unknown tiny image spec {spec!r}; use 'tiny:cnn[-DIM]' or 'tiny:vit[-DIM]'")
    cls = _TinyCNN if arch == "cnn" else _TinyViT
    return cls(spec, _tiny_dim(spec, name, arch), image_size)


def _tiny_text(spec: str, name: str, tag: str | None) -> TextEncoder:
    """tiny:text[-DIM]: a 2-layer random-init BERT over the bundled MiniLM (BERT uncased) vocabulary."""
    if name.partition("-")[0] != "text" or tag:
        raise UnknownSpecError(f"unknown tiny text spec {spec!r}; use 'tiny:text[-DIM]'")
    import transformers as tr

    from .. import assets

    dim = _tiny_dim(spec, name, "text")
    tokenizer = tr.AutoTokenizer.from_pretrained(str(assets.minilm_dir()))
    config = tr.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=dim,
        num_hidden_layers=2,
        num_attention_heads=dim // 32,
        intermediate_size=4 * dim,
        max_position_embeddings=128,
    )
    return _HFText(spec, tr.BertModel(config, add_pooling_layer=False), tokenizer, 128)
