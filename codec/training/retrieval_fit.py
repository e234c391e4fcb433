"""Fit the search projections (:mod:`codec.projection`) of the levels that code a digit as one latent vector; no torch.

For a level's frozen model, the MNIST training digits' integer latents at
effort 0 (what an archive holds) are regressed on their pixels by least
squares: ``pixels ~ z W + b``. The projection is the Cholesky factor of
``W W^T``, scaled to integers as large as exact similarities allow. No knob is
chosen: the digits it is fitted on (:data:`FIT`) are apart from the validation
split it is measured on (queries :data:`QUERIES` against the archive
:data:`ARCHIVE`, all training digits); the test digits (queries against every
training digit) are measured only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import projection
from ..data import dataset_digest, load_mnist
from ..models import FrozenModel, load_model, using_weights
from ..projection import EXACT, Projection

#: Training digits the projection is fitted on, and the validation split: queries against an archive.
FIT, QUERIES, ARCHIVE = slice(20_000, 50_000), slice(50_000, 51_000), slice(0, 20_000)
#: Neighbours counted by precision@k.
K = 10
#: Queries ranked at once (bounds the memory of the similarities).
CHUNK = 500


def latents_of(model: FrozenModel, digits: np.ndarray) -> np.ndarray:
    """The integer latents (N, D) an archive holds for 28x28 digits (N, 28, 28) uint8 at effort 0: the analysis
    rounded and clamped to the tables' range."""
    out = []
    for first in range(0, len(digits), 2_000):
        real = model.analyse(digits[first : first + 2_000].astype(np.float32) / 255.0)
        out.append(np.clip(np.rint(real), -model.prior.radius, model.prior.radius).reshape(len(real), -1))
    return np.concatenate(out).astype(np.int64)


def fit(latents: np.ndarray, digits: np.ndarray, radius: int) -> np.ndarray:
    """The integer projection (D, D) of latents (N, D) fitted to their digits' pixels (N, 28, 28)."""
    design = np.c_[latents.astype(np.float64), np.ones(len(latents))]
    pixels = digits.reshape(len(digits), -1).astype(np.float64) / 255.0
    weights = np.linalg.lstsq(design, pixels, rcond=None)[0][:-1]
    gram = weights @ weights.T
    factor = np.linalg.cholesky(gram + 1e-9 * np.trace(gram) * np.eye(len(gram)))
    largest = np.sqrt((EXACT - 1) / factor.shape[1]) / 2  # a margin of 4 in the products
    scale = largest / (radius * np.abs(factor).sum(axis=0).max())
    return np.rint(factor * scale).astype(np.int64)


def _cosine_rows(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-300)


def precision(queries: np.ndarray, archived: np.ndarray, truth: np.ndarray, labels: np.ndarray) -> float:
    """precision@K by label of cosine neighbours of query rows among archived rows."""
    archived, hits = _cosine_rows(archived), 0
    for first in range(0, len(queries), CHUNK):
        similar = _cosine_rows(queries[first : first + CHUNK]) @ archived.T
        near = np.argpartition(-similar, K - 1, axis=1)[:, :K]
        hits += int(np.sum(labels[near] == truth[first : first + CHUNK, None]))
    return hits / (K * len(queries))


def _measured(model: FrozenModel, found: Projection, data: tuple[np.ndarray, ...]) -> dict[str, float]:
    """precision@K on validation and test digits, with raw latents and with the projection."""
    train, labels, test, truth = data
    latents, tested = latents_of(model, train), latents_of(model, test)
    splits = {
        "validation": (latents[QUERIES], latents[ARCHIVE], labels[QUERIES], labels[ARCHIVE]),
        "test": (tested, latents, truth, labels),
    }
    out = {}
    for split, (asked, archived, want, have) in splits.items():
        out[f"{split}_precision_latents"] = round(precision(asked, archived, want, have), 4)
        projected = found.features(asked), found.features(archived)
        out[f"{split}_precision_projected"] = round(precision(*projected, want, have), 4)
    return out


def train_retrieval(
    levels: list[int],
    data_dir: str | Path | None,
    weights_dir: Path | None,
    command: str,
    step: Callable[[str], None] = print,
) -> list[tuple[Path, dict[str, object]]]:
    """Fit, measure and install the projection of each level in ``levels``; returns (path, metadata) for each."""
    train, labels = load_mnist("train", data_dir)
    test, truth = load_mnist("test", data_dir)
    done = []
    with using_weights(weights_dir) as folder:
        for level in levels:
            started = time.time()
            model = load_model(level)
            if model.stride != train.shape[1]:
                raise ValueError(f"level {level} codes a grid of latents; projections are for one vector a digit")
            matrix = fit(latents_of(model, train[FIT]), train[FIT], model.prior.radius)
            found = Projection(matrix, np.frombuffer(bytes.fromhex(model.digest), np.uint8).copy())
            found.check(model)
            metadata: dict[str, object] = {
                "command": command,
                "level": level,
                "fitted_to": model.digest,
                "fit_digits": f"MNIST training {FIT.start:,}-{FIT.stop - 1:,}",
                "data_sha256": dataset_digest(),
                **_measured(model, found, (train, labels, test, truth)),
                "seconds": round(time.time() - started, 1),
            }
            path = projection.save(found, level, folder, metadata)
            step(
                f"level {level}: precision@{K} on validation {metadata['validation_precision_latents']} -> "
                f"{metadata['validation_precision_projected']}, test {metadata['test_precision_latents']} -> "
                f"{metadata['test_precision_projected']}"
            )
            done.append((path, metadata))
    return done
