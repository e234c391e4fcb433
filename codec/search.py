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
) -> np.ndarray:
    """Symbols (N, C, H, W) with a cost ``bits + lmbda * SSE`` no higher than those given.

    Images over :data:`MAX_PIXELS` keep the symbols given.

    ``latents`` are the real-valued latents the symbols were rounded from,
    ``images`` (N, h, w) the originals in [0, 1] (the decoder's output is compared
    on their area), and ``synthesise`` maps integer latents (N, C, H, W) to images
    (N, H', W') with ``H' >= h`` and ``W' >= w``.
    """
    height, width = images.shape[-2:]
    if effort.rounds == 0 or effort.candidates == 0 or lmbda <= 0 or len(symbols) == 0 or height * width > MAX_PIXELS:
        return symbols
    n, shape = len(symbols), symbols.shape[1:]
    batch = max(1, DECODE_PIXELS // (height * width))
    grid_h, grid_w = shape[-2:]
    symbols_per_place = 2 * prior.radius + 1
    target = images.reshape(n, -1).astype(np.float32)
    real = latents.reshape(n, -1) + prior.radius
    current = symbols.reshape(n, -1).astype(np.int32).copy()
    k = min(effort.candidates, current.shape[1])
    rows, cols = np.arange(n), np.arange(k)

    def decode(sym: np.ndarray) -> np.ndarray:
        out = np.empty((len(sym), height * width), dtype=np.float32)
        for first in range(0, len(sym), batch):  # bounded: a synthesis holds ~1 MB per digit
            lat = (sym[first : first + batch] - prior.radius).reshape(-1, *shape).astype(np.float32)
            out[first : first + len(lat)] = np.clip(synthesise(lat)[:, :height, :width], 0.0, 1.0).reshape(len(lat), -1)
        return out

    def sse(pixels: np.ndarray) -> np.ndarray:
        return ((pixels - target) ** 2).sum(axis=1)

    pixels = decode(current)
    sets = prior.set_costs(current.reshape(n, *shape))  # (n, M) bits under each table set
    best = sets.min(axis=1) + lmbda * sse(pixels)
    tried = np.zeros(current.shape, dtype=bool)
    for _ in range(effort.rounds):
        residual = real - current
        # The latents nearest their rounding boundary not tried yet: (n, k).
        order = np.argsort(np.where(tried, 1.0, -np.abs(residual)), axis=1, kind="stable")[:, :k]
        fresh = ~np.take_along_axis(tried, order, axis=1)
        np.put_along_axis(tried, order, True, axis=1)
        old = current[rows[:, None], order]
        new = np.clip(old + np.where(np.take_along_axis(residual, order, axis=1) >= 0, 1, -1), 0, symbols_per_place - 1)
        live = (np.abs(np.take_along_axis(residual, order, axis=1)) >= MIN_RESIDUAL) & (new != old)
        live &= fresh
        # Bits of each set after each single move: (n, k, M).
        delta = (prior.place_bits(grid_h, grid_w, order, new) - prior.place_bits(grid_h, grid_w, order, old)).transpose(
            1, 2, 0
        )
        moved = np.repeat(current[:, None], k, axis=1)
        moved[rows[:, None], cols[None], order] = new
        single_pixels = np.repeat(pixels[:, None], k, axis=1)  # a move not tried leaves the image as it is
        single_pixels[live] = decode(moved[live])
        single_sse = ((single_pixels - target[:, None]) ** 2).sum(axis=2)
        single = np.where(live, (sets[:, None] + delta).min(axis=2) + lmbda * single_sse, np.inf)
        effects = single_pixels - pixels[:, None]  # (n, k, P): what each move does to the image
        take = _combine(sets, pixels - target, effects, delta, live, lmbda)
        combined = current.copy()
        np.put_along_axis(combined, order, np.where(take, new, old), axis=1)
        combined_pixels = decode(combined)
        combined_sets = sets + np.einsum("nk,nkm->nm", take.astype(delta.dtype), delta)
        combined_cost = combined_sets.min(axis=1) + lmbda * sse(combined_pixels)
        pick = np.argmin(single, axis=1)
        single_best = single[rows, pick]
        use_combined = (combined_cost < best) & (combined_cost <= single_best)
        use_single = ~use_combined & (single_best < best)
        for keep, sym, pix, cost, bits in (
            (use_combined, combined, combined_pixels, combined_cost, combined_sets),
            (use_single, moved[rows, pick], single_pixels[rows, pick], single_best, sets + delta[rows, pick]),
        ):
            current[keep], pixels[keep], best[keep], sets[keep] = sym[keep], pix[keep], cost[keep], bits[keep]
    return current.reshape(symbols.shape)


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
