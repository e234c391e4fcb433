"""Fitted start tables of the latents' contexts (format version 10): the table model ``contexts``.

Version 6 codes latents off the home grid in adaptive contexts (:mod:`codec.contexts`)
that all start at their channel's stationary row, so a small image's contexts
learn little before it ends. This model holds, for each latent model it was
fitted for (named by that model's digest), one frequency row per (channel,
pass, context), counted over the training images' latents
(:mod:`codec.training.contexts_fit`), and the adaptation they start with. A
version 10 file names it through its checksum, as a version 4 file names its
latent model. Integers only: the tables decode the same on every machine.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import store
from .adaptive import Adaptation
from .coder import PRECISION
from .contexts import CONTEXTS, PASSES, Start
from .errors import ModelError
from .models import (
    FrozenModel,
    hash_arrays,
    load_table_model,
    save_table_model,
    table_model_ids,
    table_model_path,
    weights_dir,
)

ROLE = "contexts"
_PREFIX = "tables."


@dataclass(frozen=True)
class FittedContexts:
    """Start tables (C, PASSES, CONTEXTS, K) per latent model digest, and their adaptation."""

    tables: dict[str, np.ndarray]
    adaptation: Adaptation

    def __post_init__(self) -> None:
        for digest, rows in self.tables.items():
            if rows.ndim != 4 or rows.shape[1:3] != (PASSES, CONTEXTS):
                raise ModelError(f"context tables of model {digest[:12]} have shape {rows.shape}")
            if (rows.sum(axis=-1, dtype=np.int64) != 1 << PRECISION).any() or (rows < 1).any():
                raise ModelError(f"context tables of model {digest[:12]} are not frequencies summing to 2**16")

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that are the model (what its file holds and its digest covers)."""
        a = self.adaptation
        out = {f"{_PREFIX}{digest}": rows.astype(np.uint16) for digest, rows in self.tables.items()}
        return {**out, "adaptation": np.array([a.prior_total, a.increment, a.limit], np.int64)}

    @functools.cached_property
    def digest(self) -> str:
        h = hashlib.sha256(b"aec-contexts-1")
        hash_arrays(h, self.arrays())
        return h.hexdigest()

    @property
    def model_id(self) -> int:
        """The 12-bit id a version 10 file's checksum names the model by."""
        return int(self.digest[:3], 16)

    def start_for(self, model: FrozenModel) -> Start | None:
        """Where ``model``'s contexts start, if the tables were fitted for it (its channels and symbols)."""
        rows = self.tables.get(model.digest)
        if rows is None or rows.shape[0] != model.prior.channels or rows.shape[-1] != model.prior.stationary.shape[-1]:
            return None
        return Start(rows, self.adaptation)


def _build(arrays: dict[str, np.ndarray]) -> FittedContexts:
    prior_total, increment, limit = (int(v) for v in arrays["adaptation"])
    tables = {k[len(_PREFIX) :]: v for k, v in arrays.items() if k.startswith(_PREFIX)}  # uint16, as stored
    return FittedContexts(tables, Adaptation(prior_total, increment, limit))


def save(model: FittedContexts, folder: Path, metadata: dict[str, object]) -> Path:
    """Store the model (with its metadata) in ``folder``'s model store as the preset ``contexts``."""
    path = save_table_model(model, folder, ROLE, metadata)
    _load.cache_clear()
    return path


@functools.cache
def _load(path: Path) -> FittedContexts:
    """The model in ``path``, checked against the digest its metadata records (read once per path)."""
    return load_table_model(path, _build, "context tables")


def load(folder: Path | None = None, model_id: int | None = None) -> FittedContexts:
    """The installed context tables (or the stored ones of ``model_id``); :class:`ModelError` if missing or damaged."""
    return _load(table_model_path(ROLE, "context tables", folder, model_id))


def installed(folder: Path | None = None) -> FittedContexts | None:
    """The installed context tables, None when this installation has none (it then writes version 6);
    :class:`ModelError` when they are damaged."""
    folder = folder or weights_dir()
    return load(folder) if store.preset_path(folder, ROLE) is not None else None


def fitted_start(model: FrozenModel) -> tuple[int, Start] | None:
    """The installed context tables' id and where they start ``model``'s contexts; None when none are installed or
    they were not fitted for ``model`` (its files are then version 6 or 9)."""
    tables = installed()
    start = tables.start_for(model) if tables else None
    return (tables.model_id, start) if tables and start else None


def known_ids(folder: Path | None = None) -> Iterator[int]:
    """The ids of the stored context tables, the installed ones first (the store read only when asked for more):
    what a version 10 file is checked against."""
    return table_model_ids(ROLE, folder)
