"""One encoder for every entry point: the same image at the same quality and effort gives the same bytes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import codec
from codec import archive, decoder, pillow_plugin
from codec.cli import app
from codec.encoder import Encoder
from codec.errors import ArgumentError, ImageError
from codec.images import prepare
from codec.metrics import psnr

LEVEL, EFFORT = 8, 1  # effort 1: the choice of model is on


def test_every_entry_point_writes_the_encoders_bytes(tmp_path: Path, digits: np.ndarray) -> None:
    images = list(digits[:6])
    expected = [coded.data for coded in Encoder(LEVEL, EFFORT).encode([prepare(i) for i in images])]
    assert len({codec.inspect(data).header.level for data in expected}) > 1  # the choice did choose
    assert codec.compress_many(images, LEVEL, EFFORT) == expected
    assert [codec.compress(image, LEVEL, EFFORT) for image in images] == expected
    pillow_plugin.register()
    buffer = io.BytesIO()
    Image.fromarray(images[0]).save(buffer, format="AEC", quality=LEVEL, effort=EFFORT)
    assert buffer.getvalue() == expected[0]
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    result = CliRunner().invoke(app, ["compress", str(tmp_path), "-q", str(LEVEL), "-e", str(EFFORT), "--quiet"])
    assert result.exit_code == 0, result.output
    assert [(tmp_path / f"{i}.aec").read_bytes() for i in range(len(images))] == expected


def test_a_target_codes_each_quality_as_the_encoder_does(digits: np.ndarray) -> None:
    image = digits[7]
    files = {q: codec.compress(image, q, EFFORT) for q in codec.levels()}
    quality = {q: float(psnr(image, codec.decompress(data))) for q, data in files.items()}
    target = sorted(quality.values())[len(quality) // 2] - 0.01
    lowest = min(q for q in files if quality[q] >= target)
    assert codec.compress(image, effort=EFFORT, psnr=target) == files[lowest]
    limit = len(files[lowest])
    fits = max(q for q in files if len(files[q]) <= limit)
    assert codec.compress(image, effort=EFFORT, max_bytes=limit) == files[fits]


def test_an_archive_searches_as_single_files_do_with_one_model(digits: np.ndarray) -> None:
    images = list(digits[:5])
    model, payloads = Encoder(LEVEL, EFFORT).payloads([prepare(i) for i in images])
    assert model.level == LEVEL
    opened = archive.open_archive(archive.pack(images, LEVEL, EFFORT))
    found = archive.payload_latents(opened.head, 0, [opened.payload(0)])  # one block of latents
    expected = [decoder.latents_with(model, payload.data, 28, 28) for payload in payloads]
    assert len(found) == 5 and all(np.array_equal(a, b) for a, b in zip(found, expected))


def test_arguments_are_checked_when_the_encoder_is_made() -> None:
    with pytest.raises(ArgumentError, match="effort"):
        Encoder(LEVEL, 9)
    with pytest.raises(ArgumentError, match="max error"):
        Encoder(LEVEL, max_error=300)
    with pytest.raises(ArgumentError, match="not both"):
        Encoder(LEVEL, max_error=2, psnr=30.0)
    with pytest.raises(ArgumentError, match="PSNR"):
        Encoder(psnr=-1.0)
    with pytest.raises(ArgumentError, match="archives"):
        Encoder(LEVEL, max_error=0).payloads([])


def test_an_image_no_file_fits_is_an_error_naming_the_limit(digits: np.ndarray) -> None:
    with pytest.raises(ImageError, match="cannot fit in 3 bytes"):
        codec.compress(digits[0], max_bytes=3)
