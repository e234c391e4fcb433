"""Rate-distortion summaries: Bjontegaard delta rate and the rate needed for a PSNR."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def _monotone(rates: Sequence[float], psnrs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by PSNR, keeping the lower envelope in log rate (a convex-hull-free clean-up)."""
    order = np.argsort(psnrs)
    r = np.log(np.asarray(rates, dtype=np.float64)[order])
    p = np.asarray(psnrs, dtype=np.float64)[order]
    keep = np.isfinite(p) & np.isfinite(r)
    r, p = r[keep], p[keep]
    best_r: list[float] = []
    best_p: list[float] = []
    for rate, quality in zip(r, p):
        while best_r and rate <= best_r[-1]:  # a cheaper point with higher quality dominates
            best_r.pop()
            best_p.pop()
        best_r.append(rate)
        best_p.append(quality)
    return np.array(best_r), np.array(best_p)


def bd_rate(
    anchor: tuple[Sequence[float], Sequence[float]], test: tuple[Sequence[float], Sequence[float]]
) -> float | None:
    """Bjontegaard delta rate of ``test`` against ``anchor`` in percent (negative: test saves bits).

    Each curve is (rates, PSNRs), cleaned to its lower envelope. Log rate is
    interpolated as a piecewise cubic (PCHIP) of PSNR and integrated over the
    PSNR range the two curves share, by the ``bjontegaard`` package (FAU-LMS;
    the interpolation of the JVET common test conditions). The single cubic of
    VCEG-M33 (aec up to 0.17) fits a whole curve, and aec's span 16 to 99 dB:
    points far outside the shared range moved the result (one digit from -34 %
    to +15 % for nearly the same curve). None when the curves share no range
    or one has fewer than two points.
    """
    import bjontegaard

    ra, pa = _monotone(*anchor)
    rt, pt = _monotone(*test)
    if len(pa) < 2 or len(pt) < 2 or min(pa.max(), pt.max()) <= max(pa.min(), pt.min()):
        return None
    with warnings.catch_warnings():  # it warns when the shared range is a small part of the two; any range counts here
        warnings.simplefilter("ignore")
        delta = bjontegaard.bd_rate(
            np.exp(ra), pa, np.exp(rt), pt, method="pchip", require_matching_points=False, min_overlap=0
        )
    return float(delta)


def rate_at(rates: Sequence[float], psnrs: Sequence[float], target: float) -> float | None:
    """The rate needed for ``target`` PSNR: linear in log rate between measured points; None outside them."""
    r, p = _monotone(rates, psnrs)
    if len(p) == 0 or target < p.min() or target > p.max():
        return None
    return float(np.exp(np.interp(target, p, r)))
