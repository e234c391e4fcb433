"""The damage the denoiser learns to undo: Gaussian noise, salt and pepper, blur (numpy and scipy; no torch).

Images are float arrays in [0, 1]. Each kind has a strength: the noise's
standard deviation, the share of pixels set to black or white, the blur's
standard deviation in pixels. :data:`KINDS` are the benchmark's settings;
training draws a kind and a strength per image (:func:`random_damage`).
"""

from __future__ import annotations

import numpy as np

#: Kind -> strengths the benchmark measures (the issue's: Gaussian sigma 0.1-0.5, salt and pepper, blur).
KINDS: dict[str, tuple[float, ...]] = {
    "gaussian": (0.1, 0.2, 0.3, 0.4, 0.5),
    "salt-and-pepper": (0.05, 0.1, 0.2),
    "blur": (0.5, 1.0, 1.5),
}
#: Training's range of each kind's strength, and how often each kind is drawn.
RANGES = {"gaussian": (0.05, 0.55), "salt-and-pepper": (0.02, 0.25), "blur": (0.4, 1.6)}
SHARES = {"gaussian": 0.5, "salt-and-pepper": 0.25, "blur": 0.25}


def damage(images: np.ndarray, kind: str, strength: float, rng: np.random.Generator) -> np.ndarray:
    """``images`` (N, H, W) in [0, 1] damaged by ``kind`` at ``strength``, clipped to [0, 1] (float32)."""
    x = np.asarray(images, np.float32)
    if kind == "gaussian":
        return np.clip(x + rng.normal(0.0, strength, x.shape).astype(np.float32), 0.0, 1.0)
    if kind == "salt-and-pepper":
        hit = rng.random(x.shape) < strength
        return np.where(hit, (rng.random(x.shape) < 0.5).astype(np.float32), x)
    if kind == "blur":
        from scipy.ndimage import gaussian_filter

        return np.clip(gaussian_filter(x, sigma=(0, strength, strength), mode="constant"), 0.0, 1.0)
    raise ValueError(f"unknown damage {kind!r}; kinds are {', '.join(KINDS)}")


def random_damage(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image damaged by a kind drawn by :data:`SHARES` at a strength drawn from its :data:`RANGES`."""
    kinds = rng.choice(list(SHARES), size=len(images), p=list(SHARES.values()))
    out = np.empty(images.shape, np.float32)
    for kind in SHARES:
        chosen = np.flatnonzero(kinds == kind)
        low, high = RANGES[kind]
        for index in chosen:
            out[index] = damage(images[index : index + 1], kind, float(rng.uniform(low, high)), rng)[0]
    return out
