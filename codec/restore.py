"""The restoration filter: a decoder-side filter, fitted by the encoder, that a file within a maximum error may carry.

A file whose pixels are each within ``K`` of the image (near-lossless, step
``2K + 1``) leaves errors spread over ``-K..K`` even where the image is smooth
(staircases along slow ramps, a rippled sky) and biased where the coder
clips (a saturated white). The encoder, which has the image, fits a linear
filter that maps the decoded image closer to it (a Wiener filter, as the
adaptive loop filters of video codecs): the pixels are split into
:data:`CLASSES` classes by how much the decoded image varies around them (the
range of its 3x3 neighbourhood, in quantization steps), and each class gets
its own least-squares filter over a symmetric 5x5 window (:data:`TAPS`
weights: the pixel, its 4 neighbours, 4 diagonals, 4 at distance 2, 8
knight's moves, 4 corners) and an offset, in integers scaled by
``2**SHIFT``. A class's filter is kept only where it pays for its bytes
(:func:`choose`). Each filtered pixel is clipped back to within ``K`` of the
decoded one: the image's pixel lies in that window, so the clip only brings
it closer.

Restoration trades the file's bound for PSNR: every pixel comes back within
``2K`` rather than ``K`` (the decoder cannot know which side of its pixel the
image lies), so a file gets it only when asked (``restore``), never under a
plain maximum error. The decoder applies the filters in integer arithmetic
on the decoded pixels: a restored image is the same on every machine (only
the encoder's fit is floating point, and the file carries its result). Images
are filtered a strip of rows at a time, so memory stays bounded on the
largest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .errors import FormatError

#: Pixel classes: the range of the decoded 3x3 neighbourhood in quantization steps, 0, 1, 2 and 3 or more.
CLASSES = 4
#: The 5x5 window's symmetric groups of offsets around the pixel (one weight each): |dy|, |dx| up to order, both
#: signs. A group's feature is the sum of its pixels' differences from the centre pixel.
_GROUPS = ((0, 1), (1, 1), (0, 2), (1, 2), (2, 2))
#: The features: the centre pixel less mid-grey, then the groups' differences.
TAPS = len(_GROUPS) + 1
#: A class's filter: the features' weights, then the offset, all scaled by 2**SHIFT; the filtered pixel is the centre
#: plus their rounded sum.
COEFFICIENTS = TAPS + 1
SHIFT = 9
#: The largest magnitude of a stored coefficient (a filter's output stays far inside int64).
LIMIT = 1 << 16
#: Rows of image filtered at once (plus the window's reach above and below).
STRIP_ROWS = 256
_REACH = 2
#: A class's filter is kept when it removes more squared error than ``RATE_WEIGHT * step**2`` per bit it costs:
#: what a bit buys at a step's rate-distortion slope (a uniform quantizer's error ``step**2 / 12`` falls 4-fold
#: for each bit a pixel more, a slope of ``2 ln 2 * step**2 / 12``).
RATE_WEIGHT = 2 * math.log(2) / 12


def _offsets(group: tuple[int, int]) -> set[tuple[int, int]]:
    a, b = group
    return {(sy * a, sx * b) for sy in (1, -1) for sx in (1, -1)} | {
        (sx * b, sy * a) for sy in (1, -1) for sx in (1, -1)
    }


_OFFSETS = tuple(tuple(sorted(_offsets(g))) for g in _GROUPS)


@dataclass(frozen=True)
class Restoration:
    """Each pixel class's filter (:data:`COEFFICIENTS` integers) or None, as a file carries them."""

    filters: tuple[tuple[int, ...] | None, ...]

    def __post_init__(self) -> None:
        if len(self.filters) != CLASSES:
            raise FormatError(f"a restoration names {CLASSES} classes, got {len(self.filters)}")
        for f in self.filters:
            if f is not None and (len(f) != COEFFICIENTS or any(abs(c) > LIMIT for c in f)):
                raise FormatError(f"a class's restoration filter is {COEFFICIENTS} integers within +-{LIMIT}")

    @property
    def active(self) -> bool:
        """Whether any class is filtered (a restoration that filters nothing is not written)."""
        return any(f is not None for f in self.filters)

    def fields(self) -> tuple[int, ...]:
        """What the file stores: the mask of filtered classes (bit c: class c), then their coefficients in order."""
        mask = sum(1 << c for c, f in enumerate(self.filters) if f is not None)
        return (mask, *(c for f in self.filters if f is not None for c in f))

    @classmethod
    def from_fields(cls, fields: tuple[int, ...]) -> Restoration:
        """Inverse of :meth:`fields`; :class:`FormatError` for fields no restoration has."""
        if not fields or not 0 < fields[0] < 1 << CLASSES:
            raise FormatError("a restoration's class mask names no class or more than four")
        mask = fields[0]
        if len(fields) != 1 + COEFFICIENTS * bin(mask).count("1"):
            raise FormatError("a restoration's coefficients do not match its class mask")
        values = iter(fields[1:])
        return cls(
            tuple(tuple(next(values) for _ in range(COEFFICIENTS)) if mask >> c & 1 else None for c in range(CLASSES))
        )

    def bits(self, c: int) -> int:
        """What class ``c``'s filter costs in the file: its coefficients as zigzag LEB128 bytes."""
        f = self.filters[c]
        return 0 if f is None else 8 * sum(varint_bytes(zigzag(v)) for v in f)


