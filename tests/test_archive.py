"""Archives of many digits: one header, blocks of latents (or a payload per image), random access, IDX in and out."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import codec
from codec import archive, data, encoder, models
from codec.cli import app
from codec.decoder import decode_latents
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
    own = encoder.code_with(
        models.load_model(shipped_levels[-1]), [prepare(noisy[2])], shipped_levels[-1], DEFAULT_EFFORT
    )
    assert np.array_equal(arc[2], codec.decompress(own[0]))  # the level's own model, searched as a file would be
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


def test_digits_are_packed_in_blocks_of_latents(
    mnist_test: tuple[np.ndarray, np.ndarray], resealed: Callable[..., bytes]
) -> None:
    """Version 5: the same pixels as single files of the level's model, in fewer bytes, blocks of 111 at level 8."""
    from codec import latent_blocks

    images = list(mnist_test[0][:250])
    images[5], images[150] = 255 - images[5], 255 - images[150]
    packed = archive.pack(images, 8, 0)
    opened = archive.open_archive(packed)
    model = models.load_model(8)
    assert opened.head.version == archive.LATENT_BLOCKS_VERSION and opened.head.block == 65536 // 588 == 111
    assert latent_blocks.block_size(model) == 111 and len(opened.head.lengths) == 3
    singles = encoder.code_with(model, [prepare(i) for i in images], 8, 0)
    assert all(np.array_equal(a, codec.decompress(b)) for a, b in zip(opened.decode_all(), singles))
    for i in (0, 5, 110, 111, 150, 249):
        assert np.array_equal(opened[i], codec.decompress(singles[i]))
    v3 = sum(codec.inspect(f).payload_bytes + 1 for f in singles)  # what version 3 spent on the payloads
    assert opened.payload_bytes < 0.95 * v3
    assert resealed(opened.head, opened.body) == packed  # the helper writes what the writer writes
    found = archive.payload_latents(opened.head, 1, [opened.payload(1)])
    expected = [decode_latents(data)[1] for data in singles[111:222]]
    assert len(found) == 111 and all(np.array_equal(a, b) for a, b in zip(found, expected))


def test_other_sizes_keep_a_payload_per_image() -> None:
    images = [np.full((40, 44), 30 * i, np.uint8) for i in range(3)]
    opened = archive.open_archive(archive.pack(images, 8, 0))
    assert opened.head.version == archive.VERSION and opened.head.block == 0
    assert [image.shape for image in opened.decode_all()] == [(40, 44)] * 3


def test_hostile_blocks_of_latents_are_refused(digits: np.ndarray, resealed: Callable[..., bytes]) -> None:
    from dataclasses import replace

    from codec.errors import CorruptFileError, FormatError, ModelMismatchError

    opened = archive.open_archive(archive.pack(list(digits[:20]), 8, 0))
    head, body = opened.head, opened.body
    for block in (0, 257):
        with pytest.raises(FormatError, match="blocks of"):
            archive.open_archive(resealed(replace(head, block=block), body))
    too_many = archive.open_archive(resealed(replace(head, block=200), body))  # 200 x 588 symbols
    with pytest.raises(FormatError, match="over the bounds"):
        too_many.decode_all()
    with pytest.raises(FormatError, match="lossy"):  # level 0 (and the lossless flag) in a version 5 archive
        archive.open_archive(resealed(replace(head, level=0), body, archive.LATENT_BLOCKS_VERSION))
    for extra in (30_000, 200_000):  # longer than 20 digits of level 8 can be; than any block (refused unread)
        long = replace(head, lengths=np.array([len(body) + extra], np.int64))
        with pytest.raises(CorruptFileError, match="longer than"):
            archive.open_archive(resealed(long, body + bytes(extra))).decode_all()
    other = archive.open_archive(resealed(replace(head, model_id=(head.model_id + 1) % 4096), body))
    with pytest.raises(ModelMismatchError):
        other.decode_all()
    damaged = bytearray(resealed(head, body))
    damaged[-10] ^= 0xFF
    with pytest.raises(CorruptFileError, match="checksum"):
        archive.open_archive(bytes(damaged))


def test_payloads_are_read_in_batches_bounded_by_bytes(digits: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """However many payloads a reader asks for at once, a batch holds at most BATCH_BYTES (or one payload)."""
    import io

    packed = archive.pack([np.pad(d, 1) for d in digits[:40]], 8, 0)  # 30x30: a payload per image (version 3)
    monkeypatch.setattr(archive, "BATCH_BYTES", 1)  # every payload over the bound: one a batch
    stream = io.BytesIO(packed)
    head = archive.read_head(stream.read)
    batches = list(archive.payload_batches(stream.read, head, 4096))
    assert head.version == archive.VERSION and [len(b) for b in batches] == [1] * 40
    assert b"".join(b"".join(b) for b in batches) == archive.open_archive(packed).body
