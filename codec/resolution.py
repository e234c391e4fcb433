"""Coding at a coarser resolution: the encoder's downscale and the format's upsampling filter.

A smooth image (a large digit, a blurred photo) costs an autoencoder of
stride 4 far more bits than it needs: its latents describe every 4x4 block.
Coded at half or a quarter of its size and brought back by a fixed
interpolation it comes back at nearly the same quality for a fraction of the
bits (as AV1's super-resolution and VVC's reference picture resampling do).
A scaled file (format version 9, ``docs/format.md``) names its scale; the
encoder weighs each scale against the full size per image (:mod:`codec.encoder`).

The upsampling is part of the format, exactly: bicubic interpolation (Keys,
``a = -1/2``) by a factor of 2 or 4, centred (output pixel ``i`` reads the
coarse image at ``(i + 1/2) / scale - 1/2``), the coarse image's edge pixels
repeated beyond it. Every tap is a dyadic rational, exact in float32. It runs
on the synthesis's float output, before the rounding to 8 bits, so a pixel
may differ by one grey level between machines, as any autoencoder's pixel
may, and no more. The downscale is the encoder's own business (any filter
would decode); it is Pillow's Lanczos filter over the image with its edges
repeated to a multiple of the scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from PIL import Image

from .bitstream import FILE_SCALES, coarse_size

#: The factors a file may be coded smaller by: those the format can name.
SCALES = FILE_SCALES
#: A scale is tried only when the coarse image keeps at least this many pixels on its shorter side.
MIN_SIDE = 16
#: Coarse rows interpolated at a time (memory stays bounded for any image).
STRIP_ROWS = 64
#: Keys' cubic convolution parameter.
_A = -0.5


def _keys(x: float) -> float:
    """Keys' cubic convolution kernel at ``x`` (``a = -1/2``)."""
    x = abs(x)
    if x <= 1:
        return (_A + 2) * x**3 - (_A + 3) * x**2 + 1
    if x < 2:
        return _A * x**3 - 5 * _A * x**2 + 8 * _A * x - 4 * _A
    return 0.0


def taps(scale: int) -> list[tuple[int, tuple[float, ...]]]:
    """Per output phase ``p`` (0..scale-1): the offset of the first of its four coarse neighbours from the coarse
    pixel ``j`` that output ``j * scale + p`` lies in, and their weights (summing to 1)."""
    out: list[tuple[int, tuple[float, ...]]] = []
    for phase in range(scale):
        at = (phase + 0.5) / scale - 0.5  # where the output sits, in coarse pixels from its own
        first = math.floor(at) - 1
        frac = at - math.floor(at)
        out.append((first, (_keys(frac + 1), _keys(frac), _keys(1 - frac), _keys(2 - frac))))
    return out


def scales_for(height: int, width: int) -> tuple[int, ...]:
    """The scales the encoder tries for an image of this size: those keeping :data:`MIN_SIDE` pixels a side."""
    return tuple(s for s in SCALES if min(coarse_size(height, width, s)) >= MIN_SIDE)


def downscale(pixels: np.ndarray, scale: int) -> np.ndarray:
    """The coarse image (uint8) of ``pixels`` (H, W) uint8: its edges repeated to a multiple of ``scale``, then
    reduced by Pillow's Lanczos filter."""
    height, width = pixels.shape
    coarse_h, coarse_w = coarse_size(height, width, scale)
    padded = np.pad(pixels, ((0, coarse_h * scale - height), (0, coarse_w * scale - width)), mode="edge")
    return np.asarray(Image.fromarray(padded).resize((coarse_w, coarse_h), Image.Resampling.LANCZOS))


def _interpolate(x: np.ndarray, scale: int, axis: int, rows: range | None = None) -> np.ndarray:
    """``x`` interpolated ``scale`` times along ``axis`` (its coarse positions ``rows``, default all), edges
    repeated."""
    n = x.shape[axis]
    at = np.arange(n) if rows is None else np.arange(rows.start, rows.stop)
    phases = []
    for first, weights in taps(scale):
        sources = (np.clip(at + first + k, 0, n - 1) for k in range(len(weights)))
        terms = (np.take(x, where, axis=axis) * x.dtype.type(w) for where, w in zip(sources, weights))
        total = next(terms)
        for term in terms:
            total += term
        phases.append(total)
    stacked = np.stack(phases, axis=axis + 1)  # (..., positions, phase, ...)
    shape = list(x.shape)
    shape[axis] = len(at) * scale
    return stacked.reshape(shape)


def upsample(images: np.ndarray, scale: int, height: int, width: int) -> Iterator[tuple[int, np.ndarray]]:
    """The coarse float images (N, h, w) brought to (N, height, width) (at most ``scale`` times their size), a strip
    of rows at a time: yields (first row, strip)."""
    coarse_h = images.shape[1]
    for start in range(0, coarse_h, STRIP_ROWS):
        rows = range(start, min(coarse_h, start + STRIP_ROWS))
        strip = _interpolate(images, scale, 1, rows)
        strip = _interpolate(strip, scale, 2)[:, :, :width]
        first = start * scale
        yield first, strip[:, : max(0, height - first)]
