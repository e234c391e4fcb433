"""Bring any image a user has to what the codec codes: an 8-bit grayscale array.

The codec works on white ink on a black background, like MNIST. Images with a
light background (dark ink on paper) are inverted before coding and back after;
the header records it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps

from .bitstream import check_size
from .errors import FormatError, ImageError

ImageLike = Union[Image.Image, np.ndarray]  # noqa: UP007 (a runtime alias on Python 3.10)


@dataclass(frozen=True)
class Prepared:
    """A grayscale image ready to code, and what was done to get there."""

    pixels: np.ndarray  # (H, W) uint8, white ink on black
    inverted: bool
    notice: str | None = None  # what the conversion dropped, if anything


def _wide_integers(image: Image.Image) -> tuple[np.ndarray, str | None]:
    """8-bit pixels of a 16- or 32-bit integer image: 16-bit ranges scaled (65535 -> 255), others refused."""
    raw = np.asarray(image).astype(np.int64)
    low, high = (int(raw.min()), int(raw.max())) if raw.size else (0, 0)
    if image.mode == "I" and low >= 0 and high <= 255:
        return raw.astype(np.uint8), None
    if low < 0 or high > 65535:
        raise ImageError(f"{image.mode} image with values {low}..{high}, outside 0..65535: scale it to 8 bits first")
    scaled = np.clip(np.rint(raw * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
    return scaled, f"{image.mode} image read as 16-bit and reduced to 8-bit grayscale"


def _floats(image: Image.Image) -> np.ndarray:
    """8-bit pixels of a float image whose values are grey levels 0..255 (as Pillow converts them); others refused.

    Values in 0..1 are refused rather than read as nearly black: aec cannot know whether 1.0 means white.
    """
    raw = np.asarray(image, dtype=np.float64)
    if not np.isfinite(raw).all():
        raise ImageError("float image holds NaN or infinite values")
    low, high = (float(raw.min()), float(raw.max())) if raw.size else (0.0, 0.0)
    if low < 0 or high > 255:
        raise ImageError(f"float image with values {low:g}..{high:g}, outside 0..255: scale it to 0..255 first")
    if 0 < high <= 1:
        raise ImageError("float image with values in 0..1: scale it to 0..255 first (aec reads float pixels as 0..255)")
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _from_pil(image: Image.Image) -> tuple[np.ndarray, str | None]:
    mode = image.mode
    if mode == "L":
        return np.asarray(image, dtype=np.uint8), None
    if mode == "1":
        return np.asarray(image.convert("L"), dtype=np.uint8), None
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        return _wide_integers(image)
    if mode == "F":
        return _floats(image), None
    notice = None
    if "A" in mode or mode == "P" and "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba, dtype=np.uint8)[..., 3]
        if (alpha < 255).any():
            notice = "transparency flattened onto white"
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    if (rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any():
        notice = ", ".join(filter(None, [notice, "colour converted to grayscale"]))
    return np.asarray(image.convert("L"), dtype=np.uint8), notice


def to_grayscale(image: ImageLike) -> tuple[np.ndarray, str | None]:
    """An (H, W) uint8 array from a PIL image of any mode or a 2-D uint8 array."""
    if isinstance(image, Image.Image):
        try:
            check_size(*image.size)  # before the pixels are decoded
        except FormatError as exc:
            raise ImageError(str(exc)) from None
        try:
            image.load()
            pixels, notice = _from_pil(image)
        except (OSError, ValueError) as exc:
            raise ImageError(f"cannot read image ({exc})") from exc
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 2:
            raise ImageError(f"expected a 2-D uint8 array, got {image.ndim}-D {image.dtype}")
        pixels, notice = image, None
    else:
        raise ImageError(f"expected a PIL image or a numpy array, got {type(image).__name__}")
    height, width = pixels.shape
    try:
        check_size(width, height)
    except FormatError as exc:
        raise ImageError(str(exc)) from None
    return np.ascontiguousarray(pixels), notice


def has_light_background(pixels: np.ndarray) -> bool:
    """True for dark ink on a light background: judged by the border, where the background is."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return float(np.median(border)) > 127.5


def pad_to_stride(images: np.ndarray, stride: int) -> np.ndarray:
    """Images (..., H, W) zero-padded at the bottom and right to a multiple of ``stride``, as the models code them."""
    height, width = images.shape[-2:]
    return np.pad(images, [(0, 0)] * (images.ndim - 2) + [(0, -height % stride), (0, -width % stride)])


def prepare(image: ImageLike) -> Prepared:
    """Grayscale, white ink on black: what the model codes."""
    pixels, notice = to_grayscale(image)
    inverted = has_light_background(pixels)
    return Prepared(255 - pixels if inverted else pixels, inverted, notice)


def open_image(source: str | BinaryIO) -> Image.Image:
    """Open an image file (a path or a binary stream) with Pillow, any error as an :class:`ImageError`.

    The size is checked from the file's header before a pixel is decoded, so an
    image over the format's limit costs no memory; a file of several frames
    (animation, multi-page TIFF) is refused rather than silently cut to its first;
    the EXIF orientation is applied, so the image is coded the way viewers show it.
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns of "decompression bombs" over 89 M pixels; the size check below refuses far less.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
        check_size(*image.size)
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            raise ImageError(f"holds {frames} frames (an animation or a multi-page file); aec codes one image per file")
        image.load()
        transposed = ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except FormatError as exc:
        raise ImageError(str(exc)) from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        what = "not a readable image" if isinstance(exc, Image.UnidentifiedImageError) else f"cannot read image ({exc})"
        raise ImageError(what) from None
    return transposed if transposed is not None else image
