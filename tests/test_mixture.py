"""Fitting the mixture prior's table sets and their shared bank (freeze time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from codec.training.mixture import bank_rows, code_lengths, fit_table_sets  # noqa: E402


def _two_kinds(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symbols (n, 40) of 5 values from two kinds of image, each with its own tables, and their entropy."""
    kinds = np.random.default_rng(99).dirichlet(np.full(5, 0.3), size=(2, 40))  # (2, P, K), the same for every seed
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 2, size=n)
    u = rng.random((n, 40, 1))
    symbols = (u > np.cumsum(kinds[kind], axis=-1)).sum(axis=-1)
    return symbols, kinds, kind


def test_code_lengths_sum_each_images_bits() -> None:
    rng = np.random.default_rng(1)
    tables = rng.random((3, 6, 4))
    symbols = rng.integers(0, 4, size=(5, 6))
    expected = np.array([[tables[m, np.arange(6), s].sum() for m in range(3)] for s in symbols])
    np.testing.assert_allclose(code_lengths(tables, symbols), expected)


def test_table_sets_learn_the_kinds_of_image() -> None:
    symbols, kinds, _ = _two_kinds(4000)
    base = kinds.mean(axis=0)
    tables, share = fit_table_sets(symbols, base, sets=3)
    assert tables.shape == (3, 40, 5) and np.allclose(tables.sum(-1), 1) and np.isclose(share.sum(), 1)
    assert np.allclose(tables[0], base)  # set 0 stays the trained prior
    test, _, kind = _two_kinds(2000, seed=1)
    one_set = code_lengths(-np.log2(base)[None], test)[:, 0].mean()
    mixed = (code_lengths(-np.log2(tables), test) - np.log2(share)).min(axis=1).mean()
    truth = code_lengths(-np.log2(kinds), test)[np.arange(len(test)), kind].mean() + 1  # + a 1-bit selector
    assert mixed < 0.9 * one_set and mixed < truth + 2


def test_bank_keeps_few_tables_as_they_are_and_clusters_many() -> None:
    rng = np.random.default_rng(2)
    tables = rng.dirichlet(np.full(6, 0.5), size=50)
    weights = rng.random(50) + 0.5
    bank, index = bank_rows(tables, weights, rows=64)
    assert np.array_equal(bank[index], tables)
    bank, index = bank_rows(np.repeat(tables, 3, axis=0), np.repeat(weights, 3), rows=50)
    assert bank.shape == (50, 6) and index.shape == (150,)
    np.testing.assert_allclose(bank[index], np.repeat(tables, 3, axis=0), atol=1e-9)  # duplicates share a row
    bank, index = bank_rows(tables, weights, rows=10)
    cross = -(tables * np.log2(bank[index])).sum(axis=1)
    entropy = -(tables * np.log2(tables)).sum(axis=1)
    assert (cross >= entropy - 1e-9).all() and (cross - entropy).mean() < 0.5
    assert np.array_equal(index, np.argmin(-(tables @ np.log2(bank).T), axis=1))  # each table's cheapest row


def test_frozen_table_sets_code_digits_in_fewer_bits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_test: tuple[np.ndarray, np.ndarray]
) -> None:
    import torch

    import codec
    from codec import models
    from codec.training.freeze import freeze_model
    from codec.training.model import Architecture, Autoencoder

    digits = mnist_test[0][:500]
    torch.manual_seed(3)
    model = Autoencoder(Architecture(latent_channels=4, hidden=16)).eval()
    monkeypatch.setenv(models.WEIGHTS_ENV, str(tmp_path))
    sizes = {}
    for level, sets in ((1, 1), (2, 8)):
        graph, arrays = freeze_model(model, step=0.25, train_images=digits[:400], table_sets=sets)
        assert arrays["prior.index"].shape == (sets, 4, 7, 7) and arrays["prior.selector"].sum() == 1 << 16
        trained = freeze_model(model, step=0.25)[1]  # one set: the trained prior alone
        set0 = arrays["prior.bank"][arrays["prior.index"][0]]
        assert np.array_equal(set0, trained["prior.bank"][trained["prior.index"][0]])
        models.save_level(tmp_path, level, graph, arrays)
        models.clear_cache()
        files = codec.compress_many(digits[400:500], quality=level)
        sizes[sets] = sum(map(len, files))
    mixed = models.load_model(2)
    expected = mixed.prior.from_symbols(mixed.prior.to_symbols(mixed.analyse(digits[400:500] / np.float32(255))))
    np.testing.assert_array_equal(np.stack([codec.api.decode_latents(f)[1] for f in files]), expected)
    assert sizes[8] < 0.97 * sizes[1]  # held-out digits, selector included
    models.clear_cache()
