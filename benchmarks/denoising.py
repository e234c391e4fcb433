"""Denoising, ``aec bench --denoise``: the trained denoiser beside the classic ones, per kind and strength of damage.

The first test digits (none seen in training) are damaged by each kind and
strength of :data:`codec.training.noise.KINDS` (a fixed seed), then cleaned by
``aec denoise``, by scikit-image's non-local means (5x5 patches, 13x13 search,
its filter strength ``h`` chosen per kind and strength from :data:`NLM_STRENGTHS`
on validation digits: MNIST training digits the denoiser never trained on) and
by a 3x3 median filter. Mean PSNR against the clean digit; the
damaged input's own PSNR beside them. Writes ``denoising.md``,
``denoising.json`` and a picture of a few digits (``denoise_examples.png``).

BM3D (Dabov, Foi, Katkovnik and Egiazarian 2007) is measured too when its
reference implementation is installed (``pip install bm3d``: Tampere
University's package, free for non-commercial use only, so not one of aec's
dependencies): on Gaussian noise, told the true sigma, on the first
:data:`BM3D_COUNT` digits (it takes about 0.7 s a digit), beside aec's PSNR on
the same digits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from codec.denoise import denoise_many
from codec.metrics import psnr
from codec.training.noise import KINDS, damage

from .written import write_report

OUT = Path(__file__).resolve().parent / "results"
COUNT = 500
#: Validation digits that choose non-local means' strength: MNIST training digits from this one on.
VALIDATION_FROM, VALIDATION_COUNT = 55_000, 100
#: Digits BM3D cleans per Gaussian strength (when installed).
BM3D_COUNT = 100
#: The issue's goal: at Gaussian noise 0.3, at least this many dB above the best classic denoiser.
TARGET_MARGIN, TARGET_SETTING = 3.0, ("gaussian", 0.3)


#: The settings, and how many digits of each, the picture shows.
EXAMPLE_SETTINGS, EXAMPLE_DIGITS = (("gaussian", 0.3), ("salt-and-pepper", 0.1), ("blur", 1.0)), 2


#: Filter strengths (``h``, in [0, 1] units) non-local means is tried at, per setting, on the validation digits.
#: (Its documented ``h = 0.8 sigma`` with ``sigma`` subtracted from patch distances scored 13.8 dB at Gaussian
#: noise 0.3 on them, below the damaged input; without the subtraction, h = 0.2 gave 16.4.)
NLM_STRENGTHS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8)


def non_local_means(image: np.ndarray, h: float) -> np.ndarray:
    """scikit-image's non-local means (5x5 patches, 13x13 search) at filter strength ``h``."""
    from skimage.restoration import denoise_nl_means

    clean = denoise_nl_means(image.astype(np.float64) / 255, h=h, patch_size=5, patch_distance=6, fast_mode=True)
    return np.clip(np.rint(clean * 255), 0, 255).astype(np.uint8)


def _damaged(digits: np.ndarray, kind: str, strength: float) -> list[np.ndarray]:
    """``digits`` damaged (a fixed seed), as 8-bit images."""
    damaged = damage(digits / np.float32(255), kind, strength, np.random.default_rng(0))
    return list(np.clip(np.rint(damaged * 255), 0, 255).astype(np.uint8))


def best_strength(validation: np.ndarray, kind: str, strength: float) -> float:
    """The ``h`` of :data:`NLM_STRENGTHS` that cleans the damaged validation digits best."""
    damaged = _damaged(validation, kind, strength)
    return max(NLM_STRENGTHS, key=lambda h: _mean_psnr(validation, [non_local_means(i, h) for i in damaged]))


def bm3d_row(digits: np.ndarray, damaged: list[np.ndarray], cleaned: list[np.ndarray], sigma: float) -> dict[str, Any]:
    """BM3D told the noise's ``sigma`` on the first :data:`BM3D_COUNT` digits, and aec's PSNR on them; empty when
    the ``bm3d`` package is not installed."""
    try:
        import bm3d
    except ImportError:
        return {}
    count = min(BM3D_COUNT, len(digits))
    out = [bm3d.bm3d(image / 255.0, sigma_psd=sigma) for image in damaged[:count]]
    images = [np.clip(np.rint(np.asarray(x) * 255), 0, 255).astype(np.uint8) for x in out]
    return {
        "bm3d": _mean_psnr(digits[:count], images),
        "bm3d_images": count,
        "aec_on_bm3d_digits": _mean_psnr(digits[:count], cleaned[:count]),
    }


def median(image: np.ndarray) -> np.ndarray:
    """A 3x3 median filter (scipy)."""
    from scipy.ndimage import median_filter

    return np.asarray(median_filter(image, size=3, mode="constant"), np.uint8)