def zigzag(value: int) -> int:
    """A signed integer as an unsigned one, small magnitudes small: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ..."""
    return 2 * value if value >= 0 else -2 * value - 1


def unzigzag(value: int) -> int:
    """Inverse of :func:`zigzag`."""
    return value >> 1 if value % 2 == 0 else -(value >> 1) - 1


def varint_bytes(value: int) -> int:
    """Bytes of ``value`` (>= 0) as unsigned LEB128."""
    return max(1, -(-value.bit_length() // 7))


NONE = Restoration((None,) * CLASSES)


def _strips(decoded: np.ndarray, max_error: int) -> Iterator[tuple[slice, np.ndarray, np.ndarray, np.ndarray]]:
    """Per strip of rows: its slice, the decoded pixels (int64), each pixel's class and the window's group sums
    (rows, width, :data:`TAPS`)."""
    height, width = decoded.shape
    step = 2 * int(max_error) + 1
    padded_all = np.pad(decoded, _REACH, mode="edge")  # uint8: a strip at a time is widened
    for top in range(0, height, STRIP_ROWS):
        rows = min(STRIP_ROWS, height - top)
        padded = padded_all[top : top + rows + 2 * _REACH].astype(np.int64)

        def at(dy: int, dx: int, padded: np.ndarray = padded, rows: int = rows) -> np.ndarray:
            return padded[_REACH + dy : _REACH + dy + rows, _REACH + dx : _REACH + dx + width]

        near = [at(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        classes = np.minimum((np.max(near, axis=0) - np.min(near, axis=0)) // step, CLASSES - 1)
        centre = at(0, 0)
        sums = np.empty((rows, width, TAPS), np.int64)
        sums[..., 0] = centre - 128
        for g, offsets in enumerate(_OFFSETS):
            sums[..., g + 1] = sum((at(dy, dx) for dy, dx in offsets), np.zeros((rows, width), np.int64))
            sums[..., g + 1] -= len(offsets) * centre
        yield slice(top, top + rows), centre, classes, sums


def _filtered(centre: np.ndarray, sums: np.ndarray, coefficients: tuple[int, ...], max_error: int) -> np.ndarray:
    """A class's filter over pixels (``centre``, their group ``sums``): rounded, within ``max_error`` of the
    decoded pixel and in 0..255."""
    weights = np.array(coefficients[:TAPS], np.int64)
    value = centre + ((sums @ weights + coefficients[TAPS] + (1 << (SHIFT - 1))) >> SHIFT)
    return np.clip(value, np.maximum(centre - max_error, 0), np.minimum(centre + max_error, 255))


def _fit(normal: np.ndarray, target: np.ndarray) -> tuple[int, ...] | None:
    """A class's least-squares filter from its normal equations (features: the group sums and 1), quantized."""
    if normal[-1, -1] < 2 * COEFFICIENTS:  # too few pixels to fit
        return None
    scale = np.sqrt(np.maximum(np.diag(normal), 1e-12))
    solution = np.linalg.lstsq(normal / np.outer(scale, scale), target / scale, rcond=None)[0] / scale
    coefficients = np.rint(solution * (1 << SHIFT))
    if not np.isfinite(coefficients).all() or np.abs(coefficients).max() > LIMIT:
        return None
    return tuple(int(c) for c in coefficients)


def choose(image: np.ndarray, decoded: np.ndarray, max_error: int) -> Restoration:
    """The restoration of a file within ``max_error``: per class, the least-squares filter that brings ``decoded``
    (H, W) uint8 closer to ``image``, kept where it removes more error than its bytes are worth."""
    return choose_and_apply(image, decoded, max_error)[0]


def choose_and_apply(image: np.ndarray, decoded: np.ndarray, max_error: int) -> tuple[Restoration, np.ndarray]:
    """:func:`choose`'s restoration and ``decoded`` with it applied (what :func:`apply` gives), from the pass that
    weighs each class's filter."""
    if max_error < 1:
        return NONE, decoded
    normal = np.zeros((CLASSES, COEFFICIENTS, COEFFICIENTS))
    target = np.zeros((CLASSES, COEFFICIENTS))
    for rows, centre, classes, sums in _strips(decoded, max_error):
        truth = image[rows].astype(np.float64)
        features = np.concatenate([sums, np.ones(sums.shape[:2] + (1,), np.int64)], axis=-1).astype(np.float64)
        for c in range(CLASSES):
            where = classes == c
            chosen = features[where]
            normal[c] += chosen.T @ chosen
            target[c] += chosen.T @ (truth - centre)[where]
    fitted = Restoration(tuple(_fit(normal[c], target[c]) for c in range(CLASSES)))
    gain = np.zeros(CLASSES, np.int64)  # squared error each class's filter removes
    filtered = decoded.copy()  # every fitted class's filter applied; the classes not kept are put back below
    pixel_classes = np.empty(decoded.shape, np.uint8)
    for rows, centre, classes, sums in _strips(decoded, max_error):
        truth = image[rows].astype(np.int64)
        pixel_classes[rows] = classes
        strip = filtered[rows]
        for c, f in enumerate(fitted.filters):
            if f is None:
                continue
            where = classes == c
            before = ((centre[where] - truth[where]) ** 2).sum()
            strip[where] = after = _filtered(centre[where], sums[where], f, max_error)
            gain[c] += before - ((after - truth[where]) ** 2).sum()
    worth = RATE_WEIGHT * (2 * max_error + 1) ** 2
    kept = Restoration(
        tuple(f if f is not None and gain[c] > worth * fitted.bits(c) else None for c, f in enumerate(fitted.filters))
    )
    dropped = [c for c in range(CLASSES) if kept.filters[c] is None and fitted.filters[c] is not None]
    if dropped:
        back = np.isin(pixel_classes, dropped)
        filtered[back] = decoded[back]
    return kept, filtered


def apply(decoded: np.ndarray, max_error: int, restoration: Restoration) -> np.ndarray:
    """``decoded`` (H, W) uint8 with each class's filter applied: what a restored file decodes to."""
    if not restoration.active or max_error < 1:
        return decoded
    out = decoded.copy()
    for rows, centre, classes, sums in _strips(decoded, max_error):
        strip = out[rows]
        for c, f in enumerate(restoration.filters):
            if f is not None:
                where = classes == c
                strip[where] = _filtered(centre[where], sums[where], f, max_error)
    return out
