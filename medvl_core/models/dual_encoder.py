"""CLIP-style dual encoder: image + text towers from encoder specs, linear projections, learnable temperature.

`trainable` modes (set at build time or with `DualEncoder.set_trainable`):

- "all": every tower parameter, the projections, the SSL head and (if learnable) the temperature.
- "projections": the towers are frozen (and their BatchNorm statistics too); only projections, SSL head, temperature.
- "last": "projections" plus the last block/stage of each tower and the norm/head layers after it
  (`last_stage`): e.g. `bundled:efficientnet_lite0` -> `model.blocks.6` (last MBConv stage), `model.conv_head`,
  `model.bn2`; `bundled:minilm` -> `tower.encoder.layer.5`; open_clip ViT -> last resblock + `ln_post`/`proj`
  (text: + `ln_final`/`text_projection`); timm ViT -> last block + `norm`; ResNets -> `layer4` (+ open_clip's
  `attnpool`); `tiny:cnn` -> last conv-BN(-ReLU) stage; `tiny:vit` -> last block + `norm`; `tiny:text` -> last layer.
  `DualEncoder.trainable_modules()` lists what is unfrozen.

SLIP: `ssl_dim=256` adds `ssl_head` (SLIP's 3-layer MLP on the image tower's pooled features) to the model, so
its parameters are trained and saved with it; `losses.ContrastiveObjective("slip")` uses it.
UniCLIP: `aug_params=5` adds the augmentation-aware embedding and `domain_similarity=True` the per-domain-pair
similarity (`models.uniclip`); `losses.ContrastiveObjective("uniclip")` uses both.

Frozen BatchNorm layers stay in eval mode during training, so "frozen" also means frozen running statistics.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataFormatError, ParameterError
from .encoders import ImageEncoder, TextEncoder, build_image_encoder, build_text_encoder
from .modules import device_of, eval_mode
from .uniclip import AugmentationEmbedding, DomainSimilarity

TRAINABLE = ("all", "projections", "last")
CONFIG_NAME, WEIGHTS_NAME = "dual_encoder.json", "dual_encoder.pt"
DUAL_ENCODER_FORMAT = "medvl-dual-encoder/1"
_TRUNK_NAMES = ("blocks", "stages", "layers", "layer", "resblocks")
_HEAD_MODULES = (
    "norm", "fc_norm", "head_norm", "conv_head", "bn2", "ln_post", "ln_final", "final_layer_norm", "post_layernorm",
    "attnpool", "attn_pool", "projection", "visual_projection", "text_projection",
)  # fmt: skip
_HEAD_PARAMS = ("proj", "text_projection")  # open_clip keeps its projections as bare Parameters


class SSLHead(nn.Module):
    """SLIP's image self-supervision MLP: Linear-BN-ReLU x2 then Linear to `out_dim`."""

    def __init__(self, in_dim: int, hidden_dim: int = 1024, out_dim: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)


