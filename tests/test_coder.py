"""The probability tables and the entropy coder on their own."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from codec import coder
from codec.errors import CorruptFileError
from codec.prior import PRECISION, LatentPrior, quantize_pmf


def _tables(n: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return quantize_pmf(rng.dirichlet(np.full(k, 0.1), size=n))


def test_quantized_tables_are_exact() -> None:
    freqs = _tables(300, 49)
    assert freqs.dtype == np.uint32
    assert (freqs.sum(axis=1) == 1 << PRECISION).all()
    assert freqs.min() >= 1


def test_quantize_keeps_a_certain_symbol_nearly_certain() -> None:
    pmf = np.zeros(49)
    pmf[24] = 1.0
    freq = quantize_pmf(pmf)
    assert freq[24] == (1 << PRECISION) - 48


@pytest.mark.parametrize("seed", range(5))
def test_roundtrip(seed: int) -> None:
    rng = np.random.default_rng(seed)
    freqs = _tables(392, 31, seed)
    probs = freqs / freqs.sum(axis=1, keepdims=True)
    symbols = np.array([rng.choice(31, p=p) for p in probs], dtype=np.int32)
    data = coder.encode(symbols, [(len(freqs), freqs)])
    assert (coder.decode(data, [(len(freqs), freqs)]) == symbols).all()
    information = -np.log2(probs[np.arange(len(symbols)), symbols]).sum()
    assert 8 * len(data) <= information + 12  # the cut stream is within a byte or so of the information


def test_stream_never_ends_in_a_zero_byte() -> None:
    freqs = _tables(50, 9)
    symbols = np.zeros(50, dtype=np.int32)
    data = coder.encode(symbols, [(len(freqs), freqs)])
    assert not data or data[-1] != 0  # the decoder supplies zero bytes itself


@pytest.mark.parametrize("seed", range(3))
def test_stream_is_cut_to_the_bytes_the_decoder_needs(seed: int) -> None:
    freqs = _tables(200, 17, seed)
    rng = np.random.default_rng(seed)
    probs = freqs / freqs.sum(axis=1, keepdims=True)
    symbols = np.array([rng.choice(17, p=p) for p in probs], dtype=np.int32)
    segments = [(len(freqs), freqs)]
    data = coder.encode(symbols, segments)
    assert (coder.decode(data, segments) == symbols).all()
    shorter = data[:-1]
    bumped = (int.from_bytes(shorter, "big") + 1).to_bytes(len(shorter), "big")
    for candidate in (shorter, bumped):
        with contextlib.suppress(CorruptFileError):  # rejected outright, or decoded wrongly
            assert not (coder.decode(candidate, segments) == symbols).all()


def test_shared_and_per_symbol_segments_mix() -> None:
    rng = np.random.default_rng(4)
    rows = _tables(30, 11, 4)
    shared = _tables(1, 11, 5)[0]
    segments = [(30, rows), (100, shared), (7, shared)]
    probs = np.vstack([rows, np.tile(shared, (107, 1))]).astype(float)
    probs /= probs.sum(axis=1, keepdims=True)
    symbols = np.array([rng.choice(11, p=p) for p in probs], dtype=np.int32)
    data = coder.encode(symbols, segments)
    assert (coder.decode(data, segments) == symbols).all()
    with pytest.raises(ValueError):
        coder.encode(symbols[:-1], segments)


def test_prior_selects_positional_or_stationary_tables() -> None:
    positional = _tables(2 * 7 * 7, 5).reshape(2, 7, 7, 5)
    stationary = _tables(2, 5, 1)
    prior = LatentPrior(positional, stationary, radius=2)
    ((count, rows),) = prior.segments(7, 7)
    assert count == 98 and (rows == positional.reshape(-1, 5)).all()
    runs = prior.segments(3, 4)
    assert [n for n, _ in runs] == [12, 12]
    assert (runs[0][1] == stationary[0]).all() and (runs[1][1] == stationary[1]).all()
    latents = np.array([-3.2, -0.4, 0.6, 9.0])
    assert prior.from_symbols(prior.to_symbols(latents)).tolist() == [-2, 0, 1, 2]
