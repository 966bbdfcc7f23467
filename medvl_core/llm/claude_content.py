"""The user message of a Claude request: images (bytes or paths, type detected from the bytes, too large ones
re-encoded as a smaller JPEG) as base64 blocks, and the text block."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import DataFormatError, ParameterError

MAX_IMAGE_BYTES = 5 * 1024 * 1024  # the Messages API's per-image limit (base64 of larger images is refused)
MAX_IMAGE_SIDE = 1568  # longest side the API uses without downscaling it itself
IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                    (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def image_media_type(data: bytes) -> str:
    """MIME type of PNG/JPEG/GIF/WEBP bytes, from their signature."""
    for signature, media_type in IMAGE_SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise DataFormatError(f"image is not PNG, JPEG, GIF or WEBP (starts with {data[:12]!r}); "
                          "convert it to one of these formats before sending it to Claude")


def image_bytes(image) -> bytes:
    """The bytes of an image given as bytes or a file path."""
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    if isinstance(image, str | os.PathLike):
        try:
            return Path(image).read_bytes()
        except OSError as exc:
            raise DataFormatError(f"cannot read image {os.fspath(image)}: {exc}; check the path") from exc
    raise ParameterError(f"images must be bytes or file paths, got {type(image).__name__}")


def fit_image(data: bytes) -> bytes:
    """`data` unchanged if within MAX_IMAGE_BYTES, else re-encoded as a smaller JPEG (long side <= MAX_IMAGE_SIDE)."""
    if len(data) <= MAX_IMAGE_BYTES:
        return data
    image_media_type(data)  # a clear error for bytes that are no image we could send
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
    while True:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        if buffer.tell() <= MAX_IMAGE_BYTES or min(image.size) <= 64:
            return buffer.getvalue()
        image = image.resize((int(image.width * 0.75), int(image.height * 0.75)))


def message_content(datas: Sequence[bytes], text: str, text_first: bool = False) -> list[dict]:
    """The user message's blocks: image blocks and the text block (none when empty), text first if asked."""
    images = [image_block(d) for d in datas]
    texts = [{"type": "text", "text": text}] if text else []
    return texts + images if text_first else images + texts


def image_block(data: bytes) -> dict:
    """A base64 `image` content block."""
    return {"type": "image", "source": {"type": "base64", "media_type": image_media_type(data),
                                        "data": base64.b64encode(data).decode("ascii")}}

