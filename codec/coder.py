"""Entropy coding of symbol streams with constriction's range coder.

The coder knows nothing about images: it turns symbols and their integer
frequency tables into bytes and back. The byte stream is constriction's 32-bit
words in big-endian order, cut after the last byte the decoder needs: the decoder
reads missing bytes as zeros, so the encoder drops the stream's tail as long as
the shortened stream (or, when that points below the coder's final interval, the
shortened stream plus one in its last byte) still decodes to the same symbols,
checked by decoding it. That leaves about 3 bits above the information content
instead of the 15-20 of constriction's full final state (2 bytes per digit,
0.02 bpp at 28x28). A range coder is a queue: symbols go in and come out in the
same order, so a symbol's tables may depend on the symbols decoded before it: a
:class:`Switch` codes one selector symbol and then the segments it selects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import constriction
import numpy as np

from .errors import CorruptFileError

#: Table frequencies sum to 2**PRECISION; the coder sees them as freq / 2**PRECISION.
PRECISION = 16

#: The constriction release series whose output this format is defined by.
CODER_VERSION = "constriction 0.5"

_FAMILY = constriction.stream.model.Categorical(perfect=False)

#: A run of consecutive symbols and their tables: ``(count, freqs)``, where ``freqs``
#: is one row (K,) shared by the whole run, or one row per symbol (count, K).
Segment = tuple[int, np.ndarray]


@dataclass(frozen=True)
class Switch:
    """A selector symbol coded with ``selector`` (its integer frequencies), then the
    symbols of ``body(selector symbol)``: tables chosen by a symbol the decoder reads first."""

    selector: np.ndarray
    body: Callable[[int], Sequence[Segment]]


#: How a stream's symbols are coded: fixed segments, or a switch between them.
Layout = Sequence[Segment] | Switch


def segments_of(layout: Layout, selector: int) -> list[Segment]:
    """The fixed segments a stream whose first symbol is ``selector`` is coded with."""
    if isinstance(layout, Switch):
        return [(1, layout.selector), *layout.body(selector)]
    return list(layout)


def probabilities(freqs: np.ndarray) -> np.ndarray:
    """Integer frequencies as the coder's probabilities, ``freqs / 2**PRECISION``.

    Exact: small integers divided by a power of two are representable in float64.
    """
    return np.ascontiguousarray(freqs, dtype=np.float64) / float(1 << PRECISION)


def rows_model(rows: np.ndarray) -> tuple[object, tuple[np.ndarray, ...]]:
    """The coder model for one row of :func:`probabilities` per symbol (count, K), for
    :meth:`StreamDecoder.decode_with`: the rows made once (e.g. a table bank's) and gathered, not converted per call."""
    return _FAMILY, (np.ascontiguousarray(rows, dtype=np.float64),)


def _model(freqs: np.ndarray) -> tuple[object, tuple[np.ndarray, ...]]:
    """constriction's model and the per-call arguments for one segment's tables."""
    if freqs.ndim == 1:
        return constriction.stream.model.Categorical(probabilities(freqs), perfect=False), ()
    return _FAMILY, (probabilities(freqs),)


def _check(symbols: np.ndarray, segments: Sequence[Segment]) -> None:
    total = sum(count for count, _ in segments)
    if total != len(symbols):
        raise ValueError(f"segments cover {total} symbols, not {len(symbols)}")
    for count, freqs in segments:
        if freqs.ndim == 2 and freqs.shape[0] != count:
            raise ValueError("a per-symbol segment needs one row per symbol")


def _words(data: bytes) -> np.ndarray:
    """The coder's 32-bit words from a stream's bytes, zero bytes appended to a whole word."""
    padded = data + b"\0" * (-len(data) % 4)
    return np.frombuffer(padded, dtype=">u4").astype(np.uint32)


class StreamDecoder:
    """Decodes a stream piece by piece, each piece's tables chosen from what was decoded before it.

    For coders whose tables depend on earlier symbols in ways a :class:`Switch`
    cannot express (the refinement layer's contexts). Failures are
    :class:`CorruptFileError`.
    """

    def __init__(self, data: bytes) -> None:
        try:
            self._coder = constriction.stream.queue.RangeDecoder(_words(data))
        except _CODER_ERRORS as exc:
            raise CorruptFileError(f"payload cannot be decoded ({exc})") from None

    def decode(self, count: int, freqs: np.ndarray) -> np.ndarray:
        """The next ``count`` symbols, with one shared row ``freqs`` (K,) or one row per symbol (count, K)."""
        if count == 0:
            return np.zeros(0, dtype=np.int32)
        return self.decode_with(count, _model(freqs))

    def decode_with(self, count: int, prepared: tuple[object, tuple[np.ndarray, ...]]) -> np.ndarray:
        """:meth:`decode` with the tables' coder model already made (:func:`_model`), for a stream decoded often."""
        model, args = prepared
        try:
            decoded = self._coder.decode(model, *args) if args else self._coder.decode(model, count)
        except _CODER_ERRORS as exc:
            raise CorruptFileError(f"payload cannot be decoded ({exc})") from None
        return np.asarray(decoded, dtype=np.int32)


#: How constriction reports data it cannot decode: invalid data for a model as an AssertionError,
#: a stream ending in a zero word as a ValueError.
_CODER_ERRORS = (ValueError, KeyError, RuntimeError, OverflowError, AssertionError)


def _run_decoder(data: bytes, layout: Layout) -> np.ndarray:
    stream = StreamDecoder(data)
    if isinstance(layout, Switch):
        selector = stream.decode(1, layout.selector)
        return np.concatenate([selector, *(stream.decode(n, f) for n, f in layout.body(int(selector[0])))])
    return np.concatenate([stream.decode(count, freqs) for count, freqs in layout])


def _decodes_with(
    data: bytes, models: Sequence[tuple[int, tuple[object, tuple[np.ndarray, ...]]]], symbols: np.ndarray
) -> bool:
    """Whether ``data`` decodes to ``symbols`` with the segments' models (count, (model, arguments));
    a segment that differs ends the try."""
    try:
        stream = StreamDecoder(data)
        start = 0
        for count, prepared in models:
            if not np.array_equal(stream.decode_with(count, prepared), symbols[start : start + count]):
                return False
            start += count
        return True
    except CorruptFileError:
        return False


def _shortest(data: bytes, segments: Sequence[Segment], symbols: np.ndarray) -> bytes:
    """The shortest stream, cut from ``data``'s end, that still decodes to ``symbols`` (coded with ``segments``).

    Each try decodes the whole stream, so the segments' models are made once for all tries.
    """
    models = [(count, _model(freqs)) for count, freqs in segments if count]
    best = data
    for length in range(len(data) - 1, -1, -1):
        candidates = [data[:length]]
        if length:
            bumped = int.from_bytes(data[:length], "big") + 1
            if bumped < 1 << (8 * length):
                candidates.append(bumped.to_bytes(length, "big"))
        found = next((c for c in candidates if _decodes_with(c, models, symbols)), None)
        if found is None:
            break
        best = found
    return best


def encode(symbols: np.ndarray, layout: Layout) -> bytes:
    """Code ``symbols`` (n,), consecutive runs of them with the tables of ``layout``.

    With a :class:`Switch`, ``symbols[0]`` is the selector.
    """
    symbols = np.ascontiguousarray(symbols, dtype=np.int32)
    if isinstance(layout, Switch) and (symbols.size == 0 or not 0 <= symbols[0] < len(layout.selector)):
        raise ValueError("a switched stream starts with a selector symbol")
    segments = segments_of(layout, int(symbols[0]) if isinstance(layout, Switch) else 0)
    _check(symbols, segments)
    encoder = StreamEncoder()
    start = 0
    for count, freqs in segments:
        encoder.encode(symbols[start : start + count], freqs)
        start += count
    return encoder.finish()


#: Streams of at most this many symbols are cut to their shortest decodable length. Each try decodes
#: the whole stream and the cut saves about 2 bytes, so longer streams (large images) keep their last word.
CUT_SYMBOLS = 1 << 16


def range_encode(symbols: np.ndarray, segments: Sequence[Segment]) -> np.ndarray:
    """constriction's range-coder words for ``symbols``, whole (before any cut)."""
    encoder = StreamEncoder(cut=False)
    start = 0
    for count, freqs in segments:
        encoder.encode(symbols[start : start + count], freqs)
        start += count
    return encoder.words()


class StreamEncoder:
    """Codes a stream piece by piece, each piece with its own tables: the twin of :class:`StreamDecoder`.

    While the stream is short enough to cut (:data:`CUT_SYMBOLS`) it keeps its
    pieces for :meth:`finish`; past that it holds nothing but the coder, so a
    large image's stream never holds its tables at once.
    """

    def __init__(self, cut: bool = True) -> None:
        self._coder = constriction.stream.queue.RangeEncoder()
        self.count = 0
        self._pieces: list[tuple[np.ndarray, np.ndarray]] | None = [] if cut else None  # (symbols, freqs)

    def encode(self, symbols: np.ndarray, freqs: np.ndarray) -> None:
        """Code ``symbols`` (n,) with one shared row ``freqs`` (K,) or one row per symbol (n, K)."""
        if len(symbols) == 0:
            return
        symbols = np.ascontiguousarray(symbols, dtype=np.int32)
        model, args = _model(freqs)
        self._coder.encode(symbols, model, *args)
        self.count += len(symbols)
        if self._pieces is not None:
            self._pieces.append((symbols, freqs))
            if self.count > CUT_SYMBOLS:
                self._pieces = None

    def size(self) -> int:
        """Bytes of everything coded so far (whole words, before any cut)."""
        return 4 * int(self._coder.num_words())

    def words(self) -> np.ndarray:
        """The coder's 32-bit words for everything coded so far (before any cut)."""
        words: np.ndarray = self._coder.get_compressed()
        return words

    def finish(self) -> bytes:
        """The stream's bytes, cut to the shortest that still decodes to its symbols when it kept its pieces."""
        if not self.count:
            return b""
        data = self.words().astype(">u4").tobytes()
        if self._pieces is None:
            return data
        segments = [(len(symbols), freqs) for symbols, freqs in self._pieces]
        return _shortest(data, segments, np.concatenate([symbols for symbols, _ in self._pieces]))


def decode(data: bytes, layout: Layout) -> np.ndarray:
    """Inverse of :func:`encode`; ``layout`` gives the number of symbols and their tables.

    A range-coded stream has no end marker and any bytes decode to *some*
    symbols: damage is caught by the container's checksum, not here. Raises
    :class:`CorruptFileError` when constriction rejects the stream.
    """
    if not isinstance(layout, Switch) and sum(count for count, _ in layout) == 0:
        if data:
            raise CorruptFileError("payload has bytes after its last symbol")
        return np.zeros(0, dtype=np.int32)
    return _run_decoder(data, layout)
