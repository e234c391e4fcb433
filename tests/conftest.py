"""Shared fixtures: real MNIST digits (skipped cleanly when the data is absent)."""

from __future__ import annotations

import os
import shutil
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import codec
from codec import archive, data, models
from codec.errors import CodecError, DataError


@pytest.fixture(scope="session")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test set, verified; skips the test when it cannot be found."""
    try:
        return data.load_mnist("test")
    except DataError as exc:
        if os.environ.get("CI"):  # a user's run may skip; CI must test on the real digits
            pytest.fail(f"MNIST not available in CI: {exc}")
        pytest.skip(f"MNIST not available: {exc}")


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the shipped weights, in use for the test (a test may change it)."""
    folder = tmp_path / "weights"
    shutil.copytree(models.weights_dir(), folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setenv(models.WEIGHTS_ENV, str(folder))
    models.clear_cache()
    yield folder
    models.clear_cache()


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 64x80 crop of the camera man (a benchmark photo, never a training one)."""
    from skimage import data as samples

    return samples.camera()[100:164, 200:280]


def _refused_when_damaged(data: bytes) -> None:
    """Every flip of bit 0, 3 or 7 of any byte of the file, and every cut of it, is refused with a CodecError."""
    for position in range(len(data)):
        for bit in (0, 3, 7):
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            with pytest.raises(CodecError):
                codec.decompress(bytes(damaged))
    for length in range(len(data)):
        with pytest.raises(CodecError):
            codec.decompress(data[:length])


@pytest.fixture
def refused_when_damaged() -> Callable[[bytes], None]:
    """:func:`_refused_when_damaged`: a file's damage is caught whatever byte it hits."""
    return _refused_when_damaged


@pytest.fixture(scope="session")
def digits(mnist_test: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """A fixed sample of 200 test digits."""
    return mnist_test[0][:200]


@pytest.fixture(scope="session")
def shipped_levels() -> list[int]:
    levels = models.available_levels()
    if not levels:
        pytest.fail("no shipped weights found")
    return levels


@pytest.fixture(scope="session")
def general() -> models.FrozenModel:
    """Level 8's general variant (shipped: a missing one fails)."""
    model = models.load_general(8)
    if model is None:
        pytest.fail("no general variant of level 8 found")
    return model


def _resealed(head: archive.ArchiveHead, body: bytes, version: int | None = None) -> bytes:
    """An archive of blocks of ``head`` (written with its own checks bypassed: lossless when its level is 0) and
    ``body``, with both CRCs right; in ``version`` (default: the one of blocks of its kind)."""
    lossless = head.level == archive.LOSSLESS
    flags = (archive.FLAG_LOSSLESS if lossless else 0) | (archive.FLAG_POLARITY if head.inverted.any() else 0)
    if version is None:
        version = archive.BLOCKS_VERSION if lossless else archive.LATENT_BLOCKS_VERSION
    raw = archive.MAGIC + bytes([version, flags]) + archive.pack_model(head.level, head.model_id)
    raw += b"".join(archive._varint(v) for v in (head.width, head.height, head.count, head.block))
    if flags & archive.FLAG_POLARITY:
        raw += np.packbits(head.inverted.astype(np.uint8), bitorder="little").tobytes()
    raw += head.lengths.astype("<u4").tobytes()
    raw += zlib.crc32(raw).to_bytes(4, "little")
    return raw + body + zlib.crc32(body).to_bytes(4, "little")


@pytest.fixture(scope="session")
def resealed() -> Callable[..., bytes]:
    """Writes an archive of blocks whose head breaks the writer's checks (hostile-input tests of both kinds)."""
    return _resealed
