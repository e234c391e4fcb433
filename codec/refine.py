"""The refinement layer: the pixels the autoencoder missed, coded to within a bound.

A refined file carries, after the autoencoder's latents (or alone), every
pixel's *residual* ``r = x - base`` to within a maximum error ``K``: the base
is the autoencoder's decoded image, or mid-grey (128) when the file has no
autoencoder layer. The decoded pixel is ``clip(base + r~)`` with ``|r - r~| <=
K``, so the PSNR is at least ``10 log10(255^2 / K^2)`` whatever the image (42.1
dB at ``K = 2``; errors spread over -2..2 give about 45), and ``K = 0`` is lossless.
This is what gives ``aec`` no quality ceiling.

The residuals are coded row by row, closed-loop (near-lossless DPCM, as JPEG-LS
does): each pixel is predicted from the already-coded residuals around it by a
*trained* integer linear predictor, the prediction error is quantized with the
step ``2K + 1``, and the quantized error is entropy-coded with a *trained* table
chosen by an integer context (the quantized errors and gradients around it). A
row is coded in two passes, its even columns from the rows above, then its odd
columns from their coded left and right neighbours too, so each pass is one
vectorized call. Everything the decoder computes from the stream (prediction,
context, table) is integer arithmetic on decoded symbols, so the symbols decode
the same on every machine. The base image is the autoencoder's float output: a
pixel may differ by one grey level on a machine that rounds it differently,
never more, and a file without an autoencoder layer decodes bit-exactly
everywhere.

A quantized error ``q`` (``|q| <= 510``) is coded as its *category* (0 for 0,
otherwise ``bit_length(|q|)`` with its sign: 19 symbols) under the context's
table, then the ``category - 2`` lower bits of ``|q|`` (its leading 1 is implied) as fair
binary symbols, most significant first.
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

#: Magnitude categories: ``bit_length(|q|)`` for ``|q| <= 510``.
CATEGORIES = 9
SYMBOLS = 2 * CATEGORIES + 1
#: Base of a file without an autoencoder layer.
MID_GREY = 128
#: Predictor coefficients are integers scaled by ``2**PREDICTOR_SHIFT``.
PREDICTOR_SHIFT = 6
#: Modes (first axis of the model's arrays): 0 no autoencoder layer, 1 residual of the autoencoder's image.
MODES = 2
#: Passes of a row: 0 its even columns, 1 its odd columns.
PASSES = 2
#: Upper bounds of the gradient classes (grey levels) that each have their own predictor; the last is open.
PREDICTOR_CLASSES = (0, 3, 8, 20, 50)
#: Upper bounds of the error-energy bins and of the gradient bins (in quantization steps); the last bin is open.
ENERGY_BINS = (0, 1, 2, 4, 7, 11, 19)
GRADIENT_BINS = (0, 2, 4, 8, 16)
CONTEXTS = (len(ENERGY_BINS) + 1) * (len(GRADIENT_BINS) + 1)
#: Neighbours each pass predicts from: offsets (row, column) into the coded residuals.
FEATURES = (
    ((-1, 0), (-1, -1), (-1, 1), (-2, 0)),  # even columns: N, NW, NE, NN
    ((0, -1), (0, 1), (-1, 0), (-1, -1), (-1, 1)),  # odd columns: W, E, N, NW, NE
)
#: Neighbours whose quantized errors make each pass's error energy: its own but NN.
ENERGY_NEIGHBOURS = tuple(tuple(at for at in features if at != (-2, 0)) for features in FEATURES)
#: How the trained tables adapt to the image (:mod:`codec.adaptive`).
ADAPTATION = Adaptation(prior_total=256, increment=16, limit=1 << 13)
#: The fair binary row the magnitude bits are coded with.
_BIT = np.full(2, 1 << (PRECISION - 1), dtype=np.uint32)
#: bit_length of 0..511, exactly.
_CATEGORY = np.array([int(v).bit_length() for v in range(512)], dtype=np.int32)
#: The refinement model's role in the model store (:mod:`codec.store`).
ROLE = "refine"


def step_of(max_error: int) -> int:
    """The quantization step of a maximum error: ``2K + 1``."""
    return 2 * int(max_error) + 1


def psnr_floor(max_error: int) -> float:
    """The PSNR no image coded at ``max_error`` can fall below (infinite at 0)."""
    return float("inf") if max_error == 0 else float(10.0 * np.log10(255.0**2 / max_error**2))


@dataclass(frozen=True)
class RefineModel:
    """The trained refinement model: predictors and context tables, integers only."""

    predictors: tuple[np.ndarray, ...]  # per mode * PASSES + pass: (classes, F) integer weights, scaled 2**SHIFT
    tables: np.ndarray  # (MODES, PASSES, CONTEXTS, SYMBOLS) integer frequencies summing to 2**PRECISION

    def __post_init__(self) -> None:
        if self.tables.shape != (MODES, PASSES, CONTEXTS, SYMBOLS):
            raise ModelError(
                f"refinement tables have shape {self.tables.shape}, not {(MODES, PASSES, CONTEXTS, SYMBOLS)}"
            )
        if (self.tables.sum(axis=-1) != 1 << PRECISION).any() or (self.tables < 1).any():
            raise ModelError("refinement tables are not integer frequencies summing to 2**16")
        want = [(len(PREDICTOR_CLASSES) + 1, len(FEATURES[p])) for _ in range(MODES) for p in range(PASSES)]
        if [w.shape for w in self.predictors] != want:
            raise ModelError("refinement predictors do not match the format's neighbours")

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that are the model (what its file holds and its digest covers)."""
        out = {"tables": self.tables.astype(np.uint32)}
        for i, w in enumerate(self.predictors):
            out[f"predictor{i}"] = w.astype(np.int32)
        return out

    @functools.cached_property
    def digest(self) -> str:
        h = hashlib.sha256(b"aec-refine-1")
        hash_arrays(h, self.arrays())
        return h.hexdigest()

    @property
    def model_id(self) -> int:
        """The 12-bit id a refined file names its refinement model by."""
        return int(self.digest[:3], 16)

    def predictor(self, mode: int, pass_: int) -> np.ndarray:
        return self.predictors[mode * PASSES + pass_]


