"""The frozen models: load a quality level's weights, graph and tables (no torch).

Each level ships as ``level-N.npz`` (graph and integer frequency tables) and
``level-N.json`` (architecture, training record, test metrics); its float16
weights are in ``transforms-NAME.npz``, shared by the levels that use the same
trained network at different quantization steps. The model's identity is the
SHA-256 of its graph, tables and weights (:func:`model_digest`); its first 12
bits go into every file coded with it.

When a level gets a new model, its old one can stay behind in ``retired/`` as
``level-N-ID.npz`` (ID: the model id in hex), so that files coded with it still
decode; the encoder only ever uses the installed level.
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

from .errors import ModelError
from .limits import STRIP_PIXELS
from .prior import LatentPrior
from .transforms import Graph, run_graph_in_strips

T = TypeVar("T")

#: Environment variable naming another folder of frozen levels.
WEIGHTS_ENV = "AEC_WEIGHTS_DIR"
#: The level ``compress`` uses when none is given.
DEFAULT_LEVEL = 8
#: Subfolder of the weights holding levels' former models, for decoding old files.
RETIRED = "retired"
#: Subfolder of the weights holding each level's *general* variant: a model trained on every kind of
#: grayscale image (codec/training/general.py), which the encoder picks for images that are not MNIST-like.
GENERAL = "general"


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
        if installed.is_dir() and any(installed.glob("level-*.npz")):
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


def save_frozen(folder: Path, level: int, graph: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """Write ``level-N.npz`` (and ``transforms-NAME.npz`` when the graph names one) atomically.

    Returns the model digest.
    """
    folder.mkdir(parents=True, exist_ok=True)
    own = dict(arrays)
    if "transforms" in graph:
        weights = {name: a for name, a in arrays.items() if not name.startswith(TABLE_PREFIX)}
        own = {name: a for name, a in arrays.items() if name.startswith(TABLE_PREFIX)}
        _write_npz(folder / f"transforms-{graph['transforms']}.npz", weights)
    graph_bytes = np.frombuffer(json.dumps(graph, sort_keys=True).encode(), np.uint8)
    _write_npz(folder / f"level-{level}.npz", {"graph": graph_bytes, **own})
    return model_digest(graph, arrays)


def available_levels(folder: Path | None = None) -> list[int]:
    """The levels with a frozen model in ``folder`` (default: :func:`weights_dir`)."""
    folder = folder or weights_dir()
    levels = []
    for path in folder.glob("level-*.npz"):
        try:
            levels.append(int(path.stem.split("-", 1)[1]))
        except ValueError:
            continue
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


def save_table_model(model: TableModel, path: Path, metadata: dict[str, object]) -> Path:
    """Write ``model``'s arrays to ``path`` (.npz) and its metadata, digest and id beside it (.json), atomically."""
    import io

    from .fileio import write_file, write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **model.arrays())  # type: ignore[arg-type]
    write_file(path, buffer.getvalue(), force=True)
    record = {**metadata, "model_sha256": model.digest, "model_id": f"{model.model_id:03x}"}
    write_json(path.with_suffix(".json"), record)
    return path


def load_table_model(path: Path, build: Callable[[dict[str, np.ndarray]], T], what: str) -> T:
    """The model ``build`` makes of the arrays in ``path``, checked against the digest its metadata records;
    :class:`ModelError` (naming ``what``) for a missing array or a model that is not the one recorded."""
    arrays = read_npz(path)
    try:
        model = build(arrays)
    except KeyError as exc:
        raise ModelError(f"{path}: incomplete {what} ({exc})") from None
    meta = path.with_suffix(".json")
    digest = cast(TableModel, model).digest
    if meta.is_file():
        try:
            recorded = json.loads(meta.read_text()).get("model_sha256", digest)
        except (OSError, ValueError, AttributeError):
            raise ModelError(f"{meta}: the {what}'s metadata cannot be read (damaged)") from None
        if recorded != digest:
            raise ModelError(f"{path}: the {what} does not match its metadata (damaged or replaced)")
    return model


@functools.cache
def _load(path: Path, level: int) -> FrozenModel:
    arrays = read_npz(path)
    try:
        graph = json.loads(arrays.pop("graph").tobytes())
        if "transforms" in graph:
            name = f"transforms-{graph['transforms']}.npz"
            shared = path.with_name(name)
            if not shared.is_file() and path.parent.name == RETIRED:  # shared with an installed level
                shared = path.parent.parent / name
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
    meta_path = path.with_suffix(".json")
    metadata = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    digest = model_digest(graph, arrays)
    if metadata.get("model_sha256", digest) != digest:
        raise ModelError(f"{path}: weights do not match their metadata (damaged or replaced)")
    return FrozenModel(level=level, graph=graph, params=arrays, prior=prior, digest=digest, metadata=metadata)


