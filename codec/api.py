"""The Python API: ``compress`` an image to ``.aec`` bytes, ``decompress`` them back.

>>> import numpy as np, codec
>>> digit = np.zeros((28, 28), np.uint8); digit[6:22, 12:16] = 255
>>> data = codec.compress(digit, quality=4)
>>> codec.decompress(data).shape
(28, 28)

Coding goes through :class:`codec.encoder.Encoder` (the per-image decision),
decoding through :mod:`codec.decoder`; this module is the face they show.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .arguments import check_effort, check_max_error, check_quality
from .bitstream import Header
from .decoder import (
    Decoded,
    PixelCoded,
    Refined,
    decode_latents,
    decode_payload,
    decompress_many,
    reconstruct,
    unpack,
)
from .encoder import Encoder
from .images import ImageLike, prepare
from .models import DEFAULT_LEVEL, available_levels
from .search import DEFAULT_EFFORT

__all__ = [
    "DEFAULT_EFFORT",
    "DEFAULT_LEVEL",
    "Decoded",
    "FileInfo",
    "PixelCoded",
    "Refined",
    "check_effort",
    "check_max_error",
    "check_quality",
    "compress",
    "compress_many",
    "decode_latents",
    "decode_payload",
    "decompress",
    "decompress_many",
    "inspect",
    "levels",
    "reconstruct",
]


@dataclass(frozen=True)
class FileInfo:
    """What ``aec info`` shows about a file."""

    header: Header
    file_bytes: int
    payload_bytes: int

    @property
    def pixels(self) -> int:
        return self.header.width * self.header.height

    @property
    def bpp(self) -> float:
        return 8.0 * self.file_bytes / self.pixels

    @property
    def payload_bpp(self) -> float:
        return 8.0 * self.payload_bytes / self.pixels


def compress_many(
    images: Iterable[ImageLike],
    quality: int = DEFAULT_LEVEL,
    effort: int = DEFAULT_EFFORT,
    max_error: int | None = None,
    psnr: float | None = None,
    max_bytes: int | None = None,
    restore: bool = False,
) -> list[bytes]:
    """``compress`` for many images at once: the same bytes, batched for speed.

    >>> import numpy as np
    >>> blank = np.zeros((28, 28), np.uint8)
    >>> compress_many([blank, blank]) == [compress(blank)] * 2
    True
    """
    encoder = Encoder(quality, effort, max_error, psnr, max_bytes, restore)
    return encoder.files([prepare(image) for image in images])


def compress(
    image: ImageLike,
    quality: int = DEFAULT_LEVEL,
    effort: int = DEFAULT_EFFORT,
    max_error: int | None = None,
    psnr: float | None = None,
    max_bytes: int | None = None,
    restore: bool = False,
) -> bytes:
    """Code ``image`` (a PIL image of any mode, or a 2-D uint8 array) as ``.aec`` bytes.

    ``quality`` is a shipped level (see :func:`levels`); higher is better and larger.
    ``effort`` (0 to 3) is how hard the encoder searches for latents that cost
    fewer bits for the quality (:mod:`codec.search`) and, from 1, which
    level's model codes the image best (:mod:`codec.choice`), so that its
    quality rises with the level; 0 rounds the level's own model's latents,
    the fastest (its quality may dip from one level to the next).
    ``max_error`` K (0 to 127) adds the refinement layer (:mod:`codec.refine`):
    every pixel comes back within K grey levels, over the level's autoencoder or
    without one, whichever file is smaller (on another machine, whose float
    synthesis may round a pixel of the autoencoder's image the other way, within
    K + 1). K = 0 is lossless on every machine (no autoencoder layer).
    ``restore`` (with ``max_error`` 1 or more) has the decoder filter the
    image with filters the encoder fitted to bring it closer (:mod:`codec.restore`):
    a higher PSNR for a few bytes more, every pixel then within 2K.
    ``psnr`` (dB) or ``max_bytes`` choose the quality for the image instead
    (:mod:`codec.targets`): the lowest reaching the PSNR, the highest that fits.

    >>> import numpy as np
    >>> data = compress(np.zeros((28, 28), np.uint8), quality=1)
    >>> data[0] == 0xAE, len(data) < 20
    (True, True)
    """
    return compress_many([image], quality, effort, max_error, psnr, max_bytes, restore)[0]


def decompress(data: bytes) -> np.ndarray:
    """Decode ``.aec`` bytes to an (H, W) uint8 array.

    >>> import numpy as np
    >>> image = decompress(compress(np.full((30, 40), 255, np.uint8)))
    >>> image.shape, image.dtype
    ((30, 40), dtype('uint8'))
    """
    return decompress_many([data])[0]


def inspect(data: bytes) -> FileInfo:
    """Check a file and describe it without decoding the image.

    >>> import numpy as np
    >>> info = inspect(compress(np.zeros((28, 28), np.uint8), quality=2, effort=0))
    >>> info.header.level, info.header.width, info.file_bytes - info.payload_bytes
    (2, 28, 5)
    """
    header, payload = unpack(data)
    return FileInfo(header=header, file_bytes=len(data), payload_bytes=len(payload))


def levels() -> list[int]:
    """The installed quality levels, lowest rate first.

    >>> levels()[0]
    1
    """
    return available_levels()
