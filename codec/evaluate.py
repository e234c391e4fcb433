"""Measure a quality level on a set of images: real file sizes, PSNR, SSIM."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from . import api
from .metrics import mse, psnr_from_mse, ssim


@dataclass(frozen=True)
class Measurement:
    """Averages over a set of images coded at one setting."""

    images: int
    bpp: float  # whole files, header and checksum included
    payload_bpp: float  # entropy-coded latents alone
    psnr: float  # mean of per-image PSNR (dB)
    psnr_of_mean_mse: float  # PSNR of the mean squared error (dB)
    ssim: float

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 5) if isinstance(v, float) else v for k, v in asdict(self).items()}


def measure_pairs(
    originals: np.ndarray, decoded: np.ndarray, file_bits: np.ndarray, payload_bits: np.ndarray
) -> Measurement:
    """Summarise same-size originals and reconstructions (N, H, W) with their sizes in bits."""
    pixels = originals.shape[-1] * originals.shape[-2]
    errors = mse(originals, decoded)
    per_image = psnr_from_mse(np.maximum(errors, 1e-10))
    return Measurement(
        images=len(originals),
        bpp=float(np.mean(file_bits) / pixels),
        payload_bpp=float(np.mean(payload_bits) / pixels),
        psnr=float(np.mean(per_image)),
        psnr_of_mean_mse=float(psnr_from_mse(np.mean(errors))),
        ssim=float(np.mean(ssim(originals, decoded))),
    )


def measure_level(images: np.ndarray, level: int) -> Measurement:
    """Code every image (N, H, W) uint8 at ``level`` and measure the result."""
    files = api.compress_many(list(images), level)
    decoded = np.stack(api.decompress_many(files))
    sizes = np.array([8 * len(f) for f in files])
    payloads = np.array([8 * api.inspect(f).payload_bytes for f in files])
    return measure_pairs(images, decoded, sizes, payloads)