def load_model(level: int, folder: Path | None = None) -> FrozenModel:
    """The frozen model of ``level``; :class:`ModelError` if it is not installed."""
    folder = folder or weights_dir()
    path = _installed(folder, f"level-{level}.npz")
    if path is None:
        have = available_levels(folder)
        raise ModelError(
            f"quality level {level} is not installed (have {', '.join(map(str, have)) or 'none'} in {folder})"
        )
    return _load(path, level)


@functools.cache
def _installed(folder: Path, name: str) -> Path | None:
    """``folder / name`` resolved when it is a file, else None (asked on every decode, so remembered until
    :func:`clear_cache`)."""
    path = folder / name
    return path.resolve() if path.is_file() else None


def load_general(level: int, folder: Path | None = None) -> FrozenModel | None:
    """Level ``level``'s general variant (``general/level-N.npz``), None when it is not installed."""
    path = _installed(folder or weights_dir(), f"{GENERAL}/level-{level}.npz")
    return _load(path, level) if path is not None else None


def retired_path(level: int, model_id: int, folder: Path | None = None) -> Path:
    """Where level ``level``'s former model ``model_id`` is kept for decoding."""
    return (folder or weights_dir()) / RETIRED / f"level-{level}-{model_id:03x}.npz"


def model_for_decoding(level: int, model_id: int, folder: Path | None = None) -> FrozenModel:
    """The model a file of ``level`` coded with ``model_id`` needs: the installed level's or a retired one.

    :class:`ModelError` if the level is not installed; a model with another id
    than asked for is returned as is (the caller reports the mismatch).
    """
    try:
        installed: FrozenModel | None = load_model(level, folder)
    except ModelError:
        installed = None
    if installed is not None and installed.model_id == model_id:
        return installed  # the common case, without a look into retired/
    general = load_general(level, folder)
    if general is not None and general.model_id == model_id:
        return general
    retired = retired_path(level, model_id, folder)
    if retired.is_file():
        return _load(retired.resolve(), level)
    return installed or load_model(level, folder)  # the latter raises the ModelError


def known_model_ids(level: int, folder: Path | None = None) -> tuple[int, ...]:
    """The ids of the models that decode files of ``level`` here: the installed one first, then the retired."""
    return _known_ids(folder or weights_dir(), level)


@functools.cache
def _known_ids(folder: Path, level: int) -> tuple[int, ...]:
    """:func:`known_model_ids` (found once; every decode asks).

    An id is read from the model's metadata where it records its digest, without
    loading the weights (the model a file names is checked against its digest when
    it is loaded to decode it).
    """
    ids = []
    for name, load in ((f"level-{level}", load_model), (f"{GENERAL}/level-{level}", load_general)):
        model_id = recorded_id(folder, name)
        if model_id is None:  # no metadata to read it from: the model itself, when installed
            with contextlib.suppress(ModelError):
                model = load(level, folder)
                model_id = model.model_id if model is not None else None
        if model_id is not None:
            ids.append(model_id)
    return (*ids, *_retired_ids(folder, level))


def recorded_id(folder: Path, name: str) -> int | None:
    """The model id that ``folder/name.json`` records with the weights in ``name.npz``, if both are there and the
    record is readable (without loading the weights)."""
    if _installed(folder, f"{name}.npz") is None:
        return None
    try:
        digest = json.loads((folder / f"{name}.json").read_text()).get("model_sha256")
    except (OSError, ValueError, AttributeError):
        return None
    try:
        return model_id_of(digest) if isinstance(digest, str) and len(digest) == 64 else None
    except ValueError:  # not hex
        return None


@functools.cache
def _retired_ids(folder: Path, level: int) -> tuple[int, ...]:
    """The ids of ``level``'s models kept in ``folder/retired`` (read once; every decode asks)."""
    ids = []
    for path in sorted((folder / RETIRED).glob(f"level-{level}-*.npz")):
        try:
            ids.append(int(path.stem.rsplit("-", 1)[1], 16))
        except ValueError:
            continue
    return tuple(ids)


def clear_cache() -> None:
    """Forget loaded models (after new weights were written)."""
    _load.cache_clear()
    _retired_ids.cache_clear()
    _installed.cache_clear()
    _known_ids.cache_clear()