class DualEncoder(nn.Module):
    """Image tower `visual` + text tower `text`, each linearly projected to a shared, L2-normalised space."""

    def __init__(
        self,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        embed_dim: int = 256,
        init_temperature: float = 0.07,
        learn_temperature: bool = True,
        max_logit_scale: float = 100.0,
        ssl_dim: int | None = None,
        ssl_hidden_dim: int = 1024,
        aug_params: int | None = None,
        domain_similarity: bool = False,
    ):
        super().__init__()
        if not 0.0 < init_temperature <= 1.0 or max_logit_scale < 1.0 / init_temperature:
            raise ParameterError(
                f"init_temperature={init_temperature} must be in (0, 1] with 1/temperature <= "
                f"max_logit_scale={max_logit_scale}"
            )
        self.visual, self.text = image_encoder, text_encoder
        self.embed_dim, self.max_logit_scale = int(embed_dim), float(max_logit_scale)
        self.init_temperature, self.learn_temperature = float(init_temperature), bool(learn_temperature)
        self.image_projection = nn.Linear(image_encoder.embed_dim, self.embed_dim, bias=False)
        self.text_projection = nn.Linear(text_encoder.embed_dim, self.embed_dim, bias=False)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.log_logit_scale.requires_grad_(self.learn_temperature)
        self.ssl_dim, self.ssl_hidden_dim = ssl_dim, int(ssl_hidden_dim)
        self.ssl_head = SSLHead(image_encoder.embed_dim, ssl_hidden_dim, ssl_dim) if ssl_dim else None
        # UniCLIP (models.uniclip): augmentation-aware embedding of image views, per-domain-pair similarity
        self.aug_params, self.use_domain_similarity = aug_params, bool(domain_similarity)
        self.aug_embedding = AugmentationEmbedding(aug_params, image_encoder.embed_dim) if aug_params else None
        self.domain_similarity = DomainSimilarity(init_temperature) if domain_similarity else None
        self.trainable = "all"
        tower_device = device_of(image_encoder)
        if tower_device.type != "cpu":  # new heads join towers that already live on an accelerator
            self.to(tower_device)

    # -- properties ---------------------------------------------------------------------------

    @property
    def logit_scale(self) -> torch.Tensor:
        """exp(log scale) clamped to `max_logit_scale` (CLIP's 1/temperature)."""
        return self.log_logit_scale.clamp(max=math.log(self.max_logit_scale)).exp()

    @property
    def preprocess(self):
        """The image tower's PIL -> tensor transform."""
        return self.visual.preprocess

    @property
    def image_size(self) -> int:
        """Input side of the image tower."""
        return self.visual.image_size

    @property
    def max_length(self) -> int:
        """Token limit of the text tower."""
        return self.text.max_length

    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> dict:
        """Text tower tokenisation -> dict(input_ids, attention_mask); `max_length` capped at the tower's limit."""
        length = self.max_length if max_length is None else min(int(max_length), self.max_length)
        return self.text.tokenize(list(texts), max_length=length)

    # -- encoding -----------------------------------------------------------------------------

    def encode_images(self, pixels) -> torch.Tensor:
        """(B,3,H,W) tensor -> normalised (B,D), differentiable; a list of PIL images -> CPU float (eval, no grad)."""
        if not torch.is_tensor(pixels):
            return self._encode_pil(pixels)
        return self.project_image_features(self.visual(pixels))

    def encode_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids + mask -> normalised (B,D), differentiable."""
        return F.normalize(self.text_projection(self.text(input_ids, attention_mask)), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Strings -> normalised (N,D) CPU float tensor (eval mode, no grad, batched)."""
        texts, device, outs = list(texts), device_of(self), []
        with eval_mode(self):
            for i in range(0, len(texts), batch_size):
                batch = self.tokenize(texts[i : i + batch_size])
                outs.append(self.encode_tokens(batch["input_ids"].to(device), batch["attention_mask"].to(device)))
        return torch.cat([o.float().cpu() for o in outs]) if outs else torch.empty(0, self.embed_dim)

    @torch.no_grad()
    def _encode_pil(self, images, batch_size: int = 32) -> torch.Tensor:
        """PIL images -> normalised (N,D) CPU float tensor (eval mode, no grad, batched)."""
        images, device, outs = list(images), device_of(self), []
        with eval_mode(self):
            for i in range(0, len(images), batch_size):
                batch = torch.stack([self.preprocess(img) for img in images[i : i + batch_size]]).to(device)
                outs.append(self.encode_images(batch).float().cpu())
        return torch.cat(outs) if outs else torch.empty(0, self.embed_dim)

    def project_image_features(self, features: torch.Tensor, aug_params: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled image-tower features (B, tower dim), e.g. from a feature cache -> normalised (B,D); with an
        augmentation-aware embedding, `aug_params` (B, P) say how each view was made (None: not augmented)."""
        if self.aug_embedding is not None:
            features = self.aug_embedding(features, aug_params)
        return F.normalize(self.image_projection(features), dim=-1)

    def project_text_features(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled text-tower features (B, tower dim) -> normalised (B,D)."""
        return F.normalize(self.text_projection(features), dim=-1)

    def forward(self, images=None, input_ids=None, attention_mask=None, views=None, *, image_features=None,
                text_features=None, view_features=None, view_params=None):
        """(normalised image emb., normalised text emb., logit scale[, view outputs]).

        `image_features`/`text_features` (cached outputs of frozen towers) replace the pixel/token inputs. Image
        views, as pixels `views` (N,3,H,W) or pooled `view_features` (N, tower dim), add a 4th output: SLIP's SSL
        head outputs when the model has one, else their normalised embeddings (augmentation-aware with
        `view_params` (N, P); UniCLIP). Passing views here keeps one forward call under DDP/Accelerate.
        """
        img = self.encode_images(images) if image_features is None else self.project_image_features(image_features)
        txt = (self.encode_tokens(input_ids, attention_mask) if text_features is None
               else self.project_text_features(text_features))
        out = (img, txt, self.logit_scale)
        if views is None and view_features is None:
            return out
        pooled = self.visual(views) if views is not None else view_features
        if self.ssl_head is not None:
            return (*out, self.ssl_head(pooled))
        return (*out, self.project_image_features(pooled, view_params))

    # -- freezing -----------------------------------------------------------------------------

    def set_trainable(self, mode: str = "all") -> DualEncoder:
        """Freeze/unfreeze parameters for `mode` in TRAINABLE (see the module docstring)."""
        if mode not in TRAINABLE:
            raise ParameterError(f"trainable={mode!r}; use one of {', '.join(TRAINABLE)}")
        for tower in (self.visual, self.text):
            tower.requires_grad_(mode == "all")
            if mode == "last":
                for _, part in last_stage(tower):
                    part.requires_grad_(True)
        for head in (self.image_projection, self.text_projection, self.ssl_head, self.aug_embedding,
                     self.domain_similarity):
            if head is not None:
                head.requires_grad_(True)
        self.log_logit_scale.requires_grad_(self.learn_temperature)
        self.trainable = mode
        return self.train(self.training)

    def train(self, mode: bool = True):
        """Like nn.Module.train, but frozen BatchNorm layers stay in eval mode (running stats frozen too)."""
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in module.parameters()
            ):
                module.eval()
        return self

    # -- persistence --------------------------------------------------------------------------

    def config(self) -> dict:
        """Everything needed to rebuild this model's architecture (JSON-able)."""
        tiny = self.visual.spec.startswith("tiny:")
        return {
            "format": DUAL_ENCODER_FORMAT,
            "image_spec": self.visual.spec,
            "text_spec": self.text.spec,
            "image_size": self.visual.image_size if tiny else None,
            "embed_dim": self.embed_dim,
            "init_temperature": self.init_temperature,
            "learn_temperature": self.learn_temperature,
            "max_logit_scale": self.max_logit_scale,
            "ssl_dim": self.ssl_dim,
            "ssl_hidden_dim": self.ssl_hidden_dim,
            "aug_params": self.aug_params,
            "domain_similarity": self.use_domain_similarity,
            "trainable": self.trainable,
        }

    def save_pretrained(self, path) -> Path:
        """Write `path`/dual_encoder.json (specs, dims) and `path`/dual_encoder.pt (state dict), each atomically."""
        from ..io import atomic_path, atomic_write_json

        path = Path(path).expanduser()
        state = {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}
        with atomic_path(path / WEIGHTS_NAME) as tmp:
            torch.save(state, tmp)
        atomic_write_json(path / CONFIG_NAME, self.config())
        return path


