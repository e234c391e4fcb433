"""The Pillow plugin, through Pillow's own API only."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import codec  # registers the plugin


def test_save_and_open(tmp_path: Path, digits: np.ndarray, shipped_levels: list[int]) -> None:
    path = tmp_path / "digit.aec"
    Image.fromarray(digits[4]).save(path, quality=shipped_levels[-1])
    with Image.open(path) as image:
        assert image.format == "AEC" and image.mode == "L" and image.size == (28, 28)
        assert image.info["quality"] == codec.inspect(path.read_bytes()).header.level
        pixels = np.asarray(image)
    assert pixels.dtype == np.uint8 and np.mean((pixels.astype(float) - digits[4]) ** 2) < 255**2 / 10**2


def test_quality_changes_the_size(digits: np.ndarray, shipped_levels: list[int]) -> None:
    sizes = []
    for level in (shipped_levels[0], shipped_levels[-1]):
        buffer = io.BytesIO()
        Image.fromarray(digits[5]).save(buffer, format="AEC", quality=level)
        sizes.append(len(buffer.getvalue()))
    assert sizes[0] < sizes[1]


def test_registered_extension_and_mime() -> None:
    assert Image.registered_extensions()[".aec"] == "AEC"
    assert Image.MIME["AEC"] == "image/x-aec"


def test_rgb_and_odd_sizes_through_pillow(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 17), (255, 255, 255))
    image.paste((0, 0, 0), (10, 3, 20, 14))
    image.save(tmp_path / "x.aec")
    with Image.open(tmp_path / "x.aec") as back:
        assert back.size == (40, 17)
        assert np.asarray(back)[8, 15] < 128 < np.asarray(back)[1, 35]


def test_damaged_file_is_refused_by_pillow(tmp_path: Path, digits: np.ndarray) -> None:
    path = tmp_path / "bad.aec"
    Image.fromarray(digits[0]).save(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises((UnidentifiedImageError, OSError)):
        Image.open(path).load()


def test_effort_through_pillow(digits: np.ndarray) -> None:
    files = {}
    for effort in (0, 2):
        buffer = io.BytesIO()
        Image.fromarray(digits[6]).save(buffer, format="AEC", quality=3, effort=effort)
        assert buffer.getvalue() == codec.compress(digits[6], quality=3, effort=effort)
        files[effort] = buffer.getvalue()
    assert np.asarray(Image.open(io.BytesIO(files[2]))).shape == (28, 28)


def test_lossless_and_max_error_through_pillow(tmp_path: Path, digits: np.ndarray) -> None:
    exact, near = tmp_path / "exact.aec", tmp_path / "near.aec"
    Image.fromarray(digits[6]).save(exact, lossless=True)
    Image.fromarray(digits[6]).save(near, max_error=3)
    with Image.open(exact) as image:
        assert image.info["lossless"] and np.array_equal(np.asarray(image), digits[6])
    with Image.open(near) as image:
        assert not image.info["lossless"] and image.info["max_error"] == 3
        assert np.abs(np.asarray(image).astype(int) - digits[6]).max() <= 3
    refined = tmp_path / "refined.aec"  # a photo: the predictive coder's lossless file (format version 8)
    photo = np.asarray(Image.open(Path(__file__).parent / "vectors" / "lossless-camera.png"))
    Image.fromarray(photo).save(refined, lossless=True)
    assert codec.inspect(refined.read_bytes()).header.version == 8
    with Image.open(refined) as image:
        assert image.info["lossless"] and image.info["max_error"] == 0 and np.array_equal(np.asarray(image), photo)
    with pytest.raises(codec.ArgumentError, match="give one"):
        Image.fromarray(digits[6]).save(io.BytesIO(), format="AEC", lossless=True, max_error=2)
