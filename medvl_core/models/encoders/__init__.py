"""Encoder factory: spec strings -> image/text towers with one interface (docs/architecture.md, "Contracts").

One module per backend (`open_clip_towers`, `timm_towers`, `torchvision_towers`, `hf_towers`, `bundled`, `tiny`,
`llava`, `conch`, `cxr_clip`, `flair`), `hub` for hub access and the remote-code policy, `factory` for spec
parsing and `build_image_encoder` / `build_text_encoder`.
"""

from .base import ImageEncoder, TextEncoder
from .factory import ACCEPTED_SPECS, build_image_encoder, build_text_encoder, parse_spec
from .hub import REMOTE_CODE_REPOS, trust_remote_code

__all__ = [
    "ACCEPTED_SPECS",
    "REMOTE_CODE_REPOS",
    "ImageEncoder",
    "TextEncoder",
    "build_image_encoder",
    "build_text_encoder",
    "parse_spec",
    "trust_remote_code",
]
