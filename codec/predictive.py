"""The predictive pixel coder: any grayscale image, every pixel exact or within a bound, no autoencoder.

Each pixel is predicted by a *blend* of :data:`PREDICTORS` classic predictors
(N, W, the plane W + N - NW, LOCO-I's median, ...), each weighted by how well it
predicted the pixel's already coded neighbours: weight ``2**30 // (1 + c)**3``,
``c`` the predictor's absolute errors at W, N, NW, NE, WW and NN, W and N
counted twice. Smooth photos lean on the plane, strokes on whichever predictor
follows their direction, without a table per kind of image.

The quantized prediction error ``q`` (near-lossless: step ``2K + 1``, as
JPEG-LS) is coded as a symbol of :data:`SYMBOLS` (0, or its magnitude's bin of
:data:`MAGNITUDE_EDGES` with its sign) under the table of its *context* (the
blend's recent errors around the pixel, the predictors' disagreement), then
the magnitude's place in its bin as fair bits. The sign is flipped where the
neighbours' errors lean negative, so a table learns skew as well as spread.
Tables start from the trained model (:mod:`codec.training.predictive_fit`) and
adapt to the image (:mod:`codec.adaptive`).

Pixels are coded along anti-diagonals ``2y + x = t``: every pixel of one sees
its W, WW, N, NN, NW, NE and NNE neighbours coded already, so a diagonal is one
vectorized step. Everything is integer arithmetic on decoded symbols: a file
decodes to the same pixels on every machine.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import coder, progress
from .adaptive import Adaptation, AdaptiveCounts
from .coder import PRECISION
from .errors import CorruptFileError, ModelError
from .models import hash_arrays, load_table_model, save_table_model, table_model_path

#: Upper bounds (exclusive) of the magnitude bins of ``|q|``; a bin of width ``2**b`` codes ``b`` fair bits.
MAGNITUDE_EDGES = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
BINS = len(MAGNITUDE_EDGES) - 1
#: Symbol 0 is ``q = 0``; bin ``b >= 1`` is ``2b - 1`` for ``q > 0`` and ``2b`` for ``q < 0``.
SYMBOLS = 2 * BINS - 1
#: Neighbours (row, column) whose errors weigh the predictors and make the context, and their weights.
NEIGHBOURS = ((0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0))
NEIGHBOUR_WEIGHTS = (2, 2, 1, 1, 1, 1)
PREDICTORS = 12
#: A predictor's weight is ``2**WEIGHT_SHIFT // (1 + cost)**3 + 1`` (never 0).
WEIGHT_SHIFT = 30
#: Upper bounds of the context's bins: the blend's errors around the pixel (in quantization steps) and the spread
#: of the predictions (largest - smallest, in steps); the last bin of each is open.
ACTIVITY_BINS = (0, 1, 2, 3, 5, 7, 10, 14, 20, 28, 40, 56, 80, 112, 160, 230, 320)
SPREAD_BINS = (1, 5, 15, 39)
CONTEXTS = (len(ACTIVITY_BINS) + 1) * (len(SPREAD_BINS) + 1)
#: The second context, the *texture*: which of N, W, NW and NE lie above the prediction (16 patterns), times the
#: blend's errors around the pixel in coarser bins. A symbol's row is the mean of its two contexts' rows.
TEXTURE_ACTIVITY_BINS = (0, 2, 6, 16, 40)
TEXTURES = 16 * (len(TEXTURE_ACTIVITY_BINS) + 1)
#: Rows of the model's table: the contexts, then the textures.
TABLE_ROWS = CONTEXTS + TEXTURES
#: How the trained tables adapt to the image (chosen on held-out training images: increments of 16, 32, 64 and 128,
#: limits 2**13 to 2**16, prior weights 512 to 2048).
ADAPTATION = Adaptation(prior_total=1024, increment=64, limit=1 << 15)
#: Rows above and columns either side of the image that neighbours may read (black, no error).
PAD = 2
#: The model's role in the model store (:mod:`codec.store`).
ROLE = "predictive"

_BIN = np.repeat(np.arange(BINS), np.diff(MAGNITUDE_EDGES))  # the bin of each magnitude 0..255
_LOW = np.array(MAGNITUDE_EDGES[:-1], dtype=np.int64)
_RAW_BITS = np.log2(np.diff(MAGNITUDE_EDGES)).astype(np.int64)  # fair bits after each bin's symbol
_SYMBOL_BIN = np.array([0] + [(s + 1) // 2 for s in range(1, SYMBOLS)], dtype=np.int64)
_SYMBOL_BITS = _RAW_BITS[_SYMBOL_BIN]
_BIT = np.full(2, 1 << (PRECISION - 1), dtype=np.uint32)
_WEIGHTS = np.array(NEIGHBOUR_WEIGHTS, dtype=np.int64)[:, None]


@dataclass(frozen=True)
class PredictiveModel:
    """The trained predictive model: one integer frequency row per context and per texture."""

    tables: np.ndarray  # (TABLE_ROWS, SYMBOLS) integer frequencies summing to 2**PRECISION

    def __post_init__(self) -> None:
        if self.tables.shape != (TABLE_ROWS, SYMBOLS):
            raise ModelError(f"predictive tables have shape {self.tables.shape}, not {(TABLE_ROWS, SYMBOLS)}")
        if (self.tables.sum(axis=-1) != 1 << PRECISION).any() or (self.tables < 1).any():
            raise ModelError("predictive tables are not integer frequencies summing to 2**16")

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that are the model (what its file holds and its digest covers)."""
        return {"tables": self.tables.astype(np.uint32)}

    @functools.cached_property
    def digest(self) -> str:
        h = hashlib.sha256(b"aec-predictive-1")
        hash_arrays(h, self.arrays())
        return h.hexdigest()

    @property
    def model_id(self) -> int:
        """The 12-bit id a file names the model by."""
        return int(self.digest[:3], 16)


