"""The lossless pixel model: every pixel back exactly, in two stages of trained integer tables.

A pixel's value lies in one of :data:`CLASSES` *classes* of grey levels
(:data:`CLASS_STARTS`: black, faint, ..., saturated ink). The model codes an
image in two stages, both with frozen integer frequency tables counted on
MNIST training digits (:mod:`codec.training.lossless_fit`):

1. **the class map**, row by row, each row in two passes (its even columns,
   then its odd ones), a pixel's class with the table of its *context*: the
   classes of six already coded neighbours (:data:`CLASS_NEIGHBOURS`). A pass
   is one vectorized step, for one image or for a batch in lockstep;
2. **the values**: for every pixel whose class holds more than one grey level,
   its offset within the class, with the table of its own class and the
   classes of its four neighbours W, E, N and S: the whole class map is known
   by then, so all offsets are one coder call.

**Near-lossless** (a maximum error ``K`` >= 1): a pixel within ``K`` of black is
coded as black (class 0), and an offset ``o`` is coded as ``o // (2K + 1)``
with the value table's rows summed over each run of ``2K + 1`` offsets (none
is coded from ``K = 32``, where one run holds every offset); it decodes to the
middle of its run (the class's last level if that is nearer).
Every pixel comes back within ``K``.

Everything the decoder computes is integer arithmetic on decoded symbols, so
a file decodes to the same pixels on every machine. The tables are static
(not adapted to the image), which is what lets a batch of images decode in
lockstep. Digits are what the tables know: on other images
:func:`codec.encoder.encode_within` keeps the predictive coder's file
(:mod:`codec.predictive`) when it is smaller.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from . import coder
from .coder import PRECISION
from .errors import CorruptFileError, ModelError
from .models import (
    hash_arrays,
    load_table_model,
    model_id_of,
    save_table_model,
    table_model_ids,
    table_model_path,
)

#: First grey level of each class; the last class ends at 255.
CLASS_STARTS = (0, 1, 16, 64, 128, 192, 240, 253)
CLASSES = len(CLASS_STARTS)
#: The most grey levels one class holds: the alphabet of the offsets.
OFFSETS = 64
#: Neighbours (row, column) whose classes are a class's context, per pass: even columns see the rows above,
#: odd columns also their row's even columns either side. Outside the image reads as class 0 (black).
CLASS_NEIGHBOURS = (
    ((-1, 0), (-1, -1), (-1, 1), (-2, 0), (-1, -2), (-1, 2)),  # N, NW, NE, NN, NWW, NEE
    ((0, -1), (0, 1), (-1, 0), (-1, -1), (-1, 1), (-2, 0)),  # W, E, N, NW, NE, NN
)
#: Neighbours whose classes (with the pixel's own) are an offset's context: W, E, N, S.
VALUE_NEIGHBOURS = ((0, -1), (0, 1), (-1, 0), (1, 0))
CLASS_CONTEXTS = CLASSES ** len(CLASS_NEIGHBOURS[0])
VALUE_CONTEXTS = CLASSES ** (1 + len(VALUE_NEIGHBOURS))
#: Rows and columns of black around the class map, so that every neighbour can be read.
PAD = 2
#: The model's role in the model store (:mod:`codec.store`).
ROLE = "lossless"
#: Offsets coded per coder call: bounds the tables a large image holds at once.
VALUE_BATCH = 1 << 16

#: Each class's first grey level and how many it holds, as arrays.
STARTS = np.array(CLASS_STARTS, dtype=np.int64)
WIDTHS = np.diff(np.append(STARTS, 256))
#: The class of each grey level 0..255.
CLASS_OF = (np.searchsorted(STARTS, np.arange(256), side="right") - 1).astype(np.uint8)


def _powers(count: int) -> np.ndarray:
    """Place values of a context's digits, the first neighbour most significant."""
    return CLASSES ** np.arange(count - 1, -1, -1, dtype=np.int64)