def save(model: RefineModel, folder: Path, metadata: dict[str, object]) -> Path:
    """Store the model (with its metadata) in ``folder``'s model store as the preset ``refine``."""
    path = save_table_model(model, folder, ROLE, metadata)
    _load.cache_clear()
    return path


def _built(arrays: dict[str, np.ndarray]) -> RefineModel:
    predictors = tuple(arrays[f"predictor{i}"].astype(np.int64) for i in range(MODES * PASSES))
    return RefineModel(predictors=predictors, tables=arrays["tables"].astype(np.uint32))


@functools.cache
def _load(path: Path) -> RefineModel:
    """The model in ``path``, checked against the digest its metadata records (read once per path)."""
    return load_table_model(path, _built, "refinement model")


def load(folder: Path | None = None, model_id: int | None = None) -> RefineModel:
    """The installed refinement model (or the stored one of ``model_id``); :class:`ModelError` if it is missing
    or damaged."""
    return _load(table_model_path(ROLE, "refinement model", folder, model_id))


def installed_id() -> int | None:
    """The installed refinement model's id, None when there is none."""
    try:
        return load().model_id
    except ModelError:
        return None


def _bins(values: np.ndarray, bounds: tuple[int, ...]) -> np.ndarray:
    return np.searchsorted(np.asarray(bounds), values, side="left").astype(np.int64)


def predictor_classes(gradient: np.ndarray) -> np.ndarray:
    """The class (n,) of each pixel's gradient (:func:`gradients`): which of the trained predictors it takes."""
    return _bins(gradient, PREDICTOR_CLASSES)


