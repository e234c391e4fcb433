"""Search features: a frozen integer projection of a level's latents, so that latent similarity follows pixels.

The cosine of two digits' raw latents ranks neighbours a little worse than the
distance of their pixels (level 6 on validation digits: 0.9106 precision@10
against 0.9123), because the synthesis weighs latent directions unequally. A
projection ``P`` (D, D) is fitted to the level (:mod:`codec.training.retrieval_fit`):
the least-squares linear map ``W`` from a digit's latents to its pixels, and
``P`` a factor of ``W W^T``, so that ``|z P|`` is the length of the pixels that
``z`` adds linearly. Features ``z P`` rank above raw pixels (level 6: 0.9208).

``P`` is stored as integers, and so are the features: every product and sum of
a similarity is an integer below 2**53, exact in float64, so a search ranks the
same on every machine. A projection names the digest of the model it was fitted
to and is used for that model only; a model without one is searched by its raw
latents. Projections live in the model store as kind ``retrieval``, preset
``retrieval-N`` for level N.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import store
from .errors import ModelError
from .models import FrozenModel, hash_arrays, load_table_model, model_id_of, save_table_model, weights_dir

#: The kind of a projection in the model store, and the prefix of its presets (``retrieval-N``).
KIND = "retrieval"
#: A feature's largest magnitude times itself, times the features, stays below this: similarities stay exact.
EXACT = 1 << 53


def role(level: int) -> str:
    """The preset of level ``level``'s projection."""
    return f"{KIND}-{level}"


@dataclass(frozen=True, eq=False)
class Projection:
    """An integer matrix (D, F) that turns a model's integer latents (N, D) into search features (N, F)."""

    matrix: np.ndarray
    model: np.ndarray  # the SHA-256 digest of the model it was fitted to, as 32 bytes

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that are the projection (what its file holds and its digest covers)."""
        return {"matrix": self.matrix, "model": self.model}

    @functools.cached_property
    def digest(self) -> str:
        h = hashlib.sha256(b"aec-retrieval-1")
        hash_arrays(h, self.arrays())
        return h.hexdigest()

    @property
    def model_id(self) -> int:
        return model_id_of(self.digest)

    @property
    def model_digest(self) -> str:
        """The digest of the model the projection belongs to."""
        return bytes(self.model).hex()

    def largest_feature(self, radius: int) -> int:
        """The largest magnitude a feature takes for latents in ``[-radius, radius]``."""
        return int(radius) * int(np.abs(self.matrix).sum(axis=0).max(initial=0))

    def check(self, model: FrozenModel) -> None:
        """Refuse a projection that does not fit ``model``'s latents or whose similarities would not be exact."""
        dims = int(model.prior.index[0].size)
        if self.matrix.ndim != 2 or self.matrix.shape[0] != dims or self.matrix.dtype != np.int64:
            raise ModelError(f"a search projection of shape {self.matrix.shape} for latents of {dims}")
        if self.matrix.shape[1] * self.largest_feature(model.prior.radius) ** 2 >= EXACT:
            raise ModelError("a search projection whose similarities would not be exact (damaged)")

    def features(self, latents: np.ndarray) -> np.ndarray:
        """Integer features (N, F) of integer latents (N, D), in float64 (exact: below 2**53)."""
        return (np.asarray(latents, np.int64) @ self.matrix).astype(np.float64)


def _built(arrays: dict[str, np.ndarray]) -> Projection:
    return Projection(np.asarray(arrays["matrix"]), np.asarray(arrays["model"]))


def save(projection: Projection, level: int, folder: Path, metadata: dict[str, object]) -> Path:
    """Store ``projection`` in ``folder``'s model store as the preset ``retrieval-N`` for level ``level``."""
    path = save_table_model(projection, folder, role(level), {**metadata, "kind": KIND})
    _stored.cache_clear()
    return path


@functools.cache
def _stored(folder: Path) -> tuple[Projection, ...]:
    """Every projection in the store of ``folder``, the presets' first (each checked against its recorded digest)."""
    named = [store.preset_path(folder, name) for name in store.presets(folder) if name.startswith(f"{KIND}-")]
    paths = [*filter(None, named), *(p for p in store.paths_of(folder, KIND) if p not in named)]
    return tuple(load_table_model(path, _built, "search projection") for path in paths)


def for_model(model: FrozenModel, folder: Path | None = None) -> Projection | None:
    """The projection fitted to ``model`` (checked against it; a preset's first), None when the store holds none
    for it."""
    folder = (folder or weights_dir()).resolve()
    found = next((p for p in _stored(folder) if p.model_digest == model.digest), None)
    if found is not None:
        found.check(model)
    return found


def clear_cache() -> None:
    """Forget the projections read (after the store changed)."""
    _stored.cache_clear()
