"""New digits from the variational model: latents drawn from its Gaussian prior, decoded without torch.

The variational autoencoder (:class:`codec.training.model.VariationalAutoencoder`,
``aec train --model vae-4`` then ``aec freeze --model vae-4``) is frozen like a
level and kept in the model store under the preset ``vae``; its metadata holds
the scale of the prior N(0, s^2) its decoder learned to read latents from. A
sample is the synthesis of latents drawn from that prior with a seeded
generator (the same digits for the same seed on one machine; pixels are not a
bitstream, so no bit-exactness is promised across machines).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ArgumentError, ModelError
from .models import FrozenModel, load_preset, weights_dir

#: The variational model's role in the model store (:mod:`codec.store`).
ROLE = "vae"
#: The most digits one call draws (a 64x64 grid of 28x28 digits is a 1,920 px square image).
MAX_SAMPLES = 4096


def load(folder: Path | None = None) -> FrozenModel:
    """The installed variational model; :class:`ModelError` when there is none."""
    folder = folder or weights_dir()
    model = load_preset(ROLE, folder)
    if model is None:
        raise ModelError(
            f"no variational model in {folder}: 'aec train --model vae-4 --recipe && aec freeze --model vae-4' makes it"
        )
    if "prior_scale" not in model.metadata:
        raise ModelError(f"{folder}: the '{ROLE}' model records no prior scale (not a variational model)")
    return model


def sample(count: int, seed: int = 0, model: FrozenModel | None = None) -> np.ndarray:
    """``count`` new digits (N, 28, 28) uint8, white ink on black, from latents drawn with ``seed``.

    >>> sample(2, seed=1).shape
    (2, 28, 28)
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= MAX_SAMPLES:
        raise ArgumentError(f"draw 1 to {MAX_SAMPLES} digits, not {count!r}")
    model = model or load()
    channels = int(model.prior.index.shape[1])
    rows, columns = model.prior.grid
    scale = float(model.metadata["prior_scale"])
    latents = np.random.default_rng(seed).normal(0.0, scale, (int(count), channels, rows, columns))
    images = model.synthesise(latents.astype(np.float32))
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def grid(images: np.ndarray, columns: int | None = None, gap: int = 2) -> np.ndarray:
    """Images (N, h, w) tiled in rows of ``columns`` (default: a square) with ``gap`` px of mid-grey between them.

    >>> grid(np.zeros((5, 2, 2), np.uint8), columns=3, gap=1).shape
    (5, 8)
    """
    count, height, width = images.shape
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = -(-count // columns)
    out = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), 128, np.uint8)
    for i, image in enumerate(images):
        top, left = (i // columns) * (height + gap), (i % columns) * (width + gap)
        out[top : top + height, left : left + width] = image
    return out
