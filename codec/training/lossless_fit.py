"""Fit the lossless pixel model (:mod:`codec.lossless`) by counting; no torch.

The tables are the MNIST training digits' counts per context plus a prior
count, made integer frequencies. The prior count is the one knob: it is chosen
on a validation split carved from the training digits (the last
:data:`VALIDATION` of them, counted on the others), then the tables are counted
on all training digits but the ones the benchmark's scanned digits come from
(:data:`~codec.training.digits.HELD_OUT_FROM` on). The test digits are only
measured, as whole files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import lossless, lossless_blocks
from ..adaptive import frequencies
from ..coder import PRECISION
from ..lossless import CLASS_CONTEXTS, CLASSES, OFFSETS, VALUE_CONTEXTS, LosslessModel
from ..lossless_blocks import BlockModel
from .digits import HELD_OUT_FROM

#: Training digits held out to choose the prior count.
VALIDATION = 10_000
#: Prior counts tried (added to every possible symbol of every context).
PRIOR_COUNTS = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
#: Digits counted at once (bounds the memory of the contexts).
CHUNK = 5_000

#: Class counts (2, CLASS_CONTEXTS, CLASSES) and value counts (VALUE_CONTEXTS, OFFSETS).
Counts = tuple[np.ndarray, np.ndarray]


def count(images: np.ndarray) -> Counts:
    """How often each symbol follows each context over ``images`` (N, H, W) uint8, as the coder codes them."""
    class_counts = np.zeros((2, CLASS_CONTEXTS * CLASSES), dtype=np.int64)
    value_counts = np.zeros(VALUE_CONTEXTS * OFFSETS, dtype=np.int64)
    height, width = images.shape[1:]
    rows = np.arange(height)
    for first in range(0, len(images), CHUNK):
        chunk = images[first : first + CHUNK]
        classes = lossless.padded_classes(chunk)
        kinds = lossless.classes_of(chunk, 0).astype(np.int64)
        for pass_ in range(min(2, width)):
            contexts = lossless.class_contexts(classes, rows, pass_, width)
            symbols = kinds[:, :, pass_::2]
            class_counts[pass_] += np.bincount(
                (contexts * CLASSES + symbols).ravel(), minlength=CLASS_CONTEXTS * CLASSES
            )
        contexts = lossless.value_contexts(classes, slice(0, height), width)
        offsets = lossless.offset_runs(chunk, kinds, 0)  # what the coder codes for every pixel of a class above 0
        value_counts += np.bincount((contexts * OFFSETS + offsets)[kinds > 0], minlength=VALUE_CONTEXTS * OFFSETS)
    return class_counts.reshape(2, CLASS_CONTEXTS, CLASSES), value_counts.reshape(VALUE_CONTEXTS, OFFSETS)


def count_raster(images: np.ndarray) -> np.ndarray:
    """How often each class follows each raster context (:mod:`codec.lossless_blocks`) over ``images``."""
    counts = np.zeros(CLASS_CONTEXTS * CLASSES, dtype=np.int64)
    height, width = images.shape[1:]
    for first in range(0, len(images), CHUNK):
        kinds = lossless.classes_of(images[first : first + CHUNK], 0)
        classes = lossless.padded_classes(kinds, classes=True)
        contexts = lossless.neighbour_contexts(
            classes, np.arange(height), np.arange(width), lossless_blocks.RASTER_NEIGHBOURS
        )
        counts += np.bincount((contexts * CLASSES + kinds).ravel(), minlength=CLASS_CONTEXTS * CLASSES)
    return counts.reshape(CLASS_CONTEXTS, CLASSES)


def _possible_offsets() -> np.ndarray:
    """(VALUE_CONTEXTS, OFFSETS): which offsets a context's class can hold (the others keep the least frequency)."""
    own = np.arange(VALUE_CONTEXTS) // CLASSES ** len(lossless.VALUE_NEIGHBOURS)
    return np.arange(OFFSETS)[None, :] < lossless.WIDTHS[own][:, None]


def _smoothed(counts: np.ndarray, prior: float, possible: np.ndarray | int = 1) -> np.ndarray:
    """Integer frequency tables (rows of the last axis) of ``counts`` with ``prior`` added to every ``possible``
    symbol (the others keep the least frequency)."""
    scale = 1 << 12  # counts in units of 1/4096 of an observation: every prior of PRIOR_COUNTS is whole
    extra = round(prior * scale)
    rows = (counts * scale + extra * possible).reshape(-1, counts.shape[-1])
    return frequencies(rows).reshape(counts.shape).astype(np.uint16)


def tables(counts: Counts, prior: float) -> LosslessModel:
    """The model of ``counts`` with ``prior`` added to every possible symbol, as integer frequencies."""
    class_counts, value_counts = counts
    return LosslessModel(_smoothed(class_counts, prior), _smoothed(value_counts, prior, _possible_offsets()))


def block_tables(counts: Counts, raster_counts: np.ndarray, prior: float) -> BlockModel:
    """The block model of raster class counts and the value counts of ``counts``, as :func:`tables` makes them."""
    return BlockModel(_smoothed(raster_counts, prior), _smoothed(counts[1], prior, _possible_offsets()))


