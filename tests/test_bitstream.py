"""The .aec container: header fields, checks and every way a file can be wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import codec
from codec import bitstream, models, store
from codec.bitstream import Header
from codec.errors import CodecError, CorruptFileError, FormatError, ModelMismatchError

#: A model id for hand-made files, and what a decoder that has it knows.
FAKE_ID = 0x123


def _known(level: int) -> list[int]:
    return [FAKE_ID]


def _reseal(body: bytes, model_id: int = FAKE_ID) -> bytes:
    """A file with a valid checksum around ``body`` (to test the checks after it), for ``model_id``."""
    return body + bitstream.checksum(body[1] >> 4, model_id, body).to_bytes(2, "little")


@pytest.fixture(scope="module")
def sample(digits: np.ndarray, shipped_levels: list[int]) -> bytes:
    """A digit coded with the lowest level's own model (effort 0: no choice among levels)."""
    return codec.compress(digits[0], quality=shipped_levels[0], effort=0)


@pytest.fixture(scope="module")
def sample_id(sample: bytes) -> int:
    return codec.inspect(sample).header.model_id


@pytest.mark.parametrize(
    "header",
    [
        Header(level=3, model_id=0xBEE),
        Header(level=1, model_id=0, width=100, height=7, inverted=True),
        Header(level=15, model_id=0xFFF, width=bitstream.MAX_SIDE, height=1),
        Header(level=2, model_id=0x5A8, width=30, height=28, version=3),
    ],
)
def test_header_roundtrip(header: Header) -> None:
    payload = bytes(range(13))
    parsed, rest = bitstream.unpack(bitstream.pack(header, payload), lambda level: [0x5A9, header.model_id])
    assert parsed == header and rest == payload


def test_default_size_costs_no_bytes() -> None:
    assert len(bitstream.pack(Header(level=1, model_id=1), b"")) == bitstream.MIN_FILE == 5
    assert len(bitstream.pack(Header(level=1, model_id=1, width=300, height=20), b"")) == 5 + 2 + 1
    assert len(bitstream.pack(Header(level=1, model_id=1, version=3), b"")) == 6  # version 3 stored the whole id


def test_checksum_covers_the_model_id_it_leaves_out() -> None:
    """Version 4 keeps the id's first hex digit; the checksum tells the rest, and any other id fails it."""
    data = bitstream.pack(Header(level=4, model_id=0xC6D), b"payload")
    assert data[2] == 0xC4
    others = [i for i in range(0xC00, 0xD00) if i != 0xC6D]
    assert bitstream.unpack(data, lambda level: [*others, 0xC6D])[0].model_id == 0xC6D
    with pytest.raises(CorruptFileError, match="lacks"):
        bitstream.unpack(data, lambda level: others)  # every id sharing its digit: the checksum refuses each
    with pytest.raises(ModelMismatchError, match="level 4 with a model c.."):
        bitstream.unpack(data, lambda level: [0xB6D, 0xD6D])
    with pytest.raises(ModelMismatchError):
        bitstream.unpack(data)


def test_bad_magic(sample: bytes) -> None:
    with pytest.raises(FormatError, match="magic"):
        codec.decompress(b"PNG" + sample[1:])
    with pytest.raises(FormatError, match="magic"):
        codec.decompress(b"")


@pytest.mark.parametrize("version", [1, 2, 13, 15])  # 12 with no flags would read as an archive's magic
def test_unknown_version(sample: bytes, version: int) -> None:
    body = bytearray(sample[:-2])
    body[1] = (version << 4) | (body[1] & 0x0F)
    with pytest.raises(FormatError, match=f"unsupported format version {version}"):
        codec.decompress(_reseal(bytes(body)))


def test_unknown_flags(sample: bytes, sample_id: int) -> None:
    body = bytearray(sample[:-2])
    body[1] |= 0x8
    with pytest.raises(FormatError, match="unknown flags"):
        codec.decompress(_reseal(bytes(body), sample_id))


