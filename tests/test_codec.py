"""The codec end to end on real digits: every level, any size, any mode, both polarities."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec
from codec import models
from codec.evaluate import measure_levels
from codec.metrics import psnr


def test_roundtrip_every_level_is_deterministic(digits: np.ndarray, shipped_levels: list[int]) -> None:
    for level in shipped_levels:
        data = codec.compress(digits[0], quality=level)
        first = codec.decompress(data)
        assert first.shape == (28, 28) and first.dtype == np.uint8
        assert codec.compress(digits[0], quality=level) == data
        assert np.array_equal(codec.decompress(data), first)


def test_quality_floor_per_level(digits: np.ndarray, shipped_levels: list[int]) -> None:
    """Each level keeps the rate and quality it shipped with (its metadata, measured with the encoder's effort)."""
    efforts = {level: models.load_model(level).metadata.get("test_effort", 0) for level in shipped_levels}
    measured = {}
    for effort in set(efforts.values()):  # every level at once: one set of searched files per digit
        measured.update(measure_levels(digits[:100], [q for q in shipped_levels if efforts[q] == effort], effort))
    previous: tuple[int, object] | None = None
    for level in shipped_levels:
        shipped = models.load_model(level).metadata["test"]
        now = measured[level]
        assert now.psnr >= shipped["psnr"] - 1.0, f"level {level}: PSNR {now.psnr:.2f} < {shipped['psnr']:.2f} - 1"
        assert now.ssim >= shipped["ssim"] - 0.03, f"level {level}: SSIM {now.ssim:.3f}"
        assert now.bpp <= shipped["bpp"] * 1.15, f"level {level}: {now.bpp:.3f} bpp > {shipped['bpp']:.3f} + 15%"
        if previous is not None:
            below, lower = previous
            assert now.psnr > lower.psnr and now.bpp > lower.bpp, f"level {level} is not above level {below}"
        previous = (level, now)


def test_batch_gives_the_same_bytes_and_pixels(digits: np.ndarray, shipped_levels: list[int]) -> None:
    level = shipped_levels[len(shipped_levels) // 2]
    batch = codec.compress_many(list(digits[:20]), quality=level)
    single = [codec.compress(d, quality=level) for d in digits[:20]]
    assert batch == single
    together = codec.decompress_many(batch)
    for data, image in zip(single, together):
        assert np.array_equal(codec.decompress(data), image)


@pytest.mark.parametrize("quality", [1, models.DEFAULT_LEVEL])  # one latent vector per digit; a 7x7 grid
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (28, 29), (30, 30), (64, 17), (100, 120)])
def test_any_size(digits: np.ndarray, shape: tuple[int, int], quality: int) -> None:
    canvas = np.zeros((max(shape[0], 28), max(shape[1], 28)), np.uint8)
    canvas[:28, :28] = digits[1]
    image = np.ascontiguousarray(canvas[: shape[0], : shape[1]])
    restored = codec.decompress(codec.compress(image, quality=quality))
    assert restored.shape == shape
    if min(shape) >= 28:
        assert psnr(image, restored) > 15


def test_absurd_size_is_refused() -> None:
    with pytest.raises(codec.ImageError, match="over the limit"):
        codec.compress(np.zeros((4097, 4096), np.uint8))
    with pytest.raises(codec.ImageError, match="empty"):
        codec.compress(np.zeros((0, 5), np.uint8))


def test_dark_ink_on_paper_is_coded_as_well(digits: np.ndarray, shipped_levels: list[int]) -> None:
    level = shipped_levels[-1]
    for digit in digits[:20]:
        white = codec.compress(digit, quality=level)
        paper = codec.compress(255 - digit, quality=level)
        assert len(paper) == len(white)
        assert codec.inspect(paper).header.inverted and not codec.inspect(white).header.inverted
        assert np.array_equal(codec.decompress(paper), 255 - codec.decompress(white))


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK"])
def test_any_pillow_mode(digits: np.ndarray, mode: str) -> None:
    gray = Image.fromarray(digits[2])
    image = Image.fromarray(digits[2].astype(np.uint16) * 257) if mode == "I;16" else gray.convert(mode)
    restored = codec.decompress(codec.compress(image))
    assert restored.shape == (28, 28)
    reference = np.asarray(gray.convert("1").convert("L")) if mode == "1" else digits[2]
    if mode != "CMYK":  # CMYK -> L in Pillow inverts the ink; only check it decodes
        assert psnr(reference, restored) > 12


def test_notices_say_what_was_dropped() -> None:
    from codec.images import prepare

    rgb = Image.new("RGB", (28, 28), (200, 10, 10))
    assert "colour" in (prepare(rgb).notice or "")
    assert prepare(Image.new("L", (28, 28))).notice is None
    assert "8-bit" in (prepare(Image.new("I;16", (28, 28))).notice or "")


def test_wrong_inputs_are_image_errors() -> None:
    with pytest.raises(codec.ImageError):
        codec.compress(np.zeros((28, 28), np.float32))  # type: ignore[arg-type]
    with pytest.raises(codec.ImageError):
        codec.compress(np.zeros((28, 28, 3), np.uint8))
    with pytest.raises(codec.ImageError):
        codec.compress("digit.png")  # type: ignore[arg-type]


def test_unknown_quality_is_a_model_error() -> None:
    with pytest.raises(codec.ModelError):
        codec.compress(np.zeros((28, 28), np.uint8), quality=99)


def test_png_bytes_survive_pillow(digits: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(digits[3]).save(buffer, format="PNG")
    image = Image.open(io.BytesIO(buffer.getvalue()))
    assert codec.compress(image) == codec.compress(digits[3])


def test_damaged_weights_are_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shipped_levels: list[int]
) -> None:
    from typer.testing import CliRunner

    from codec import store
    from codec.cli import app

    level = shipped_levels[0]
    source = store.preset_path(models.weights_dir(), f"level-{level}")
    assert source is not None
    target = tmp_path / store.MODELS / source.name
    target.parent.mkdir()
    damaged = bytearray(source.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    target.write_bytes(bytes(damaged))
    target.with_suffix(".json").write_bytes(source.with_suffix(".json").read_bytes())
    (tmp_path / store.PRESETS).write_bytes((models.weights_dir() / store.PRESETS).read_bytes())
    monkeypatch.setenv(models.WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(codec.ModelError):
        models.load_model(level)
    image = tmp_path / "d.png"
    Image.new("L", (28, 28)).save(image)
    result = CliRunner().invoke(app, ["compress", str(image), "-q", str(level)])
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and "cannot read frozen model" in result.stderr
