"""The restoration filter: a decoder-side smoothing that a file within a maximum error may ask for.

A file whose pixels are each within ``K`` of the image (near-lossless, step
``2K + 1``) leaves errors spread over ``-K..K`` even where the image is smooth:
staircases along slow ramps, a rippled sky. Smoothing the decoded image there
and clipping each smoothed pixel back to within ``K`` of the decoded one (the
image's pixel is in that window, so the clip only brings it closer) lowers the
error where the image is smooth, and raises it on texture and edges. So the
pixels are split into :data:`CLASSES` classes by how much the decoded image
varies around them (the range of its 3x3 neighbourhood, in quantization
steps), and the *encoder*, which has the image, picks for each class the
filter of :data:`RADII` (none, or a binomial of radius 1 to 3) that leaves the
least squared error: 2 bits a class, one byte a file (:class:`Restoration`).

Restoration trades the file's bound for PSNR: every pixel comes back within
``2K`` rather than ``K`` (the decoder cannot know which side of its pixel the
image lies), so a file gets it only when asked (``restore``), never under a
plain maximum error. Everything is integer arithmetic on the decoded pixels:
a restored image is the same on every machine. Images are filtered a strip of
rows at a time, so memory stays bounded on the largest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .errors import FormatError

#: The filters a class may choose: 0 none, r a separable binomial of radius r (weights C(2r, i), sum 4**r).
RADII = (0, 1, 2, 3)
#: Pixel classes: the range of the decoded 3x3 neighbourhood in quantization steps, 0, 1, 2 and 3 or more.
CLASSES = 4
#: Bits of a class's filter in the restoration byte (class c in bits 2c, 2c + 1).
_BITS = 2
#: Rows of image filtered at once (plus the filters' reach above and below).
STRIP_ROWS = 256
_REACH = max(RADII)
_KERNELS = {r: np.array([math.comb(2 * r, i) for i in range(2 * r + 1)], np.int64) for r in RADII if r}


@dataclass(frozen=True)
class Restoration:
    """Each pixel class's filter (an index into :data:`RADII`), as a file carries it."""

    filters: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.filters) != CLASSES or not all(0 <= f < len(RADII) for f in self.filters):
            raise FormatError(f"a restoration names {CLASSES} filters of 0..{len(RADII) - 1}, got {self.filters}")

    @property
    def active(self) -> bool:
        """Whether any class is filtered (a restoration that filters nothing is not written)."""
        return any(self.filters)

    def to_byte(self) -> int:
        return sum(f << (_BITS * c) for c, f in enumerate(self.filters))

    @classmethod
    def from_byte(cls, value: int) -> Restoration:
        return cls(tuple((value >> (_BITS * c)) & ((1 << _BITS) - 1) for c in range(CLASSES)))


def _binomial(padded: np.ndarray, radius: int, rows: int, cols: int) -> np.ndarray:
    """The rounded binomial smoothing of radius ``radius`` of the (rows, cols) window centred in ``padded``
    (which reaches :data:`_REACH` beyond it on every side)."""
    kernel = _KERNELS[radius]
    off = _REACH - radius
    horizontal = np.zeros((rows + 2 * radius, cols), np.int64)
    for i, w in enumerate(kernel):
        horizontal += int(w) * padded[off : off + rows + 2 * radius, off + i : off + i + cols]
    both = np.zeros((rows, cols), np.int64)
    for i, w in enumerate(kernel):
        both += int(w) * horizontal[i : i + rows]
    shift = 4 * radius  # the 2-D weights sum to 16**radius
    return (both + (1 << (shift - 1))) >> shift


def _strips(decoded: np.ndarray, max_error: int) -> Iterator[tuple[slice, np.ndarray, list[np.ndarray]]]:
    """Per strip of rows: its slice, each pixel's class, and each filter's clipped output (index 0: the pixels)."""
    height, width = decoded.shape
    step = 2 * int(max_error) + 1
    padded_all = np.pad(decoded, _REACH, mode="edge")  # uint8: a strip at a time is widened
    for top in range(0, height, STRIP_ROWS):
        rows = min(STRIP_ROWS, height - top)
        padded = padded_all[top : top + rows + 2 * _REACH].astype(np.int64)
        centre = padded[_REACH : _REACH + rows, _REACH : _REACH + width]
        window = [
            padded[_REACH + dy : _REACH + dy + rows, _REACH + dx : _REACH + dx + width]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        ]
        spread = np.max(window, axis=0) - np.min(window, axis=0)
        classes = np.minimum(spread // step, CLASSES - 1)
        outputs = [centre]
        for radius in RADII[1:]:
            smooth = _binomial(padded, radius, rows, width)
            outputs.append(np.clip(smooth, centre - max_error, centre + max_error))
        yield slice(top, top + rows), classes, outputs


def choose(image: np.ndarray, decoded: np.ndarray, max_error: int) -> Restoration:
    """The restoration of a file within ``max_error``: per class, the filter that brings ``decoded`` (H, W) uint8
    closest to ``image`` in squared error (no filter when none does)."""
    errors = np.zeros((CLASSES, len(RADII)), np.int64)
    if max_error < 1:
        return Restoration((0,) * CLASSES)
    for rows, classes, outputs in _strips(decoded, max_error):
        truth = image[rows].astype(np.int64)
        flat = classes.ravel()
        for f, out in enumerate(outputs):
            errors[:, f] += np.bincount(flat, weights=((out - truth) ** 2).ravel(), minlength=CLASSES).astype(np.int64)
    return Restoration(tuple(int(np.argmin(row)) for row in errors))  # argmin: the first (least filtering) on ties


def apply(decoded: np.ndarray, max_error: int, restoration: Restoration) -> np.ndarray:
    """``decoded`` (H, W) uint8 with each class's filter applied: what a restored file decodes to."""
    if not restoration.active or max_error < 1:
        return decoded
    out = np.empty_like(decoded)
    choice = np.array(restoration.filters)
    for rows, classes, outputs in _strips(decoded, max_error):
        chosen = choice[classes]
        out[rows] = np.choose(chosen, outputs).astype(np.uint8)
    return out
