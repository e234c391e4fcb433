"""Measure a quality level on a set of images: real file sizes, PSNR, SSIM."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import api, bitstream, decoder, encoder, models, store
from .metrics import mse, psnr_from_mse, ssim
from .search import DEFAULT_EFFORT

#: A perfectly reconstructed image counts as this PSNR in a mean of per-image PSNRs.
PSNR_CAP = 100.0


@dataclass(frozen=True)
class Measurement:
    """Averages over a set of images coded at one setting."""

    images: int
    bpp: float  # whole files, header and checksum included
    payload_bpp: float  # entropy-coded content alone (aec: the latents)
    psnr: float | None  # mean of per-image PSNR in dB, each capped at PSNR_CAP; None when all are lossless
    psnr_of_mean_mse: float | None  # PSNR of the mean squared error (dB); None when all are lossless
    ssim: float

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 5) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _quality(originals: Sequence[np.ndarray], decoded: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-image MSE and SSIM (vectorised when all images share one size)."""
    if len({o.shape for o in originals} | {d.shape for d in decoded}) == 1:
        a, b = np.stack(originals), np.stack(decoded)
        return mse(a, b), ssim(a, b)
    return (
        np.array([float(mse(o, d)) for o, d in zip(originals, decoded)]),
        np.array([float(ssim(o, d)) for o, d in zip(originals, decoded)]),
    )


def measure_pairs(
    originals: Sequence[np.ndarray],
    decoded: Sequence[np.ndarray],
    file_bytes: Sequence[int],
    payload_bytes: Sequence[int],
) -> Measurement:
    """Summarise originals and their reconstructions (any sizes) with the bytes each took."""
    pixels = np.array([o.size for o in originals], dtype=np.float64)
    errors, similarity = _quality(originals, decoded)
    lossless = not errors.any()
    return Measurement(
        images=len(originals),
        bpp=float(np.mean(8 * np.asarray(file_bytes) / pixels)),
        payload_bpp=float(np.mean(8 * np.asarray(payload_bytes) / pixels)),
        psnr=None if lossless else float(np.mean(np.minimum(psnr_from_mse(errors), PSNR_CAP))),
        psnr_of_mean_mse=None if lossless else float(psnr_from_mse(np.mean(errors))),
        ssim=float(np.mean(similarity)),
    )


def measure_level(images: np.ndarray, level: int, effort: int = DEFAULT_EFFORT) -> Measurement:
    """Code every image (N, H, W) uint8 at ``level`` (with the encoder's ``effort``) and measure the result."""
    return measure_levels(images, [level], effort)[level]


def measure_levels(images: np.ndarray, levels: Sequence[int], effort: int = DEFAULT_EFFORT) -> dict[int, Measurement]:
    """Each level's :func:`measure_level`, the images coded at every level a few at a time (:func:`sweep`)."""
    out = {}
    for level, (files, _) in sweep(list(images), levels, effort).items():
        decoded = api.decompress_many(files)
        payloads = [api.inspect(f).payload_bytes for f in files]
        out[level] = measure_pairs(list(images), decoded, [len(f) for f in files], payloads)
    return out


#: Images coded at every level before the next ones: within what the encoder remembers of their sets of files.
SWEEP_IMAGES = encoder.REMEMBERED_SETS


def sweep(images: Sequence[np.ndarray], levels: Sequence[int], effort: int) -> dict[int, tuple[list[bytes], float]]:
    """Each level's files of the images, and the seconds coding them at that level alone takes.

    From effort 1 the encoder makes one set of searched files per small image
    for every level (:func:`codec.encoder.exact_choice`) and remembers the last
    few, so the images are coded :data:`SWEEP_IMAGES` at a time at every level:
    a sweep costs about one level's coding. Where every image of a part is
    weighed so, the first level's call made their sets, and its seconds count
    in every level's.
    """
    files: dict[int, list[bytes]] = {level: [] for level in levels}
    seconds = dict.fromkeys(levels, 0.0)
    for first in range(0, len(images), SWEEP_IMAGES):
        part = list(images[first : first + SWEEP_IMAGES])
        made_sets = 0.0  # the first level's seconds, where its call made every image's set
        for level in levels:
            start = time.perf_counter()
            files[level] += api.compress_many(part, level, effort)
            took = time.perf_counter() - start
            seconds[level] += took + made_sets
            if level == levels[0] and all(encoder.weighed_exactly(effort, *np.shape(i)[:2]) for i in part):
                made_sets = took
    return {level: (files[level], seconds[level]) for level in levels}


def measure_model(images: np.ndarray, model: models.FrozenModel, effort: int = 0) -> Measurement:
    """Code every image (N, H, W) uint8 with ``model`` itself (no choice of model, its tables) and measure the
    result: payloads decoded with the model (whether or not a preset names it: a level's general variant, the
    variational model), files as large as a version 4 file of each image (:func:`codec.bitstream.container_bytes`).
    """
    from .images import prepare

    prepared = [prepare(image) for image in images]
    _, payloads = encoder.encode_payloads(prepared, model.level, effort, model=model, in_context=False)
    decoded = []
    for item, payload in zip(prepared, payloads):
        height, width = item.pixels.shape
        latents = decoder.latents_with(model, payload.data, height, width)
        pixels = decoder.pixels_of(model, latents[None], height, width)[0]
        decoded.append(255 - pixels if item.inverted else pixels)
    sizes = [len(p.data) + bitstream.container_bytes(*item.pixels.shape[::-1]) for item, p in zip(prepared, payloads)]
    return measure_pairs(list(images), decoded, sizes, [len(p.data) for p in payloads])


def record_levels(images: np.ndarray, levels: Sequence[int], effort: int = DEFAULT_EFFORT) -> dict[int, Measurement]:
    """Measure installed levels on ``images`` (the MNIST test set) and write each result into its metadata."""
    measured = measure_levels(images, levels, effort)
    for level, measurement in measured.items():
        write_measurement(level, measurement, effort)
    return measured


def write_measurement(level: int, measured: Measurement, effort: int) -> None:
    """Record a level's test-set measurement in its metadata (``test``, ``test_effort``).

    The weights and tables are untouched (the model id stays); what changes with
    the encoder is what the level's files cost and look like.
    """
    update_metadata(level, {"test": measured.to_dict(), "test_effort": effort})


def update_metadata(level: int, fields: dict[str, Any], folder: Path | None = None, general: bool = False) -> None:
    """Set ``fields`` in level ``level``'s preset (its general variant's, with ``general``): what the level
    measured, never its model."""
    store.update_preset(folder or models.weights_dir(), store.level_role(level, general), fields)
    models.clear_cache()
