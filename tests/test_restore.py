"""The restoration filter (format version 11): a higher PSNR, never a larger error than it says, the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import codec
from codec import bitstream, encoder, predictive, restore
from codec.cli import app
from codec.errors import ArgumentError, FormatError
from codec.images import prepare
from codec.metrics import psnr
from codec.targets import encode_for_target

runner = CliRunner()


def _squared_error(a: np.ndarray, b: np.ndarray) -> int:
    return int(((a.astype(np.int64) - b.astype(np.int64)) ** 2).sum())


@pytest.fixture(scope="module")
def smooth() -> np.ndarray:
    """A smooth image (a slow ramp under a wide blob): what restoring is for."""
    y, x = np.mgrid[0:70, 0:90]
    blob = 90 * np.exp(-((x - 50) ** 2 + (y - 30) ** 2) / 900.0)
    return np.clip(40 + 1.2 * x + 0.5 * y + blob, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def model() -> predictive.PredictiveModel:
    return predictive.load()


def test_the_byte_names_every_restoration_once() -> None:
    seen = {restore.Restoration.from_byte(value) for value in range(256)}
    assert len(seen) == 256 and all(restore.Restoration.from_byte(r.to_byte()) == r for r in seen)
    with pytest.raises(FormatError):
        restore.Restoration((0, 1, 4, 0))


@pytest.mark.parametrize("max_error", [1, 3, 8])
def test_restoring_never_adds_error_and_stays_within_twice_the_bound(
    model: predictive.PredictiveModel, photo: np.ndarray, smooth: np.ndarray, max_error: int
) -> None:
    for image in (photo, smooth):
        _, decoded = predictive.encode(model, image, max_error)
        chosen = restore.choose(image, decoded, max_error)
        restored = restore.apply(decoded, max_error, chosen)
        assert _squared_error(restored, image) <= _squared_error(decoded, image)
        assert np.abs(restored.astype(int) - decoded).max() <= max_error
        assert np.abs(restored.astype(int) - image).max() <= 2 * max_error


def test_each_class_gets_the_filter_of_least_error(model: predictive.PredictiveModel, photo: np.ndarray) -> None:
    """Against every one of the 256 restorations, the chosen one leaves the least squared error."""
    image = photo[:40, :50]
    _, decoded = predictive.encode(model, image, 4)
    chosen = restore.choose(image, decoded, 4)
    errors = {
        value: _squared_error(restore.apply(decoded, 4, restore.Restoration.from_byte(value)), image)
        for value in range(256)
    }
    assert errors[chosen.to_byte()] == min(errors.values())


def test_a_smooth_image_gains_much(model: predictive.PredictiveModel, smooth: np.ndarray) -> None:
    _, decoded = predictive.encode(model, smooth, 4)
    chosen = restore.choose(smooth, decoded, 4)
    restored = restore.apply(decoded, 4, chosen)
    assert chosen.active
    assert psnr(smooth, restored) > psnr(smooth, decoded) + 1.0


def test_strips_change_nothing(
    model: predictive.PredictiveModel, smooth: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filtering a strip of rows at a time (bounded memory) gives the image filtering it whole gives."""
    _, decoded = predictive.encode(model, smooth, 3)
    whole_choice = restore.choose(smooth, decoded, 3)
    whole = restore.apply(decoded, 3, restore.Restoration((1, 2, 3, 1)))
    monkeypatch.setattr(restore, "STRIP_ROWS", 7)
    assert restore.choose(smooth, decoded, 3) == whole_choice
    assert np.array_equal(restore.apply(decoded, 3, restore.Restoration((1, 2, 3, 1))), whole)


def test_restored_files_are_version_11_and_decode_to_what_the_encoder_saw(smooth: np.ndarray) -> None:
    for image in (smooth, 255 - smooth):
        plain = codec.compress(image, effort=0, max_error=4)
        data = codec.compress(image, effort=0, max_error=4, restore=True)
        header = codec.inspect(data).header
        assert header.version == bitstream.RESTORED_VERSION and header.restoration and header.max_error == 4
        assert header.inverted == prepare(image).inverted and len(data) == len(plain) + 1
        _, seen = encoder.predictive_file(prepare(image), 4, restored=True)  # type: ignore[misc]
        pixels = codec.decompress(data)
        assert np.array_equal(pixels, seen)
        assert psnr(image, pixels) > psnr(image, codec.decompress(plain)) + 1.0


def test_noise_is_left_alone() -> None:
    """Where no filter brings the image closer the file is version 8's, every pixel within the bound."""
    noise = np.random.default_rng(3).integers(0, 256, (40, 40)).astype(np.uint8)
    data = codec.compress(noise, effort=0, max_error=2, restore=True)
    assert codec.inspect(data).header.version == bitstream.PREDICTIVE_VERSION
    assert np.abs(codec.decompress(data).astype(int) - noise).max() <= 2


def test_restoring_goes_with_a_maximum_error() -> None:
    with pytest.raises(ArgumentError, match="maximum error"):
        codec.compress(np.zeros((8, 8), np.uint8), restore=True)
    with pytest.raises(ArgumentError, match="maximum error"):
        codec.compress(np.zeros((8, 8), np.uint8), max_error=0, restore=True)


def test_a_psnr_target_restores(smooth: np.ndarray) -> None:
    (choice,) = encode_for_target([prepare(smooth)], psnr=47.0, effort=0)
    assert choice.data is not None and psnr(smooth, codec.decompress(choice.data)) >= 47.0
    assert codec.inspect(choice.data).header.version == bitstream.RESTORED_VERSION


def test_header_fields_are_checked() -> None:
    header = bitstream.Header(0, 0, 9, 7, version=11, max_error=3, refine_id=0x3E2, restoration=0x1B)
    parsed, payload = bitstream.unpack(bitstream.pack(header, b"\x05"))
    assert parsed == header and parsed.predictive and payload == b"\x05"
    for bad in (
        {"version": 11, "max_error": 3, "restoration": 0},  # restores nothing: a version 8 file
        {"version": 11, "max_error": 0, "restoration": 5},  # lossless: nothing to restore
        {"version": 8, "max_error": 3, "restoration": 5},  # only version 11 restores
        {"version": 11, "max_error": 3, "restoration": 256},
    ):
        with pytest.raises(FormatError):
            bitstream.Header(0, 0, 9, 7, refine_id=1, **bad)  # type: ignore[arg-type]
    with pytest.raises(FormatError):  # the predictive coder's file: no autoencoder layer
        bitstream.Header(3, 1, 9, 7, version=11, max_error=3, refine_id=1, restoration=5)


def test_damaged_restored_files_are_refused_not_crashed(
    smooth: np.ndarray, refused_when_damaged: Callable[[bytes], None]
) -> None:
    data = codec.compress(smooth[:16, :16], effort=0, max_error=3, restore=True)
    assert codec.inspect(data).header.version == bitstream.RESTORED_VERSION
    refused_when_damaged(data)


def test_cli_restores_and_info_says_so(tmp_path: Path, smooth: np.ndarray) -> None:
    source = tmp_path / "smooth.png"
    Image.fromarray(smooth).save(source)
    result = runner.invoke(app, ["compress", "--restore", str(source)])
    assert result.exit_code == 2 and "--restore goes with --max-error" in result.output
    assert not (tmp_path / "smooth.aec").exists()
    result = runner.invoke(app, ["compress", "--max-error", "4", "--restore", str(source)])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["info", str(tmp_path / "smooth.aec")])
    assert "aec format 11" in info.output and "restored (filters" in info.output
    assert "every pixel within 8" in info.output
