"""Lossless archives of small images: blocks coded in raster lockstep by the block model, every pixel back."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from codec import archive, lossless_blocks, models
from codec.errors import CorruptFileError, FormatError, ModelError, ModelMismatchError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model() -> lossless_blocks.BlockModel:
    return lossless_blocks.load()


def test_blocks_round_trip_exactly(
    mnist_test: tuple[np.ndarray, np.ndarray], model: lossless_blocks.BlockModel
) -> None:
    digits = mnist_test[0][:300]
    for block in (digits[:256], digits[256:], digits[:1]):
        stream = lossless_blocks.encode_block(model, block)
        assert np.array_equal(lossless_blocks.decode_block(model, stream, *block.shape), block)
    rng = np.random.default_rng(5)
    for shape in [(3, 1, 1), (2, 1, 9), (4, 9, 1), (5, 64, 64), (2, 3, 5)]:
        images = rng.integers(0, 256, shape, dtype=np.uint8)
        stream = lossless_blocks.encode_block(model, images)
        assert np.array_equal(lossless_blocks.decode_block(model, stream, *shape), images)
        assert len(stream) <= lossless_blocks.max_block_bytes(shape[0], shape[1] * shape[2])


def test_archive_of_digits_is_blocked_and_small(
    mnist_test: tuple[np.ndarray, np.ndarray], model: lossless_blocks.BlockModel
) -> None:
    images = list(mnist_test[0][:600])
    images[3], images[400] = 255 - images[3], 255 - images[400]  # dark ink on light: the polarity bits
    packed = archive.pack(images, quality=archive.LOSSLESS)
    opened = archive.open_archive(packed)
    assert packed[4] == archive.BLOCKS_VERSION and opened.head.block == lossless_blocks.BLOCK
    assert opened.model_id == model.model_id and len(opened.head.lengths) == 3  # 256 + 256 + 88
    assert all(np.array_equal(a, b) for a, b in zip(opened.decode_all(), images))
    for index in (0, 3, 255, 256, 400, 599, -1):
        assert np.array_equal(opened[index], images[index])
    streamed = [image for batch in archive.decode_batches(*_head(packed)) for image in batch]
    assert all(np.array_equal(a, b) for a, b in zip(streamed, images)) and len(streamed) == 600
    # The target for the 10,000 test digits in one archive is 1.10 bpp; 600 digits measure it within ~0.03.
    assert 8 * len(packed) / (784 * len(images)) < 1.10


def _head(packed: bytes) -> tuple[archive.Read, archive.ArchiveHead]:
    stream = io.BytesIO(packed)
    return stream.read, archive.read_head(stream.read)


def test_writer_blocks_do_not_depend_on_its_batches(mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    """Images added in uneven batches make the same archive as one pack (blocks fill across batches)."""
    from codec.images import prepare

    images = mnist_test[0][:270]
    writer = archive.ArchiveWriter(archive.LOSSLESS)
    for first, last in [(0, 7), (7, 200), (200, 261), (261, 270)]:
        writer.add([prepare(image) for image in images[first:last]])
    out = io.BytesIO()
    writer.write(out)
    assert out.getvalue() == archive.pack(list(images), quality=archive.LOSSLESS)


_DECODE = """
import sys, numpy as np
from codec import archive
images = archive.open_archive(open(sys.argv[1], "rb").read()).decode_all()
np.save(sys.argv[2], np.stack(images))
"""


@pytest.mark.parametrize("threads", ["1", "2"])
def test_blocks_decode_the_same_in_another_process(
    tmp_path: Path, mnist_test: tuple[np.ndarray, np.ndarray], threads: str
) -> None:
    digits = mnist_test[0][:100]
    (tmp_path / "a.aecs").write_bytes(archive.pack(list(digits), quality=archive.LOSSLESS))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out.npy"
    subprocess.run([sys.executable, "-c", _DECODE, str(tmp_path / "a.aecs"), str(out)], check=True, env=env)
    assert np.array_equal(np.load(out), digits)


def test_hostile_block_heads_are_refused(
    mnist_test: tuple[np.ndarray, np.ndarray], resealed: Callable[..., bytes]
) -> None:
    packed = archive.pack(list(mnist_test[0][:20]), quality=archive.LOSSLESS)
    opened = archive.open_archive(packed)
    head, body = opened.head, opened.body
    assert resealed(head, body) == packed  # the helper writes what the writer writes
    from dataclasses import replace

    cases = {
        "blocks of 0 images": replace(head, block=0),
        "blocks of 5,000 images": replace(head, block=5000),
        "longer than its images": replace(head, lengths=np.array([10**7])),
        "not coded in blocks": replace(head, width=100, height=100),
    }
    for match, bad in cases.items():
        damaged = resealed(bad, body)
        with pytest.raises((FormatError, CorruptFileError), match=match.split()[-1]):
            archive.open_archive(damaged).decode_all()
    wide = bytearray(packed)
    wide[5] |= archive.FLAG_WIDE_LENGTHS
    with pytest.raises(FormatError, match="4-byte lengths"):
        archive.open_archive(bytes(wide))
    lossy = bytearray(packed)
    lossy[5] &= ~archive.FLAG_LOSSLESS
    with pytest.raises(FormatError):
        archive.open_archive(bytes(lossy))


def test_damaged_blocks_are_caught(mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    packed = bytearray(archive.pack(list(mnist_test[0][:40]), quality=archive.LOSSLESS))
    packed[-30] ^= 0x10
    with pytest.raises(CorruptFileError, match="checksum"):
        archive.open_archive(bytes(packed))
    with pytest.raises(CorruptFileError, match="truncated"):
        archive.open_archive(bytes(packed[:-10]))


def test_an_archive_of_another_block_model_is_refused(
    mnist_test: tuple[np.ndarray, np.ndarray], resealed: Callable[..., bytes]
) -> None:
    opened = archive.open_archive(archive.pack(list(mnist_test[0][:10]), quality=archive.LOSSLESS))
    other = (opened.model_id + 1) % 4096
    from dataclasses import replace

    renamed = archive.open_archive(resealed(replace(opened.head, model_id=other), opened.body))
    with pytest.raises(ModelMismatchError, match=f"block model {other:03x}"):
        renamed.decode_all()


def test_missing_block_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no lossless block model"):
        lossless_blocks.load(tmp_path)
    assert models.preset_id(lossless_blocks.ROLE, tmp_path) is None
