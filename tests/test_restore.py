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


def test_fields_round_trip_and_are_checked() -> None:
    filters = ((1, -2, 3, 0, 5, -6, 700), None, None, (0,) * restore.COEFFICIENTS)
    restoration = restore.Restoration(filters)
    assert restoration.fields()[0] == 0b1001 and restore.Restoration.from_fields(restoration.fields()) == restoration
    for bad in ((), (0,), (16, *range(7)), (1, 2, 3), (3, *range(7))):
        with pytest.raises(FormatError):
            restore.Restoration.from_fields(bad)
    with pytest.raises(FormatError):  # a coefficient over the limit
        restore.Restoration(((restore.LIMIT + 1,) + (0,) * 6, None, None, None))


def test_zigzag_maps_small_magnitudes_to_small_values_and_back() -> None:
    assert [restore.zigzag(v) for v in (0, -1, 1, -2, 2)] == [0, 1, 2, 3, 4]
    values = range(-restore.LIMIT, restore.LIMIT + 1)
    assert [restore.unzigzag(restore.zigzag(v)) for v in values] == list(values)


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


@pytest.mark.parametrize("rate_weight", [restore.RATE_WEIGHT, 1e6])
def test_choose_and_apply_gives_the_restoration_and_its_image(
    model: predictive.PredictiveModel,
    photo: np.ndarray,
    smooth: np.ndarray,
    rate_weight: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The encoder's one pass gives what choose then apply give, also where fitted filters are dropped (a bit made
    dear enough that none pays)."""
    monkeypatch.setattr(restore, "RATE_WEIGHT", rate_weight)
    fit = restore._fit
    fitted: list[tuple[int, ...]] = []

    def counted(normal: np.ndarray, target: np.ndarray) -> tuple[int, ...] | None:
        f = fit(normal, target)
        if f is not None:
            fitted.append(f)
        return f

    monkeypatch.setattr(restore, "_fit", counted)
    for image in (photo, smooth):
        _, decoded = predictive.encode(model, image, 3)
        chosen, restored = restore.choose_and_apply(image, decoded, 3)
        assert chosen == restore.choose(image, decoded, 3)
        assert np.array_equal(restored, restore.apply(decoded, 3, chosen))
        if rate_weight > 1:  # filters were fitted, and none kept
            assert fitted and not chosen.active and np.array_equal(restored, decoded)


def _reference_features(decoded: np.ndarray, max_error: int) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's class and features, pixel by pixel from the format's description (docs/format.md)."""
    height, width = decoded.shape
    step = 2 * max_error + 1
    groups = ((0, 1), (1, 1), (0, 2), (1, 2), (2, 2))
    classes, features = [], []
    for y in range(height):
        for x in range(width):

            def at(dy: int, dx: int, y: int = y, x: int = x) -> int:
                return int(decoded[min(max(y + dy, 0), height - 1), min(max(x + dx, 0), width - 1)])

            near = [at(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            classes.append(min((max(near) - min(near)) // step, 3))
            row = [at(0, 0) - 128]
            for a, b in groups:
                offsets = {(sy * a, sx * b) for sy in (1, -1) for sx in (1, -1)}
                offsets |= {(sx * b, sy * a) for sy in (1, -1) for sx in (1, -1)}
                row.append(sum(at(dy, dx) - at(0, 0) for dy, dx in offsets))
            features.append(row + [1])
    return np.array(classes), np.array(features, np.float64)


def test_each_class_gets_its_least_squares_filter(model: predictive.PredictiveModel, photo: np.ndarray) -> None:
    """Against numpy's least squares over features built pixel by pixel: the same filters, to the rounding."""
    _, decoded = predictive.encode(model, photo, 4)
    chosen = restore.choose(photo, decoded, 4)
    assert sum(f is not None for f in chosen.filters) >= 2
    classes, features = _reference_features(decoded, 4)
    residual = photo.astype(np.float64).ravel() - decoded.ravel()
    for c, f in enumerate(chosen.filters):
        if f is not None:
            weights = np.linalg.lstsq(features[classes == c], residual[classes == c], rcond=None)[0]
            assert np.abs(np.array(f) - weights * (1 << restore.SHIFT)).max() <= 0.5 + 1e-6


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
    assert whole_choice.active
    whole = restore.apply(decoded, 3, whole_choice)
    monkeypatch.setattr(restore, "STRIP_ROWS", 7)
    assert restore.choose(smooth, decoded, 3) == whole_choice
    assert np.array_equal(restore.apply(decoded, 3, whole_choice), whole)


def test_restored_files_are_version_11_and_decode_to_what_the_encoder_saw(smooth: np.ndarray) -> None:
    for image in (smooth, 255 - smooth):
        plain = codec.compress(image, effort=0, max_error=4)
        data = codec.compress(image, effort=0, max_error=4, restore=True)
        header = codec.inspect(data).header
        assert header.version == bitstream.RESTORED_VERSION and header.restoration and header.max_error == 4
        assert header.inverted == prepare(image).inverted and len(data) > len(plain)
        assert header.restoration == restore.choose(prepare(image).pixels, _decoded(image, 4), 4)
        _, seen = encoder.predictive_file(prepare(image), 4, restored=True)  # type: ignore[misc]
        pixels = codec.decompress(data)
        assert np.array_equal(pixels, seen)
        assert psnr(image, pixels) > psnr(image, codec.decompress(plain)) + 1.0


def _decoded(image: np.ndarray, max_error: int) -> np.ndarray:
    return predictive.encode(predictive.load(), prepare(image).pixels, max_error)[1]


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
    fields = (0b0101, 1, -1, 63, -64, 64, -65, 65536, 0, 0, 0, 0, 0, 0, -65536)
    restoration = restore.Restoration.from_fields(fields)
    header = bitstream.Header(0, 0, 9, 7, version=11, max_error=3, refine_id=0x3E2, restoration=restoration)
    data = bitstream.pack(header, b"\x05")
    parsed, payload = bitstream.unpack(data)
    assert parsed == header and parsed.predictive and payload == b"\x05"
    one = (1, *range(7))
    for version, max_error, bad in (
        (11, 3, None),  # restores nothing: a version 8 file
        (11, 3, (0,)),
        (11, 0, one),  # lossless: nothing to restore
        (8, 3, one),  # only version 11 restores
        (11, 3, (1, *range(6))),  # a coefficient short
        (11, 3, (1, 0, 0, 0, 0, 0, 0, 1 << 17)),
    ):
        with pytest.raises(FormatError):
            fitted = None if bad is None else restore.Restoration.from_fields(bad)
            bitstream.Header(0, 0, 9, 7, version=version, max_error=max_error, refine_id=1, restoration=fitted)
    with pytest.raises(FormatError):  # a restoration that filters no class
        bitstream.Header(0, 0, 9, 7, version=11, max_error=3, refine_id=1, restoration=restore.NONE)
    with pytest.raises(FormatError):  # the predictive coder's file: no autoencoder layer
        bitstream.Header(
            3, 1, 9, 7, version=11, max_error=3, refine_id=1, restoration=restore.Restoration.from_fields(one)
        )
    header_end = len(data) - 2 - 1  # before the payload byte and the checksum
    for cut in range(header_end - 20, header_end):  # a restoration cut short is a truncated header
        with pytest.raises(FormatError):
            bitstream.unpack(data[:cut] + bitstream.checksum(11, 0, data[:cut]).to_bytes(2, "little"))


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
    assert "aec format 11" in info.output and "classes filtered)" in info.output
    assert "every pixel within 8" in info.output
