"""The probability model of the latents: frozen integer frequency tables.

One table per latent channel and position of the 7x7 grid of a 28x28 digit (the
*positional* prior, where a centred digit on a black background makes the border
almost free), and one per channel for any other image size (the *stationary*
prior, the positional tables averaged over positions). Tables hold integer
frequencies that sum to ``2**PRECISION``; everything the decoder feeds to the
entropy coder is derived from these integers, so it is identical on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Frequencies of one table sum to 2**PRECISION.
PRECISION = 16


def quantize_pmf(pmf: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Integer frequencies (last axis) summing to ``2**precision``, none below 1.

    Used once, at freeze time; the rounding error is given to each row's most
    probable symbol.
    """
    pmf = np.asarray(pmf, dtype=np.float64)
    pmf = pmf / pmf.sum(axis=-1, keepdims=True)
    k = pmf.shape[-1]
    total = 1 << precision
    if k > total // 2:
        raise ValueError("too many symbols for the table precision")
    freq = np.maximum(1, np.floor(pmf * (total - k) + 0.5)).astype(np.int64)
    top = np.argmax(freq, axis=-1)[..., None]
    deficit = total - freq.sum(axis=-1, keepdims=True)
    np.put_along_axis(freq, top, np.take_along_axis(freq, top, axis=-1) + deficit, axis=-1)
    if (freq < 1).any():
        raise ValueError("pmf cannot be quantized at this precision")
    return freq.astype(np.uint32)


@dataclass(frozen=True)
class LatentPrior:
    """Frozen tables for integer latents in ``[-radius, radius]``."""

    positional: np.ndarray  # (C, GH, GW, K) integer frequencies
    stationary: np.ndarray  # (C, K) integer frequencies
    radius: int

    @property
    def channels(self) -> int:
        return int(self.positional.shape[0])

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.positional.shape[1]), int(self.positional.shape[2])

    def segments(self, height: int, width: int) -> list[tuple[int, np.ndarray]]:
        """The tables of a (C, height, width) latent grid in C order, as coder segments.

        The 7x7 grid (images of 25 to 28 pixels per side, padded): one positional
        row per latent. Any other grid: one run per channel, sharing that
        channel's stationary row.
        """
        k = self.positional.shape[-1]
        if (height, width) == self.grid:
            rows = self.positional.reshape(-1, k)
            return [(len(rows), rows)]
        return [(height * width, row) for row in self.stationary]

    def to_symbols(self, latents: np.ndarray) -> np.ndarray:
        """Round and clamp real latents to symbol indices ``0..2R`` (int32)."""
        r = self.radius
        return (np.clip(np.rint(latents), -r, r) + r).astype(np.int32)

    def from_symbols(self, symbols: np.ndarray) -> np.ndarray:
        """Symbol indices back to integer latent values."""
        return symbols.astype(np.int32) - self.radius


def stationary_from_positional(positional_pmf: np.ndarray) -> np.ndarray:
    """Per-channel pmf: the positional pmfs (C, GH, GW, K) averaged over positions."""
    return positional_pmf.mean(axis=(1, 2))
