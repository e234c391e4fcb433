"""The lossless pixel model: every pixel back, on every machine, smaller than the classic codecs on digits."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import codec
from codec import api, archive, bitstream, encoder, lossless, models, store
from codec.cli import app
from codec.errors import CodecError, CorruptFileError, FormatError, ModelMismatchError
from codec.images import Prepared
from codec.training import lossless_fit

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture(scope="module")
def model() -> lossless.LosslessModel:
    return lossless.load()


def _file(item: Prepared, max_error: int = 0) -> bytes:
    """The pixel model's whole file of a prepared image."""
    made = encoder.pixel_model_file(item, max_error)
    assert made is not None
    return made[0]


def test_digits_come_back_exactly_and_small(digits: np.ndarray, model: lossless.LosslessModel) -> None:
    files = codec.compress_many(list(digits), max_error=0)
    assert all(codec.inspect(f).header.version == bitstream.PIXEL_VERSION for f in files)
    assert all(np.array_equal(a, b) for a, b in zip(codec.decompress_many(files), digits))
    # The target: 1.25 bpp a file on average (JPEG XL lossless: 1.945); 200 digits measure it within ~0.03.
    assert 8 * np.mean([len(f) for f in files]) / 784 < 1.25


def test_odd_sizes_and_extremes_round_trip(model: lossless.LosslessModel) -> None:
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(1, 1), (1, 9), (9, 1), (3, 5), (64, 33)]]
    images += [np.zeros((28, 28), np.uint8), np.full((28, 28), 255, np.uint8), np.arange(256, dtype=np.uint8)[None]]
    for image in images:
        stream = lossless.encode(model, image)
        assert np.array_equal(lossless.decode(model, stream, *image.shape), image)
        data = _file(Prepared(image, False))
        assert np.array_equal(codec.decompress(data), image)


def test_lockstep_batch_decodes_as_one_by_one(digits: np.ndarray, model: lossless.LosslessModel) -> None:
    streams = [lossless.encode(model, image) for image in digits[:40]]
    together = lossless.decode_many(model, streams, 28, 28)
    alone = [lossless.decode(model, s, 28, 28) for s in streams]
    assert all(np.array_equal(a, b) and np.array_equal(a, d) for a, b, d in zip(together, alone, digits[:40]))
    # The runtime's float precision has no part in it: the same pixels with a float64 synthesis asked for.
    files = codec.compress_many(list(digits[:40]), max_error=0)
    assert all(np.array_equal(a, d) for a, d in zip(api.decompress_many(files, dtype=np.float64), digits[:40]))


def test_dark_on_light_keeps_its_polarity(digits: np.ndarray) -> None:
    paper = 255 - digits[3]
    data = codec.compress(paper, max_error=0)
    header = codec.inspect(data).header
    assert header.pixel_model and header.max_error is None and header.inverted
    assert np.array_equal(codec.decompress(data), paper)


def test_a_photo_keeps_the_smaller_predictive_file() -> None:
    """The tables know digits: on a photo the predictive coder's file (version 8) is smaller and is kept."""
    from skimage import data as samples

    photo = np.asarray(samples.camera()[::8, ::8])
    data = codec.compress(photo, max_error=0)
    assert codec.inspect(data).header.version == bitstream.PREDICTIVE_VERSION
    assert len(data) < len(_file(Prepared(photo, False)))
    assert encoder.pixel_model_file(Prepared(photo, False), budget=len(data)) is None  # stopped once it passed it
    assert np.array_equal(codec.decompress(data), photo)


def test_damage_is_caught(digits: np.ndarray, model: lossless.LosslessModel) -> None:
    data = bytearray(codec.compress(digits[5], max_error=0))
    for position in range(3, len(data) - 2, 7):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        with pytest.raises(CorruptFileError):
            codec.decompress(bytes(damaged))
    # Streams with no checksum in front: garbage decodes to some image or a clear error, never anything else.
    rng = np.random.default_rng(3)
    for _ in range(50):
        junk = rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes()
        try:
            image = lossless.decode(model, junk, 28, 28)
        except CorruptFileError:
            continue
        assert image.shape == (28, 28) and image.dtype == np.uint8


def test_a_file_of_another_lossless_model_is_refused(digits: np.ndarray, model: lossless.LosslessModel) -> None:
    other = (model.model_id + 0x100) % 0x1000  # another first digit: this installation has no such model
    header = bitstream.Header(0, other, 28, 28, False, bitstream.PIXEL_VERSION)
    data = bitstream.pack(header, lossless.encode(model, digits[0]))
    with pytest.raises(ModelMismatchError, match="with a pixel model"):
        codec.decompress(data)


