"""Rate-distortion optimized quantization of the latents, at the encoder only.

Rounding the analysis transform's latents to the nearest integers is what the
network was trained for, but it is not the best choice per image: the analysis
transform is an amortized guess, and each latent could as well be rounded the
other way. The search keeps the decoder and the tables as they are and picks,
per image, integer latents with a lower cost

    J = bits + lambda * SSE

where ``bits`` is the ideal code length under the level's integer tables (the
best table set and its selector included) and SSE the squared error of the
decoded image (pixels in [0, 1]), the trade-off the network was trained with.
The bitstream is unchanged: any integer latents are a valid file, so files from
the search decode with every decoder of the format.

Each round tries, for the latents closest to their rounding boundary, the
other rounding: it decodes each such single move once, which gives both its
exact cost and its effect on the image. A greedy pass then combines moves on a
linear model of the image (the effect of the moves added up) and the result is
decoded and checked; a round keeps the best of the current latents, the best
single move and the combination, so the cost never goes up. This is the
encoder-side optimization of learned codecs (Yang, Bamler and Mandt, "Improving
inference for neural image compression", 2020) made discrete, in the spirit of
the trellis quantization of classic codecs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .prior import LatentPrior

#: Latents this close to an integer are not worth a decode: the other rounding is far.
MIN_RESIDUAL = 0.02
#: Pixels of candidate images synthesised at once (256 digits; bounds the search's memory).
DECODE_PIXELS = 256 * 28 * 28
#: Larger images keep their rounded latents: a few dozen moves would cover a sliver of them,
#: each at the cost of decoding the whole image.
MAX_PIXELS = 128 * 128


@dataclass(frozen=True)
class Effort:
    """How hard the encoder searches: rounds of moves and the latents tried per round."""

    rounds: int
    candidates: int


#: ``--effort`` levels: 0 rounds the latents (the fastest encoder); higher
#: levels decode more candidates per image (about ``rounds * (candidates + 1)``),
#: each round the latents nearest their rounding boundary not tried before.
EFFORTS: dict[int, Effort] = {
    0: Effort(0, 0),
    1: Effort(1, 8),
    2: Effort(2, 16),
    3: Effort(4, 24),
}
DEFAULT_EFFORT = 2


def refine(
    symbols: np.ndarray,
    latents: np.ndarray,
    images: np.ndarray,
    prior: LatentPrior,
    synthesise: Callable[[np.ndarray], np.ndarray],
    lmbda: float,
    effort: Effort,
    synthesised_pixels: int | None = None,
) -> np.ndarray:
    """Symbols (N, C, H, W) with a cost ``bits + lmbda * SSE`` no higher than those given.

    Images whose synthesis makes over :data:`MAX_PIXELS` (``synthesised_pixels``, default the images' own) keep
    the symbols given.

    ``latents`` are the real-valued latents the symbols were rounded from,
    ``images`` (N, h, w) the originals in [0, 1] (the decoder's output is compared
    on their area), and ``synthesise`` maps integer latents (N, C, H, W) to images
    (N, H', W') with ``H' >= h`` and ``W' >= w``.
    """
    height, width = images.shape[-2:]
    area = height * width if synthesised_pixels is None else synthesised_pixels
    if effort.rounds == 0 or effort.candidates == 0 or lmbda <= 0 or len(symbols) == 0 or area > MAX_PIXELS:
        return symbols
    search = _Search(symbols, latents, images, prior, synthesise, lmbda)
    for _ in range(effort.rounds):
        search.round(min(effort.candidates, search.current.shape[1]))
    return search.current.reshape(symbols.shape)


class _Search:
    """The search's state over a batch: each image's symbols (N, L), its decoded image, its bits under each table
    set, its cost, and which latents were tried."""

    def __init__(
        self,
        symbols: np.ndarray,
        latents: np.ndarray,
        images: np.ndarray,
        prior: LatentPrior,
        synthesise: Callable[[np.ndarray], np.ndarray],
        lmbda: float,
    ) -> None:
        n, self.shape = len(symbols), symbols.shape[1:]
        self.height, self.width = images.shape[-2:]
        self.prior, self.synthesise, self.lmbda = prior, synthesise, lmbda
        self.target = images.reshape(n, -1).astype(np.float32)
        self.real = latents.reshape(n, -1) + prior.radius
        self.current = symbols.reshape(n, -1).astype(np.int32).copy()
        self.pixels = self.decode(self.current)
        self.sets = prior.set_costs(self.current.reshape(n, *self.shape))  # (n, M) bits under each table set
        self.best = self.sets.min(axis=1) + lmbda * self.sse(self.pixels)
        self.tried = np.zeros(self.current.shape, dtype=bool)

    def decode(self, sym: np.ndarray) -> np.ndarray:
        """The decoder's images (n, P) of symbols (n, L), in bounded batches (a synthesis holds ~1 MB per digit)."""
        area = self.height * self.width
        batch = max(1, DECODE_PIXELS // area)
        out = np.empty((len(sym), area), dtype=np.float32)
        for first in range(0, len(sym), batch):
            lat = (sym[first : first + batch] - self.prior.radius).reshape(-1, *self.shape).astype(np.float32)
            decoded = self.synthesise(lat)[:, : self.height, : self.width]
            out[first : first + len(lat)] = np.clip(decoded, 0.0, 1.0).reshape(len(lat), -1)
        return out

    def sse(self, pixels: np.ndarray) -> np.ndarray:
        return ((pixels - self.target) ** 2).sum(axis=1)

    def moves(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each image's ``k`` latents nearest their rounding boundary not tried yet (marked tried now): their places
        (n, k), symbols now and moved one step toward the real value, and which moves are worth a try."""
        residual = self.real - self.current
        order = np.argsort(np.where(self.tried, 1.0, -np.abs(residual)), axis=1, kind="stable")[:, :k]
        fresh = ~np.take_along_axis(self.tried, order, axis=1)
        np.put_along_axis(self.tried, order, True, axis=1)
        old = self.current[np.arange(len(order))[:, None], order]
        toward = np.take_along_axis(residual, order, axis=1)
        new = np.clip(old + np.where(toward >= 0, 1, -1), 0, 2 * self.prior.radius)
        live = (np.abs(toward) >= MIN_RESIDUAL) & (new != old) & fresh
        return order, old, new, live

    def round(self, k: int) -> None:
        """One round: the best single move and the best combination of moves (:func:`_combine`) are tried, and
        each image keeps whichever lowers its cost most, if either does."""
        n = len(self.current)
        rows, cols = np.arange(n), np.arange(k)
        order, old, new, live = self.moves(k)
        grid_h, grid_w = self.shape[-2:]
        # Bits of each set after each single move: (n, k, M).
        delta = self.prior.place_bits(grid_h, grid_w, order, new) - self.prior.place_bits(grid_h, grid_w, order, old)
        delta = delta.transpose(1, 2, 0)
        moved = np.repeat(self.current[:, None], k, axis=1)
        moved[rows[:, None], cols[None], order] = new
        single_pixels = np.repeat(self.pixels[:, None], k, axis=1)  # a move not tried leaves the image as it is
        single_pixels[live] = self.decode(moved[live])
        single_sse = ((single_pixels - self.target[:, None]) ** 2).sum(axis=2)
        single = np.where(live, (self.sets[:, None] + delta).min(axis=2) + self.lmbda * single_sse, np.inf)
        effects = single_pixels - self.pixels[:, None]  # (n, k, P): what each move does to the image
        take = _combine(self.sets, self.pixels - self.target, effects, delta, live, self.lmbda)
        combined = self.current.copy()
        np.put_along_axis(combined, order, np.where(take, new, old), axis=1)
        combined_pixels = self.decode(combined)
        combined_sets = self.sets + np.einsum("nk,nkm->nm", take.astype(delta.dtype), delta)
        combined_cost = combined_sets.min(axis=1) + self.lmbda * self.sse(combined_pixels)
        pick = np.argmin(single, axis=1)
        single_best = single[rows, pick]
        use_combined = (combined_cost < self.best) & (combined_cost <= single_best)
        use_single = ~use_combined & (single_best < self.best)
        for keep, sym, pix, cost, bits in (
            (use_combined, combined, combined_pixels, combined_cost, combined_sets),
            (use_single, moved[rows, pick], single_pixels[rows, pick], single_best, self.sets + delta[rows, pick]),
        ):
            self.current[keep], self.pixels[keep], self.best[keep], self.sets[keep] = (
                sym[keep],
                pix[keep],
                cost[keep],
                bits[keep],
            )


def _combine(
    sets: np.ndarray, error: np.ndarray, effects: np.ndarray, delta: np.ndarray, live: np.ndarray, lmbda: float
) -> np.ndarray:
    """Which of the k moves (n, k) to make together: greedily, while they lower the cost on a linear model.

    The image after a set of moves is taken as the current one plus each move's
    effect ``d_j``; adding move ``j`` to an error ``e`` makes the SSE
    ``|e|^2 + 2 e.d_j + |d_j|^2``, kept up to date through the Gram matrix of the
    effects. ``sets`` (n, M) are the current bits under each table set and
    ``delta`` (n, k, M) what each move changes them by.
    """
    n, k = live.shape
    rows = np.arange(n)
    gram = effects @ effects.transpose(0, 2, 1)  # (n, k, k)
    own = gram[:, np.arange(k), np.arange(k)]
    cross = np.einsum("np,nkp->nk", error, effects)  # e . d_j
    sse = (error * error).sum(axis=1)
    sets = sets.copy()
    take = np.zeros((n, k), dtype=bool)
    active = np.ones(n, dtype=bool)
    for _ in range(k):
        now = sets.min(axis=1) + lmbda * sse
        after = (sets[:, None] + delta).min(axis=2) + lmbda * (sse[:, None] + 2 * cross + own)
        gain = np.where(live & ~take & active[:, None], now[:, None] - after, -np.inf)
        j = np.argmax(gain, axis=1)
        active &= gain[rows, j] > 0
        if not active.any():
            break
        idx, jt = rows[active], j[active]
        take[idx, jt] = True
        sets[idx] += delta[idx, jt]
        sse[idx] += 2 * cross[idx, jt] + own[idx, jt]
        cross[idx] += gram[idx, jt]
    return take
