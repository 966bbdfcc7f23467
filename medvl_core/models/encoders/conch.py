"""conch:PATH: CONCH's ViT-B/16 image encoder from a local pytorch_model.bin, through the authors' `conch` package
(its own preprocessing); a missing package or file raises one error naming where to get it."""

from __future__ import annotations

from pathlib import Path

import torch

from ...errors import UnknownSpecError
from .base import ImageEncoder
from .local_checkpoints import WHERE
from .preprocess import RGB


class _ConchImage(ImageEncoder):
    """CONCH's image encoder: `encode_image(proj_contrast=False, normalize=False)` (the authors' feature recipe)."""

    def __init__(self, spec: str, model, preprocess, image_size: int):
        super().__init__(spec, 0, 0, image_size, preprocess)
        self.model = model
        with torch.no_grad():
            self.embed_dim = self.grid_dim = int(self(torch.zeros(1, 3, image_size, image_size)).shape[-1])

    def forward(self, x):
        return self.model.encode_image(x, proj_contrast=False, normalize=False)

    def forward_grid(self, x):
        return self(x)[:, :, None, None]


def conch_image(spec: str, name: str, tag: str | None) -> ImageEncoder:
    """conch:PATH: CONCH ViT-B/16 from a local pytorch_model.bin, through the `conch` package (its preprocessing)."""
    try:
        from conch.open_clip_custom import create_model_from_pretrained
    except ImportError as exc:
        raise UnknownSpecError(f"{spec}: CONCH needs the authors' package: pip install "
                               "git+https://github.com/mahmoodlab/CONCH (not in requirements.lock)") from exc
    if not Path(name).expanduser().is_file():
        raise UnknownSpecError(f"{spec}: no checkpoint at {name}; download it from {WHERE['conch']}")
    model, preprocess = create_model_from_pretrained("conch_ViT-B-16", checkpoint_path=str(Path(name).expanduser()))
    size = getattr(getattr(model, "visual", None), "image_size", 448)
    return _ConchImage(spec, model, RGB(preprocess), size[0] if isinstance(size, tuple | list) else size)
