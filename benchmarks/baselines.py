"""The classic codecs, each through the well-kept Python binding that exists for it.

Pillow: PNG, WebP (lossless and lossy), JPEG, JPEG 2000, AVIF. imagecodecs: JPEG XL.
Each codec encodes a (H, W) uint8 image to the bytes of a real file and decodes
them back; settings trace its rate-distortion curve.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Codec:
    """One codec: how to encode at a setting and decode, and who implements it."""

    name: str
    library: str
    settings: Sequence[Any]
    encode: Callable[[np.ndarray, Any], bytes]
    decode: Callable[[bytes], np.ndarray]
    lossless: bool = False

    def label(self, setting: Any) -> str:
        return f"{self.name} {setting}" if setting is not None else self.name


def _version(package: str) -> str:
    try:
        return f"{package} {metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return f"{package} (not installed)"


def _pil_encoder(fmt: str, option: str | None = None, **fixed: Any) -> Callable[[np.ndarray, Any], bytes]:
    def encode(image: np.ndarray, setting: Any) -> bytes:
        buffer = io.BytesIO()
        options = dict(fixed)
        if option is not None:
            options[option] = [setting] if option == "quality_layers" else setting
        Image.fromarray(image, mode="L").save(buffer, format=fmt, **options)
        return buffer.getvalue()

    return encode


def _pil_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)


def _jxl_encode(image: np.ndarray, distance: float) -> bytes:
    import imagecodecs

    return bytes(imagecodecs.jpegxl_encode(image, distance=distance, effort=7))


def _jxl_decode(data: bytes) -> np.ndarray:
    import imagecodecs

    return np.asarray(imagecodecs.jpegxl_decode(data), dtype=np.uint8)


def classic_codecs() -> list[Codec]:
    """Every baseline available on this machine (a missing binding is skipped, not faked)."""
    from PIL import features

    pillow = _version("pillow")
    codecs = [
        Codec("PNG", pillow, [None], _pil_encoder("PNG", optimize=True), _pil_decode, lossless=True),
    ]
    if features.check("webp"):
        codecs.append(
            Codec(
                "WebP lossless",
                pillow,
                [None],
                _pil_encoder("WEBP", lossless=True, quality=100, method=6),
                _pil_decode,
                True,
            )
        )
        codecs.append(
            Codec("WebP", pillow, [0, 10, 25, 50, 75, 90, 100], _pil_encoder("WEBP", "quality", method=6), _pil_decode)
        )
    codecs.append(
        Codec("JPEG", pillow, [5, 10, 25, 50, 75, 90, 95], _pil_encoder("JPEG", "quality", optimize=True), _pil_decode)
    )
    if features.check("jpg_2000"):
        codecs.append(
            Codec(
                "JPEG 2000",
                pillow,
                [18, 22, 26, 30, 34, 38, 45],
                _pil_encoder("JPEG2000", "quality_layers", quality_mode="dB"),
                _pil_decode,
            )
        )
    if features.check("avif"):
        codecs.append(
            Codec("AVIF", pillow, [0, 10, 25, 50, 75, 90], _pil_encoder("AVIF", "quality", speed=6), _pil_decode)
        )
    try:
        import imagecodecs

        if imagecodecs.JPEGXL.available:
            codecs.append(
                Codec("JPEG XL", _version("imagecodecs"), [15.0, 8.0, 4.0, 2.0, 1.0, 0.5], _jxl_encode, _jxl_decode)
            )
    except ImportError:
        pass
    return codecs
