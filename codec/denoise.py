"""The denoiser: a small trained convolutional network that gives back a clean digit from a damaged one (no torch).

It is trained (:mod:`codec.training.denoise_fit`) on MNIST training digits
damaged by Gaussian noise, salt and pepper or blur (:mod:`codec.training.noise`),
frozen like the codec's transforms (a graph of float16 weights, run by
:mod:`codec.transforms`) and kept in the model store under the preset
``denoise``. Images are prepared as the codec prepares them (white ink on
black), run through the network in strips (any size, bounded memory) and given
back in their own polarity.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from .images import ImageLike, Prepared, pad_to_stride, prepare
from .models import (
    cast_params,
    hash_arrays,
    load_table_model,
    model_id_of,
    save_table_model,
    table_model_path,
)
from .transforms import Graph, run_graph_in_strips

#: The model's role in the model store (:mod:`codec.store`).
ROLE = "denoise"
#: Image rows run through the network at once (times the width): bounds the memory of a large image.
STRIP_PIXELS = 1 << 18


@dataclass(frozen=True)
class DenoiseModel:
    """The frozen denoiser: its graph (pixels in [0, 1] out, before clipping) and float16 weights."""

    graph: dict[str, Any]
    params: dict[str, np.ndarray]
    _cast: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def layers(self) -> Graph:
        return cast(Graph, self.graph["layers"])

    @property
    def stride(self) -> int:
        """Pixels per position of its coarsest layer: images are padded to a multiple of it."""
        return int(self.graph["stride"])

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that are the model (its file; the digest covers them and the graph)."""
        return {"graph": np.frombuffer(json.dumps(self.graph, sort_keys=True).encode(), np.uint8), **self.params}

    @functools.cached_property
    def digest(self) -> str:
        h = hashlib.sha256(b"aec-denoise-1")
        hash_arrays(h, self.arrays())
        return h.hexdigest()

    @property
    def model_id(self) -> int:
        return model_id_of(self.digest)

    def run(self, images: np.ndarray) -> np.ndarray:
        """Clean images (N, H, W) in [0, 1] from damaged ones (N, H, W) in [0, 1], H and W multiples of the stride."""
        if "float32" not in self._cast:
            self._cast["float32"] = cast_params(self.params, np.float32)
        x = np.asarray(images, np.float32)[:, None]
        strip = max(1, STRIP_PIXELS // max(1, len(x) * x.shape[3] * self.stride))  # in units of `stride` rows
        return run_graph_in_strips(self.layers, self._cast["float32"], x, self.stride, self.stride, strip, "denoise")[
            :, 0
        ]


def _built(arrays: dict[str, np.ndarray]) -> DenoiseModel:
    graph = json.loads(arrays.pop("graph").tobytes())
    return DenoiseModel(graph, arrays)


def save(model: DenoiseModel, folder: Path, metadata: dict[str, object]) -> Path:
    """Store the model (with its metadata) in ``folder``'s model store as the preset ``denoise``."""
    path = save_table_model(model, folder, ROLE, metadata)
    _load.cache_clear()
    return path


@functools.cache
def _load(path: Path) -> DenoiseModel:
    return load_table_model(path, _built, "denoiser")


def load(folder: Path | None = None) -> DenoiseModel:
    """The installed denoiser; :class:`ModelError` if it is missing or damaged."""
    return _load(table_model_path(ROLE, "denoiser", folder))


def denoise(image: ImageLike, model: DenoiseModel | None = None) -> np.ndarray:
    """``image`` (any Pillow image or array, converted to 8-bit grayscale) cleaned: (H, W) uint8, in its own
    polarity.

    >>> import numpy as np
    >>> denoise(np.zeros((28, 28), np.uint8)).shape
    (28, 28)
    """
    return denoise_many([image], model)[0]


def denoise_many(images: Sequence[ImageLike], model: DenoiseModel | None = None) -> list[np.ndarray]:
    """:func:`denoise` of each image."""
    return denoise_prepared([prepare(image) for image in images], model)


def denoise_prepared(items: Sequence[Prepared], model: DenoiseModel | None = None) -> list[np.ndarray]:
    """:func:`denoise` of images prepared as the codec prepares them (:func:`codec.images.prepare`)."""
    model = model or load()
    out = []
    for item in items:
        height, width = item.pixels.shape
        padded = pad_to_stride(item.pixels[None], model.stride).astype(np.float32) / np.float32(255)
        clean = np.clip(np.rint(model.run(padded)[0, :height, :width] * 255), 0, 255).astype(np.uint8)
        out.append(255 - clean if item.inverted else clean)
    return out