def test_header_rules() -> None:
    with pytest.raises(FormatError):
        bitstream.Header(3, 0x123, version=bitstream.PIXEL_VERSION)
    with pytest.raises(FormatError):
        bitstream.Header(0, 0x123, version=bitstream.PIXEL_VERSION, max_error=0)
    data = bytearray(bitstream.pack(bitstream.Header(0, 0x123, version=bitstream.PIXEL_VERSION), b"\x01"))
    data[2] |= 0x3  # a level in a lossless file
    with pytest.raises(FormatError, match="level 3"):
        bitstream.unpack(bytes(data), lambda level: [0x123])


_DECODE = """
import sys, numpy as np
import codec
blob = open(sys.argv[1], "rb").read()
ends = [int(e) for e in sys.argv[3].split(",")]
files = [blob[a:b] for a, b in zip([0, *ends[:-1]], ends)]
np.save(sys.argv[2], np.stack(codec.decompress_many(files)))
"""


@pytest.mark.parametrize("threads", ["1", "2"])
def test_same_pixels_with_any_thread_count(digits: np.ndarray, tmp_path: Path, threads: str) -> None:
    files = codec.compress_many(list(digits[:30]), max_error=0)
    (tmp_path / "files").write_bytes(b"".join(files))
    ends = ",".join(str(e) for e in np.cumsum([len(f) for f in files]))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out.npy"
    subprocess.run([sys.executable, "-c", _DECODE, str(tmp_path / "files"), str(out), ends], check=True, env=env)
    assert np.array_equal(np.load(out), digits[:30])


def test_lossless_archive_of_large_images_holds_pixel_model_payloads(model: lossless.LosslessModel) -> None:
    """Images over the block model's size go one by one, as version 7 payloads in a version 3 archive."""
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (70, 65), dtype=np.uint8) // 64 * 64 for _ in range(3)]
    images[1] = 255 - images[1]
    packed = archive.pack(images, quality=archive.LOSSLESS)
    opened = archive.open_archive(packed)
    assert opened.head.lossless and opened.model_id == model.model_id and opened.level == 0
    assert packed[4] == archive.VERSION and packed[5] & archive.FLAG_LOSSLESS and not opened.head.block
    assert all(np.array_equal(a, b) for a, b in zip(opened.decode_all(), images))
    assert np.array_equal(opened[1], images[1])
    flagless = bytearray(packed)
    flagless[5] &= ~archive.FLAG_LOSSLESS
    with pytest.raises(FormatError, match="lossless flag"):
        archive.open_archive(bytes(flagless))


def test_pack_lossless_gives_the_idx_file_back(tmp_path: Path, mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    from codec.data import write_idx

    idx = write_idx(mnist_test[0][:300])
    source = tmp_path / "part-images-idx3-ubyte.gz"
    source.write_bytes(gzip.compress(idx))
    packed, restored = tmp_path / "part.aecs", tmp_path / "back-images-idx3-ubyte"
    result = runner.invoke(app, ["pack", "--lossless", str(source), "-o", str(packed), "--quiet"])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["info", str(packed)])
    assert "lossless" in info.output
    result = runner.invoke(app, ["unpack", str(packed), "-o", str(restored), "--quiet"])
    assert result.exit_code == 0, result.output
    assert restored.read_bytes() == idx


def test_cli_compress_lossless(tmp_path: Path, digits: np.ndarray) -> None:
    from PIL import Image

    source = tmp_path / "digit.png"
    Image.fromarray(digits[9]).save(source)
    result = runner.invoke(app, ["compress", "--lossless", str(source)])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["info", str(tmp_path / "digit.aec")])
    assert "pixel model" in info.output and "lossless" in info.output
    back = tmp_path / "back.png"
    assert runner.invoke(app, ["decompress", str(tmp_path / "digit.aec"), "-o", str(back)]).exit_code == 0
    assert np.array_equal(np.asarray(Image.open(back)), digits[9])
    both = runner.invoke(app, ["compress", "--lossless", "--max-error", "2", str(source), "-f"])
    assert both.exit_code == 2 and "not both" in both.output


def test_shipped_model_matches_its_record(model: lossless.LosslessModel) -> None:
    path = store.preset_path(models.weights_dir(), lossless.ROLE)
    assert path is not None
    meta = store.read_metadata(path)
    assert (
        meta["model_sha256"] == model.digest
        and meta["kind"] == lossless.ROLE
        and meta["command"] == "aec train-lossless"
    )
    scores = meta["validation_bpp_by_prior_count"]
    assert scores[f"{meta['prior_count']:g}"] == min(scores.values())  # the knob chosen on validation digits
    assert meta["test_file_bpp"] < 1.25


