"""The PCA codec the autoencoder is usually compared with.

k principal components fitted on the training set (scikit-learn), coefficients
uniformly quantized, and entropy-coded with constriction using one integer table
per component fitted on the training set. The quantization step of each k is
chosen so that quantization adds a quarter of the error of the dropped
components. A file is the entropy-coded payload alone (no header): the PCA codec
has no container, which flatters it slightly at the lowest rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codec import coder
from codec.prior import quantize_pmf


@dataclass(frozen=True)
class PcaLevel:
    """Everything needed to code at one k."""

    k: int
    step: float
    radius: int
    tables: np.ndarray  # (k, 2 * radius + 1) integer frequencies


class PcaCodec:
    """PCA transform plus per-component entropy coding, fitted on 28x28 training images."""

    def __init__(self, train: np.ndarray, ks: tuple[int, ...] = (6, 10, 16, 24, 36, 50, 70, 100, 140)) -> None:
        from sklearn.decomposition import PCA

        x = train.reshape(len(train), -1).astype(np.float64)
        pca = PCA(n_components=max(ks), svd_solver="full").fit(x)
        self.shape = train.shape[1:]
        self.mean = pca.mean_
        self.components = pca.components_
        total = float(np.sum(np.var(x, axis=0)))
        explained = pca.explained_variance_
        coefs = (x - self.mean) @ self.components.T
        self.levels: dict[int, PcaLevel] = {}
        for k in ks:
            tail = max(total - float(explained[:k].sum()), 1e-6)
            step = float(np.sqrt(3.0 * tail / k))
            q = np.rint(coefs[:, :k] / step).astype(np.int64)
            radius = int(np.abs(q).max()) + 1
            hist = np.stack([np.bincount(col + radius, minlength=2 * radius + 1) for col in q.T]).astype(np.float64)
            self.levels[k] = PcaLevel(k, step, radius, quantize_pmf(hist + 0.5))

    @property
    def settings(self) -> list[int]:
        return sorted(self.levels)

    def encode(self, image: np.ndarray, k: int) -> bytes:
        return self.encode_many(image[None], k)[0]

    def encode_many(self, images: np.ndarray, k: int) -> list[bytes]:
        level = self.levels[k]
        coefs = (images.reshape(len(images), -1) - self.mean) @ self.components[:k].T
        symbols = np.clip(np.rint(coefs / level.step), -level.radius, level.radius).astype(np.int32) + level.radius
        segments = [(k, level.tables)]
        return [coder.encode(row, segments) for row in symbols]

    def decode(self, data: bytes, k: int) -> np.ndarray:
        return self.decode_many([data], k)[0]

    def decode_many(self, files: list[bytes], k: int) -> np.ndarray:
        level = self.levels[k]
        segments = [(k, level.tables)]
        symbols = np.stack([coder.decode(f, segments) for f in files]).astype(np.float64) - level.radius
        pixels = self.mean + (symbols * level.step) @ self.components[:k]
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(len(files), *self.shape)
