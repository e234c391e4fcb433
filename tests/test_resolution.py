"""Scaled files: the format's upsampling filter, the encoder's choice of scale, and version 9's header."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import codec
from codec import api, bitstream, encoder, models, resolution
from codec.bitstream import Header
from codec.cli import app
from codec.decoder import unpack
from codec.errors import FormatError
from codec.images import prepare
from codec.metrics import psnr


def _upsampled(images: np.ndarray, scale: int, height: int, width: int) -> np.ndarray:
    out = np.empty((len(images), height, width), images.dtype)
    for first, strip in resolution.upsample(images, scale, height, width):
        out[:, first : first + strip.shape[1]] = strip
    return out


@pytest.mark.parametrize("scale", resolution.SCALES)
def test_taps_are_exact_dyadic_weights_summing_to_one(scale: int) -> None:
    for _, weights in resolution.taps(scale):
        assert sum(weights) == 1.0
        assert all(float(np.float32(w)) == w and (w * 1024).is_integer() for w in weights)


@pytest.mark.parametrize("scale", resolution.SCALES)
def test_upsampling_is_pillows_bicubic_away_from_the_edges(scale: int) -> None:
    """The reference: Pillow's bicubic resize (Keys, a = -1/2, centred) of a float image. Pillow renormalizes its
    kernel at the edges where the format repeats the edge pixels, so the two meet two coarse pixels in."""
    coarse = np.random.default_rng(0).random((23, 31), dtype=np.float32)
    ours = _upsampled(coarse[None], scale, 23 * scale, 31 * scale)[0]
    theirs = np.asarray(Image.fromarray(coarse, "F").resize((31 * scale, 23 * scale), Image.Resampling.BICUBIC))
    inner = slice(2 * scale, -2 * scale)
    np.testing.assert_allclose(ours[inner, inner], theirs[inner, inner], atol=1e-5)


def test_upsampling_keeps_constants_and_lines() -> None:
    """Cubic convolution reproduces a constant everywhere and a linear ramp away from the edges."""
    flat = np.full((1, 20, 20), 0.3, np.float64)
    assert np.allclose(_upsampled(flat, 4, 80, 80), 0.3)
    ramp = np.tile(np.arange(20, dtype=np.float64), (20, 1))[None]
    up = _upsampled(ramp, 2, 40, 40)[0]
    expected = (np.arange(40) + 0.5) / 2 - 0.5  # where each output column sits on the coarse grid
    assert np.allclose(up[:, 4:-4], expected[4:-4])


def test_strips_join_into_the_whole_image(monkeypatch: pytest.MonkeyPatch) -> None:
    coarse = np.random.default_rng(1).random((2, 150, 37))
    whole = _upsampled(coarse, 2, 299, 73)  # cropped: an odd size a multiple of no scale
    monkeypatch.setattr(resolution, "STRIP_ROWS", 7)
    assert np.array_equal(_upsampled(coarse, 2, 299, 73), whole)
    assert whole.shape == (2, 299, 73)


def test_downscale_covers_the_image_with_its_edges_repeated() -> None:
    image = np.full((61, 45), 200, np.uint8)
    small = resolution.downscale(image, 4)
    assert small.shape == resolution.coarse_size(61, 45, 4) == (16, 12)
    assert (small == 200).all()
    assert resolution.scales_for(40, 200) == (2,) and resolution.scales_for(28, 28) == ()


@pytest.mark.parametrize(("scale", "in_context"), [(2, False), (4, True)])
def test_scaled_headers_round_trip(scale: int, in_context: bool) -> None:
    header = Header(8, 0x5A3, 300, 211, True, bitstream.SCALED_VERSION, scale=scale, in_context=in_context)
    data = bitstream.pack(header, b"\x01\x02\x03")
    assert bitstream.unpack(data, lambda level: [0x5A3])[0] == header
    assert header.coded_size == (-(-211 // scale), -(-300 // scale)) and header.latents_in_context == in_context


def test_scaled_headers_are_checked() -> None:
    with pytest.raises(FormatError, match="scale"):
        Header(8, 1, 64, 64, version=bitstream.SCALED_VERSION, scale=3)
    with pytest.raises(FormatError, match="only a scaled file"):
        Header(8, 1, 64, 64, version=bitstream.CONTEXT_VERSION, scale=2)
    header = Header(8, 1, 64, 64, version=bitstream.SCALED_VERSION, scale=2)
    data = bytearray(bitstream.pack(header, b"\x00"))
    scale_at = 5  # after magic, version and flags, level and model, and the two one-byte sizes
    for bad in (0x00, 0x03, 0x21):
        data[scale_at] = bad
        body = bytes(data[:-2])
        damaged = body + bitstream.checksum(9, 1, body).to_bytes(2, "little")
        with pytest.raises(FormatError, match="scale byte"):
            bitstream.unpack(damaged, lambda level: [1])


@pytest.fixture(scope="module")
def smooth_digit(digits: np.ndarray) -> np.ndarray:
    """A large, smooth digit: an MNIST digit blown up 8 times (the kind a stride-4 autoencoder spends most on)."""
    return np.asarray(Image.fromarray(digits[7]).resize((224, 224), Image.Resampling.BICUBIC))


def test_a_smooth_image_is_coded_at_a_coarser_scale_for_less(smooth_digit: np.ndarray) -> None:
    """The encoder weighs every scale; here it picks a scaled file, which costs less (bits + lambda * SSE,
    measured on the files) than the full-size file it weighed it against."""
    data = codec.compress(smooth_digit, quality=8)
    header = unpack(data)[0]
    assert header.version in (bitstream.SCALED_VERSION, bitstream.FITTED_VERSION) and header.scale in resolution.SCALES
    (full,) = encoder.chosen_files([prepare(smooth_digit)], 8, 2, scale=1)
    assert unpack(full)[0].scale == 1
    lmbda = models.load_model(8).search_lambda

    def cost(file: bytes) -> float:
        error = (codec.decompress(file).astype(np.float64) - smooth_digit) / 255
        return 8 * len(file) + lmbda * float((error**2).sum())

    assert cost(data) < cost(full)
    assert psnr(smooth_digit, codec.decompress(data)) > 30


def test_scaled_files_decode_within_a_grey_level_in_float64(smooth_digit: np.ndarray) -> None:
    files = [codec.compress(smooth_digit, quality=q) for q in (4, 12)]
    decoded = [api.decode_latents(f) for f in files]
    assert all(h.scale > 1 for h, _ in decoded)
    single, double = api.reconstruct(decoded), api.reconstruct(decoded, dtype=np.float64)
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(single, double))


def test_digits_and_effort_zero_keep_full_size_files(digits: np.ndarray, smooth_digit: np.ndarray) -> None:
    for data in (codec.compress(digits[0]), codec.compress(smooth_digit, effort=0)):
        assert unpack(data)[0].scale == 1


def test_damage_to_a_scaled_file_is_refused(refused_when_damaged: Callable[[bytes], None]) -> None:
    coded = (Path(__file__).parent / "vectors" / "scaled-digit7-s2-q8-tables.aec").read_bytes()
    refused_when_damaged(coded)


def test_info_names_the_scale(tmp_path: Path) -> None:
    path = tmp_path / "big.aec"
    path.write_bytes((Path(__file__).parent / "vectors" / "scaled-digit7-s4-q12.aec").read_bytes())
    result = CliRunner().invoke(app, ["info", str(path)])
    assert result.exit_code == 0 and "150x131" in result.output and "coded at 1/4 of its size" in result.output