def save(model: PredictiveModel, folder: Path, metadata: dict[str, object]) -> Path:
    """Store the model (with its metadata) in ``folder``'s model store as the preset ``predictive``."""
    path = save_table_model(model, folder, ROLE, metadata)
    _load.cache_clear()
    return path


@functools.cache
def _load(path: Path) -> PredictiveModel:
    """The model in ``path``, checked against the digest its metadata records (read once per path)."""
    return load_table_model(
        path, lambda arrays: PredictiveModel(arrays["tables"].astype(np.uint32)), "predictive model"
    )


def load(folder: Path | None = None, model_id: int | None = None) -> PredictiveModel:
    """The installed predictive model (or the stored one of ``model_id``); :class:`ModelError` if missing or damaged."""
    return _load(table_model_path(ROLE, "predictive model", folder, model_id))


def _bins(values: np.ndarray, bounds: tuple[int, ...]) -> np.ndarray:
    return np.searchsorted(np.asarray(bounds), values, side="left")


def symbols_of(q: np.ndarray) -> np.ndarray:
    """The symbol of each quantized error (already sign-flipped)."""
    b = _BIN[np.abs(q)]
    return np.where(q == 0, 0, 2 * b - (q > 0)).astype(np.int32)


def _offset_bits(q: np.ndarray) -> np.ndarray:
    """Each magnitude's place in its bin as bits, most significant first, concatenated over the pixels."""
    magnitude = np.abs(q)
    b = _BIN[magnitude]
    count = _RAW_BITS[b]
    if not count.any():
        return np.zeros(0, np.int32)
    slots = np.arange(int(count.max()))
    used = slots[None, :] < count[:, None]
    shift = np.maximum(count[:, None] - 1 - slots[None, :], 0)
    bits = ((magnitude - _LOW[b])[:, None] >> shift) & 1
    return bits[used].astype(np.int32)


