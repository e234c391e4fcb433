"""Shared fixtures: real MNIST digits (skipped cleanly when the data is absent)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from codec import data, models
from codec.errors import DataError


@pytest.fixture(scope="session")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test set, verified; skips the test when it cannot be found."""
    try:
        return data.load_mnist("test")
    except DataError as exc:
        if os.environ.get("CI"):  # a user's run may skip; CI must test on the real digits
            pytest.fail(f"MNIST not available in CI: {exc}")
        pytest.skip(f"MNIST not available: {exc}")


@pytest.fixture(scope="session")
def digits(mnist_test: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """A fixed sample of 200 test digits."""
    return mnist_test[0][:200]


@pytest.fixture(scope="session")
def shipped_levels() -> list[int]:
    levels = models.available_levels()
    if not levels:
        pytest.fail("no shipped weights found")
    return levels


@pytest.fixture(scope="session")
def general() -> models.FrozenModel:
    """Level 8's general variant (shipped: a missing one fails)."""
    model = models.load_general(8)
    if model is None:
        pytest.fail("no general variant of level 8 found")
    return model
