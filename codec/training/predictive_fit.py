"""Train the predictive model (:mod:`codec.predictive`): its tables, by counting symbols in their contexts.

No torch and no randomness beyond the training images' choice: the predictors
are fixed, so a context and a symbol depend only on the image and the maximum
error. The images are the refinement model's (:func:`codec.training.refine_fit.training_images`:
MNIST training digits, digits drawn with the training font, the training
photos; never a benchmark image), each coded at every maximum error of
:data:`MAX_ERRORS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import predictive
from ..predictive import SYMBOLS, TABLE_ROWS, PredictiveModel
from ..prior import quantize_pmf
from .refine_fit import training_images, training_record

#: Maximum errors the tables are counted on (equal weight): lossless and the near-lossless bounds people use.
MAX_ERRORS = (0, 1, 2, 4, 8)
#: Count added to every (context, symbol) before the tables are made.
PRIOR_COUNT = 0.5
#: MNIST test digits the installed model is measured on (payload bits per pixel; reported, never chosen on).
TEST_DIGITS = 500
#: Every ``VALIDATION_EVERY``-th training image is held out of the counts to measure the tables on.
VALIDATION_EVERY = 4


def count_symbols(images: Sequence[np.ndarray], max_errors: Sequence[int] = MAX_ERRORS) -> np.ndarray:
    """The (TABLE_ROWS, SYMBOLS) counts of the symbols the coder codes for ``images`` at each maximum error."""
    counts = np.zeros((TABLE_ROWS, SYMBOLS), np.int64)
    for image in images:
        for max_error in max_errors:
            for contexts, q in predictive.coded_diagonals(image, max_error):
                symbols = predictive.symbols_of(q)
                for rows in contexts:
                    np.add.at(counts, (rows, symbols), 1)
    return counts


def fit(images: Sequence[np.ndarray]) -> PredictiveModel:
    """The predictive model whose tables are the symbols' frequencies over ``images``."""
    counts = count_symbols(images).astype(np.float64) + PRIOR_COUNT
    return PredictiveModel(quantize_pmf(counts).astype(np.uint32))


def bits_per_pixel(model: PredictiveModel, images: Sequence[np.ndarray], max_error: int) -> float:
    """Mean bits per pixel of ``images``' streams (per image, then averaged)."""
    return float(np.mean([8 * len(predictive.encode(model, i, max_error)[0]) / i.size for i in images]))


def train_predictive(
    data_dir: Path | None,
    weights_dir: Path | None,
    seed: int,
    command: str,
    limit: int | None = None,
    report: Callable[[str], None] = print,
) -> tuple[Path, dict[str, object]]:
    """Fit the predictive model, measure it on held-out training images and install it; returns its path and
    metadata (the command, seed, data checksums, the held-out images' and the test digits' bits per pixel)."""
    from .. import data as mnist
    from ..models import weights_dir as default_weights

    started = time.time()
    images = training_images(mnist.load_mnist("train", data_dir)[0], seed)
    if limit is not None:
        images = images[:limit]
    held_out = images[::VALIDATION_EVERY]
    fitted = [image for i, image in enumerate(images) if i % VALIDATION_EVERY]
    report(f"counting symbols on {len(fitted)} images at maximum errors {MAX_ERRORS}")
    model = fit(fitted)
    report(f"measuring on {len(held_out)} held-out training images")
    measured = {str(k): round(bits_per_pixel(model, held_out, k), 4) for k in (0, 2)}
    report(f"measuring on the first {TEST_DIGITS} MNIST test digits")
    test_digits = list(mnist.load_mnist("test", data_dir)[0][:TEST_DIGITS])
    tested = {str(k): round(bits_per_pixel(model, test_digits, k), 4) for k in (0, 2)}
    metadata: dict[str, object] = {
        **training_record(command, seed, fitted),
        "max_errors": list(MAX_ERRORS),
        "validation_images": len(held_out),
        "validation_bpp_by_max_error": measured,
        "test_digits": TEST_DIGITS,
        "test_digits_bpp_by_max_error": tested,
        "seconds": round(time.time() - started, 1),
    }
    folder = weights_dir or default_weights()
    return predictive.save(model, folder, metadata), metadata
