"""MNIST as the four standard IDX ``.gz`` files: find, verify, download, read.

Lookup order for the data folder: an explicit ``data_dir``, the ``AEC_DATA_DIR``
environment variable, ``../shared/mnist`` (from the working directory or from the
source checkout), then the user cache (``$XDG_CACHE_HOME/aec/mnist``), where
:func:`download` puts the files. Every file is verified by the SHA-256 of its
*decompressed* bytes before use, so a local copy and a fresh download are checked
the same way.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import DataError

if TYPE_CHECKING:
    from rich.progress import Progress

#: SHA-256 of the decompressed IDX files.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLITS = {"train": "train", "test": "t10k"}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
ENV_VAR = "AEC_DATA_DIR"

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def dataset_digest() -> str:
    """One SHA-256 naming the whole verified dataset (for training metadata)."""
    joined = "".join(f"{name}:{SHA256[name]}\n" for name in sorted(SHA256))
    return hashlib.sha256(joined.encode()).hexdigest()


def cache_dir() -> Path:
    """Where downloads go: ``$XDG_CACHE_HOME/aec/mnist`` or ``~/.cache/aec/mnist``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aec" / "mnist"


def _has_all(folder: Path) -> bool:
    return all((folder / f"{name}.gz").is_file() for name in SHA256)


def candidate_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The folders searched for the IDX files, in order."""
    if data_dir is not None:
        return [Path(data_dir)]
    found = []
    if os.environ.get(ENV_VAR):
        found.append(Path(os.environ[ENV_VAR]))
    found.append(Path.cwd().parent / "shared" / "mnist")
    found.append(Path(__file__).resolve().parents[2] / "shared" / "mnist")
    found.append(cache_dir())
    return found


def find_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The first folder holding all four files, or a :class:`DataError`."""
    tried = candidate_dirs(data_dir)
    for folder in tried:
        if _has_all(folder):
            return folder
    where = ", ".join(str(p) for p in tried)
    raise DataError(
        f"MNIST not found (looked in {where}); pass --data-dir, set {ENV_VAR}, or run 'aec data --download'"
    )


def read_idx(data: bytes) -> np.ndarray:
    """Parse one IDX file (already decompressed) into a numpy array."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError("not an IDX file (bad magic)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError("truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"IDX payload is {len(data) - header} bytes, expected {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _read_verified(path: Path, name: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    return _verified(data, str(path), name)


def _verified(data: bytes, where: str, name: str) -> bytes:
    """The IDX content of gzipped MNIST file ``name``, checked against its published checksum."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise DataError(f"{where}: cannot read ({exc})") from exc
    if hashlib.sha256(raw).hexdigest() != SHA256[name]:
        raise DataError(f"{where}: checksum mismatch (damaged or not the standard MNIST file)")
    return raw


def load_mnist(split: str = "train", data_dir: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) uint8 of ``split`` ('train' or 'test')."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    folder = find_data_dir(data_dir)
    prefix = SPLITS[split]
    images = read_idx(_read_verified(folder / f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_read_verified(folder / f"{prefix}-labels-idx1-ubyte.gz", f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise DataError(f"{folder}: images and labels of {split!r} do not match")
    return images, labels


def download(dest: str | os.PathLike[str] | None = None, progress: bool = True) -> Path:
    """Fetch the four files from the public mirrors into ``dest`` (default: the cache).

    Each file is verified before it is moved into place; files already present
    and valid are kept. Raises :class:`DataError` when no mirror can be reached.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    folder = Path(dest) if dest is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        disable=not progress,
    ) as bar:
        for name in SHA256:
            target = folder / f"{name}.gz"
            if target.is_file():
                try:
                    _read_verified(target, name)
                    continue
                except DataError:
                    pass
            errors = []
            for mirror in MIRRORS:
                try:
                    _fetch(mirror + target.name, target, name, bar)
                    break
                except (OSError, urllib.error.URLError, DataError) as exc:
                    errors.append(f"{mirror}: {exc}")
            else:
                raise DataError(f"cannot download {target.name} (offline?): " + "; ".join(errors))
    return folder


#: The most a download may bring (the largest MNIST file is 9.9 MB).
MAX_DOWNLOAD = 16 << 20


def _fetch(url: str, target: Path, name: str, bar: Progress) -> None:
    """Download ``url`` (one of the four MNIST files, at most 10 MB) to ``target``, which appears only once
    complete and verified."""
    from .errors import InputError
    from .fileio import read_stream, write_file

    task = bar.add_task(target.name, total=None)
    with urllib.request.urlopen(url, timeout=30) as response:
        total = response.headers.get("Content-Length")
        bar.update(task, total=int(total) if total else None)
        try:
            data = read_stream(response, MAX_DOWNLOAD, url, 1 << 16, lambda size: bar.advance(task, size))
        except InputError as exc:
            raise DataError(f"{exc}: not the MNIST file") from None
    _verified(data, url, name)
    write_file(target, data, force=True)


def idx_image_header(count: int, height: int, width: int) -> bytes:
    """The header of an IDX file of ``count`` uint8 images of ``height`` x ``width`` (the pixels follow it)."""
    return struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">3I", count, height, width)


def looks_like_idx(head: bytes) -> bool:
    """Whether bytes start like an IDX file (two zero bytes, a known type, a dimension count)."""
    return len(head) >= 4 and head[0] == 0 and head[1] == 0 and head[2] in _IDX_DTYPES and 1 <= head[3] <= 4


def read_idx_image_header(read: Callable[[int], bytes]) -> tuple[int, int, int]:
    """(count, height, width) from the header of an IDX file of uint8 images, read from a stream."""
    magic = read(4)
    if not looks_like_idx(magic):
        raise DataError("not an IDX file (bad magic)")
    if magic[2] != 0x08 or magic[3] != 3:
        raise DataError(
            f"expected an IDX file of uint8 images (type 0x08, 3 dimensions), got type 0x{magic[2]:02x}, "
            f"{magic[3]} dimensions"
        )
    dims = read(12)
    if len(dims) != 12:
        raise DataError("truncated IDX header")
    count, height, width = struct.unpack(">3I", dims)
    return count, height, width


def write_idx(array: np.ndarray) -> bytes:
    """An IDX file (uncompressed) of a uint8 array, as MNIST's own files are laid out."""
    if array.dtype != np.uint8:
        raise DataError("only uint8 arrays can be written as IDX here")
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()
