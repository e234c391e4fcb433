"""Image quality metrics on 8-bit images: PSNR and SSIM (numpy only).

SSIM is the standard definition of Wang et al. (2004) as scikit-image computes it
by default: a 7x7 uniform window, K1 = 0.01, K2 = 0.03, sample (N-1) covariances,
averaged over the windows that fit inside the image.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

DATA_RANGE = 255.0


def mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean squared error per image over the last two axes."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return np.mean(d * d, axis=(-2, -1))


def psnr_from_mse(m: np.ndarray | float) -> np.ndarray:
    """PSNR in dB for 8-bit images; infinite for a perfect match."""
    m = np.asarray(m, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(DATA_RANGE**2 / m)


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PSNR in dB per image (over the last two axes).

    >>> import numpy as np
    >>> round(float(psnr(np.zeros((4, 4)), np.full((4, 4), 255.0))), 6)
    0.0
    """
    return psnr_from_mse(mse(a, b))


def ssim(a: np.ndarray, b: np.ndarray, win: int = 7) -> np.ndarray:
    """Mean SSIM per image (over the last two axes) of 8-bit images, each side at least ``win``."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape[-1] < win or x.shape[-2] < win:
        raise ValueError(f"SSIM needs images of at least {win}x{win}")
    n = win * win
    cov_norm = n / (n - 1)

    def window_mean(z: np.ndarray) -> np.ndarray:
        return sliding_window_view(z, (win, win), axis=(-2, -1)).mean(axis=(-2, -1))

    ux, uy = window_mean(x), window_mean(y)
    vx = cov_norm * (window_mean(x * x) - ux * ux)
    vy = cov_norm * (window_mean(y * y) - uy * uy)
    vxy = cov_norm * (window_mean(x * y) - ux * uy)
    c1 = (0.01 * DATA_RANGE) ** 2
    c2 = (0.03 * DATA_RANGE) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(axis=(-2, -1))
