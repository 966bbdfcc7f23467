"""Image decoding for dataset loaders: JPG/PNG via PIL, DICOM via pydicom (VOI LUT, MONOCHROME1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataFormatError

DICOM_SUFFIXES = {".dcm", ".dicom"}
HIGH_DEPTH_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


def load_image(path, mode: str = "L", draft_side: int | None = None) -> Image.Image:
    """Open an image file (JPG/PNG/... or DICOM) as a PIL image in `mode` ("L" or "RGB").

    `draft_side`: a JPEG whose shorter side is at least twice this is decoded at a reduced DCT scale (PIL's draft
    mode) whose shorter side stays >= `draft_side`; callers that resize to that side get nearly the same pixels
    several times faster.
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"image file not found: {path}; check the dataset root and its layout (see data_cards/)")
    if path.suffix.lower() in DICOM_SUFFIXES:
        return Image.fromarray(dicom_to_uint8(path)).convert(mode)
    try:
        with Image.open(path) as img:
            if draft_side and img.format == "JPEG" and min(img.size) >= 2 * draft_side:
                img.draft("L" if mode == "L" else None, (draft_side, draft_side))
            if img.mode in HIGH_DEPTH_MODES:  # 16-bit PNG (PadChest...): PIL's convert would clip at 255
                return Image.fromarray(_to_uint8(np.asarray(img))).convert(mode)
            return img.convert(mode)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataFormatError(f"cannot read image {path}: {exc}; re-download or remove the file") from exc


def square_uint8(image: Image.Image, size: int) -> np.ndarray:
    """(size, size) uint8 grayscale: shorter side resized to `size` (bicubic), the longer one centre-cropped, as a
    torchvision Resize(size) + CenterCrop(size) does."""
    image = image.convert("L")
    w, h = image.size
    new = (size, max(size, int(size * h / w))) if w <= h else (max(size, int(size * w / h)), size)  # as torchvision
    if new != (w, h):
        image = image.resize(new, Image.Resampling.BICUBIC)
    left, top = int(round((new[0] - size) / 2)), int(round((new[1] - size) / 2))
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def dicom_to_uint8(path) -> np.ndarray:
    """Read a DICOM file's pixels, apply modality + VOI LUT/windowing, invert MONOCHROME1, scale to uint8."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(str(path))
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for corrupt/unsupported files
        raise DataFormatError(f"cannot decode DICOM {path}: {exc}; check the file or install its codec (pylibjpeg)") from exc
    if pixels.ndim == 3 and getattr(ds, "SamplesPerPixel", 1) == 1:
        pixels = pixels[pixels.shape[0] // 2]  # multi-frame: take the middle frame
    arr = apply_modality_lut(pixels, ds).astype(np.float64)
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        arr = apply_voi_lut(arr, ds, prefer_lut=True).astype(np.float64)
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        arr = arr.max() - arr
    return _to_uint8(arr)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Min-max scale an array to uint8 (a constant image becomes zeros)."""
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.round((arr - lo) / (hi - lo) * 255.0).astype(np.uint8)
