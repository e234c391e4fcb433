"""Archives of many digits: one header, one byte per image, random access, IDX in and out."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import codec
from codec import archive, data, encoder, models
from codec.cli import app
from codec.images import prepare
from codec.models import DEFAULT_LEVEL
from codec.search import DEFAULT_EFFORT


def _one_model_files(images: list[np.ndarray], level: int) -> list[bytes]:
    """Single files of the level's own model, like an archive's (no choice of model)."""
    return encoder.code_with(models.load_model(level), [prepare(i) for i in images], level, DEFAULT_EFFORT)


def test_pack_random_access_and_unpack(digits: np.ndarray, shipped_levels: list[int]) -> None:
    level = shipped_levels[3]
    images = list(digits[:60])
    packed = archive.pack(images, level)
    singles = _one_model_files(images, level)
    payloads = sum(codec.inspect(f).payload_bytes for f in singles)
    assert len(packed) - payloads <= len(images) + 40  # one byte per digit, plus one header
    arc = archive.open_archive(packed)
    assert len(arc) == 60 and arc.level == level
    for i in (0, 17, 59, -1):
        assert np.array_equal(arc[i], codec.decompress(singles[i]))
    for image, single in zip(archive.unpack(packed), singles):
        assert np.array_equal(image, codec.decompress(single))


def test_mixed_polarity_costs_a_bit_each(digits: np.ndarray) -> None:
    images = [digits[0], 255 - digits[1], digits[2]]
    arc = archive.open_archive(archive.pack(images))
    assert arc.inverted.tolist() == [False, True, False]
    (single,) = _one_model_files(images[1:2], DEFAULT_LEVEL)
    assert np.array_equal(arc[1], codec.decompress(single))


def test_damage_is_detected(digits: np.ndarray) -> None:
    packed = archive.pack(list(digits[:10]))
    for where in (3, 8, len(packed) // 2, len(packed) - 1):
        damaged = bytearray(packed)
        damaged[where] ^= 0x04
        with pytest.raises(codec.CodecError):
            archive.unpack(bytes(damaged))
    with pytest.raises(codec.CodecError):
        archive.unpack(packed[:-7])


def test_refuses_mixed_sizes(digits: np.ndarray) -> None:
    with pytest.raises(codec.ImageError, match="one size"):
        archive.pack([digits[0], np.zeros((10, 10), np.uint8)])


def test_wide_lengths_and_their_limit(shipped_levels: list[int]) -> None:
    rng = np.random.default_rng(0)
    noisy = [rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(3)]
    packed = archive.pack(noisy, shipped_levels[-1])
    assert packed[5] & archive.FLAG_WIDE_LENGTHS  # payloads over 255 bytes
    arc = archive.open_archive(packed)
    assert np.array_equal(arc[2], codec.decompress(codec.compress(noisy[2], quality=shipped_levels[-1])))
    huge = [rng.integers(0, 256, (1024, 1024), dtype=np.uint8)]
    with pytest.raises(codec.ImageError, match="65,535"):
        archive.pack(huge, shipped_levels[-1])


def test_cli_idx_in_and_out(tmp_path: Path, mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    runner = CliRunner()
    images = mnist_test[0][:40]
    idx = tmp_path / "small-images-idx3-ubyte.gz"
    idx.write_bytes(gzip.compress(data.write_idx(images)))
    packed = tmp_path / "small.aecs"
    result = runner.invoke(app, ["pack", str(idx), "-o", str(packed), "-q", "3"])
    assert result.exit_code == 0, result.output
    listing = runner.invoke(app, ["info", str(packed)])
    assert "40 images of 28x28, level 3's model" in listing.stdout
    out = tmp_path / "back-idx3-ubyte.gz"
    assert runner.invoke(app, ["unpack", str(packed), "-o", str(out)]).exit_code == 0
    restored = data.read_idx(gzip.decompress(out.read_bytes()))
    assert restored.shape == images.shape
    assert np.array_equal(restored, np.stack(archive.unpack(packed.read_bytes())))
    folder = tmp_path / "pngs"
    assert runner.invoke(app, ["unpack", str(packed), "-o", str(folder)]).exit_code == 0
    assert len(list(folder.glob("*.png"))) == 40
    again = runner.invoke(app, ["pack", str(idx), "-o", str(packed)])
    assert again.exit_code == 1 and "exists" in again.stderr
