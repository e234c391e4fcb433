"""Adaptive integer frequency tables: counts per context that learn the image while it is coded.

Encoder and decoder start from the same frozen table per context and, after
each piece of the stream, count the symbols coded in their contexts, so both
hold the same integers at every step. The tables follow the image (a flat
background soon costs almost nothing) and stay bit-exact on every machine:
nothing on the path is a float. Used by the refinement layer (:mod:`codec.refine`)
and by the latents off the home grid (:mod:`codec.contexts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .coder import PRECISION


@dataclass(frozen=True)
class Adaptation:
    """How fast tables adapt: a frozen table counts as ``prior_total`` observations, each coded symbol adds
    ``increment``, and a context whose counts pass ``limit`` has them halved (recent symbols weigh more)."""

    prior_total: int
    increment: int
    limit: int


class AdaptiveCounts:
    """Counts (..., contexts, K) started from frozen integer frequency tables of the same shape."""

    def __init__(self, tables: np.ndarray, adaptation: Adaptation) -> None:
        self.adaptation = adaptation
        self.counts = 1 + tables.astype(np.int64) * adaptation.prior_total // (1 << PRECISION)
        self.totals = self.counts.sum(axis=-1)  # kept equal to the counts' sums

    def frequencies(self, index: tuple[np.ndarray, ...] | np.ndarray) -> np.ndarray:
        """The (n, K) frequency rows of the contexts at ``index`` (into the leading axes), as coded now."""
        size = self.counts.shape[-1]
        return frequencies(self.counts[index].reshape(-1, size), self.totals[index].reshape(-1, 1))

    def update(self, index: tuple[np.ndarray, ...] | np.ndarray, symbols: np.ndarray) -> None:
        """Count ``symbols`` in the contexts at ``index``; halve the contexts that passed the limit."""
        where = index if isinstance(index, tuple) else (index,)
        np.add.at(self.counts, (*where, symbols), self.adaptation.increment)
        np.add.at(self.totals, where, self.adaptation.increment)
        full = self.totals > self.adaptation.limit
        if full.any():
            self.counts[full] = (self.counts[full] + 1) >> 1
            self.totals[full] = self.counts[full].sum(axis=-1)


def frequencies(counts: np.ndarray, total: np.ndarray | None = None) -> np.ndarray:
    """Integer frequency rows summing to ``2**PRECISION``, none below 1, from counts (n, K) (and their sums (n, 1),
    when known): integer arithmetic only.

    Each symbol gets 1 plus its share of the rest, rounded down; what rounding
    leaves goes to the row's most frequent symbol (the first of equals).
    """
    if total is None:
        total = counts.sum(axis=-1, keepdims=True)
    free = (1 << PRECISION) - counts.shape[-1]
    freq = 1 + counts * free // total
    deficit = (1 << PRECISION) - freq.sum(axis=-1)
    top = np.argmax(freq, axis=-1)
    freq[np.arange(len(freq)), top] += deficit
    return freq