def _bits(tables: np.ndarray, counts: np.ndarray) -> float:
    """The bits ``tables`` spend on the symbols ``counts`` counted (the information content)."""
    return float(-(counts * np.log2(tables / (1 << PRECISION))).sum())


def code_bits(model: LosslessModel, counts: Counts) -> float:
    """The bits ``model``'s tables spend on the symbols ``counts`` counted."""
    return _bits(model.class_tables, counts[0]) + _bits(model.value_tables, counts[1])


def block_bits(model: BlockModel, counts: Counts, raster_counts: np.ndarray) -> float:
    """The bits the block model's tables spend on the symbols counted (raster class maps and values)."""
    return _bits(model.class_tables, raster_counts) + _bits(model.value_tables, counts[1])


def choose_prior(score: Callable[[float], float], pixels: int) -> tuple[float, dict[str, float]]:
    """The prior count of :data:`PRIOR_COUNTS` whose tables spend the fewest bits (``score(prior)``) on a
    validation split of ``pixels`` pixels, and each prior count's bpp."""
    scores = {f"{prior:g}": round(score(prior) / pixels, 5) for prior in PRIOR_COUNTS}
    best = min(PRIOR_COUNTS, key=lambda prior: scores[f"{prior:g}"])
    return best, scores


def choose_priors(train: np.ndarray, validation: np.ndarray) -> dict[str, tuple[float, dict[str, float]]]:
    """The prior count (and each one's bpp) for the single-file model and for the block model, counted on
    ``train`` and scored on ``validation``."""
    fitted, held = count(train), count(validation)
    raster, held_raster = count_raster(train), count_raster(validation)
    return {
        "files": choose_prior(lambda prior: code_bits(tables(fitted, prior), held), validation.size),
        "blocks": choose_prior(
            lambda prior: block_bits(block_tables(fitted, raster, prior), held, held_raster), validation.size
        ),
    }


def file_bpp(model: LosslessModel, images: np.ndarray) -> tuple[float, float]:
    """Mean bits per pixel of ``images`` as whole lossless ``.aec`` files, and of their payloads alone."""
    from ..bitstream import unpack
    from ..encoder import pixel_model_file
    from ..images import Prepared

    files = payloads = 0
    for image in images:
        made = pixel_model_file(Prepared(image, False), 0, model)
        assert made is not None  # no budget
        data = made[0]
        files += len(data)
        payloads += len(unpack(data, lambda level: (model.model_id,))[1])
    return 8.0 * files / images.size, 8.0 * payloads / images.size


def blocks_bpp(model: BlockModel, images: np.ndarray) -> float:
    """Mean bits per pixel of ``images`` coded in blocks (the payload of a lossless archive)."""
    coded = sum(
        len(lossless_blocks.encode_block(model, images[first : first + lossless_blocks.BLOCK]))
        for first in range(0, len(images), lossless_blocks.BLOCK)
    )
    return 8.0 * coded / images.size


def train_lossless(
    data_dir: Path | None, weights_dir: Path | None, command: str, step: Callable[[str], None] = lambda _: None
) -> list[tuple[Path, dict[str, object]]]:
    """Choose the priors on the validation split, count every training digit, install the pixel model (single
    files) and the block model (archives); returns each one's path and metadata (the command, the data's
    checksum, the validation scores and the test digits' bpp)."""
    from ..data import dataset_digest, load_mnist
    from ..models import weights_dir as default_weights

    start = time.perf_counter()
    train = load_mnist("train", data_dir)[0][:HELD_OUT_FROM]
    test, _ = load_mnist("test", data_dir)
    step("choosing the prior counts on the validation split")
    priors = choose_priors(train[:-VALIDATION], train[-VALIDATION:])
    step(f"counting {len(train):,} training digits")
    counts = count(train)
    model = tables(counts, priors["files"][0])
    blocks = block_tables(counts, count_raster(train), priors["blocks"][0])
    step(f"measuring {len(test):,} test digits")
    test_file, test_payload = file_bpp(model, test)
    common: dict[str, object] = {
        "command": command,
        "seed": None,
        "data_sha256": dataset_digest(),
        "training_digits": f"MNIST training digits 0-{HELD_OUT_FROM - 1}",
        "validation_digits": VALIDATION,
    }
    folder = weights_dir or default_weights()
    file_meta = {
        **common,
        "prior_count": priors["files"][0],
        "validation_bpp_by_prior_count": priors["files"][1],
        "test_file_bpp": round(test_file, 4),
        "test_payload_bpp": round(test_payload, 4),
    }
    block_meta = {
        **common,
        "prior_count": priors["blocks"][0],
        "validation_bpp_by_prior_count": priors["blocks"][1],
        "block_images": lossless_blocks.BLOCK,
        "test_payload_bpp": round(blocks_bpp(blocks, test), 4),
    }
    seconds = {"seconds": round(time.perf_counter() - start, 1)}
    return [
        (lossless.save(model, folder, {**file_meta, **seconds}), file_meta),
        (lossless_blocks.save(blocks, folder, {**block_meta, **seconds}), block_meta),
    ]
