"""Pick the quality level per image: the smallest that reaches a PSNR, or the best that fits a size.

Like cwebp's ``-psnr`` and ``-size``: every installed level is tried (in one batch
per level) and the choice is verified by decoding what would be written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .api import DEFAULT_EFFORT, check_effort, decompress_many, encode_prepared
from .errors import ArgumentError
from .images import Prepared
from .metrics import psnr as psnr_of
from .models import available_levels


@dataclass(frozen=True)
class Choice:
    """The file chosen for one image, or why there is none."""

    data: bytes | None
    level: int | None = None
    psnr: float | None = None
    notice: str | None = None
    error: str | None = None


def encode_for_target(
    prepared: Sequence[Prepared],
    psnr: float | None = None,
    max_bytes: int | None = None,
    effort: int = DEFAULT_EFFORT,
) -> list[Choice]:
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
    if psnr is None and max_bytes is None:
        raise ArgumentError("give a PSNR target, a size limit, or both")
    if psnr is not None and not (isinstance(psnr, (int, float, np.number)) and 0 < psnr < 1000):
        raise ArgumentError(f"a PSNR target must be a positive number of dB, got {psnr!r}")
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 1
    ):
        raise ArgumentError(f"a size limit must be a positive integer of bytes, got {max_bytes!r}")
    effort = check_effort(effort)
    levels = available_levels()
    originals = [255 - p.pixels if p.inverted else p.pixels for p in prepared]
    # Each level with its own model: trying every level is already a per-image choice.
    files = {level: encode_prepared(prepared, level, effort, choose=False) for level in levels}
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
                Choice(None, error=f"cannot fit in {max_bytes} bytes (the smallest file is {smallest} bytes)")
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
        choices.append(Choice(files[level][i], level, value if np.isfinite(value) else None, notice))
    return choices
