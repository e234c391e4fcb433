"""Entropy coding of symbol streams with constriction's range coder.

The coder knows nothing about images: it turns symbols and their integer
frequency tables into bytes and back. The byte stream is constriction's 32-bit
words in little-endian order, with up to three zero bytes at the end of the last
word cut off; the decoder pads them back. (The range coder ends its streams
about 7 bits shorter than constriction's ANS coder on a digit's latents, and it
is a queue: symbols go in and come out in the same order.)
"""

from __future__ import annotations

from collections.abc import Sequence

import constriction
import numpy as np

from .errors import CorruptFileError
from .prior import PRECISION

#: The constriction release series whose output this format is defined by.
CODER_VERSION = "constriction 0.5"

_FAMILY = constriction.stream.model.Categorical(perfect=False)

#: A run of consecutive symbols and their tables: ``(count, freqs)``, where ``freqs``
#: is one row (K,) shared by the whole run, or one row per symbol (count, K).
Segment = tuple[int, np.ndarray]


def _probabilities(freqs: np.ndarray) -> np.ndarray:
    # Exact: small integers divided by a power of two are representable in float64.
    return np.ascontiguousarray(freqs, dtype=np.float64) / float(1 << PRECISION)


def _model(freqs: np.ndarray) -> tuple[object, tuple[np.ndarray, ...]]:
    """constriction's model and the per-call arguments for one segment's tables."""
    if freqs.ndim == 1:
        return constriction.stream.model.Categorical(_probabilities(freqs), perfect=False), ()
    return _FAMILY, (_probabilities(freqs),)


def _check(symbols: np.ndarray, segments: Sequence[Segment]) -> None:
    total = sum(count for count, _ in segments)
    if total != len(symbols):
        raise ValueError(f"segments cover {total} symbols, not {len(symbols)}")
    for count, freqs in segments:
        if freqs.ndim == 2 and freqs.shape[0] != count:
            raise ValueError("a per-symbol segment needs one row per symbol")


def encode(symbols: np.ndarray, segments: Sequence[Segment]) -> bytes:
    """Code ``symbols`` (n,), consecutive runs of them with the tables of ``segments``."""
    symbols = np.ascontiguousarray(symbols, dtype=np.int32)
    _check(symbols, segments)
    if symbols.size == 0:
        return b""
    coder = constriction.stream.queue.RangeEncoder()
    start = 0
    for count, freqs in segments:
        model, args = _model(freqs)
        coder.encode(symbols[start : start + count], model, *args)
        start += count
    data = coder.get_compressed().astype("<u4").tobytes()
    cut = 0
    while cut < 3 and len(data) > cut and data[len(data) - 1 - cut] == 0:
        cut += 1
    return data[: len(data) - cut]


def decode(data: bytes, segments: Sequence[Segment]) -> np.ndarray:
    """Inverse of :func:`encode`; ``segments`` give the number of symbols and their tables.

    Raises :class:`CorruptFileError` when the stream is not exactly consumed.
    """
    total = sum(count for count, _ in segments)
    if total == 0:
        if data:
            raise CorruptFileError("payload has bytes after its last symbol")
        return np.zeros(0, dtype=np.int32)
    padded = data + b"\0" * (-len(data) % 4)
    words = np.frombuffer(padded, dtype="<u4").astype(np.uint32)
    try:
        coder = constriction.stream.queue.RangeDecoder(words)
        parts = []
        for count, freqs in segments:
            model, args = _model(freqs)
            decoded = coder.decode(model, *args) if args else coder.decode(model, count)
            parts.append(np.asarray(decoded, dtype=np.int32))
    except (ValueError, KeyError, RuntimeError, OverflowError, AssertionError) as exc:
        # constriction reports invalid data for a model as an AssertionError, a
        # stream ending in a zero word as a ValueError.
        raise CorruptFileError(f"payload cannot be decoded ({exc})") from None
    if not coder.maybe_exhausted():
        raise CorruptFileError("payload does not end where its last symbol does")
    return np.concatenate(parts)