def test_other_model_is_refused(sample: bytes, sample_id: int) -> None:
    body = bytearray(sample[:-2])
    body[2] ^= 0xF0  # another first digit: no model of the level has it
    with pytest.raises(ModelMismatchError, match="lacks"):
        codec.decompress(_reseal(bytes(body), sample_id ^ 0xF00))
    with pytest.raises(CorruptFileError, match="lacks"):  # the same digit: only the checksum can tell
        codec.decompress(_reseal(sample[:-2], sample_id ^ 0x0FF))
    header, payload = bitstream.unpack(sample, models.known_model_ids)
    old = bitstream.pack(Header(level=header.level, model_id=sample_id ^ 0xFF, version=3), payload)
    with pytest.raises(ModelMismatchError, match=f"model {sample_id ^ 0xFF:03x}; this installation has"):
        codec.decompress(old)


def test_files_of_a_replaced_model_still_decode(weights: Path, digits: np.ndarray) -> None:
    """A level's former model, left in the store when its preset names another, decodes the files coded with
    it; new files use the new one."""
    folder = weights
    old = codec.compress_many(list(digits[:4]), quality=2, effort=0)
    expected = codec.decompress_many(old)
    old_id = codec.inspect(old[0]).header.model_id
    # Level 2 gets another model (level 3's): its preset names it; the old one stays in the store.
    former = store.preset_path(folder, "level-2")
    assert former is not None
    store.set_preset(folder, "level-2", models.load_model(3).digest, store.preset_fields(folder, "level-2"))
    models.clear_cache()
    try:
        new = codec.compress(digits[0], quality=2, effort=0)
        assert codec.inspect(new).header.model_id == models.load_model(3).model_id != old_id
        assert all(np.array_equal(a, b) for a, b in zip(codec.decompress_many(old), expected))
        assert np.array_equal(codec.decompress(old[1]), expected[1])
        assert old_id in models.known_model_ids(2)
        former.unlink()  # the former model gone from the store: its files cannot decode here
        models.clear_cache()
        with pytest.raises(
            ModelMismatchError, match=f"level 2 with a model {old_id >> 8:x}.. that this installation lacks"
        ):
            codec.decompress(old[0])
    finally:
        models.clear_cache()


def test_missing_level_is_refused(sample: bytes, sample_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    body = bytearray(sample[:-2])
    body[2] = (body[2] & 0xF0) | 14
    monkeypatch.setattr(models, "known_model_ids", lambda level, folder=None: [sample_id] if level == 14 else [])
    with pytest.raises(ModelMismatchError, match="level 14"):
        codec.decompress(_reseal(bytes(body), sample_id))


def test_every_truncation_is_an_error(sample: bytes) -> None:
    for cut in range(len(sample)):
        with pytest.raises(CodecError):
            codec.decompress(sample[:cut])


def test_every_single_bit_flip_is_caught(sample: bytes) -> None:
    for bit in range(8 * len(sample)):
        damaged = bytearray(sample)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(CodecError):
            codec.decompress(bytes(damaged))


def test_payload_damage_is_reported_as_corruption(sample: bytes) -> None:
    damaged = bytearray(sample)
    damaged[-3] ^= 0x10
    with pytest.raises(CorruptFileError, match="corrupted"):
        codec.decompress(bytes(damaged))


@pytest.mark.parametrize(
    ("width", "height"),
    [(0, 28), (28, 0), (bitstream.MAX_SIDE + 1, 1), (8192, 2049)],
)
def test_sizes_over_the_limit_are_refused_before_decoding(width: int, height: int) -> None:
    body = (
        bitstream.MAGIC
        + bytes([bitstream.VERSION << 4 | bitstream.FLAG_EXPLICIT_SIZE, 0x11])
        + bitstream._varint(width)
        + bitstream._varint(height)
    )
    with pytest.raises(FormatError, match="size"):
        bitstream.unpack(_reseal(body), _known)


def test_overlong_size_field_is_refused() -> None:
    body = (
        bitstream.MAGIC
        + bytes([bitstream.VERSION << 4 | bitstream.FLAG_EXPLICIT_SIZE, 0x11])
        + b"\xff\xff\xff\x7f"
        + b"\x01"
    )
    with pytest.raises(FormatError, match="too long"):
        bitstream.unpack(_reseal(body), _known)


def test_archive_is_named_as_such() -> None:
    with pytest.raises(FormatError, match="archive"):
        codec.decompress(bitstream.ARCHIVE_MAGIC + bytes(20))


def test_error_types_share_one_base() -> None:
    for error in (FormatError, CorruptFileError, ModelMismatchError, codec.ImageError, codec.ModelError):
        assert issubclass(error, CodecError)