def check_tables(name: str, table: np.ndarray, shape: tuple[int, ...]) -> None:
    """Refuse (:class:`ModelError`) tables of another shape, or rows that are not frequencies summing to
    ``2**PRECISION`` with none below 1."""
    if table.shape != shape:
        raise ModelError(f"lossless {name} tables have shape {table.shape}, not {shape}")
    if (table.sum(axis=-1, dtype=np.int64) != 1 << PRECISION).any() or (table < 1).any():
        raise ModelError(f"lossless {name} tables are not integer frequencies summing to 2**{PRECISION}")


@dataclass(frozen=True)
class ClassOffsetModel:
    """Frozen tables of classes and of offsets: integer frequencies summing to ``2**PRECISION`` per row, none below
    1. What the pixel model and the block model (:mod:`codec.lossless_blocks`) are; they differ in the class
    tables' contexts (:attr:`CLASS_SHAPE`) and in the tag their digest starts from."""

    class_tables: np.ndarray
    value_tables: np.ndarray  # (VALUE_CONTEXTS, OFFSETS)

    #: The shape of the class tables, and the tag the digest starts from (which tells the models apart).
    CLASS_SHAPE: ClassVar[tuple[int, ...]] = (2, CLASS_CONTEXTS, CLASSES)
    TAG: ClassVar[bytes] = b"aec-lossless-1"

    def __post_init__(self) -> None:
        check_tables("class", self.class_tables, self.CLASS_SHAPE)
        check_tables("value", self.value_tables, (VALUE_CONTEXTS, OFFSETS))

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that are the model (what its file holds and its digest covers)."""
        return {
            "class_tables": self.class_tables.astype(np.uint16),
            "value_tables": self.value_tables.astype(np.uint16),
        }

    @functools.cached_property
    def digest(self) -> str:
        h = hashlib.sha256(self.TAG)
        hash_arrays(h, self.arrays())
        return h.hexdigest()

    @property
    def model_id(self) -> int:
        """The 12-bit id a file (or archive) names its model by."""
        return model_id_of(self.digest)


@dataclass(frozen=True)
class LosslessModel(ClassOffsetModel):
    """The frozen pixel model of single files: class tables (2, CLASS_CONTEXTS, CLASSES) per pass and context."""


def save(model: LosslessModel, folder: Path, metadata: dict[str, object]) -> Path:
    """Store the model (with its metadata) in ``folder``'s model store as the preset ``lossless``."""
    path = save_table_model(model, folder, ROLE, metadata)
    _load.cache_clear()
    return path


@functools.cache
def _load(path: Path) -> LosslessModel:
    """The model in ``path``, checked against the digest its metadata records (read once per path)."""
    return load_table_model(path, lambda a: LosslessModel(a["class_tables"], a["value_tables"]), "lossless model")


def load(folder: Path | None = None, model_id: int | None = None) -> LosslessModel:
    """The installed pixel model (or the stored one of ``model_id``); :class:`ModelError` if it is missing or
    damaged."""
    return _load(table_model_path(ROLE, "lossless pixel model", folder, model_id))


def installed_ids(folder: Path | None = None) -> Iterator[int]:
    """The ids of the pixel models stored here: the preset's first (none when there is none), read lazily."""
    return table_model_ids(ROLE, folder)


def padded_classes(images: np.ndarray, classes: bool = False) -> np.ndarray:
    """The class maps (N, H + PAD + 1, W + 2 PAD) of images (N, H, W) (or of class maps, with ``classes``): black
    around, room for S below."""
    count, height, width = images.shape
    out = np.zeros((count, height + PAD + 1, width + 2 * PAD), dtype=np.uint8)
    out[:, PAD : PAD + height, PAD : PAD + width] = images if classes else CLASS_OF[images]
    return out


def neighbour_contexts(
    classes: np.ndarray, ys: np.ndarray, xs: np.ndarray, neighbours: Sequence[tuple[int, int]]
) -> np.ndarray:
    """The contexts (N, len(ys), len(xs)) of the pixels at rows ``ys`` and columns ``xs`` (image coordinates) of
    padded class maps (N, ...): their ``neighbours``' classes as the digits of a base-:data:`CLASSES` number."""
    rows, columns = ys[:, None] + PAD, xs[None, :] + PAD
    out = np.zeros((len(classes), len(ys), len(xs)), dtype=np.int64)
    for (dy, dx), power in zip(neighbours, _powers(len(neighbours))):
        out += classes[:, rows + dy, columns + dx].astype(np.int64) * power
    return out


