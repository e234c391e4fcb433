"""The frozen models: load a quality level's weights, graph and tables (no torch).

A level's model is kept in the weights folder's model store (:mod:`codec.store`)
by its digest: an ``.npz`` (graph and integer frequency tables) and a ``.json``
(architecture, training record); its float16 weights are in
``transforms-NAME.npz``, shared by the levels that use the same trained network
at different quantization steps. The model's identity is the SHA-256 of its
graph, tables and weights (:func:`model_digest`); its first 12 bits go into
every file coded with it.

The presets name each level's model (role ``level-N``) and its general variant
(``general-N``), with the level's search lambda and measured test metrics. A
level's former model stays in the store, so that files coded with it still
decode; the encoder only ever uses the models the presets name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import numpy as np

from . import store
from .errors import ModelError
from .limits import STRIP_PIXELS
from .prior import LatentPrior
from .transforms import Graph, run_graph_in_strips

T = TypeVar("T")

#: Environment variable naming another folder of frozen levels.
WEIGHTS_ENV = "AEC_WEIGHTS_DIR"
#: The level ``compress`` uses when none is given.
DEFAULT_LEVEL = 8


#: Folders chosen by :func:`using_weights` blocks, the innermost last.
_CHOSEN: list[Path] = []


def weights_dir() -> Path:
    """The folder of frozen levels: the one a :func:`using_weights` block chose, ``$AEC_WEIGHTS_DIR``, the installed
    package data, or the checkout."""
    if _CHOSEN:
        return _CHOSEN[-1]
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    return _shipped_weights()


@contextlib.contextmanager
def using_weights(folder: Path | None) -> Iterator[Path]:
    """Within the block, frozen models are read from and written to ``folder`` (None: the folder as it is).

    What training and measuring commands use instead of changing the process's
    environment: nothing outlives the block, and the models loaded from the
    folder are forgotten when it ends.
    """
    if folder is None:
        yield weights_dir()
        return
    _CHOSEN.append(Path(folder))
    clear_cache()
    try:
        yield _CHOSEN[-1]
    finally:
        _CHOSEN.pop()
        clear_cache()


@functools.cache
def _shipped_weights() -> Path:
    """The shipped levels: the installed package data, or the checkout's (found once; every call asks)."""
    try:
        from importlib.resources import files

        installed = Path(str(files("codec.weights")))
        if (installed / store.PRESETS).is_file():
            return installed
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "weights"


def model_digest(graph: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 (hex) of a frozen model: its graph description and every array, by name."""
    h = hashlib.sha256(json.dumps(graph, sort_keys=True, separators=(",", ":")).encode())
    hash_arrays(h, arrays)
    return h.hexdigest()


def hash_arrays(h: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Feed every array to the hash ``h`` in name order: its name, dtype and shape, then its bytes."""
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}\n".encode())
        h.update(a.tobytes())


def model_id_of(digest: str) -> int:
    """The 12-bit model id stored in file headers: the first three hex digits of the digest."""
    return int(digest[:3], 16)


def cast_params(arrays: Mapping[str, np.ndarray], dtype: type) -> dict[str, np.ndarray]:
    """The floating-point arrays (the float16 weights) cast to the compute ``dtype``; integer tables as they are.

    Convolution weights keep their shape (O, C, kh, kw) but lie in memory as (kh, kw, C, O), the
    matrix :func:`codec.transforms.conv2d_nhwc` multiplies by, which is then a view, not a copy per call.
    """
    return {name: _cast(a, dtype) if a.dtype.kind == "f" else a for name, a in arrays.items()}


def _cast(array: np.ndarray, dtype: type) -> np.ndarray:
    if array.ndim != 4:
        return array.astype(dtype)
    return np.ascontiguousarray(array.astype(dtype).transpose(2, 3, 1, 0)).transpose(3, 2, 0, 1)