def test_fit_counts_what_the_coder_codes(digits: np.ndarray) -> None:
    """The counted tables' information content is what the coder spends, to within its few bytes a stream."""
    fitted = lossless_fit.tables(lossless_fit.count(digits[:150]), 0.5)
    held = digits[150:]
    information = lossless_fit.code_bits(fitted, lossless_fit.count(held))
    coded = 8 * sum(len(lossless.encode(fitted, image)) for image in held)
    assert information <= coded <= information + 8 * 3 * len(held)
    for prior, scores in lossless_fit.choose_priors(digits[:150], digits[150:]).values():
        assert scores[f"{prior:g}"] == min(scores.values()) and len(scores) == len(lossless_fit.PRIOR_COUNTS)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CodecError, match="no lossless pixel model"):
        lossless.load(tmp_path)
    assert tuple(lossless.installed_ids(tmp_path)) == ()


def test_damaged_metadata_is_a_clear_error(tmp_path: Path) -> None:
    installed = lossless.load()
    lossless.save(installed, tmp_path, {"command": "test"})
    assert lossless.load(tmp_path).digest == installed.digest
    store.model_path(tmp_path, installed.digest).with_suffix(".json").write_text("{broken")
    store.clear_cache()
    with pytest.raises(CodecError, match="metadata cannot be read"):
        lossless._load.cache_clear()
        lossless.load(tmp_path)


@pytest.mark.parametrize("max_error", [1, 2, 4, 8])
def test_near_lossless_digits_stay_within_the_bound(digits: np.ndarray, max_error: int) -> None:
    files = codec.compress_many(list(digits[:60]), max_error=max_error)
    decoded = codec.decompress_many(files)
    assert max(int(np.abs(d.astype(int) - i).max()) for d, i in zip(decoded, digits)) <= max_error
    headers = [codec.inspect(f).header for f in files]
    assert all(h.pixel_model and h.max_error == max_error for h in headers)  # the smallest file on digits
    exact = codec.compress_many(list(digits[:60]), max_error=0)
    assert sum(map(len, files)) < sum(map(len, exact))  # a bound buys bytes


def test_the_largest_errors_code_no_offsets(digits: np.ndarray, model: lossless.LosslessModel) -> None:
    """From K = 32 one run holds a class's every offset: only the class map is coded (constriction refuses a
    one-symbol table)."""
    for max_error in (31, 32, 127):
        coded = lossless.encode_within_budget(model, digits[4], max_error, None)
        assert coded is not None
        assert np.array_equal(lossless.decode(model, coded[0], 28, 28, max_error), coded[1])
        assert np.abs(coded[1].astype(int) - digits[4]).max() <= max_error
        data = codec.compress(digits[4], max_error=max_error)
        assert np.abs(codec.decompress(data).astype(int) - digits[4]).max() <= max_error


def test_near_lossless_header_and_tables(model: lossless.LosslessModel) -> None:
    header = bitstream.Header(0, model.model_id, 5, 7, True, bitstream.PIXEL_VERSION, max_error=3)
    data = bitstream.pack(header, b"\x00")
    assert bitstream.unpack(data, lambda level: [model.model_id])[0] == header
    with pytest.raises(FormatError):
        bitstream.Header(0, model.model_id, version=bitstream.PIXEL_VERSION, max_error=0)  # lossless has no byte
    for max_error in (0, 1, 5, 127):
        tables = lossless.offset_tables(model, max_error)
        assert (tables.sum(axis=1) == 1 << 16).all() and tables.min() >= 1  # still integer frequencies
        ramp = np.arange(256, dtype=np.uint8)[None]
        coded = lossless.encode_within_budget(model, ramp, max_error, None)
        assert coded is not None and np.array_equal(lossless.decode(model, coded[0], 1, 256, max_error), coded[1])
        assert np.abs(coded[1].astype(int) - np.arange(256)).max() <= max_error


def test_a_psnr_target_above_the_levels_takes_the_pixel_model_on_a_digit(digits: np.ndarray) -> None:
    from codec.images import prepare
    from codec.metrics import psnr
    from codec.targets import encode_for_target

    (choice,) = encode_for_target([prepare(digits[2])], psnr=45.0, effort=0)
    assert choice.data is not None and "the pixel model's file" in (choice.notice or "")
    assert codec.inspect(choice.data).header.pixel_model
    assert float(psnr(digits[2], codec.decompress(choice.data))) >= 45.0
