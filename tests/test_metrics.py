"""PSNR and SSIM against scikit-image, the reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from codec.metrics import psnr, psnr_from_mse, ssim


@pytest.mark.parametrize("shape", [(28, 28), (7, 7), (31, 45)])
def test_ssim_matches_scikit_image(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)
        expected = structural_similarity(a, b, data_range=255)
        assert ssim(a, b) == pytest.approx(expected, abs=1e-9)


def test_ssim_on_digits_matches_scikit_image(digits: np.ndarray) -> None:
    noisy = np.clip(digits[:20].astype(int) + 30, 0, 255).astype(np.uint8)
    ours = ssim(digits[:20], noisy)
    for a, b, value in zip(digits[:20], noisy, ours):
        assert value == pytest.approx(structural_similarity(a, b, data_range=255), abs=1e-9)


def test_psnr_matches_scikit_image() -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    b = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    for x, y, value in zip(a, b, psnr(a, b)):
        assert value == pytest.approx(peak_signal_noise_ratio(x, y, data_range=255), abs=1e-9)


def test_identical_images() -> None:
    a = np.full((8, 8), 7, np.uint8)
    assert np.isinf(psnr(a, a))
    assert ssim(a, a) == pytest.approx(1.0)
    assert psnr_from_mse(255.0**2) == pytest.approx(0.0)
