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


def _prior(sets: int, seed: int = 0) -> LatentPrior:
    """A prior of ``sets`` random table sets for a (2, 7, 7) grid of 5 symbols, tables shared through a bank."""
    bank = _tables(2 * 7 * 7 * sets, 5, seed)
    index = np.arange(len(bank)).reshape(sets, 2, 7, 7)
    selector = quantize_pmf(np.full(sets, 1.0 / sets))
    return LatentPrior(bank=bank, index=index, selector=selector, stationary=_tables(2, 5, seed + 1), radius=2)


def test_prior_selects_positional_or_stationary_tables() -> None:
    prior = _prior(1)
    ((count, rows),) = prior.layout(7, 7)
    assert count == 98 and (rows == prior.positional(0).reshape(-1, 5)).all()
    runs = prior.layout(3, 4)
    assert [n for n, _ in runs] == [12, 12]
    assert (runs[0][1] == prior.stationary[0]).all() and (runs[1][1] == prior.stationary[1]).all()
    symbols = np.arange(98).reshape(1, 2, 7, 7) % 5
    assert np.array_equal(prior.streams(symbols), symbols.reshape(1, -1))  # one set: no selector
    assert prior.choose_sets(symbols).tolist() == [0]
    latents = np.array([-3.2, -0.4, 0.6, 9.0])
    assert prior.from_symbols(prior.to_symbols(latents)).tolist() == [-2, 0, 1, 2]


def test_prior_codes_each_image_with_its_cheapest_table_set() -> None:
    prior = _prior(4)
    rng = np.random.default_rng(7)
    tables = prior.tables().astype(np.float64) / (1 << PRECISION)  # (4, 2, 7, 7, 5)
    truth = rng.integers(0, 4, size=12)
    symbols = np.array(
        [[[[rng.choice(5, p=tables[m, c, y, x]) for x in range(7)] for y in range(7)] for c in range(2)] for m in truth]
    )
    streams = prior.streams(symbols)
    assert streams.shape == (12, 1 + 98)
    assert np.array_equal(streams[:, 0], prior.choose_sets(symbols))
    layout = prior.layout(7, 7)
    assert isinstance(layout, coder.Switch)
    for stream, grid in zip(streams, symbols):
        costs = [
            -np.log2(tables[m].reshape(98, 5)[np.arange(98), grid.reshape(-1)]).sum() - np.log2(0.25) for m in range(4)
        ]
        assert stream[0] == int(np.argmin(costs))
        data = coder.encode(stream, layout)
        assert 8 * len(data) <= min(costs) + 12
        decoded = coder.decode(data, layout)
        assert np.array_equal(decoded, stream)
        assert np.array_equal(prior.symbols_of(decoded, 7, 7), grid)
    assert (streams[:, 0] == truth).mean() > 0.9  # 98 symbols tell the sets apart
    assert np.array_equal(prior.streams(symbols[:, :, :3, :4]), symbols[:, :, :3, :4].reshape(12, -1))


def test_switch_reads_its_selector_before_choosing_tables() -> None:
    rng = np.random.default_rng(3)
    options = [_tables(20, 7, seed) for seed in (10, 11, 12)]
    layout = coder.Switch(quantize_pmf(np.array([0.5, 0.3, 0.2])), lambda m: [(20, options[m])])
    for selector in range(3):
        probs = options[selector] / options[selector].sum(axis=1, keepdims=True)
        body = [rng.choice(7, p=p) for p in probs]
        stream = np.array([selector, *body], dtype=np.int32)
        assert np.array_equal(coder.decode(coder.encode(stream, layout), layout), stream)
    with pytest.raises(ValueError, match="selector"):
        coder.encode(np.array([3] + [0] * 20, dtype=np.int32), layout)
    with pytest.raises(ValueError):
        coder.encode(np.array([0] * 20, dtype=np.int32), layout)  # one symbol short


def test_prior_refuses_an_index_outside_its_bank() -> None:
    prior = _prior(2)
    with pytest.raises(ValueError, match="outside the bank"):
        LatentPrior(prior.bank[:10], prior.index, prior.selector, prior.stationary, radius=2)
    with pytest.raises(ValueError, match="inconsistent"):
        LatentPrior(prior.bank, prior.index, prior.selector[:1], prior.stationary, radius=2)
