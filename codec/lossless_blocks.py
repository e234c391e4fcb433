"""Lossless coding of a block of small same-size images as one stream: the pixel model of archives.

A lossless archive of small images (at most :data:`BLOCKED_PIXELS` pixels each)
codes them :data:`BLOCK` at a time. A block is one stream, in two stages like
:mod:`codec.lossless`'s single files, with the same classes and offsets:

1. **the class maps in raster order**, one pixel position at a time for every
   image of the block: a pixel's class with the table of its context, the
   classes of six neighbours already coded (:data:`RASTER_NEIGHBOURS`: W, NW,
   N, NE, WW, NN). Raster order sees the pixel to the left, which the single
   files' two passes a row cannot for half their pixels, and codes a class map
   in about 9 % fewer bits (measured on MNIST training digits held out of the
   count). It takes one coder call per pixel position: too slow for one image,
   cheap for a block, whose images share each call;
2. **the offsets**, as single files code them (:func:`codec.lossless.value_contexts`).

One stream per block also saves each image's length and stream tail. The
tables are frozen integer frequencies counted on MNIST training digits
(:mod:`codec.training.lossless_fit`), so a block decodes to the same pixels on
every machine.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from . import coder
from .coder import PRECISION
from .errors import CorruptFileError
from .lossless import (
    CLASS_CONTEXTS,
    CLASSES,
    PAD,
    STARTS,
    VALUE_BATCH,
    WIDTHS,
    ClassOffsetModel,
    classes_of,
    neighbour_contexts,
    offset_runs,
    padded_classes,
    value_contexts,
)
from .models import load_table_model, save_table_model, table_model_path

#: Images one block holds (the last block of an archive may hold fewer).
BLOCK = 256
#: The largest image (in pixels) coded in blocks; larger images are coded one by one (:mod:`codec.lossless`).
BLOCKED_PIXELS = 64 * 64
#: Neighbours (row, column) whose classes are a class's context, all coded before it in raster order.
RASTER_NEIGHBOURS = ((0, -1), (-1, -1), (-1, 0), (-1, 1), (0, -2), (-2, 0))  # W, NW, N, NE, WW, NN
#: The model's role in the model store (:mod:`codec.store`).
ROLE = "lossless-blocks"


@dataclass(frozen=True)
class BlockModel(ClassOffsetModel):
    """The frozen block model: class tables (CLASS_CONTEXTS, CLASSES) per raster context."""

    CLASS_SHAPE: ClassVar[tuple[int, ...]] = (CLASS_CONTEXTS, CLASSES)
    TAG: ClassVar[bytes] = b"aec-lossless-blocks-1"


def save(model: BlockModel, folder: Path, metadata: dict[str, object]) -> Path:
    """Store the model (with its metadata) in ``folder``'s model store as the preset ``lossless-blocks``."""
    path = save_table_model(model, folder, ROLE, metadata)
    _load.cache_clear()
    return path


@functools.cache
def _load(path: Path) -> BlockModel:
    """The model in ``path``, checked against the digest its metadata records (read once per path)."""
    return load_table_model(path, lambda a: BlockModel(a["class_tables"], a["value_tables"]), "block model")


def load(folder: Path | None = None, model_id: int | None = None) -> BlockModel:
    """The installed block model (or the stored one of ``model_id``); :class:`ModelError` if it is missing or
    damaged."""
    return _load(table_model_path(ROLE, "lossless block model", folder, model_id))


def blocked(pixels: int) -> bool:
    """Whether images of ``pixels`` pixels are packed in blocks (else one by one)."""
    return 0 < pixels <= BLOCKED_PIXELS


def max_block_bytes(count: int, pixels: int) -> int:
    """The longest stream a block of ``count`` images can have: a symbol costs at most ``PRECISION`` bits (a
    frequency of 1), a pixel two symbols. A reader's bound on a block's length."""
    return (2 * PRECISION * count * pixels) // 8 + 8


def _bands(count: int, height: int, width: int) -> Iterator[np.ndarray]:
    """Rows in bands whose class symbols (of every image of the block) are about :data:`VALUE_BATCH`."""
    rows = max(1, VALUE_BATCH // max(1, count * width))
    for top in range(0, height, rows):
        yield np.arange(top, min(top + rows, height))


def encode_block(model: BlockModel, images: np.ndarray) -> bytes:
    """The stream of a block of images (N, H, W) uint8: their class maps position by position, then their
    offsets."""
    count, height, width = images.shape
    kinds = classes_of(images, 0)
    classes = padded_classes(kinds, classes=True)
    stream = coder.StreamEncoder()
    for ys in _bands(count, height, width):
        contexts = neighbour_contexts(classes, ys, np.arange(width), RASTER_NEIGHBOURS)
        # Position by position, every image at each: the order the decoder needs them in.
        stream.encode(kinds[:, ys].transpose(1, 2, 0).ravel(), model.class_tables[contexts.transpose(1, 2, 0).ravel()])
    coded = kinds > 0
    runs = offset_runs(images, kinds, 0)[coded]
    contexts = value_contexts(classes, slice(0, height), width)[coded]
    for first in range(0, len(runs), VALUE_BATCH):
        chunk = slice(first, first + VALUE_BATCH)
        stream.encode(runs[chunk], model.value_tables[contexts[chunk]])
    return stream.finish()


def decode_block(model: BlockModel, data: bytes, count: int, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`encode_block`: the images (N, H, W) uint8.

    Raises :class:`CorruptFileError` when the stream decodes to values no image has.
    """
    stream = coder.StreamDecoder(data)
    classes = padded_classes(np.zeros((count, height, width), np.uint8))
    flat = classes.reshape(count, -1)  # a view: positions as one index, neighbours as fixed steps
    stride = classes.shape[2]
    steps = np.array([dy * stride + dx for dy, dx in RASTER_NEIGHBOURS])
    powers = CLASSES ** np.arange(len(steps) - 1, -1, -1, dtype=np.int64)
    for y in range(height):
        for x in range(width):
            position = (y + PAD) * stride + x + PAD
            contexts = flat[:, position + steps].astype(np.int64) @ powers
            decoded = stream.decode(count, model.class_tables[contexts])
            if (decoded >= CLASSES).any():
                raise CorruptFileError("lossless block decodes to a class that does not exist")
            flat[:, position] = decoded
    kinds = classes[:, PAD : PAD + height, PAD : PAD + width]
    coded = kinds > 0
    contexts = value_contexts(classes, slice(0, height), width)[coded]
    runs = np.zeros(len(contexts), dtype=np.int64)
    for first in range(0, len(runs), VALUE_BATCH):
        chunk = slice(first, first + VALUE_BATCH)
        runs[chunk] = stream.decode(len(runs[chunk]), model.value_tables[contexts[chunk]])
    if (runs >= WIDTHS[kinds[coded]]).any():
        raise CorruptFileError("lossless block decodes to a grey level outside its class")
    images = np.zeros((count, height, width), dtype=np.int64)
    images[coded] = runs
    return (images + STARTS[kinds]).astype(np.uint8)
