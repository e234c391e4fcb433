"""Pick the quality per image: the lowest that reaches a PSNR, or the highest that fits a size.

Like cwebp's ``-psnr`` and ``-size``: every installed quality is tried (in one
batch per quality), each coded by the encoder as a plain ``-q`` would code it
(:class:`codec.encoder.Encoder`: the same choice of model and search at the
same effort), and the choice is verified by decoding what would be written.
When the autoencoders alone cannot reach a PSNR (or spend much to), refined
files (:mod:`codec.refine`) are tried at decreasing maximum errors, restored
(:mod:`codec.restore`) where that brings them closer: a target promises the
PSNR, not a bound on each pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import refine
from .arguments import check_effort
from .bitstream import MAX_REFINE_ERROR
from .decoder import decompress_many, unpack
from .encoder import Encoded, Encoder, encode_within, within_bases
from .errors import ArgumentError
from .images import Prepared
from .metrics import psnr as psnr_of
from .models import available_levels
from .search import DEFAULT_EFFORT

#: A PSNR target also tries the refinement layer when the smallest level reaching it spends more than this.
REFINE_ABOVE_BPP = 0.5
#: Maximum errors tried past the first that misses a PSNR target (the PSNR falls with the error only roughly).
BEYOND = 2


def check_target(psnr: object, max_bytes: object) -> None:
    """:class:`ArgumentError` unless there is a target: a PSNR of positive dB, a size of positive bytes, or both."""
    if psnr is None and max_bytes is None:
        raise ArgumentError("give a PSNR target, a size limit, or both")
    if psnr is not None and not (isinstance(psnr, (int, float, np.number)) and 0 < psnr < 1000):
        raise ArgumentError(f"a PSNR target must be a positive number of dB, got {psnr!r}")
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 1
    ):
        raise ArgumentError(f"a size limit must be a positive integer of bytes, got {max_bytes!r}")


def encode_for_target(
    prepared: Sequence[Prepared],
    psnr: float | None = None,
    max_bytes: int | None = None,
    effort: int = DEFAULT_EFFORT,
) -> list[Encoded]:
    """For each image: the smallest level reaching ``psnr`` dB (all levels when None) within ``max_bytes``.

    When no level reaches the PSNR, the best one that fits is taken, with a notice;
    when none fits in ``max_bytes``, the image gets an error.

    >>> import numpy as np
    >>> from codec.images import prepare
    >>> digit = np.zeros((28, 28), np.uint8); digit[6:22, 12:16] = 255
    >>> (choice,) = encode_for_target([prepare(digit)], psnr=20.0)
    >>> choice.psnr >= 20.0
    True
    """
    check_target(psnr, max_bytes)
    effort = check_effort(effort)
    levels = available_levels()
    originals = [255 - p.pixels if p.inverted else p.pixels for p in prepared]
    files = {level: Encoder(level, effort).files(prepared) for level in levels}
    images = range(len(prepared))
    fitting = [[q for q in levels if max_bytes is None or len(files[q][i]) <= max_bytes] for i in images]
    # Decode what the choice needs: every fitting level for a PSNR target, the best fit for a size alone.
    wanted = {q: [i for i in images if q in (fitting[i] if psnr is not None else fitting[i][-1:])] for q in levels}
    quality: dict[tuple[int, int], float] = {}
    for level, indices in wanted.items():
        decoded = decompress_many([files[level][i] for i in indices])
        quality.update(((level, i), float(psnr_of(originals[i], d))) for i, d in zip(indices, decoded))
    choices = []
    for i in images:
        if not fitting[i]:
            smallest = min(len(files[q][i]) for q in levels)
            choices.append(
                Encoded(None, error=f"cannot fit in {max_bytes} bytes (the smallest file is {smallest} bytes)")
            )
            continue
        if psnr is None:
            level, notice = fitting[i][-1], None
        elif reaching := [q for q in fitting[i] if quality[q, i] >= psnr]:
            level, notice = reaching[0], None
        else:
            level = max(fitting[i], key=lambda q: quality[q, i])
            notice = f"{psnr:g} dB not reached: best {quality[level, i]:.2f} dB at level {level}"
        value = quality[level, i]
        choice = Encoded(files[level][i], level, value if np.isfinite(value) else None, notice)
        if psnr is not None and (notice or 8 * len(files[level][i]) > REFINE_ABOVE_BPP * prepared[i].pixels.size):
            refined = refine_for_target(prepared[i], originals[i], psnr, max_bytes, level, effort)
            if refined is not None and (notice or len(refined.data or b"") < len(files[level][i])):
                choice = refined
        choices.append(choice)
    return choices


def _even_error(psnr: float) -> int:
    """The largest K whose errors, spread evenly over -K..K (mean square K(K+1)/3), give at least ``psnr``."""
    k = 0
    while k < MAX_REFINE_ERROR and 10 * np.log10(255.0**2 * 3 / ((k + 1) * (k + 2))) >= psnr:
        k += 1
    return k


def refine_for_target(
    item: Prepared, original: np.ndarray, psnr: float, max_bytes: int | None, level: int, effort: int
) -> Encoded | None:
    """The smallest refined file (:mod:`codec.refine`) reaching ``psnr`` within ``max_bytes``, over ``level``'s
    autoencoder or none; None when none does or no refinement model is installed.

    The largest maximum error whose file reaches the target is found by a
    galloping search (the PSNR falls as the maximum error grows), starting from
    the largest one whose errors, spread evenly over ``-K..K``, would still
    reach it; every maximum error whose floor ``20 log10(255 / K)`` is above the
    target reaches it. The PSNR falls only roughly (a larger error may land
    above the target where a smaller one missed), so the :data:`BEYOND` errors
    past the first miss are tried too, and the smallest file that reaches the
    target wins.
    """
    if refine.installed_id() is None:
        return None
    bases = within_bases(item, 1, level, effort)  # made once: the attempts differ in their maximum error only

    def attempt(max_error: int) -> tuple[bytes, float]:
        data, pixels = encode_within(item, max_error, level, effort, bases, restored=True)
        return data, float(psnr_of(original, pixels))

    low = 0  # a maximum error that reaches the target (lossless always does)
    while low < MAX_REFINE_ERROR and refine.psnr_floor(low + 1) >= psnr:
        low += 1
    best = attempt(low)
    high = MAX_REFINE_ERROR + 1  # the smallest maximum error known to miss it
    guess = max(low + 1, _even_error(psnr))
    while guess < high:  # gallop up from the guess until a maximum error misses
        data, value = attempt(guess)
        if value < psnr:
            high = guess
            break
        low, best = guess, (data, value)
        guess = min(2 * guess + 1, MAX_REFINE_ERROR + 1)
    while high - low > 1:
        middle = (low + high) // 2
        data, value = attempt(middle)
        if value >= psnr:
            low, best = middle, (data, value)
        else:
            high = middle
    for beyond in range(high + 1, min(high + BEYOND, MAX_REFINE_ERROR) + 1):
        data, value = attempt(beyond)
        if value >= psnr and len(data) < len(best[0]):
            low, best = beyond, (data, value)
    data, value = best
    if max_bytes is not None and len(data) > max_bytes:
        return None
    header = unpack(data)[0]
    if header.pixel_model:
        how = f"max error {low}, the pixel model's file"
    else:  # the level whose autoencoder the refinement builds on; 0: none
        how = f"refined to max error {low} ({f'over level {header.level}' if header.level else 'no autoencoder layer'})"
    return Encoded(data, None, value if np.isfinite(value) else None, how)