def build_dual_encoder(
    image_spec: str = "bundled:efficientnet_lite0",
    text_spec: str = "bundled:minilm",
    embed_dim: int = 256,
    trainable: str = "all",
    device=None,
    image_size: int | None = None,
    **options,
) -> DualEncoder:
    """A DualEncoder over two encoder specs, in eval mode (`options`: DualEncoder's temperature / SSL head args)."""
    if trainable not in TRAINABLE:
        raise ParameterError(f"trainable={trainable!r}; use one of {', '.join(TRAINABLE)}")
    model = DualEncoder(
        build_image_encoder(image_spec, image_size=image_size), build_text_encoder(text_spec), embed_dim, **options
    )
    model.set_trainable(trainable).eval()
    if device is not None:
        from ..config import choose_device

        model.to(choose_device(str(device)))
    return model


def load_dual_encoder(path, device=None) -> DualEncoder:
    """Rebuild a model written by `save_pretrained` (weights loaded with weights_only=True), in eval mode."""
    path = Path(path).expanduser()
    config_file, weights_file = path / CONFIG_NAME, path / WEIGHTS_NAME
    if not config_file.is_file() or not weights_file.is_file():
        raise DataFormatError(
            f"{path} is not a saved dual encoder (needs {CONFIG_NAME} and {WEIGHTS_NAME}); "
            "write one with model.save_pretrained(path)"
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{config_file} is not valid JSON ({exc}); save the model again") from exc
    if config.get("format") != DUAL_ENCODER_FORMAT:
        raise DataFormatError(f"{config_file}: format {config.get('format')!r}, expected {DUAL_ENCODER_FORMAT!r}")
    keys = ("embed_dim", "init_temperature", "learn_temperature", "max_logit_scale", "ssl_dim", "ssl_hidden_dim",
            "aug_params", "domain_similarity")
    model = build_dual_encoder(
        config["image_spec"], config["text_spec"], trainable=config.get("trainable", "all"),
        image_size=config.get("image_size"), **{k: config[k] for k in keys if k in config},
    )  # fmt: skip
    state = torch.load(weights_file, map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DataFormatError(
            f"{weights_file} does not match {config['image_spec']} + {config['text_spec']} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}); save the model again"
        )
    if device is not None:
        from ..config import choose_device

        model.to(choose_device(str(device)))
    return model.eval()


# ---------------------------------------------------------------------------------------------
# "last" block/stage of a tower


def last_stage(tower: nn.Module) -> list[tuple[str, nn.Module | nn.Parameter]]:
    """(name, module or parameter) pairs that trainable="last" unfreezes: the trunk's last block + later norms/heads.

    The trunk is the largest ModuleList/Sequential named blocks/stages/layers/layer/resblocks, else the highest
    `layerN` (ResNets), else the largest flat Sequential (from its last conv/linear layer on). Norms/heads are
    modules named like `norm`, `ln_post`, `ln_final`, `conv_head`, `bn2`, `attnpool`, `projection` registered after
    the last block and outside every block.
    """
    trunk_name, picked = _last_block(tower)
    if trunk_name is None:
        raise ParameterError(
            f"cannot find the last block of {getattr(tower, 'spec', type(tower).__name__)}; "
            "use trainable='projections' or 'all'"
        )
    block = picked[-1][0] + "."
    modules = list(tower.named_modules())
    after = max(i for i, (n, _) in enumerate(modules) if n.startswith(block) or n + "." == block)
    for name, module in modules[after + 1 :]:
        if name.rsplit(".", 1)[-1] in _HEAD_MODULES and _outside_blocks(name) and _has_params(module):
            picked.append((name, module))
    for name, param in tower.named_parameters():  # a module's own parameters: no order to compare
        if name.rsplit(".", 1)[-1] in _HEAD_PARAMS and _outside_blocks(name) and not name.startswith(block):
            picked.append((name, param))
    return picked


def _outside_blocks(name: str) -> bool:
    """True when a module path has no numeric component (is not inside any block of a ModuleList/Sequential)."""
    return not any(part.isdigit() for part in name.split("."))


def _has_params(module: nn.Module) -> bool:
    """True when the module holds at least one parameter."""
    return next(module.parameters(), None) is not None


def _last_block(tower: nn.Module) -> tuple[str | None, list]:
    """(trunk name, [(name, last block)]) by the rules in `last_stage`."""
    containers = [
        (name, m) for name, m in tower.named_modules()
        if isinstance(m, nn.ModuleList | nn.Sequential) and len(m) and name.rsplit(".", 1)[-1] in _TRUNK_NAMES
    ]  # fmt: skip
    if containers:
        name, trunk = max(containers, key=lambda item: _size(item[1]))
        return name, [(f"{name}.{len(trunk) - 1}", trunk[-1])]
    numbered = [(n, m) for n, m in tower.named_modules() if re.fullmatch(r"(.*\.)?layer\d+", n) and _has_params(m)]
    if numbered:
        name, module = max(numbered, key=lambda item: int(re.search(r"(\d+)$", item[0]).group(1)))
        return name, [(name, module)]
    flat = [(n, m) for n, m in tower.named_modules() if isinstance(m, nn.Sequential) and len(m) and n]
    if not flat:
        return None, []
    name, trunk = max(flat, key=lambda item: _size(item[1]))
    weighted = [i for i, m in enumerate(trunk) if isinstance(m, nn.Conv2d | nn.Linear)]
    start = weighted[-1] if weighted else len(trunk) - 1
    return name, [(f"{name}.{i}", trunk[i]) for i in range(start, len(trunk)) if _has_params(trunk[i])]


def _size(module: nn.Module) -> int:
    """Number of parameters in a module."""
    return sum(p.numel() for p in module.parameters())
