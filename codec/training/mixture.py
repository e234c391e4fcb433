"""Fit the table sets of the mixture prior to the training set's latents (at freeze time).

The network is trained with one positional prior (:mod:`.model`); coding each
digit with tables fitted to digits like it saves another 6-16 %
(benchmarks/ABLATIONS.md). The sets are found by hard expectation-maximisation,
k-means with code length as the distance: each training digit goes to the set
that codes it in the fewest bits (selector included), and each set's tables
become the symbol frequencies of its digits, smoothed towards the trained prior.
Set 0 stays the trained prior, so no digit costs more than it did with one set
plus its selector. The fitted sets' tables are then clustered (k-means with
cross-entropy) into one bank of shared rows, which keeps a level small.
"""

from __future__ import annotations

import numpy as np
import torch

#: Table sets of the home grid, and rows of the bank they share.
TABLE_SETS = 64
BANK_ROWS = 1024
#: Pseudo-count of the trained prior in each set's tables.
SMOOTHING = 4.0
#: Digits the initial sets are drawn from.
SEED_POOL = 10_000


def code_lengths(log_tables: np.ndarray, symbols: np.ndarray | torch.Tensor) -> np.ndarray:
    """Bits (N, M) of each image's symbols (N, P) under each table set's -log2 tables (M, P, K).

    ``symbols`` may be given as their :func:`one_hot` matrix, to reuse it.
    """
    onehot = symbols if isinstance(symbols, torch.Tensor) else one_hot(symbols, log_tables.shape[-1])
    dense = torch.from_numpy(np.ascontiguousarray(log_tables.reshape(len(log_tables), -1).T, dtype=np.float64))
    return torch.sparse.mm(onehot, dense).numpy()


def one_hot(symbols: np.ndarray, k: int) -> torch.Tensor:
    """The sparse (N, P K) one-hot matrix of symbols (N, P) in ``0..k-1``: code lengths become one product."""
    n, p = symbols.shape
    columns = (np.arange(p) * k + symbols).reshape(-1)
    rows = np.repeat(np.arange(n), p)
    return torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([rows, columns]).astype(np.int64)),
        torch.ones(n * p, dtype=torch.float64),
        size=(n, p * k),
        check_invariants=False,
    ).coalesce()


def _set_tables(symbols: np.ndarray, assign: np.ndarray, sets: int, base: np.ndarray) -> np.ndarray:
    n, p = symbols.shape
    k = base.shape[-1]
    flat = ((assign[:, None].astype(np.int64) * p + np.arange(p)) * k + symbols).reshape(-1)
    counts = np.bincount(flat, minlength=sets * p * k).reshape(sets, p, k).astype(np.float64)
    members = np.bincount(assign, minlength=sets).astype(np.float64)
    tables = (counts + SMOOTHING * base) / (members[:, None, None] + SMOOTHING)
    tables[0] = base
    return tables


def _seed_sets(symbols: np.ndarray, base: np.ndarray, sets: int, rng: np.random.Generator) -> np.ndarray:
    """Initial sets: the trained prior, then one digit's symbols (smoothed) each, chosen as k-means++ does.

    Each next digit is drawn (from at most SEED_POOL digits) with probability
    growing with how badly the sets so far code it (the square of its excess
    bits), so the seeds spread over the kinds of digit instead of piling up
    where digits are common.
    """
    if len(symbols) > SEED_POOL:
        symbols = symbols[np.sort(rng.choice(len(symbols), size=SEED_POOL, replace=False))]
    onehot = one_hot(symbols, base.shape[-1])
    chosen = np.zeros_like(base)
    tables = [base]
    best = code_lengths(-np.log2(base)[None], onehot)[:, 0]
    for _ in range(sets - 1):
        excess = best - best.min()
        weights = excess**2 if excess.any() else np.ones_like(excess)
        seed = int(rng.choice(len(symbols), p=weights / weights.sum()))
        chosen[:] = 0.0
        np.put_along_axis(chosen, symbols[seed][:, None], 1.0, axis=-1)
        tables.append((chosen + SMOOTHING * base) / (1 + SMOOTHING))
        best = np.minimum(best, code_lengths(-np.log2(tables[-1])[None], onehot)[:, 0])
    return np.stack(tables)


def fit_table_sets(
    symbols: np.ndarray, base: np.ndarray, sets: int = TABLE_SETS, iterations: int = 15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Table sets (M, P, K) and each set's share of the images (M,).

    From the training images' symbols (N, P) and the trained prior's pmf (P, K).
    """
    n = len(symbols)
    symbols = symbols.astype(np.int64)
    base = np.maximum(base, 1e-12)  # the trained pmf may hold exact zeros far out
    base = base / base.sum(axis=-1, keepdims=True)
    rng = np.random.default_rng(seed)
    if sets == 1 or n == 0:
        return base[None].copy(), np.ones(1)
    tables = _seed_sets(symbols, base, sets, rng)
    onehot = one_hot(symbols, base.shape[-1])
    share = np.full(sets, 1.0 / sets)
    assign = np.full(n, -1)
    for _ in range(iterations):
        bits = code_lengths(-np.log2(tables), onehot) - np.log2(share)
        chosen = np.argmin(bits, axis=1)
        members = np.bincount(chosen, minlength=sets)
        cost = bits[np.arange(n), chosen]
        for empty in np.flatnonzero(members[1:] == 0) + 1:  # re-seed with the worst-coded digit
            worst = int(np.argmax(cost))
            chosen[worst], cost[worst] = empty, -np.inf
        if np.array_equal(chosen, assign):
            break
        assign = chosen
        tables = _set_tables(symbols, assign, sets, base)
        share = (np.bincount(assign, minlength=sets) + 1.0) / (n + sets)
    return tables, share


def bank_rows(
    tables: np.ndarray, weights: np.ndarray, rows: int = BANK_ROWS, iterations: int = 25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster tables (Q, K) into a bank (B, K) of weighted means; returns it and each table's row (Q,).

    The distance is the cross-entropy, so a table's row is the one that codes its
    symbols in the fewest bits.
    """
    q = len(tables)
    if q <= rows:
        return tables.copy(), np.arange(q)
    rng = np.random.default_rng(seed)
    bank = tables[rng.choice(q, size=rows, replace=False, p=weights / weights.sum())].copy()
    entropy = (tables * np.log2(np.maximum(tables, 1e-300))).sum(axis=1)
    index = np.full(q, -1)
    for _ in range(iterations):
        cross = -(tables @ np.log2(np.maximum(bank, 1e-300)).T)
        chosen = np.argmin(cross, axis=1)
        if np.array_equal(chosen, index):
            break
        index = chosen
        mass = np.bincount(index, weights=weights, minlength=rows)
        sums = np.zeros_like(bank)
        np.add.at(sums, index, weights[:, None] * tables)
        excess = weights * (cross[np.arange(q), index] + entropy)
        for empty in np.flatnonzero(mass == 0):  # re-seed with the worst-served table
            worst = int(np.argmax(excess))
            sums[empty], mass[empty], excess[worst] = tables[worst], 1.0, 0.0
        bank = sums / mass[:, None]
    cross = -(tables @ np.log2(np.maximum(bank, 1e-300)).T)
    return bank, np.argmin(cross, axis=1)