def examples(digits: np.ndarray, validation: np.ndarray, out: Path = OUT) -> Path:
    """A picture: for a few digits at each of :data:`EXAMPLE_SETTINGS`, the clean digit, the damaged one and what
    each denoiser gives back (PSNR in the titles); returns its path."""
    from .plots import side_by_side

    rows = []
    for kind, strength in EXAMPLE_SETTINGS:
        h = best_strength(validation, kind, strength)
        damaged = _damaged(digits[:EXAMPLE_DIGITS], kind, strength)
        for clean, hurt in zip(digits[:EXAMPLE_DIGITS], damaged):
            cleaned = {
                "aec denoise": denoise_many([hurt])[0],
                "non-local means": non_local_means(hurt, h),
                "median 3x3": median(hurt),
            }
            panels = [("clean", clean), (f"damaged {psnr(clean, hurt):.1f} dB", hurt)]
            panels += [(f"{name} {psnr(clean, image):.1f} dB", image) for name, image in cleaned.items()]
            rows.append((f"{kind} {strength:g}", panels))
    out.mkdir(parents=True, exist_ok=True)
    return side_by_side(rows, out / "denoise_examples.png")


def _mean_psnr(clean: np.ndarray, images: list[np.ndarray]) -> float:
    return float(np.mean([min(psnr(c, i), 99.0) for c, i in zip(clean, images)]))


def run(digits: np.ndarray, validation: np.ndarray, out: Path = OUT, progress: Callable[[str], None] = print) -> Path:
    """Measure every kind and strength on ``digits`` (one core), non-local means tuned on ``validation``; write
    denoising.md and .json; returns the md."""
    started = time.time()
    rows: list[dict[str, Any]] = []
    with threadpool_limits(1):
        for kind, strengths in KINDS.items():
            for strength in strengths:
                progress(f"{kind} {strength:g}: {len(digits):,} digits")
                damaged8 = _damaged(digits, kind, strength)
                h = best_strength(validation, kind, strength)
                cleaned = denoise_many(damaged8)
                rows.append(
                    {
                        "kind": kind,
                        "strength": strength,
                        "damaged": _mean_psnr(digits, damaged8),
                        "aec denoise": _mean_psnr(digits, cleaned),
                        "non-local means": _mean_psnr(digits, [non_local_means(i, h) for i in damaged8]),
                        "nlm_h": h,
                        "median 3x3": _mean_psnr(digits, [median(i) for i in damaged8]),
                        **(bm3d_row(digits, damaged8, cleaned, strength) if kind == "gaussian" else {}),
                    }
                )
    result = {"images": len(digits), "validation": len(validation), "rows": rows, "seconds": time.time() - started}
    path = write_report(out, "denoising", result, markdown(result))
    examples(digits, validation, out)
    return path


def markdown(result: dict[str, Any]) -> str:
    """The table: mean PSNR (dB) per kind and strength, and the goal's verdict."""
    lines = [
        "# Denoising",
        "",
        f"Mean PSNR (dB) against the clean digit, first {result['images']:,} MNIST test digits. Non-local means "
        f"at the filter strength h best on {result['validation']} validation digits (MNIST training digits "
        "55,000 on, which the denoiser did not train on).",
        "",
        "| damage | strength | damaged | aec denoise | non-local means | median 3x3 | BM3D (sigma known) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        bm3d = "–"
        if "bm3d" in row:
            bm3d = f"{row['bm3d']:.2f} (aec {row['aec_on_bm3d_digits']:.2f} on these {row['bm3d_images']} digits)"
        lines.append(
            f"| {row['kind']} | {row['strength']:g} | {row['damaged']:.2f} | **{row['aec denoise']:.2f}** | "
            f"{row['non-local means']:.2f} (h {row['nlm_h']:g}) | {row['median 3x3']:.2f} | {bm3d} |"
        )
    kind, strength = TARGET_SETTING
    goal = next((r for r in result["rows"] if r["kind"] == kind and r["strength"] == strength), None)
    if goal is not None:
        margin = goal["aec denoise"] - max(goal["non-local means"], goal["median 3x3"])
        verdict = "met" if margin >= TARGET_MARGIN else "not met"
        lines += [
            "",
            f"At {kind} {strength:g}: {margin:+.2f} dB over non-local means and the median filter (goal +3 dB over "
            f"the best classic denoiser: {verdict}).",
        ]
        if "bm3d" in goal:
            over = goal["aec_on_bm3d_digits"] - goal["bm3d"]
            verdict = "met" if over >= TARGET_MARGIN else "not met"
            lines += [f"Over BM3D on its {goal['bm3d_images']} digits: {over:+.2f} dB (goal +3 dB: {verdict})."]
    lines += ["", f"Measured in {result['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"
