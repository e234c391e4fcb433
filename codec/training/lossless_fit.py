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

from .. import lossless
from ..adaptive import frequencies
from ..coder import PRECISION
from ..lossless import CLASS_CONTEXTS, CLASSES, OFFSETS, VALUE_CONTEXTS, LosslessModel
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


def _possible_offsets() -> np.ndarray:
    """(VALUE_CONTEXTS, OFFSETS): which offsets a context's class can hold (the others keep the least frequency)."""
    own = np.arange(VALUE_CONTEXTS) // CLASSES ** len(lossless.VALUE_NEIGHBOURS)
    return np.arange(OFFSETS)[None, :] < lossless.WIDTHS[own][:, None]


def tables(counts: Counts, prior: float) -> LosslessModel:
    """The model of ``counts`` with ``prior`` added to every possible symbol, as integer frequencies."""
    scale = 1 << 12  # counts in units of 1/4096 of an observation: every prior of PRIOR_COUNTS is whole
    extra = round(prior * scale)
    class_counts, value_counts = counts
    classes = frequencies((class_counts * scale + extra).reshape(-1, CLASSES)).reshape(class_counts.shape)
    values = frequencies(value_counts * scale + extra * _possible_offsets())
    return LosslessModel(classes.astype(np.uint16), values.astype(np.uint16))


def code_bits(model: LosslessModel, counts: Counts) -> float:
    """The bits ``model``'s tables spend on the symbols ``counts`` counted (the information content)."""
    class_counts, value_counts = counts
    bits = -(class_counts * np.log2(model.class_tables / (1 << PRECISION))).sum()
    return float(bits - (value_counts * np.log2(model.value_tables / (1 << PRECISION))).sum())


def choose_prior(train: np.ndarray, validation: np.ndarray) -> tuple[float, dict[str, float]]:
    """The prior count whose tables, counted on ``train``, code ``validation`` in the fewest bits, and each
    prior count's bpp."""
    fitted, held = count(train), count(validation)
    pixels = validation.size
    scores = {f"{prior:g}": round(code_bits(tables(fitted, prior), held) / pixels, 5) for prior in PRIOR_COUNTS}
    best = min(PRIOR_COUNTS, key=lambda prior: scores[f"{prior:g}"])
    return best, scores


def file_bpp(model: LosslessModel, images: np.ndarray) -> tuple[float, float]:
    """Mean bits per pixel of ``images`` as whole lossless ``.aec`` files, and of their payloads alone."""
    from ..api import pixel_model_file
    from ..bitstream import unpack
    from ..images import Prepared

    files = payloads = 0
    for image in images:
        made = pixel_model_file(Prepared(image, False), 0, model)
        assert made is not None  # no budget
        data = made[0]
        files += len(data)
        payloads += len(unpack(data, lambda level: (model.model_id,))[1])
    return 8.0 * files / images.size, 8.0 * payloads / images.size


def train_lossless(
    data_dir: Path | None, weights_dir: Path | None, command: str, step: Callable[[str], None] = lambda _: None
) -> tuple[Path, dict[str, object]]:
    """Choose the prior on the validation split, count every training digit, install the model; returns its path
    and metadata (the command, the data's checksum, the validation scores and the test digits' bpp)."""
    from ..data import dataset_digest, load_mnist
    from ..models import weights_dir as default_weights

    start = time.perf_counter()
    train = load_mnist("train", data_dir)[0][:HELD_OUT_FROM]
    test, _ = load_mnist("test", data_dir)
    step("choosing the prior count on the validation split")
    prior, scores = choose_prior(train[:-VALIDATION], train[-VALIDATION:])
    step(f"counting {len(train):,} training digits (prior count {prior:g})")
    model = tables(count(train), prior)
    step(f"measuring {len(test):,} test digits")
    test_file, test_payload = file_bpp(model, test)
    meta: dict[str, object] = {
        "command": command,
        "seed": None,
        "data_sha256": dataset_digest(),
        "training_digits": f"MNIST training digits 0-{HELD_OUT_FROM - 1}",
        "validation_digits": VALIDATION,
        "prior_count": prior,
        "validation_bpp_by_prior_count": scores,
        "test_file_bpp": round(test_file, 4),
        "test_payload_bpp": round(test_payload, 4),
        "seconds": round(time.perf_counter() - start, 1),
    }
    path = lossless.save(model, weights_dir or default_weights(), meta)
    return path, meta
