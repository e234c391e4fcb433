"""Rate-distortion summaries: Bjontegaard delta rate and the rate needed for a PSNR."""

from __future__ import annotations

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

    Each curve is (rates, PSNRs). As in VCEG-M33: log rate is fitted as a cubic
    polynomial of PSNR for each curve and integrated over the PSNR range the two
    curves share. None when they share no range or have too few points.
    """
    ra, pa = _monotone(*anchor)
    rt, pt = _monotone(*test)
    if len(pa) < 2 or len(pt) < 2:
        return None
    low, high = max(pa.min(), pt.min()), min(pa.max(), pt.max())
    if high <= low:
        return None
    fa = np.polyfit(pa, ra, min(3, len(pa) - 1))
    ft = np.polyfit(pt, rt, min(3, len(pt) - 1))
    ia, it = np.polyint(fa), np.polyint(ft)
    mean_a = (np.polyval(ia, high) - np.polyval(ia, low)) / (high - low)
    mean_t = (np.polyval(it, high) - np.polyval(it, low)) / (high - low)
    return float((np.exp(mean_t - mean_a) - 1.0) * 100.0)


def rate_at(rates: Sequence[float], psnrs: Sequence[float], target: float) -> float | None:
    """The rate needed for ``target`` PSNR: linear in log rate between measured points; None outside them."""
    r, p = _monotone(rates, psnrs)
    if len(p) == 0 or target < p.min() or target > p.max():
        return None
    return float(np.exp(np.interp(target, p, r)))
