"""MNIST files: found, verified, parsed; a download failure is a clear error."""

from __future__ import annotations

import gzip
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from codec import data
from codec.errors import DataError


def test_real_mnist_is_verified(mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = mnist_test
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))


def test_read_idx() -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">3I", 2, 3, 4) + array.tobytes()
    assert np.array_equal(data.read_idx(raw), array)
    with pytest.raises(DataError, match="magic"):
        data.read_idx(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="expected"):
        data.read_idx(raw[:-1])


def test_damaged_file_fails_its_checksum(tmp_path: Path) -> None:
    for name in data.SHA256:
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(b"\0\0\x08\x01\0\0\0\x01\x07"))
    with pytest.raises(DataError, match="checksum"):
        data.load_mnist("test", tmp_path)


def test_missing_folder_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        data.find_data_dir(tmp_path / "nothing")


def test_offline_download_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(data.urllib.request, "urlopen", refuse)
    with pytest.raises(DataError, match="offline"):
        data.download(tmp_path, progress=False)
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".part"]


def test_environment_variable_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    assert data.candidate_dirs()[0] == tmp_path
