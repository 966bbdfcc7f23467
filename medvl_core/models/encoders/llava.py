"""llava:REPO_OR_PATH[@tower]: the vision tower of a LLaVA-family checkpoint (LLaVA, LLaVA-Med, LLaVA-Med++ in the
transformers llava-hf layout), through its multi-modal projector unless `@tower`, mean over patches."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import UnknownSpecError
from .base import ImageEncoder
from .hub import hf_load, quiet_loading
from .preprocess import HFPreprocess


class _LlavaImage(ImageEncoder):
    """A LLaVA vision tower: hidden states of `vision_feature_layer`, CLS dropped ("default" strategy), through the
    multi-modal projector (unless `tower_only`), mean over patches."""

    def __init__(self, spec: str, tower: nn.Module, projector, config, preprocess, image_size: int):
        super().__init__(spec, 0, 0, image_size, preprocess)
        self.tower, self.projector = tower, projector
        self.layer = config.vision_feature_layer if isinstance(config.vision_feature_layer, int) else -2
        self.drop_cls = getattr(config, "vision_feature_select_strategy", "default") == "default"
        with torch.no_grad():
            tokens = self._tokens(torch.zeros(1, 3, image_size, image_size))
        self.embed_dim = self.grid_dim = int(tokens.shape[-1])

    def _tokens(self, x):
        hidden = self.tower(pixel_values=x, output_hidden_states=True).hidden_states[self.layer]
        hidden = hidden[:, 1:] if self.drop_cls else hidden
        return hidden if self.projector is None else self.projector(hidden)

    def forward(self, x):
        return self._tokens(x).mean(1)

    def forward_grid(self, x):
        tokens = self._tokens(x)
        side = int(tokens.shape[1] ** 0.5)
        return tokens[:, -side * side:].transpose(1, 2).reshape(x.shape[0], -1, side, side)


def llava_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """llava:REPO_OR_PATH[@tower]: a transformers Llava checkpoint's vision tower (+ projector), LLM discarded."""

    def load(source):
        import transformers as tr

        model = tr.LlavaForConditionalGeneration.from_pretrained(source, dtype=torch.float32)
        inner = getattr(model, "model", model)
        tower, projector = inner.vision_tower, None if tag == "tower" else inner.multi_modal_projector
        processor = tr.AutoImageProcessor.from_pretrained(source)
        size = getattr(model.config.vision_config, "image_size", 336)
        return _LlavaImage(spec, tower, projector, model.config, HFPreprocess(processor), size)

    if tag not in (None, "tower"):
        raise UnknownSpecError(f"{spec!r}: the only llava tag is '@tower' (features before the projector)")
    with quiet_loading():
        return hf_load(spec, name, load, "a local llava-hf folder (save_pretrained layout)")
