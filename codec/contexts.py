"""Context-adaptive coding of latents off the home grid (format version 6).

Off its home grid (any image that is not digit-sized) a model used to code
each latent channel with one stationary table (versions 4 and 5): on a large
image most latents are background, yet each cost what an average latent does.
Version 6 codes them as the refinement codes residuals: latent row by latent
row, each row in two passes (the even columns from the row above, then the odd
ones from their coded left and right neighbours and the one above), every
channel at once, each symbol under its channel's table in an integer *context*
of three coded neighbours of the same channel: the first two's values clipped
to -2..2 and whether the third is non-zero (5 * 5 * 2 = 50 contexts). Every
table starts as the channel's stationary table and adapts to the image
(:mod:`codec.adaptive`). Only decoded symbols steer the tables, all in integer
arithmetic, so the stream decodes the same on every machine.

Measured on the validation images (``codec.training.refine_fit.training_images``
with seed 7: MNIST mosaics, training-font and scanned digits, training photos)
at level 8's general variant, in bits per pixel against the stationary tables:
0.327 -> 0.307 (mosaics), 0.187 -> 0.127 (digits), 0.247 -> 0.163 (photos).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import coder, progress
from .adaptive import Adaptation, AdaptiveCounts
from .prior import LatentPrior

#: Passes of a latent row: 0 its even columns, 1 its odd columns.
PASSES = 2
#: Per pass, the coded neighbours (row, column offsets) that make a symbol's context: N, NW, NE; then W, E, N.
NEIGHBOURS = (((-1, 0), (-1, -1), (-1, 1)), ((0, -1), (0, 1), (-1, 0)))
CONTEXTS = 5 * 5 * 2
#: How fast the tables adapt; chosen on the validation images above among 9 settings.
ADAPTATION = Adaptation(prior_total=2048, increment=64, limit=1 << 20)


@dataclass(frozen=True)
class Start:
    """Where every context's counts start: a frequency row (2**16 in all) per (channel, pass, context), and how
    fast they adapt. Version 6 starts every context at its channel's stationary row (:func:`stationary_start`);
    version 10 at rows fitted to training images (:mod:`codec.context_tables`)."""

    tables: np.ndarray  # (C, PASSES, CONTEXTS, K) integer frequencies
    adaptation: Adaptation


def stationary_start(prior: LatentPrior) -> Start:
    """Version 6's start: each context at its channel's stationary row, adapting at :data:`ADAPTATION`."""
    stationary = prior.stationary[:, None, None, :]
    tables = np.broadcast_to(stationary, (prior.channels, PASSES, CONTEXTS, stationary.shape[-1]))
    return Start(np.ascontiguousarray(tables), ADAPTATION)


class _Grid:
    """The loop shared by encoder and decoder: the coded latents and the adaptive tables."""

    def __init__(self, prior: LatentPrior, height: int, width: int, start: Start | None = None) -> None:
        self.channels, self.radius = prior.channels, prior.radius
        self.height, self.width = height, width
        # Coded latent values with a border of zeros: a row above, a column either side.
        self.latents = np.zeros((self.channels, height + 1, width + 2), dtype=np.int16)
        start = start or stationary_start(prior)
        self.counts = AdaptiveCounts(start.tables, start.adaptation)

    def columns(self, pass_: int) -> np.ndarray:
        return np.arange(pass_, self.width, 2)

    def pieces(self) -> Iterator[tuple[int, int, tuple[np.ndarray, ...]]]:
        """Per row pass, in coding order: ``(row, pass, index)``, where ``index`` names each symbol's
        (channel, pass, context), channel-major."""
        for y in range(self.height):
            for pass_ in range(min(PASSES, self.width)):
                yield y, pass_, self.index(y, pass_)
            progress.report("latents", y + 1, self.height)

    def index(self, y: int, pass_: int) -> tuple[np.ndarray, ...]:
        cols = self.columns(pass_) + 1
        first, second, third = (self.latents[:, y + 1 + dy, cols + dx].astype(np.int64) for dy, dx in NEIGHBOURS[pass_])
        context = (np.clip(first, -2, 2) + 2) * 10 + (np.clip(second, -2, 2) + 2) * 2 + (third != 0)
        channel = np.repeat(np.arange(self.channels), len(cols))
        return channel, np.full(len(channel), pass_), context.reshape(-1)

    def commit(self, y: int, pass_: int, index: tuple[np.ndarray, ...], symbols: np.ndarray) -> None:
        """Count the pass's symbols in their contexts and store their latents."""
        self.counts.update(index, symbols)
        self.latents[:, y + 1, self.columns(pass_) + 1] = symbols.reshape(self.channels, -1) - self.radius


def encode(prior: LatentPrior, symbols: np.ndarray, start: Start | None = None) -> bytes:
    """The stream of one image's latent symbols (C, H, W), each in ``0..2R``, its contexts started at ``start``
    (None: :func:`stationary_start`)."""
    channels, height, width = symbols.shape
    grid = _Grid(prior, height, width, start)
    encoder = coder.StreamEncoder()
    for y, pass_, index in grid.pieces():
        piece = np.ascontiguousarray(symbols[:, y, grid.columns(pass_)]).reshape(-1).astype(np.int32)
        encoder.encode(piece, grid.counts.frequencies(index))
        grid.commit(y, pass_, index, piece)
    return encoder.finish()


def decode(prior: LatentPrior, data: bytes, height: int, width: int, start: Start | None = None) -> np.ndarray:
    """Inverse of :func:`encode`: the (C, height, width) symbols. :class:`CorruptFileError` when the coder fails."""
    grid = _Grid(prior, height, width, start)
    stream = coder.StreamDecoder(data)
    out = np.empty((prior.channels, height, width), dtype=np.int32)
    for y, pass_, index in grid.pieces():
        piece = stream.decode(len(index[0]), grid.counts.frequencies(index))
        grid.commit(y, pass_, index, piece)
        out[:, y, grid.columns(pass_)] = piece.reshape(prior.channels, -1)
    return out


def symbol_counts(prior: LatentPrior, symbols: np.ndarray) -> np.ndarray:
    """How often each symbol of one image's latents (C, H, W) falls in each (channel, pass, context): counts
    (C, PASSES, CONTEXTS, K), what the fitted start tables are made of (:mod:`codec.training.contexts_fit`)."""
    channels, height, width = symbols.shape
    grid = _Grid(prior, height, width)
    counts = np.zeros(grid.counts.counts.shape, np.int64)
    for y, pass_, index in grid.pieces():
        piece = np.ascontiguousarray(symbols[:, y, grid.columns(pass_)]).reshape(-1)
        np.add.at(counts, (*index, piece), 1)
        grid.latents[:, y + 1, grid.columns(pass_) + 1] = piece.reshape(channels, -1) - grid.radius
    return counts
