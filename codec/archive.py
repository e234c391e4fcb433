"""``.aecs`` archives: many same-size images behind one header, with random access.

Layout of archive version 3 (see ``docs/format.md``)::

    magic      4 bytes   0xAE 0xC0 'A' 'S'
    version    1 byte    3
    flags      1 byte    bit 0: 2-byte lengths; bit 1: polarity bitmap present
    level, model id      2 bytes, packed as in a single .aec file
    width, height, count   unsigned LEB128 each
    [polarity bitmap]    ceil(count / 8) bytes, bit i of byte i // 8 (LSB first): image i inverted
    index      count x 1 (or 2, little-endian) bytes: each image's payload length
    crc32      4 bytes   of every byte above
    payloads   the images' entropy-coded latents, one after another
    crc32      4 bytes   of the payloads

Per image, the archive adds one byte (its payload length) to the payload, and one
bit when any image is dark ink on a light background.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import api
from .bitstream import ARCHIVE_MAGIC, Header, _read_varint, _varint, check_size, pack_model, unpack_model
from .errors import CorruptFileError, FormatError, ImageError
from .images import ImageLike, prepare
from .models import DEFAULT_LEVEL

MAGIC = ARCHIVE_MAGIC
#: Follows the single-file format version: the payloads are coded the same way.
VERSION = 3
FLAG_WIDE_LENGTHS = 0x1
FLAG_POLARITY = 0x2
#: The most images one archive holds.
MAX_COUNT = 1 << 24


def _crc(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "little")


def pack(images: Sequence[ImageLike], quality: int = DEFAULT_LEVEL, effort: int = api.DEFAULT_EFFORT) -> bytes:
    """One archive of ``images`` (all of one size) at ``quality``.

    >>> import numpy as np
    >>> images = [np.zeros((28, 28), np.uint8)] * 3
    >>> archive = open_archive(pack(images, quality=2))
    >>> len(archive), archive[1].shape
    (3, (28, 28))
    """
    if not images:
        raise ImageError("an archive needs at least one image")
    if len(images) > MAX_COUNT:
        raise ImageError(f"an archive holds at most {MAX_COUNT} images")
    prepared = [prepare(image) for image in images]
    shapes = {p.pixels.shape for p in prepared}
    if len(shapes) > 1:
        raise ImageError(f"an archive holds images of one size; got {len(shapes)} sizes")
    height, width = prepared[0].pixels.shape
    model, payloads = api.encode_payloads(prepared, quality, effort)
    inverted = [p.inverted for p in prepared]
    longest = max(map(len, payloads))
    if longest > 0xFFFF:
        raise ImageError(f"an image codes to {longest} bytes, over the archive's 65,535; store it as an .aec file")
    flags = FLAG_WIDE_LENGTHS if longest > 0xFF else 0
    if any(inverted):
        flags |= FLAG_POLARITY
    head = MAGIC + bytes([VERSION, flags]) + pack_model(quality, model.model_id)
    head += _varint(width) + _varint(height) + _varint(len(images))
    if flags & FLAG_POLARITY:
        head += np.packbits(np.array(inverted, dtype=np.uint8), bitorder="little").tobytes()
    width_bytes = 2 if flags & FLAG_WIDE_LENGTHS else 1
    head += b"".join(len(p).to_bytes(width_bytes, "little") for p in payloads)
    body = b"".join(payloads)
    return head + _crc(head) + body + _crc(body)


@dataclass(frozen=True)
class Archive:
    """A parsed archive: header fields, index and payloads, decodable one image at a time."""

    level: int
    model_id: int
    width: int
    height: int
    inverted: np.ndarray  # (count,) bool
    offsets: np.ndarray  # (count + 1,) payload boundaries within ``body``
    body: bytes

    def __len__(self) -> int:
        return len(self.inverted)

    def header(self, index: int) -> Header:
        """The single-file header image ``index`` would have."""
        return Header(
            level=self.level,
            model_id=self.model_id,
            width=self.width,
            height=self.height,
            inverted=bool(self.inverted[index]),
        )

    def payload(self, index: int) -> bytes:
        return self.body[self.offsets[index] : self.offsets[index + 1]]

    def __getitem__(self, index: int) -> np.ndarray:
        """Decode image ``index`` alone (random access)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"archive holds {len(self)} images")
        index %= len(self)
        header = self.header(index)
        return api.reconstruct([(header, api.decode_payload(header, self.payload(index)))])[0]

    def decode_all(self) -> list[np.ndarray]:
        """Every image, decoded in batches."""
        decoded = [(self.header(i), api.decode_payload(self.header(i), self.payload(i))) for i in range(len(self))]
        return api.reconstruct(decoded)

    @property
    def payload_bytes(self) -> int:
        return len(self.body)


def is_archive(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def open_archive(data: bytes) -> Archive:
    """Parse and check an archive (both checksums: reading bytes is cheap, decoding is what random access saves)."""
    data = bytes(data)
    if not is_archive(data):
        raise FormatError("not an .aecs archive (bad magic)")
    if len(data) < len(MAGIC) + 5:
        raise CorruptFileError("archive is truncated")
    version, flags = data[4], data[5]
    if version != VERSION:
        raise FormatError(f"unsupported archive version {version} (this aec reads version {VERSION})")
    if flags & ~(FLAG_WIDE_LENGTHS | FLAG_POLARITY):
        raise FormatError(f"unknown archive flags 0x{flags:x}")
    level, model_id = unpack_model(data[6:8])
    pos = 8
    width, pos = _read_varint(data, pos, len(data))
    height, pos = _read_varint(data, pos, len(data))
    count, pos = _read_varint(data, pos, len(data))
    try:
        check_size(width, height)
    except FormatError as exc:
        raise FormatError(f"archive: {exc}") from None
    if not 1 <= count <= MAX_COUNT:
        raise FormatError(f"archive declares {count} images")
    polarity_bytes = -(-count // 8) if flags & FLAG_POLARITY else 0
    length_bytes = 2 if flags & FLAG_WIDE_LENGTHS else 1
    index_end = pos + polarity_bytes + count * length_bytes
    if len(data) < index_end + 8:
        raise CorruptFileError("archive is truncated")
    if _crc(data[:index_end]) != data[index_end : index_end + 4]:
        raise CorruptFileError("archive is corrupted (header checksum mismatch)")
    if flags & FLAG_POLARITY:
        bits = np.frombuffer(data[pos : pos + polarity_bytes], np.uint8)
        inverted = np.unpackbits(bits, bitorder="little")[:count].astype(bool)
    else:
        inverted = np.zeros(count, dtype=bool)
    pos += polarity_bytes
    lengths = np.frombuffer(data[pos:index_end], dtype="<u2" if length_bytes == 2 else np.uint8).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    body = data[index_end + 4 : -4]
    if offsets[-1] != len(body):
        raise CorruptFileError(f"archive payloads hold {len(body)} bytes, the index says {offsets[-1]}")
    if _crc(body) != data[-4:]:
        raise CorruptFileError("archive is corrupted (payload checksum mismatch)")
    return Archive(level, model_id, width, height, inverted, offsets, body)


def unpack(data: bytes) -> list[np.ndarray]:
    """Every image of an archive."""
    return open_archive(data).decode_all()