def _magnitudes(symbol: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`symbols_of` and :func:`_offset_bits`: ``|q|`` of each symbol."""
    b = _SYMBOL_BIN[symbol]
    count = _RAW_BITS[b]
    offset = np.zeros(len(symbol), np.int64)
    if len(bits):
        slots = np.arange(int(count.max()))
        used = slots[None, :] < count[:, None]
        placed = np.zeros(used.shape, np.int64)
        placed[used] = bits
        offset = (placed << np.maximum(count[:, None] - 1 - slots[None, :], 0) * used).sum(axis=1)
    return np.where(symbol == 0, 0, _LOW[b] + offset)


def diagonal_count(height: int, width: int) -> int:
    """How many anti-diagonals an image has: the coder's steps."""
    return 2 * (height - 1) + width


def diagonals(height: int, width: int) -> Generator[np.ndarray, None, None]:
    """Per anti-diagonal ``2y + x = t``, in coding order, the flat indices of its pixels in the padded planes."""
    stride = width + 2 * PAD
    for t in range(diagonal_count(height, width)):
        ys = np.arange(max(0, (t - width + 2) // 2), min(height - 1, t // 2) + 1)
        yield (ys + PAD) * stride + (t - 2 * ys) + PAD


class _Plane:
    """The closed loop shared by encoder and decoder: decoded pixels and every predictor's errors so far.

    Pixels are grey levels 0..``top`` (255, or the last index of a packed image's grey levels).
    """

    def __init__(self, height: int, width: int, max_error: int, top: int = 255) -> None:
        self.height, self.width, self.top = height, width, top
        self.step = 2 * int(max_error) + 1
        self.stride = width + 2 * PAD
        size = (height + PAD) * self.stride
        self.pixels = np.zeros(size, np.uint8)  # decoded; outside reads as black
        self.errors = np.zeros((PREDICTORS, size), np.uint8)  # |decoded - prediction| of each predictor
        self.blend_error = np.zeros(size, np.int16)  # decoded - blended prediction (signed)
        self.at = {name: dy * self.stride + dx for name, (dy, dx) in _OFFSETS.items()}
        self.around = np.array([dy * self.stride + dx for dy, dx in NEIGHBOURS])[:, None]

    def predict(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Blended prediction, contexts (2, n) (context, then texture row), sign flip (+-1) and every predictor's
        prediction at the pixels ``idx``."""
        w, ww, n, nn, nw, ne, nne = (self.pixels[idx + self.at[k]].astype(np.int64) for k in _OFFSETS)
        plane = w + n - nw
        low, high = np.minimum(w, n), np.maximum(w, n)
        median = np.where(nw >= high, low, np.where(nw <= low, high, plane))
        preds = np.stack(
            [
                n,
                w,
                plane,
                (w + ne + 1) >> 1,
                median,
                n + ne - nne,
                w + ne - n,
                (2 * w + 2 * n + ne - nw + 2) >> 2,
                2 * n - nn,
                2 * w - ww,
                (n + ne + 1) >> 1,
                ne,
            ]
        )
        np.clip(preds, 0, self.top, out=preds)
        around = idx[None, :] + self.around  # (neighbours, n)
        cost = (self.errors[:, around] * _WEIGHTS).sum(axis=1)  # (PREDICTORS, n)
        weight = (1 << WEIGHT_SHIFT) // (1 + cost) ** 3 + 1
        total = weight.sum(axis=0)
        blend = ((weight * preds).sum(axis=0) + total // 2) // total
        near = self.blend_error[around].astype(np.int64)
        activity = (np.abs(near) * _WEIGHTS).sum(axis=0) // self.step
        spread = (preds.max(axis=0) - preds.min(axis=0)) // self.step
        context = _bins(activity, ACTIVITY_BINS) * (len(SPREAD_BINS) + 1) + _bins(spread, SPREAD_BINS)
        pattern = (n > blend) * 1 + (w > blend) * 2 + (nw > blend) * 4 + (ne > blend) * 8
        texture = pattern * (len(TEXTURE_ACTIVITY_BINS) + 1) + _bins(activity, TEXTURE_ACTIVITY_BINS)
        flip = np.where(near[0] + near[1] < 0, -1, 1)  # the W and N errors lean negative: code -q
        return blend, np.stack([context, CONTEXTS + texture]), flip, preds

    def commit(self, idx: np.ndarray, blend: np.ndarray, preds: np.ndarray, q: np.ndarray) -> None:
        """Store the decoded pixels ``clip(blend + q * step, 0, top)`` and every predictor's error at them."""
        decoded = np.clip(blend + q * self.step, 0, self.top)
        self.pixels[idx] = decoded
        self.errors[:, idx] = np.abs(decoded - preds)
        self.blend_error[idx] = decoded - blend

    def image(self) -> np.ndarray:
        rows = self.pixels.reshape(self.height + PAD, self.stride)
        return rows[PAD:, PAD : PAD + self.width].copy()


#: The neighbours the predictors read, as (row, column) offsets.
_OFFSETS = {"w": (0, -1), "ww": (0, -2), "n": (-1, 0), "nn": (-2, 0), "nw": (-1, -1), "ne": (-1, 1), "nne": (-2, 1)}


def coded_diagonals(
    image: np.ndarray, max_error: int, top: int = 255
) -> Generator[tuple[np.ndarray, np.ndarray], None, np.ndarray]:
    """The encoder's closed loop over ``image`` (grey levels 0..``top``): per diagonal, its pixels' contexts (2, n)
    and quantized errors (sign flips applied), once the diagonal is coded. Returns the image as decoded."""
    height, width = image.shape
    plane = _Plane(height, width, max_error, top)
    flat = np.pad(image, ((PAD, 0), (PAD, PAD))).ravel()
    total = diagonal_count(height, width)
    for i, idx in enumerate(diagonals(height, width)):
        blend, contexts, flip, preds = plane.predict(idx)
        error = flat[idx].astype(np.int64) - blend
        q = np.sign(error) * ((np.abs(error) + max_error) // plane.step)
        plane.commit(idx, blend, preds, q)
        yield contexts, q * flip
        if i % 64 == 63:
            progress.report("predictive", i + 1, total)
    return plane.image()


def _frequencies(counts: AdaptiveCounts, contexts: np.ndarray) -> np.ndarray:
    """The (n, SYMBOLS) rows the pixels are coded with: the mean of their two rows' current frequencies (integer:
    rounded down, what that leaves added to the largest entry)."""
    mixed = (counts.frequencies(contexts[0]) + counts.frequencies(contexts[1])) >> 1
    mixed[np.arange(len(mixed)), np.argmax(mixed, axis=1)] += (1 << PRECISION) - mixed.sum(axis=1)
    return mixed


def _adapt(counts: AdaptiveCounts, contexts: np.ndarray, symbols: np.ndarray) -> None:
    counts.update(contexts[0], symbols)
    counts.update(contexts[1], symbols)


def grey_levels(image: np.ndarray) -> np.ndarray:
    """The grey levels ``image`` uses, ascending."""
    return np.flatnonzero(np.bincount(image.ravel(), minlength=256))


def _packable(levels: np.ndarray, max_error: int) -> bool:
    """Whether coding the image as indices into its grey levels may pay: lossless, with gaps between its levels."""
    return max_error == 0 and len(levels) < int(levels[-1]) - int(levels[0]) + 1


def _encode(
    model: PredictiveModel, image: np.ndarray, max_error: int, levels: np.ndarray | None, budget: int | None = None
) -> tuple[bytes, np.ndarray] | None:
    counts = AdaptiveCounts(model.tables, ADAPTATION)
    encoder = coder.StreamEncoder()
    packed = np.zeros(256, np.int32)
    if levels is not None:
        packed[levels] = 1
        image = np.searchsorted(levels, image).astype(np.uint8)
    encoder.encode(np.array([levels is not None], np.int32), _BIT)
    if levels is not None:
        encoder.encode(packed, _BIT)
    loop = coded_diagonals(image, max_error, 255 if levels is None else len(levels) - 1)
    while True:
        try:
            contexts, q = next(loop)
        except StopIteration as done:
            decoded: np.ndarray = done.value
            break
        symbols = symbols_of(q)
        encoder.encode(symbols, _frequencies(counts, contexts))
        encoder.encode(_offset_bits(q), _BIT)
        _adapt(counts, contexts, symbols)
        if budget is not None and encoder.size() > budget:
            loop.close()
            return None
    return encoder.finish(), decoded if levels is None else levels[decoded].astype(np.uint8)


def encode(model: PredictiveModel, image: np.ndarray, max_error: int) -> tuple[bytes, np.ndarray]:
    """The stream of ``image`` ((H, W) uint8), every pixel within ``max_error``, and the image it decodes to."""
    coded = encode_within_budget(model, image, max_error, None)
    assert coded is not None  # no budget to pass
    return coded


def encode_within_budget(
    model: PredictiveModel, image: np.ndarray, max_error: int, budget: int | None
) -> tuple[bytes, np.ndarray] | None:
    """:func:`encode`, or None once the stream passes ``budget`` bytes (when another coder's file is known to be
    smaller).

    A lossless image with gaps between its grey levels is also coded *packed* (its levels in the stream, then
    each pixel's index among them); the smaller stream is kept.
    """
    levels = grey_levels(image)
    plain = _encode(model, image, max_error, None, budget)
    if not _packable(levels, max_error):
        return plain
    # A stream's last words may be cut by a few bytes when finished: the packed one stops only when surely larger.
    packed = _encode(model, image, max_error, levels, budget if plain is None else len(plain[0]) + 8)
    if packed is None or (plain is not None and len(plain[0]) <= len(packed[0])):
        return plain
    return packed


def decode(model: PredictiveModel, data: bytes, height: int, width: int, max_error: int) -> np.ndarray:
    """Inverse of :func:`encode`."""
    counts = AdaptiveCounts(model.tables, ADAPTATION)
    stream = coder.StreamDecoder(data)
    levels = None
    if stream.decode(1, _BIT)[0]:
        levels = np.flatnonzero(stream.decode(256, _BIT))
        if not len(levels) or max_error:
            raise CorruptFileError("predictive payload's grey levels are damaged")
    plane = _Plane(height, width, max_error, 255 if levels is None else len(levels) - 1)
    total = diagonal_count(height, width)
    for i, idx in enumerate(diagonals(height, width)):
        blend, contexts, flip, preds = plane.predict(idx)
        symbols = stream.decode(len(idx), _frequencies(counts, contexts)).astype(np.int64)
        count = int(_SYMBOL_BITS[symbols].sum())
        bits = stream.decode(count, _BIT) if count else np.zeros(0, np.int32)
        magnitude = _magnitudes(symbols, bits)
        q = np.where(symbols % 2 == 0, -magnitude, magnitude) * flip
        reach = blend + q * plane.step
        if ((reach < -plane.step) | (reach > plane.top + plane.step)).any():
            raise CorruptFileError("predictive payload decodes outside the image's range")
        plane.commit(idx, blend, preds, q)
        _adapt(counts, contexts, symbols)
        if i % 64 == 63:
            progress.report("predictive", i + 1, total)
    image = plane.image()
    return image if levels is None else levels[image].astype(np.uint8)