@dataclass(frozen=True)
class FrozenModel:
    """One quality level, ready to code: transforms, tables and identity."""

    level: int
    graph: dict[str, Any]
    params: dict[str, np.ndarray]
    prior: LatentPrior
    digest: str
    metadata: dict[str, Any] = field(default_factory=dict)
    _cast: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def model_id(self) -> int:
        return model_id_of(self.digest)

    @property
    def stride(self) -> int:
        """Pixels per latent along each side: 4 (a 7x7 grid per digit) or 28 (one vector per digit).

        Images are padded to a multiple of it.
        """
        stride = 1
        for op in self.analysis_graph:
            if op["op"] == "conv":
                stride *= int(op.get("stride", 1))
        return stride

    @property
    def analysis_graph(self) -> Graph:
        return cast(Graph, self.graph["analysis"])

    @property
    def synthesis_graph(self) -> Graph:
        return cast(Graph, self.graph["synthesis"])

    @property
    def search_lambda(self) -> float:
        """The encoder search's weight of the squared error against bits (metadata ``search_lambda``).

        The training loss is ``bpp + lambda * MSE``, per image ``bits + lambda * SSE``
        (pixels in [0, 1]); a level may search with another lambda than it was
        trained with, to place its operating point. Falls back to the training
        ``lambda``, and to 0 (no search) for a level whose metadata has neither.
        """
        return float(self.metadata.get("search_lambda", self.metadata.get("lambda", 0.0)))

    def params_as(self, dtype: type) -> dict[str, np.ndarray]:
        """The float16 weights cast once to the compute ``dtype`` (cached per dtype)."""
        key = np.dtype(dtype).str
        if key not in self._cast:
            self._cast[key] = cast_params(self.params, dtype)
        return self._cast[key]

    def strip_rows(self, count: int, width: int) -> int:
        """Latent rows run at once for ``count`` images ``width`` pixels wide: about :data:`STRIP_PIXELS` pixels."""
        return max(1, STRIP_PIXELS // (count * width * self.stride))

    def analyse(self, images: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """Real-valued latents (N, C, H/s, W/s) of images (N, H, W) in [0, 1], H and W multiples of the stride."""
        x: np.ndarray = np.asarray(images, dtype=dtype)[:, None]
        strip = self.strip_rows(len(x), x.shape[3])
        return run_graph_in_strips(self.analysis_graph, self.params_as(dtype), x, self.stride, 1, strip, "analysis")

    def synthesise(self, latents: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """Images (N, s*GH, s*GW) in [0, 1] from integer latents (N, C, GH, GW)."""
        x: np.ndarray = np.asarray(latents, dtype=dtype)
        strip = self.strip_rows(len(x), x.shape[3] * self.stride)
        params = self.params_as(dtype)
        return run_graph_in_strips(self.synthesis_graph, params, x, 1, self.stride, strip, "synthesis")[:, 0]


#: Arrays of a level's own file; all others are transform weights.
TABLE_PREFIX = "prior."


def _write_npz(target: Path, arrays: Mapping[str, np.ndarray]) -> None:
    from .fileio import atomic_output

    with atomic_output(target, force=True) as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]


def save_frozen(folder: Path, graph: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """Store a frozen model (and the ``transforms-NAME.npz`` its graph names) in ``folder``'s model store,
    atomically; returns its digest. No preset names it yet (:func:`codec.store.set_preset`)."""
    digest = model_digest(graph, arrays)
    target = store.model_path(folder, digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    own = dict(arrays)
    if "transforms" in graph:
        weights = {name: a for name, a in arrays.items() if not name.startswith(TABLE_PREFIX)}
        own = {name: a for name, a in arrays.items() if name.startswith(TABLE_PREFIX)}
        _write_npz(target.with_name(f"transforms-{graph['transforms']}.npz"), weights)
    graph_bytes = np.frombuffer(json.dumps(graph, sort_keys=True).encode(), np.uint8)
    _write_npz(target, {"graph": graph_bytes, **own})
    store.clear_cache()
    return digest


def save_level(
    folder: Path, level: int, graph: dict[str, Any], arrays: dict[str, np.ndarray], general: bool = False
) -> str:
    """Store a frozen model (:func:`save_frozen`) and point level ``level``'s preset (its general variant's, with
    ``general``) at it; returns its digest."""
    digest = save_frozen(folder, graph, arrays)
    role = store.level_role(level, general)
    store.set_preset(folder, role, digest, {**store.preset_fields(folder, role), "level": level})
    return digest


def available_levels(folder: Path | None = None) -> list[int]:
    """The levels whose model a preset of ``folder`` (default: :func:`weights_dir`) names."""
    levels = []
    for role in store.presets(folder or weights_dir()):
        kind, _, level = role.partition("-")
        if kind == "level" and level.isdigit():
            levels.append(int(level))
    return sorted(levels)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ModelError(f"{path}: cannot read frozen model ({exc})") from None


class TableModel(Protocol):
    """A frozen model of integer arrays only (the refinement, the pixel model): what its file holds and its id."""

    @property
    def digest(self) -> str: ...

    @property
    def model_id(self) -> int: ...

    def arrays(self) -> dict[str, np.ndarray]: ...


def save_table_model(model: TableModel, folder: Path, role: str, metadata: dict[str, object]) -> Path:
    """Store ``model``'s arrays (.npz) and its metadata, digest and id (.json) in ``folder``'s model store,
    atomically, and point the preset ``role`` at it; returns the model's path."""
    import io

    from .fileio import write_file

    path = store.model_path(folder, model.digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **model.arrays())  # type: ignore[arg-type]
    write_file(path, buffer.getvalue(), force=True)
    record = {"kind": role, **metadata, "model_sha256": model.digest, "model_id": f"{model.model_id:03x}"}
    store.write_metadata(folder, model.digest, record)
    store.set_preset(folder, role, model.digest)
    return path


def load_table_model(path: Path, build: Callable[[dict[str, np.ndarray]], T], what: str) -> T:
    """The model ``build`` makes of the arrays in ``path``, checked against the digest its metadata records;
    :class:`ModelError` (naming ``what``) for a missing array or a model that is not the one recorded."""
    arrays = read_npz(path)
    try:
        model = build(arrays)
    except KeyError as exc:
        raise ModelError(f"{path}: incomplete {what} ({exc})") from None
    digest = cast(TableModel, model).digest
    if store.read_metadata(path).get("model_sha256", digest) != digest:
        raise ModelError(f"{path}: the {what} does not match its metadata (damaged or replaced)")
    return model


def table_model_path(role: str, what: str, folder: Path | None = None, model_id: int | None = None) -> Path:
    """The stored model the preset ``role`` names or, for ``model_id``, the model of that id (the preset's, or a
    former one still in the store; else the preset's, whose id the caller reports as a mismatch).
    :class:`ModelError` (naming ``what``) when neither exists."""
    folder = folder or weights_dir()
    path = store.preset_path(folder, role)
    if model_id is not None and preset_id(role, folder) != model_id:
        path = store.find(folder, role, model_id) or path
    if path is None:
        raise ModelError(f"no {what} in {folder} (no preset '{role}'): this installation cannot use it")
    return path


def table_model_ids(role: str, folder: Path | None = None) -> Iterator[int]:
    """The ids of the stored models of ``role``: the preset's first, then former ones still in the store (read
    lazily, as :func:`known_model_ids`)."""
    folder = folder or weights_dir()
    named = preset_id(role, folder)
    if named is not None:
        yield named
    yield from (i for i in store.stored_ids(folder, role) if i != named)


def preset_id(role: str, folder: Path | None = None) -> int | None:
    """The id of the model the preset ``role`` names (read from the presets), None when there is none."""
    folder = folder or weights_dir()
    digest = store.preset_digest(folder, role)
    return model_id_of(digest) if digest is not None and store.preset_path(folder, role) else None


@functools.cache
def _load(path: Path, level: int, preset: str = "{}") -> FrozenModel:
    """The model in ``path`` for ``level``, its metadata completed by its preset's fields (``preset``, as JSON:
    part of what the model is cached by)."""
    arrays = read_npz(path)
    try:
        graph = json.loads(arrays.pop("graph").tobytes())
        if "transforms" in graph:
            shared = path.with_name(f"transforms-{graph['transforms']}.npz")
            if not shared.is_file():
                raise ModelError(f"{path}: its weights {shared.name} are missing")
            arrays.update(read_npz(shared))
        prior = LatentPrior(
            bank=arrays["prior.bank"],
            index=arrays["prior.index"],
            selector=arrays["prior.selector"],
            stationary=arrays["prior.stationary"],
            radius=int(graph["radius"]),
        )
    except (KeyError, ValueError) as exc:
        raise ModelError(f"{path}: incomplete frozen model ({exc})") from exc
    metadata = {**store.read_metadata(path), **json.loads(preset)}
    digest = model_digest(graph, arrays)
    if metadata.get("model_sha256", digest) != digest:
        raise ModelError(f"{path}: weights do not match their metadata (damaged or replaced)")
    return FrozenModel(level=level, graph=graph, params=arrays, prior=prior, digest=digest, metadata=metadata)


def load_model(level: int, folder: Path | None = None) -> FrozenModel:
    """The frozen model of ``level`` (the one its preset names); :class:`ModelError` if it is not installed."""
    folder = folder or weights_dir()
    model = _preset_model(folder, store.level_role(level), level)
    if model is None:
        have = available_levels(folder)
        if not have and (folder / f"level-{level}.npz").is_file():
            raise ModelError(f"{folder} holds models in the layout of aec 0.13 and older (level-N.npz), not a store")
        raise ModelError(
            f"quality level {level} is not installed (have {', '.join(map(str, have)) or 'none'} in {folder})"
        )
    return model


def load_general(level: int, folder: Path | None = None) -> FrozenModel | None:
    """Level ``level``'s general variant (its preset ``general-N``), None when it is not installed."""
    return _preset_model(folder or weights_dir(), store.level_role(level, general=True), level)


def load_preset(role: str, folder: Path | None = None) -> FrozenModel | None:
    """The autoencoder the preset ``role`` names that is not a level's (the variational model), None when there
    is none."""
    return _preset_model(folder or weights_dir(), role, 0)


@functools.cache
def _preset_model(folder: Path, role: str, level: int) -> FrozenModel | None:
    """The model the preset ``role`` names, with the preset's fields in its metadata (None: no such preset).
    Found once per folder and role: every encode and decode asks."""
    path = store.preset_path(folder, role)
    if path is None:
        return None
    return _load(path, level, json.dumps(store.preset_fields(folder, role), sort_keys=True))


def model_for_decoding(level: int, model_id: int, folder: Path | None = None) -> FrozenModel:
    """The model a file of ``level`` coded with ``model_id`` needs: the level's, its general variant, or a former
    model of the level still in the store.

    :class:`ModelError` if the level is not installed; a model with another id
    than asked for is returned as is (the caller reports the mismatch).
    """
    folder = folder or weights_dir()
    try:
        installed: FrozenModel | None = load_model(level, folder)
    except ModelError:
        installed = None
    if installed is not None and installed.model_id == model_id:
        return installed  # the common case, without a look through the store
    general = load_general(level, folder)
    if general is not None and general.model_id == model_id:
        return general
    former = store.find(folder, store.LEVEL_KIND, model_id, level)
    if former is not None:
        return _load(former, level)
    return installed or load_model(level, folder)  # the latter raises the ModelError


def known_model_ids(level: int, folder: Path | None = None) -> Iterator[int]:
    """The ids of the models that decode files of ``level`` here: the presets' first, then the level's former
    models in the store. Lazily: the store's metadata is read only when a caller asks past the presets' ids (a
    file of a former model), not on every decode."""
    folder = folder or weights_dir()
    named = [preset_id(store.level_role(level, general), folder) for general in (False, True)]
    ids = [model_id for model_id in named if model_id is not None]
    yield from ids
    yield from (i for i in store.stored_ids(folder, store.LEVEL_KIND, level) if i not in ids)


def clear_cache() -> None:
    """Forget loaded models and the store's presets (after new weights were written)."""
    _load.cache_clear()
    _preset_model.cache_clear()
    store.clear_cache()