def class_contexts(classes: np.ndarray, rows: np.ndarray, pass_: int, width: int) -> np.ndarray:
    """The contexts (N, len(rows), columns of the pass) of the class symbols of ``rows`` in one pass."""
    return neighbour_contexts(classes, rows, np.arange(pass_, width, 2), CLASS_NEIGHBOURS[pass_])


def value_contexts(classes: np.ndarray, rows: slice, width: int) -> np.ndarray:
    """The contexts (N, rows, W) of the offsets of ``rows`` (a slice of image rows): own class, then W, E, N, S."""
    ys = slice(rows.start + PAD, rows.stop + PAD)
    xs = slice(PAD, PAD + width)
    out = classes[:, ys, xs].astype(np.int64) * CLASSES ** len(VALUE_NEIGHBOURS)
    for (dy, dx), power in zip(VALUE_NEIGHBOURS, _powers(len(VALUE_NEIGHBOURS))):
        out += classes[:, ys.start + dy : ys.stop + dy, xs.start + dx : xs.stop + dx].astype(np.int64) * power
    return out


def _bands(height: int, width: int) -> Iterator[slice]:
    """Row bands of about :data:`VALUE_BATCH` pixels: how much of an image is coded at once."""
    rows = max(1, VALUE_BATCH // max(width, 1))
    for top in range(0, height, rows):
        yield slice(top, min(top + rows, height))


def step_of(max_error: int) -> int:
    """How many offsets one coded symbol stands for at a maximum error: ``2K + 1``."""
    return 2 * int(max_error) + 1


_OFFSET_TABLES: dict[tuple[str, int], np.ndarray] = {}
#: Offset tables kept at once (a few MB each).
_KEPT_TABLES = 8


def offset_tables(model: LosslessModel, max_error: int) -> np.ndarray:
    """The value tables (VALUE_CONTEXTS, ceil(OFFSETS / step)) at a maximum error: each row summed over runs of
    ``2K + 1`` offsets (integers: still frequencies summing to 2**PRECISION, none below 1). Made once per K."""
    key = (model.digest, int(max_error))
    if key not in _OFFSET_TABLES:
        if len(_OFFSET_TABLES) >= _KEPT_TABLES:
            _OFFSET_TABLES.clear()
        step = step_of(max_error)
        runs = -(-OFFSETS // step)
        padded = np.zeros((VALUE_CONTEXTS, runs * step), dtype=np.int64)
        padded[:, :OFFSETS] = model.value_tables
        _OFFSET_TABLES[key] = padded.reshape(VALUE_CONTEXTS, runs, step).sum(axis=-1)
    return _OFFSET_TABLES[key]


def _levels(kinds: np.ndarray, runs: np.ndarray, max_error: int) -> np.ndarray:
    """The grey levels of pixels of classes ``kinds`` whose offsets fell in ``runs``: each run's middle, or the
    class's last level when the run passes it."""
    step = step_of(max_error)
    return (STARTS[kinds] + np.minimum(runs * step + max_error, WIDTHS[kinds] - 1)).astype(np.uint8)


def classes_of(image: np.ndarray, max_error: int) -> np.ndarray:
    """The classes (H, W) uint8 the coder codes for ``image`` at a maximum error: a pixel within it of black is
    black (the cheapest class)."""
    kinds = CLASS_OF[image]
    kinds[image <= max_error] = 0
    return kinds


def offset_runs(pixels: np.ndarray, kinds: np.ndarray, max_error: int) -> np.ndarray:
    """The runs of offsets the coder codes for pixels of classes ``kinds`` (0 where a class has one level)."""
    offsets = pixels.astype(np.int64) - STARTS[kinds]
    return np.where(kinds > 0, offsets // step_of(max_error), 0)


def encode(model: LosslessModel, image: np.ndarray, max_error: int = 0) -> bytes:
    """The stream of ``image`` (H, W) uint8, every pixel within ``max_error`` (0: exact): its class map, then its
    offsets."""
    coded = encode_within_budget(model, image, max_error, None)
    assert coded is not None  # no budget, no stop
    return coded[0]


def encode_within_budget(
    model: LosslessModel, image: np.ndarray, max_error: int, budget: int | None
) -> tuple[bytes, np.ndarray] | None:
    """:func:`encode` and the image the stream decodes to, or None once the stream passes
    ``budget`` bytes (when another coder's file is known to be smaller: on a photo the pixel model stops early)."""
    height, width = image.shape
    kinds = classes_of(image, max_error)
    tables_of_offsets = offset_tables(model, max_error)
    classes = padded_classes(kinds[None], classes=True)
    stream = coder.StreamEncoder()
    for band in _bands(height, width):
        rows = np.arange(band.start, band.stop)
        passes = [p for p in range(2) if p < width]
        contexts = [class_contexts(classes, rows, p, width)[0] for p in passes]
        symbols = [classes[0, rows[:, None] + PAD, np.arange(p, width, 2)[None, :] + PAD] for p in passes]
        # Row by row, pass 0 then pass 1: the order the decoder needs them in.
        order = np.concatenate(symbols, axis=1).reshape(-1)
        tables = np.concatenate([model.class_tables[p][c] for p, c in zip(passes, contexts)], axis=1)
        stream.encode(order, tables.reshape(-1, CLASSES))
        if budget is not None and stream.size() > budget:
            return None
    decoded = np.empty_like(image)
    for band in _bands(height, width):
        coded = kinds[band] > 0
        contexts = value_contexts(classes, band, width)[0]
        runs = offset_runs(image[band], kinds[band], max_error)
        if tables_of_offsets.shape[1] > 1:  # one run holds every offset (K >= 32): nothing to code
            stream.encode(runs[coded], tables_of_offsets[contexts[coded]])
        if budget is not None and stream.size() > budget:
            return None
        decoded[band] = _levels(kinds[band], runs, max_error)
    return stream.finish(), decoded


def decode_many(
    model: LosslessModel, streams: Sequence[bytes], height: int, width: int, max_error: int = 0
) -> list[np.ndarray]:
    """Images (H, W) uint8 from their streams coded at ``max_error``, all of one size, decoded in lockstep.

    Raises :class:`CorruptFileError` when a stream decodes to values no image has.
    """
    tables_of_offsets = offset_tables(model, max_error)
    step = step_of(max_error)
    decoders = [coder.StreamDecoder(data) for data in streams]
    classes = padded_classes(np.zeros((len(streams), height, width), np.uint8))
    passes = [p for p in range(2) if p < width]
    for y in range(height):
        row = np.array([y])
        for p in passes:
            tables = model.class_tables[p][class_contexts(classes, row, p, width)[:, 0]]
            xs = np.arange(p, width, 2) + PAD
            for i, stream in enumerate(decoders):
                decoded = stream.decode(len(xs), tables[i])
                if (decoded >= CLASSES).any():
                    raise CorruptFileError("lossless payload decodes to a class that does not exist")
                classes[i, y + PAD, xs] = decoded
    out = []
    for i, stream in enumerate(decoders):
        image = np.zeros((height, width), dtype=np.uint8)
        for band in _bands(height, width):
            kinds = classes[i, band.start + PAD : band.stop + PAD, PAD : PAD + width]
            coded = kinds > 0
            contexts = value_contexts(classes[i : i + 1], band, width)[0]
            runs = np.zeros(kinds.shape, dtype=np.int64)
            if tables_of_offsets.shape[1] > 1:  # one run holds every offset (K >= 32): all are 0
                runs[coded] = stream.decode(int(coded.sum()), tables_of_offsets[contexts[coded]])
            if (runs * step >= WIDTHS[kinds]).any():
                raise CorruptFileError("lossless payload decodes to a grey level outside its class")
            image[band] = _levels(kinds, runs, max_error)
        out.append(image)
    return out


def decode(model: LosslessModel, data: bytes, height: int, width: int, max_error: int = 0) -> np.ndarray:
    """Inverse of :func:`encode`: the (H, W) uint8 image."""
    return decode_many(model, [data], height, width, max_error)[0]
