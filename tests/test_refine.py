"""The refinement layer: every pixel within the maximum error, bit-exact symbols, a checked format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import codec
from codec import bitstream, decoder, encoder, refine
from codec.cli import app
from codec.errors import CorruptFileError, FormatError, ModelMismatchError
from codec.images import prepare
from codec.metrics import psnr
from codec.targets import encode_for_target

runner = CliRunner()


@pytest.fixture(scope="module")
def model() -> refine.RefineModel:
    return refine.load()


@pytest.mark.parametrize("max_error", [0, 1, 2, 5, 40])
@pytest.mark.parametrize("mode", [0, 1])
def test_every_pixel_within_the_bound(model: refine.RefineModel, photo: np.ndarray, max_error: int, mode: int) -> None:
    rng = np.random.default_rng(max_error)
    base = (
        np.full(photo.shape, refine.MID_GREY, np.uint8)
        if mode == 0
        else np.clip(photo.astype(int) + rng.integers(-30, 31, photo.shape), 0, 255).astype(np.uint8)
    )
    stream, decoded = refine.encode(model, photo, base, max_error, mode)
    assert np.abs(decoded.astype(int) - photo).max() <= max_error
    assert np.array_equal(refine.decode(model, stream, base, max_error, mode), decoded)


@pytest.mark.parametrize("max_error", [0, 3])
def test_a_base_a_grey_level_off_does_not_derail_the_decoder(
    model: refine.RefineModel, photo: np.ndarray, max_error: int
) -> None:
    """Another machine may round the autoencoder's image differently by one grey level: the symbols' contexts never
    depend on it, so the decoded image moves by at most that grey level."""
    rng = np.random.default_rng(7)
    base = np.clip(photo.astype(int) + rng.integers(-20, 21, photo.shape), 0, 255).astype(np.uint8)
    stream, decoded = refine.encode(model, photo, base, max_error, 1)
    nudged = np.clip(base.astype(int) + rng.integers(-1, 2, base.shape), 0, 255).astype(np.uint8)
    elsewhere = refine.decode(model, stream, nudged, max_error, 1)
    assert np.abs(elsewhere.astype(int) - decoded).max() <= 1


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 3), (28, 28)])
def test_odd_shapes_round_trip(model: refine.RefineModel, shape: tuple[int, int]) -> None:
    image = np.random.default_rng(1).integers(0, 256, shape).astype(np.uint8)
    base = np.full(shape, refine.MID_GREY, np.uint8)
    stream, decoded = refine.encode(model, image, base, 0, 0)
    assert np.array_equal(decoded, image)
    assert np.array_equal(refine.decode(model, stream, base, 0, 0), image)


def test_the_refinement_costs_less_as_the_bound_grows(model: refine.RefineModel, photo: np.ndarray) -> None:
    base = np.full(photo.shape, refine.MID_GREY, np.uint8)
    sizes = [len(refine.encode(model, photo, base, k, 0)[0]) for k in (0, 1, 2, 4, 8)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 2 * sizes[-1]


@pytest.mark.parametrize("max_error", [0, 2])
def test_files_come_back_within_the_bound(photo: np.ndarray, digits: np.ndarray, max_error: int) -> None:
    for kind, image in (("photo", photo), ("photo", 255 - photo), ("digit", digits[0])):
        data = codec.compress(image, quality=8, effort=0, max_error=max_error)
        header, _ = decoder.unpack(data)
        if kind == "digit":  # the pixel model's file is the smaller one on a digit (format version 7)
            assert header.version == bitstream.PIXEL_VERSION and header.max_error == (max_error or None)
        else:  # no autoencoder layer: the predictive coder's file (format version 8)
            assert header.version == bitstream.PREDICTIVE_VERSION and header.max_error == max_error
        assert np.abs(codec.decompress(data).astype(int) - image).max() <= max_error


@pytest.mark.parametrize("max_error", [1, 4])
def test_refined_over_the_autoencoder_within_the_bound_both_polarities(
    photo: np.ndarray, digits: np.ndarray, max_error: int
) -> None:
    """Over an autoencoder layer (forced, not the smaller file): dark ink on paper is refined over the base in white
    ink on black, as the decoder builds it."""
    for image in (photo, 255 - photo, digits[0], 255 - digits[0]):
        data = encoder.encode_refined(prepare(image), max_error, 8, 0)
        assert codec.inspect(data).header.level == 8
        assert np.abs(codec.decompress(data).astype(int) - image).max() <= max_error


def test_lossless_never_builds_on_the_autoencoder(digits: np.ndarray) -> None:
    data = codec.compress(digits[1], quality=12, effort=0, max_error=0)
    assert data[2] & 0x0F == 0 and np.array_equal(codec.decompress(data), digits[1])


def test_plain_files_keep_version_4(digits: np.ndarray) -> None:
    assert codec.compress(digits[0])[1] >> 4 == 4


def test_a_digit_is_refined_over_the_autoencoder(digits: np.ndarray) -> None:
    over = encoder.encode_refined(prepare(digits[0]), 8, 12, 0)
    assert over[2] & 0x0F == 12 and len(over) < len(encoder.encode_refined(prepare(digits[0]), 8, 0, 0))
    data = codec.compress(digits[0], quality=12, effort=0, max_error=8)
    assert len(data) <= len(over)  # the smallest candidate: on a digit, the pixel model's file


def test_psnr_targets_above_every_level_are_reached(photo: np.ndarray) -> None:
    for target in (40.0, 45.0):
        (choice,) = encode_for_target([prepare(photo)], psnr=target, effort=0)
        assert choice.data is not None and "refined to max error" in (choice.notice or "")
        assert float(psnr(photo, codec.decompress(choice.data or b""))) >= target


def test_damaged_refined_files_are_refused_not_crashed(
    photo: np.ndarray, refused_when_damaged: Callable[[bytes], None]
) -> None:
    refused_when_damaged(codec.compress(photo[:16, :16], quality=8, effort=0, max_error=1))


def test_header_fields_are_checked() -> None:
    with pytest.raises(FormatError):
        bitstream.Header(level=0, model_id=0)  # level 0 is for refined files only
    with pytest.raises(FormatError):
        bitstream.Header(level=3, model_id=1, max_error=2)  # a refined file is version 5
    with pytest.raises(FormatError):
        bitstream.Header(level=3, model_id=1, version=5, max_error=128)
    header = bitstream.Header(level=0, model_id=0, version=5, max_error=3, refine_id=0xABC, width=5, height=4)
    parsed, payload = bitstream.unpack(bitstream.pack(header, b"\x01\x02"))
    assert parsed == header and payload == b"\x01\x02"


def test_a_file_of_another_refinement_model_is_named(photo: np.ndarray, model: refine.RefineModel) -> None:
    item = prepare(photo[:8, :8])
    data = encoder.encode_refined(item, 1, 8, 0)  # over a level: the refinement layer (level 0: the predictive coder)
    header, payload = decoder.unpack(data)
    other = bitstream.Header(**{**header.__dict__, "refine_id": (model.model_id + 1) % 4096})
    with pytest.raises(ModelMismatchError, match="refinement model"):
        codec.decompress(bitstream.pack(other, payload))


def test_split_refined_refuses_a_damaged_length() -> None:
    assert bitstream.split_refined(bitstream.join_refined(b"abc", b"de", True), True) == (b"abc", b"de")
    with pytest.raises(CorruptFileError):
        bitstream.split_refined(b"\x09ab", True)


def test_cli_max_error_zero_is_lossless(tmp_path: Path, photo: np.ndarray) -> None:
    source = tmp_path / "photo.png"
    Image.fromarray(photo).save(source)
    result = runner.invoke(app, ["compress", "--max-error", "0", str(source), "-o", str(tmp_path / "p.aec")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["decompress", str(tmp_path / "p.aec"), "-o", str(tmp_path / "back.png")])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "back.png")), photo)
    info = runner.invoke(app, ["info", str(tmp_path / "p.aec")])
    assert "predictive model" in info.output and "lossless" in info.output


def test_cli_refuses_max_error_with_a_target(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compress", "--max-error", "1", "--psnr", "30", "x.png"])
    assert result.exit_code == 2 and "not both" in result.output
    result = runner.invoke(app, ["compress", "--max-error", "128", "x.png"])
    assert result.exit_code == 2


def test_a_photo_is_refined_over_the_levels_general_variant(photo: np.ndarray) -> None:
    data = encoder.encode_refined(prepare(photo), 4, 8, 0)
    general = codec.models.load_general(8)
    assert general is not None and codec.inspect(data).header.model_id == general.model_id
    assert np.abs(codec.decompress(data).astype(int) - photo).max() <= 4
