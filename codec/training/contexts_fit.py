"""Fit the context tables (:mod:`codec.context_tables`): where the latents' contexts start, by counting.

No torch and no randomness beyond the training images' choice: each latent
model codes the refinement layer's training images
(:func:`codec.training.refine_fit.training_images`: MNIST training digits,
digits drawn with the training font and scanned, the training photos; never a
benchmark image) at every scale the encoder tries for them, with its rounded
latents; every symbol off the home grid is counted in its (channel, pass,
context). A context's row is its counts plus :data:`PRIOR_WEIGHT` times its
channel's stationary row, so a context the images rarely reach starts where
version 6 starts. Every :data:`VALIDATION_EVERY`-th image is held out to
measure the tables against version 6's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .. import context_tables, contexts, resolution
from ..adaptive import Adaptation
from ..coder import PRECISION
from ..context_tables import FittedContexts
from ..contexts import Start
from ..images import pad_to_stride
from ..models import FrozenModel, available_levels, load_general, load_model
from .refine_fit import training_images, training_record

#: Weight of the channel's stationary row in a context's counts (chosen among 16, 64, 256 and 1024 on the held-out
#: images: 64).
PRIOR_WEIGHT = 64
#: How fast the fitted tables adapt: they count as more observations than version 6's stationary start (chosen
#: among 1024-8192 on the held-out images at levels 3, 8 and 12: 4096).
ADAPTATION = Adaptation(prior_total=4096, increment=64, limit=1 << 20)
#: Every ``VALIDATION_EVERY``-th training image is held out of the counts to measure the tables on.
VALIDATION_EVERY = 4
#: MNIST training digits in the images (as mosaics of 100) and font and scanned digits drawn.
DIGITS, RENDERS = 1000, 100


def coded_symbols(model: FrozenModel, image: np.ndarray) -> list[np.ndarray]:
    """The rounded latent symbols (C, GH, GW) ``model`` codes of ``image`` (uint8) at each scale the encoder
    tries for it, those off the model's home grid only."""
    out = []
    for scale in (1, *resolution.scales_for(*image.shape)):
        coarse = resolution.downscale(image, scale) if scale > 1 else image
        padded = pad_to_stride(coarse[None], model.stride) / np.float32(255.0)
        symbols = model.prior.to_symbols(model.analyse(padded))[0]
        if symbols.shape[-2:] != model.prior.grid:
            out.append(symbols)
    return out


def fitted_rows(model: FrozenModel, images: Sequence[np.ndarray]) -> np.ndarray:
    """``model``'s start rows (C, PASSES, CONTEXTS, K): the symbols' counts over ``images`` in their contexts
    plus :data:`PRIOR_WEIGHT` stationary rows, as integer frequencies."""
    counts = sum(
        (contexts.symbol_counts(model.prior, s) for i in images for s in coded_symbols(model, i)),
        start=np.zeros((model.prior.channels, contexts.PASSES, contexts.CONTEXTS, model.prior.stationary.shape[-1])),
    )
    stationary = model.prior.stationary[:, None, None, :] / float(1 << PRECISION)
    smoothed = counts + PRIOR_WEIGHT * stationary
    free = (1 << PRECISION) - smoothed.shape[-1]
    rows = 1 + np.floor(smoothed / smoothed.sum(axis=-1, keepdims=True) * free).astype(np.int64)
    top = np.argmax(rows, axis=-1)[..., None]
    np.put_along_axis(rows, top, np.take_along_axis(rows, top, -1) + (1 << PRECISION) - rows.sum(-1, keepdims=True), -1)
    return rows


def coded_bits(model: FrozenModel, images: Sequence[np.ndarray], start: Start | None) -> int:
    """Bits of the context streams of ``images``' latents (every scale, off the home grid) started at ``start``."""
    return sum(8 * len(contexts.encode(model.prior, s, start)) for i in images for s in coded_symbols(model, i))


def _fit_one(job: tuple[int, bool, Sequence[np.ndarray], Sequence[np.ndarray]]) -> tuple[str, np.ndarray, list[int]]:
    level, general, fitted, held_out = job
    model = load_general(level) if general else load_model(level)
    assert model is not None
    rows = fitted_rows(model, fitted)
    start = Start(rows, ADAPTATION)
    return model.digest, rows, [coded_bits(model, held_out, None), coded_bits(model, held_out, start)]


def latent_models() -> list[tuple[int, bool]]:
    """(level, general) of every installed model an image off the home grid may be coded with."""
    return [(level, general) for level in available_levels() for general in (False, True)]


def train_contexts(
    data_dir: Path | None,
    weights_dir: Path | None,
    seed: int,
    command: str,
    jobs: int = 1,
    report: Callable[[str], None] = print,
) -> tuple[Path, dict[str, object]]:
    """Fit the context tables of every installed latent model, measure them on held-out training images and
    install them; returns their path and metadata (command, seed, data checksums, held-out bits)."""
    from .. import data as mnist
    from ..models import using_weights

    started = time.time()
    images = training_images(mnist.load_mnist("train", data_dir)[0], seed, DIGITS, RENDERS)
    held_out = images[::VALIDATION_EVERY]
    fitted = [image for i, image in enumerate(images) if i % VALIDATION_EVERY]
    with using_weights(weights_dir) as folder:
        wanted = [(level, general) for level, general in latent_models() if not general or load_general(level)]
        report(f"counting {len(wanted)} models' latents on {len(fitted)} images, {len(held_out)} held out")
        jobs_ = [(level, general, fitted, held_out) for level, general in wanted]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_fit_one, jobs_))
        tables = {digest: rows for digest, rows, _ in results}
        measured = {
            f"{'general' if general else 'level'}-{level}": {"version_6_bits": bits[0], "fitted_bits": bits[1]}
            for (level, general), (_, _, bits) in zip(wanted, results)
        }
        before = sum(b[0] for _, _, b in results)
        after = sum(b[1] for _, _, b in results)
        report(f"held-out images: {before:,} -> {after:,} bits ({100 * (after / before - 1):+.1f} %)")
        metadata: dict[str, object] = {
            **training_record(command, seed, fitted),
            "prior_weight": PRIOR_WEIGHT,
            "validation_images": len(held_out),
            "validation_bits": measured,
            "validation_change": round(after / before - 1, 4),
            "seconds": round(time.time() - started, 1),
        }
        model = FittedContexts(tables, ADAPTATION)
        return context_tables.save(model, folder, metadata), metadata
