"""Entropy coding of symbol streams with constriction's ANS coder.

The coder knows nothing about images: it turns symbols and one integer frequency
row per symbol into bytes and back. The byte stream is constriction's 32-bit
words in little-endian order, with the zero bytes at the top of the last word
(the ANS head) cut off; the decoder pads them back.
"""

from __future__ import annotations

import constriction
import numpy as np

from .errors import CorruptFileError
from .prior import PRECISION

#: The constriction release series whose output this format is defined by.
CODER_VERSION = "constriction 0.5"

_FAMILY = constriction.stream.model.Categorical(perfect=False)


def _probabilities(freqs: np.ndarray) -> np.ndarray:
    # Exact: small integers divided by a power of two are representable in float64.
    return np.ascontiguousarray(freqs, dtype=np.float64) / float(1 << PRECISION)


def encode(symbols: np.ndarray, freqs: np.ndarray) -> bytes:
    """Code ``symbols`` (n,) where symbol i follows frequency row ``freqs[i]`` (n, K)."""
    symbols = np.ascontiguousarray(symbols, dtype=np.int32)
    if symbols.size == 0:
        return b""
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols, _FAMILY, _probabilities(freqs))
    data = coder.get_compressed().astype("<u4").tobytes()
    cut = 0
    while cut < 3 and len(data) > cut and data[len(data) - 1 - cut] == 0:
        cut += 1
    return data[: len(data) - cut]


def decode(data: bytes, freqs: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode`; ``freqs`` gives the number of symbols and their tables.

    Raises :class:`CorruptFileError` when the stream is not exactly consumed.
    """
    if freqs.shape[0] == 0:
        if data:
            raise CorruptFileError("payload has bytes after its last symbol")
        return np.zeros(0, dtype=np.int32)
    padded = data + b"\0" * (-len(data) % 4)
    words = np.frombuffer(padded, dtype="<u4").astype(np.uint32)
    coder = constriction.stream.stack.AnsCoder(words)
    try:
        symbols = coder.decode(_FAMILY, _probabilities(freqs))
    except (ValueError, KeyError, RuntimeError) as exc:  # pragma: no cover - defensive
        raise CorruptFileError(f"payload cannot be decoded ({exc})") from exc
    if not coder.is_empty():
        raise CorruptFileError("payload does not end where its last symbol does")
    return np.asarray(symbols, dtype=np.int32)
