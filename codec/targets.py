"""Pick the quality level per image: the smallest that reaches a PSNR, or the best that fits a size.

Like cwebp's ``-psnr`` and ``-size``: every installed level is tried (in one batch
per level) and the choice is verified by decoding what would be written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .api import decompress_many, encode_prepared
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
    prepared: Sequence[Prepared], psnr: float | None = None, max_bytes: int | None = None
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
        raise ValueError("give a PSNR target, a size limit, or both")
    levels = available_levels()
    originals = [255 - p.pixels if p.inverted else p.pixels for p in prepared]
    files = {level: encode_prepared(prepared, level) for level in levels}
    quality = {
        level: [float(psnr_of(o, d)) for o, d in zip(originals, decompress_many(files[level]))] for level in levels
    }
    choices = []
    for i in range(len(prepared)):
        fitting = [q for q in levels if max_bytes is None or len(files[q][i]) <= max_bytes]
        if not fitting:
            smallest = min(len(files[q][i]) for q in levels)
            choices.append(
                Choice(None, error=f"cannot fit in {max_bytes} bytes (the smallest file is {smallest} bytes)")
            )
            continue
        if psnr is None:
            level, notice = fitting[-1], None
        else:
            reaching = [q for q in fitting if quality[q][i] >= psnr]
            if reaching:
                level, notice = reaching[0], None
            else:
                level = max(fitting, key=lambda q: quality[q][i])
                notice = f"{psnr:g} dB not reached: best {quality[level][i]:.2f} dB at level {level}"
        value = quality[level][i]
        choices.append(Choice(files[level][i], level, value if np.isfinite(value) else None, notice))
    return choices
