"""The probability tables and the entropy coder on their own."""

from __future__ import annotations

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
    data = coder.encode(symbols, freqs)
    assert (coder.decode(data, freqs) == symbols).all()
    information = -np.log2(probs[np.arange(len(symbols)), symbols]).sum()
    assert 8 * len(data) <= information + 40  # coder overhead stays within a few bytes


def test_trailing_zero_bytes_are_cut() -> None:
    freqs = _tables(50, 9)
    symbols = np.zeros(50, dtype=np.int32)
    data = coder.encode(symbols, freqs)
    assert not data or data[-1] != 0 or len(data) % 4 == 1


def test_damaged_stream_is_detected() -> None:
    freqs = _tables(200, 17, 3)
    rng = np.random.default_rng(3)
    probs = freqs / freqs.sum(axis=1, keepdims=True)
    symbols = np.array([rng.choice(17, p=p) for p in probs], dtype=np.int32)
    data = coder.encode(symbols, freqs)
    with pytest.raises(CorruptFileError):
        coder.decode(data[: len(data) // 2], freqs)


def test_prior_selects_positional_or_stationary_tables() -> None:
    positional = _tables(2 * 7 * 7, 5).reshape(2, 7, 7, 5)
    stationary = _tables(2, 5, 1)
    prior = LatentPrior(positional, stationary, radius=2)
    assert (prior.frequencies(7, 7) == positional.reshape(-1, 5)).all()
    rows = prior.frequencies(3, 4)
    assert rows.shape == (2 * 12, 5)
    assert (rows[:12] == stationary[0]).all() and (rows[12:] == stationary[1]).all()
    latents = np.array([-3.2, -0.4, 0.6, 9.0])
    assert prior.from_symbols(prior.to_symbols(latents)).tolist() == [-2, 0, 1, 2]
