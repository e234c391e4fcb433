"""The probability model of the latents: frozen integer frequency tables.

For the 7x7 grid of a 28x28 digit (its *home grid*) the prior holds several
*table sets*, each with one table per latent channel and position (a centred
digit on a black background makes the border almost free). The encoder picks,
per image, the set that codes it in the fewest bits and codes the set's number
first (the *selector*), so a "1" and an "8" are coded with tables fitted to
digits like them: a discrete mixture prior. Set 0 is the positional prior the
network was trained with, so no image costs more than under it plus the
selector. Tables are rows of one *bank*, named by an index per set, channel and
position (as CompressAI's Gaussian conditional names a table per scale). Any
other grid uses one *stationary* table per channel.

Tables hold integer frequencies that sum to ``2**PRECISION``; everything the
decoder feeds to the entropy coder is derived from these integers, so it is
identical on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .coder import PRECISION, Layout, Segment, Switch, probabilities


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


#: Bits gathered at once by :meth:`LatentPrior.set_costs` (sets x images x places; 16 MB of float64).
COST_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class LatentPrior:
    """Frozen tables for integer latents in ``[-radius, radius]``."""

    bank: np.ndarray  # (B, K) integer frequencies, one table per row
    index: np.ndarray  # (M, C, GH, GW) the bank row of each set, channel and position
    selector: np.ndarray  # (M,) integer frequencies of the table sets
    stationary: np.ndarray  # (C, K) integer frequencies
    radius: int
    _derived: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)  # made once

    def __post_init__(self) -> None:
        sets = self.index.shape[0]
        if self.index.ndim != 4 or self.selector.shape != (sets,) or self.stationary.shape[0] != self.index.shape[1]:
            raise ValueError("prior tables have inconsistent shapes")
        if self.index.size and not 0 <= int(self.index.min()) <= int(self.index.max()) < len(self.bank):
            raise ValueError("prior index names a row outside the bank")

    def bank_probabilities(self) -> np.ndarray:
        """The bank's rows as the coder's probabilities (:func:`codec.coder.probabilities`; made once)."""
        if "probabilities" not in self._derived:
            self._derived["probabilities"] = probabilities(self.bank)
        return self._derived["probabilities"]

    @property
    def channels(self) -> int:
        return int(self.index.shape[1])

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.index.shape[2]), int(self.index.shape[3])

    @property
    def sets(self) -> int:
        """The number of table sets of the home grid (1: no selector is coded)."""
        return int(self.index.shape[0])

    def positional(self, table_set: int = 0) -> np.ndarray:
        """The (C, GH, GW, K) frequencies of one table set (set 0: the trained positional prior)."""
        return self.bank[self.index[table_set]]

    def tables(self) -> np.ndarray:
        """The (M, C, GH, GW, K) frequencies of every table set."""
        return self.bank[self.index]

    def layout(self, height: int, width: int) -> Layout:
        """How the symbols of a (C, height, width) latent grid are coded, in C order.

        The home grid (images of 25 to 28 pixels per side, padded): one table per
        latent, from the set the selector names (when there are several). Any
        other grid: one run per channel, sharing that channel's stationary row.
        """
        if (height, width) != self.grid:
            return [(height * width, row) for row in self.stationary]
        return Switch(self.selector, self.set_segments) if self.sets > 1 else self.set_segments(0)

    def set_segments(self, table_set: int) -> list[Segment]:
        """The home grid's symbols in C order, each with its row of one table set, as coder segments."""
        return [(self.index[table_set].size, self.bank[self.index[table_set].reshape(-1)])]

    def switched(self, height: int, width: int) -> bool:
        """Whether a (C, height, width) latent grid's stream starts with a selector."""
        return (height, width) == self.grid and self.sets > 1

    def streams(self, symbols: np.ndarray) -> np.ndarray:
        """The symbol streams (N, n) of symbol grids (N, C, H, W): each image's table set first when it has several.

        The set is the one that codes the image in the fewest bits, selector included.
        """
        flat = symbols.reshape(len(symbols), -1).astype(np.int32)
        if not self.switched(*symbols.shape[-2:]):
            return flat
        return np.concatenate([self.choose_sets(symbols)[:, None], flat], axis=1)

    def choose_sets(self, symbols: np.ndarray) -> np.ndarray:
        """The table set (N,) that codes each home-grid symbol grid (N, C, GH, GW) in the fewest bits.

        Ideal code lengths from the integer tables, selector included; the lowest
        number among equals. Always 0 with one set.
        """
        if self.sets == 1:
            return np.zeros(len(symbols), dtype=np.int32)
        return np.argmin(self.set_costs(symbols), axis=1).astype(np.int32)

    def set_costs(self, symbols: np.ndarray) -> np.ndarray:
        """Ideal code lengths in bits (N, M) of symbol grids (N, C, H, W) under each table set, selector included.

        One column (M = 1) for a grid coded without a selector.
        """
        height, width = symbols.shape[-2:]
        flat = symbols.reshape(len(symbols), -1)
        places = np.arange(flat.shape[1])
        selector = self.selector_bits(height, width)
        step = max(1, COST_ELEMENTS // max(1, self.sets * len(places)))  # images at once: bounds the gathered bits
        costs = np.empty((len(flat), len(selector)))
        for first in range(0, len(flat), step):
            costs[first : first + step] = self.place_bits(height, width, places, flat[first : first + step]).sum(-1).T
        return costs + selector

    def code_lengths(self, symbols: np.ndarray) -> np.ndarray:
        """Ideal code length in bits (N,) of each symbol grid (N, C, H, W), with the set :meth:`streams` picks."""
        costs: np.ndarray = self.set_costs(symbols).min(axis=1)
        return costs

    def place_bits(self, height: int, width: int, places: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        """The ideal code length (M, ...) of ``symbols`` at flat ``places`` of a (C, height, width) grid, under
        each table set (one, M = 1, off the home grid or with one set); ``places`` broadcasts with ``symbols``.

        Gathered from the bank's bits (a few thousand rows), never from a table of every place and symbol.
        """
        bits, places, symbols = self._table_bits(), np.asarray(places), np.asarray(symbols)
        if (height, width) != self.grid:
            return bits["stationary"][places // (height * width), symbols][None]
        rows = self.index.reshape(self.sets, -1)[:, places]  # (M, *places.shape): each set's bank row per place
        return bits["bank"][rows.reshape(self.sets, *(1,) * (symbols.ndim - places.ndim), *places.shape), symbols]

    def selector_bits(self, height: int, width: int) -> np.ndarray:
        """The selector's bits (M,) for each table set of a (C, height, width) grid (zeros without a selector)."""
        return self._table_bits()["selector"] if self.switched(height, width) else np.zeros(1)

    def symbols_of(self, stream: np.ndarray, height: int, width: int) -> np.ndarray:
        """Inverse of :meth:`streams` for one image: its (C, height, width) symbols."""
        if self.switched(height, width):
            stream = stream[1:]
        return stream.reshape(self.channels, height, width)

    def _table_bits(self) -> dict[str, np.ndarray]:
        """-log2 of the bank's, the selector's and the stationary tables' frequencies (computed once)."""
        if "bank" not in self._derived:
            total = float(1 << PRECISION)
            self._derived["bank"] = -np.log2(self.bank / total)
            self._derived["selector"] = -np.log2(self.selector / total)
            self._derived["stationary"] = -np.log2(self.stationary / total)
        return self._derived

    def to_symbols(self, latents: np.ndarray) -> np.ndarray:
        """Round and clamp real latents to symbol indices ``0..2R`` (int32)."""
        return to_symbols(latents, self.radius)

    def from_symbols(self, symbols: np.ndarray) -> np.ndarray:
        """Symbol indices back to integer latent values."""
        return symbols.astype(np.int32) - self.radius


def to_symbols(latents: np.ndarray, radius: int) -> np.ndarray:
    """Real latents rounded, clamped to ``[-radius, radius]`` and shifted to symbol indices ``0..2R`` (int32)."""
    return (np.clip(np.rint(latents), -radius, radius) + radius).astype(np.int32)


def stationary_from_positional(positional_pmf: np.ndarray) -> np.ndarray:
    """Per-channel pmf: the positional pmfs (C, GH, GW, K) averaged over positions."""
    return positional_pmf.mean(axis=(1, 2))