class _Rows:
    """The closed loop shared by encoder and decoder: coded residuals and errors, row by row."""

    PAD = 2  # rows above and columns either side of the image, read as the mode's outside value

    def __init__(self, model: RefineModel, base: np.ndarray, max_error: int, mode: int) -> None:
        self.height, self.width = base.shape
        self.step = step_of(max_error)
        self.max_error = int(max_error)
        self.mode = mode
        # Adaptive counts per pass and context, starting from the trained tables (integers throughout).
        self.counts = AdaptiveCounts(model.tables[mode], ADAPTATION)
        self.weights = [model.predictor(mode, p) for p in range(PASSES)]
        # Coded residuals and |quantized errors|, zero-padded so that every neighbour can be read.
        # Outside the image reads as black (mode 0: -128 around mid-grey) or as no residual (mode 1).
        self.outside = -MID_GREY if mode == 0 else 0
        # int16 holds every value (-255..255, errors 0..255) in a quarter of int64's memory; arithmetic is int64.
        self.residual = np.full((self.height + self.PAD, self.width + 2 * self.PAD), self.outside, dtype=np.int16)
        self.error = np.zeros_like(self.residual)
        self.base = base.astype(np.int16)

    def bounds(self, y: int, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The range residuals and predictions are clipped to: what the pixel can be in mode 0 (its base is the
        constant mid-grey), -255..255 in mode 1, never the base itself, which may differ by a grey level on
        another machine: the symbols' contexts must not."""
        if self.mode == 0:
            base = self.base[y, xs].astype(np.int64)
            return -base, 255 - base
        return np.full(len(xs), -255, dtype=np.int64), np.full(len(xs), 255, dtype=np.int64)

    def columns(self, pass_: int) -> np.ndarray:
        return np.arange(pass_, self.width, 2)

    def predict(self, y: int, pass_: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Prediction, context and the residual's range (low, high) of one row's pass."""
        xs = self.columns(pass_)
        row, cols = y + self.PAD, xs + self.PAD
        if pass_ == 1:  # the last odd column has no right neighbour: read its left one twice
            self.residual[row, self.width + self.PAD] = self.residual[row, self.width + self.PAD - 1]
        features = [self.residual[row + dy, cols + dx] for dy, dx in FEATURES[pass_]]
        neighbours = np.stack(features, axis=1).astype(np.int64)
        energy = sum(self.error[row + dy, cols + dx].astype(np.int64) for dy, dx in ENERGY_NEIGHBOURS[pass_])
        gradient = gradients(neighbours)
        if pass_ == 1:
            self.residual[row, self.width + self.PAD] = self.outside
        low, high = self.bounds(y, xs)
        weights = self.weights[pass_][predictor_classes(gradient)]
        rounding = 1 << (PREDICTOR_SHIFT - 1)
        prediction = np.clip(((neighbours * weights).sum(axis=1) + rounding) >> PREDICTOR_SHIFT, low, high)
        context = _bins(energy, ENERGY_BINS) * (len(GRADIENT_BINS) + 1) + _bins(gradient // self.step, GRADIENT_BINS)
        return prediction, context, low, high

    def commit(
        self, y: int, pass_: int, prediction: np.ndarray, q: np.ndarray, low: np.ndarray, high: np.ndarray
    ) -> None:
        xs = self.columns(pass_) + self.PAD
        self.residual[y + self.PAD, xs] = np.clip(prediction + q * self.step, low, high)
        self.error[y + self.PAD, xs] = np.abs(q)

    def tables(self, pass_: int, context: np.ndarray) -> np.ndarray:
        """The (n, SYMBOLS) frequency rows the pass's symbols are coded with: the contexts' current counts."""
        return self.counts.frequencies((np.full(len(context), pass_), context))

    def adapt(self, pass_: int, context: np.ndarray, symbols: np.ndarray) -> None:
        """Count the pass's symbols in their contexts (after the pass is coded); halve full contexts."""
        self.counts.update((np.full(len(context), pass_), context), symbols)

    def reconstruction(self) -> np.ndarray:
        residual = self.residual[self.PAD :, self.PAD : self.PAD + self.width]
        return np.clip(self.base + residual, 0, 255).astype(np.uint8)


def gradients(neighbours: np.ndarray) -> np.ndarray:
    """The local gradient of each pixel (n,) from its neighbours (n, F): the sum of ``|n_0 - n_i|``."""
    first = neighbours[:, :1]
    return np.abs(first - neighbours[:, 1:]).sum(axis=1)


def category_symbols(q: np.ndarray) -> np.ndarray:
    category = _CATEGORY[np.abs(q)]
    return np.where(q == 0, 0, 2 * category - (q > 0)).astype(np.int32)


def _bit_matrix(category: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of the (n, CATEGORIES - 1) bit slots each magnitude uses (most significant first) and their shifts."""
    count = np.maximum(category - 1, 0)
    slots = np.arange(CATEGORIES - 1)
    used = slots[None, :] < count[:, None]
    shift = count[:, None] - 1 - slots[None, :]
    return used, shift


def _bits_of(q: np.ndarray) -> np.ndarray:
    magnitude = np.abs(q)
    category = _CATEGORY[magnitude]
    used, shift = _bit_matrix(category)
    bits = (magnitude[:, None] >> np.maximum(shift, 0)) & 1
    return bits[used].astype(np.int32)


def _quantize(residual: np.ndarray, prediction: np.ndarray, max_error: int) -> np.ndarray:
    error = residual - prediction
    return np.sign(error) * ((np.abs(error) + max_error) // step_of(max_error))


def coded_rows(
    model: RefineModel, image: np.ndarray, base: np.ndarray, max_error: int, mode: int
) -> Generator[tuple[int, np.ndarray, np.ndarray, np.ndarray], None, np.ndarray]:
    """The closed loop of the encoder: per row pass, ``(pass, contexts, quantized errors)``.

    After the last one, ``image`` as decoded is what the generator returns.
    """
    rows = _Rows(model, base, max_error, mode)
    for y in range(rows.height):
        residual = image[y].astype(np.int64) - rows.base[y]
        for pass_ in range(min(PASSES, rows.width)):
            prediction, context, low, high = rows.predict(y, pass_)
            q = _quantize(residual[rows.columns(pass_)], prediction, rows.max_error)
            rows.commit(y, pass_, prediction, q, low, high)
            yield pass_, context, q, rows.tables(pass_, context)
            rows.adapt(pass_, context, category_symbols(q))
        progress.report("refinement", y + 1, rows.height)
    return rows.reconstruction()


def encode(
    model: RefineModel, image: np.ndarray, base: np.ndarray, max_error: int, mode: int
) -> tuple[bytes, np.ndarray]:
    """The refinement stream of ``image`` over ``base`` (both (H, W) uint8) and the image it decodes to.

    Each row pass is range-coded as it comes, so memory does not grow with the
    image; a short stream's tables are kept to cut it (:meth:`coder.StreamEncoder.finish`).
    """
    encoder = coder.StreamEncoder()
    loop = coded_rows(model, image, base, max_error, mode)
    while True:
        try:
            _, _, q, tables = next(loop)
        except StopIteration as done:
            decoded: np.ndarray = done.value
            break
        encoder.encode(category_symbols(q), tables)
        encoder.encode(_bits_of(q), _BIT)
    return encoder.finish(), decoded


def decode(model: RefineModel, data: bytes, base: np.ndarray, max_error: int, mode: int) -> np.ndarray:
    """Inverse of :func:`encode`: the refined image from the stream and the same base."""
    rows = _Rows(model, base, max_error, mode)
    stream = coder.StreamDecoder(data)
    for y in range(rows.height):
        for pass_ in range(min(PASSES, rows.width)):
            prediction, context, low, high = rows.predict(y, pass_)
            symbol = stream.decode(len(prediction), rows.tables(pass_, context))
            negative = symbol % 2 == 0
            category = (symbol + 1) // 2
            used, shift = _bit_matrix(category)
            bits = stream.decode(int(used.sum()), _BIT) if used.any() else np.zeros(0, np.int32)
            slots = np.zeros(used.shape, dtype=np.int64)
            slots[used] = bits
            magnitude = np.where(category > 0, 1 << np.maximum(category - 1, 0), 0) + (
                (slots << np.maximum(shift, 0)) * used
            ).sum(axis=1)
            q = np.where(negative & (category > 0), -magnitude, magnitude)
            if ((prediction + q * rows.step < low - rows.step) | (prediction + q * rows.step > high + rows.step)).any():
                raise CorruptFileError("refinement payload decodes outside the image's range")
            rows.commit(y, pass_, prediction, q, low, high)
            rows.adapt(pass_, context, symbol)
        progress.report("refinement", y + 1, rows.height)
    return rows.reconstruction()
