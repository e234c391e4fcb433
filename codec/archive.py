"""``.aecs`` archives: many same-size images behind one header, with random access.

Layout of archive versions 3 to 5 (see ``docs/format.md``)::

    magic      4 bytes   0xAE 0xC0 'A' 'S'
    version    1 byte    3 (a payload per image), 4 (a lossless payload per block of images) or 5 (a
                         payload of latents per block of images)
    flags      1 byte    bit 0: 2-byte lengths; bit 1: polarity bitmap present; bit 2: lossless payloads
    level, model id      2 bytes, packed as in a version 3 .aec file (lossless: level 0, the lossless model's id)
    width, height, count   unsigned LEB128 each (at most 3 bytes: count < 2^21)
    [block]    versions 4 and 5: unsigned LEB128 (at most 3 bytes): images per block
    [polarity bitmap]    ceil(count / 8) bytes, bit i of byte i // 8 (LSB first): image i inverted
    index      version 3: count x 1 (or 2, little-endian) bytes, each image's payload length;
               versions 4, 5: ceil(count / block) x 4 bytes (little-endian), each block's payload length
    crc32      4 bytes   of every byte above
    payloads   the images' (or blocks') entropy-coded payloads, one after another
    crc32      4 bytes   of the payloads

Per image, a version 3 archive adds one byte (its payload length) to the
payload, and one bit when any image is dark ink on a light background. A
lossless archive (quality :data:`LOSSLESS`) gives back every pixel: of small
images (:func:`codec.lossless_blocks.blocked`) it is a version 4 archive, whose
blocks the block model codes (:mod:`codec.lossless_blocks`), of larger ones a
version 3 archive of the pixel model's payloads (:mod:`codec.lossless`, what a
version 7 file holds). A lossy archive of digit-sized images (the model's
home grid) is a version 5 archive: blocks of latents (:mod:`codec.latent_blocks`),
which read far faster and spare each image its own stream's tail; of other
sizes, version 3 (each image's payload as a single file's).

Archives are written and read as streams: :class:`ArchiveWriter` codes images
batch by batch into a spool and writes the header once it knows every length;
:func:`read_head` and :func:`decode_batches` read a file front to back, one
batch of images at a time, so packing or unpacking millions of digits takes the
memory of one batch (plus the index: at most 8 MiB).
"""

from __future__ import annotations

import io
import shutil
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, cast

import numpy as np

from . import api, choice, latent_blocks, lossless, lossless_blocks
from .bitstream import (
    ARCHIVE_MAGIC,
    PIXEL_VERSION,
    Header,
    _read_varint,
    _varint,
    check_size,
    pack_model,
    unpack_model,
)
from .bitstream import VERSION as FILE_VERSION
from .decoder import matching, named_model
from .encoder import Encoder
from .errors import CorruptFileError, FormatError, ImageError
from .images import ImageLike, Prepared, prepare
from .limits import images_per_batch
from .models import DEFAULT_LEVEL, FrozenModel, load_model, model_for_decoding

MAGIC = ARCHIVE_MAGIC
#: Follows the single-file format version: the payloads are coded the same way.
VERSION = 3
#: Lossless payloads per block of images (:mod:`codec.lossless_blocks`).
BLOCKS_VERSION = 4
#: Latents per block of images (:mod:`codec.latent_blocks`), lossy.
LATENT_BLOCKS_VERSION = 5
FLAG_WIDE_LENGTHS = 0x1
FLAG_POLARITY = 0x2
#: The payloads are the lossless pixel model's (level 0).
FLAG_LOSSLESS = 0x4
#: The quality that packs an archive losslessly (``aec pack --lossless``).
LOSSLESS = 0
#: The most images one archive holds: what a 3-byte LEB128 count carries (the reader reads at most 3 bytes).
MAX_COUNT = (1 << 21) - 1
#: The longest payload of one image: what the 2-byte index entry carries.
MAX_PAYLOAD = 0xFFFF
#: The most images one block holds (a reader's bound: the writer's blocks hold :data:`lossless_blocks.BLOCK`).
MAX_BLOCK = 4096
#: Bytes before the variable-length fields: magic, version, flags, level and model id.
_FIXED = len(MAGIC) + 4
_CRC = 4

Read = Callable[[int], bytes]


def _crc(data: bytes, start: int = 0) -> int:
    return zlib.crc32(data, start)


def check_payload(length: int) -> None:
    """Refuse a payload longer than the index entry carries (the writer's check, the reader's bound)."""
    if length > MAX_PAYLOAD:
        raise ImageError(
            f"an image codes to {length} bytes, over the archive's {MAX_PAYLOAD:,}; store it as an .aec file"
        )


def check_count(count: int) -> None:
    """Refuse a number of images the format does not carry (the writer's check, the reader's bound)."""
    if count < 1:
        raise ImageError("an archive needs at least one image")
    if count > MAX_COUNT:
        raise ImageError(f"an archive holds at most {MAX_COUNT:,} images, got {count:,}")


@dataclass(frozen=True)
class ArchiveHead:
    """Everything before the payloads: the archive's level, model, size, polarity bits and index."""

    level: int
    model_id: int
    width: int
    height: int
    inverted: np.ndarray  # (count,) bool
    lengths: np.ndarray  # (payloads,) int64: each image's payload length, or each block's
    block: int = 0  # images per block (version 4); 0: a payload per image (version 3)

    @property
    def count(self) -> int:
        return len(self.inverted)

    @property
    def payload_bytes(self) -> int:
        return int(self.lengths.sum())

    @property
    def lossless(self) -> bool:
        """Whether every pixel comes back (level 0): the pixel model's payloads, or the block model's."""
        return self.level == LOSSLESS

    @property
    def version(self) -> int:
        if not self.block:
            return VERSION
        return BLOCKS_VERSION if self.lossless else LATENT_BLOCKS_VERSION

    def images_of(self, payload: int) -> range:
        """The images payload ``payload`` holds."""
        if not self.block:
            return range(payload, payload + 1)
        return range(payload * self.block, min((payload + 1) * self.block, self.count))

    def header(self, index: int) -> Header:
        """The single-file header image ``index`` would have (a version 3 archive's)."""
        version = PIXEL_VERSION if self.lossless else FILE_VERSION
        return Header(self.level, self.model_id, self.width, self.height, bool(self.inverted[index]), version)

    def to_bytes(self) -> bytes:
        """The head as written, its CRC-32 included; every limit the reader has is checked here first."""
        check_count(self.count)
        check_size(self.width, self.height)
        longest = int(self.lengths.max())
        if self.block and self.lossless:
            _check_block(self.block, self.width * self.height, longest)
        elif self.block:
            _check_latent_block(self.block, longest)
        else:
            check_payload(longest)
        wide = not self.block and longest > 0xFF
        flags = (FLAG_WIDE_LENGTHS if wide else 0) | (FLAG_POLARITY if self.inverted.any() else 0)
        flags |= FLAG_LOSSLESS if self.lossless else 0
        head = MAGIC + bytes([self.version, flags]) + pack_model(self.level, self.model_id)
        head += _varint(self.width) + _varint(self.height) + _varint(self.count)
        head += _varint(self.block) if self.block else b""
        if flags & FLAG_POLARITY:
            head += np.packbits(self.inverted.astype(np.uint8), bitorder="little").tobytes()
        head += self.lengths.astype("<u4" if self.block else "<u2" if wide else np.uint8).tobytes()
        return head + _crc(head).to_bytes(_CRC, "little")


def _check_block(block: int, pixels: int, longest: int) -> None:
    """Refuse a block layout the reader does not take: images too large for blocks, too many images per block,
    or a block's payload longer than its symbols can code to."""
    if not lossless_blocks.blocked(pixels):
        raise FormatError(f"archive: images of {pixels:,} pixels are not coded in blocks")
    if not 1 <= block <= MAX_BLOCK:
        raise FormatError(f"archive: blocks of {block:,} images (1 to {MAX_BLOCK:,})")
    if longest > lossless_blocks.max_block_bytes(block, pixels):
        raise CorruptFileError("archive: a block's payload is longer than its images can code to")


def _check_latent_block(block: int, longest: int) -> None:
    """Refuse more images per block of latents than a reader takes, or a block longer than any model's can be
    (its symbols are checked against the model when it is decoded: :func:`codec.latent_blocks.decode_block`)."""
    if not 1 <= block <= latent_blocks.MAX_IMAGES:
        raise FormatError(f"archive: blocks of {block:,} images of latents (1 to {latent_blocks.MAX_IMAGES})")
    if longest > latent_blocks.MAX_BLOCK_BYTES:
        raise CorruptFileError("archive: a block's payload is longer than its latents can code to")


def _exact(read: Read, size: int) -> bytes:
    data = read(size)
    if len(data) != size:
        raise CorruptFileError("archive is truncated")
    return data


def _field(read: Read, head: bytearray) -> int:
    """Read one LEB128 field of at most 3 bytes onto ``head``; its value."""
    start = len(head)
    while len(head) - start < 3 and (len(head) == start or head[-1] & 0x80):
        head += _exact(read, 1)
    value, _ = _read_varint(bytes(head), start, len(head))
    return value


def read_head(read: Read) -> ArchiveHead:
    """Read and check an archive's head from a stream (``read(n)`` as a file's); memory bounded by :data:`MAX_COUNT`."""
    fixed = read(_FIXED)
    if fixed[: len(MAGIC)] != MAGIC[: len(fixed)] or not fixed:
        raise FormatError("not an .aecs archive (bad magic)")
    if len(fixed) < _FIXED:
        raise CorruptFileError("archive is truncated")
    version, flags = fixed[4], fixed[5]
    if version not in (VERSION, BLOCKS_VERSION, LATENT_BLOCKS_VERSION):
        raise FormatError(f"unsupported archive version {version} (this aec reads versions 3 to 5)")
    if flags & ~(FLAG_WIDE_LENGTHS | FLAG_POLARITY | FLAG_LOSSLESS):
        raise FormatError(f"unknown archive flags 0x{flags:x}")
    level, model_id = unpack_model(fixed[6:8])
    if bool(flags & FLAG_LOSSLESS) != (level == LOSSLESS):
        raise FormatError("archive: the lossless flag and level 0 go together")
    if version == BLOCKS_VERSION and (flags & FLAG_WIDE_LENGTHS or level != LOSSLESS):
        raise FormatError("archive: a version 4 archive is lossless, with 4-byte lengths")
    if version == LATENT_BLOCKS_VERSION and (flags & FLAG_WIDE_LENGTHS or level == LOSSLESS):
        raise FormatError("archive: a version 5 archive is lossy, with 4-byte lengths")
    head = bytearray(fixed)
    width, height, count = _field(read, head), _field(read, head), _field(read, head)
    block = _field(read, head) if version != VERSION else 0
    try:
        check_size(width, height)
    except FormatError as exc:
        raise FormatError(f"archive: {exc}") from None
    if count < 1:
        raise FormatError("archive declares no images")
    if version == BLOCKS_VERSION:
        _check_block(block, width * height, 0)
    elif version == LATENT_BLOCKS_VERSION:
        _check_latent_block(block, 0)
    polarity_bytes = -(-count // 8) if flags & FLAG_POLARITY else 0
    length_type = "<u4" if block else "<u2" if flags & FLAG_WIDE_LENGTHS else "<u1"
    payloads = -(-count // block) if block else count
    rest = _exact(read, polarity_bytes + payloads * np.dtype(length_type).itemsize)
    head += rest
    if _crc(bytes(head)) != int.from_bytes(_exact(read, _CRC), "little"):
        raise CorruptFileError("archive is corrupted (header checksum mismatch)")
    if flags & FLAG_POLARITY:
        inverted = np.unpackbits(np.frombuffer(rest[:polarity_bytes], np.uint8), bitorder="little")[:count]
    else:
        inverted = np.zeros(count, dtype=np.uint8)
    lengths = np.frombuffer(rest[polarity_bytes:], length_type).astype(np.int64)
    if version == BLOCKS_VERSION:
        _check_block(block, width * height, int(lengths.max()))
    elif version == LATENT_BLOCKS_VERSION:
        _check_latent_block(block, int(lengths.max()))  # before any payload is read
    return ArchiveHead(level, model_id, width, height, inverted.astype(bool), lengths, block)


#: The most payload bytes one batch of :func:`payload_batches` reads (a single longer payload is read alone).
BATCH_BYTES = 16 << 20


def payload_batches(read: Read, head: ArchiveHead, batch: int) -> Iterator[list[bytes]]:
    """The payloads after ``head`` (an image's each, or a block's), at most ``batch`` and :data:`BATCH_BYTES` at a
    time, so a reader's memory does not follow what a head claims; the payload CRC is checked before the last
    batch."""
    crc = 0
    ends = np.cumsum(head.lengths)
    first = 0
    while first < len(head.lengths):
        start = int(ends[first] - head.lengths[first])
        stop = max(first + 1, min(first + batch, int(np.searchsorted(ends, start + BATCH_BYTES, side="right"))))
        lengths = head.lengths[first:stop]
        data = _exact(read, int(lengths.sum()))
        crc = _crc(data, crc)
        if stop >= len(head.lengths):
            trailer = _exact(read, _CRC)
            if read(1):
                raise CorruptFileError("archive has bytes after its end")
            if crc != int.from_bytes(trailer, "little"):
                raise CorruptFileError("archive is corrupted (payload checksum mismatch)")
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        yield [data[offsets[i] : offsets[i + 1]] for i in range(len(lengths))]
        first = stop


def _block_model(head: ArchiveHead) -> lossless_blocks.BlockModel:
    """The block model ``head`` names (installed, or a former one still in the store); :class:`ModelMismatchError`
    otherwise."""
    return named_model(lossless_blocks.load, head.model_id, "lossless block model", "archive")


def _latent_model(head: ArchiveHead) -> FrozenModel:
    """The model a lossy archive names (installed, or a former one still in the store); :class:`ModelError` when
    its level is not installed, :class:`ModelMismatchError` for another id, :class:`FormatError` for blocks over
    the reader's bounds with it."""
    model = model_for_decoding(head.level, head.model_id)
    matching(model, head.model_id, f"level {head.level}'s model", "archive")
    if head.block:
        latent_blocks.check_block(model, head.block)
    return model


def payload_latents(head: ArchiveHead, first: int, payloads: Sequence[bytes]) -> list[np.ndarray]:
    """The integer latents of the images of a lossy archive's ``payloads`` (from payload number ``first`` on):
    entropy-decoded only (what ``aec search`` ranks), a block at a time in a version 5 archive."""
    if not head.block:
        headers = [head.header(first + i) for i in range(len(payloads))]
        return [cast(np.ndarray, api.decode_payload(h, p)) for h, p in zip(headers, payloads)]
    model = _latent_model(head)
    out: list[np.ndarray] = []
    for number, payload in enumerate(payloads, first):
        out += list(latent_blocks.decode_block(model, payload, len(head.images_of(number))))
    return out


def decode_payloads(head: ArchiveHead, first: int, payloads: Sequence[bytes]) -> list[np.ndarray]:
    """The images of ``payloads``, the archive's payloads from number ``first`` on, decoded together."""
    if not head.lossless:
        numbers = [i for number in range(first, first + len(payloads)) for i in head.images_of(number)]
        latents = payload_latents(head, first, payloads)
        return api.reconstruct([(head.header(i), item) for i, item in zip(numbers, latents)])
    if not head.block:
        headers = [head.header(first + i) for i in range(len(payloads))]
        return api.reconstruct([(h, api.decode_payload(h, p)) for h, p in zip(headers, payloads)])
    model = _block_model(head)
    out = []
    for number, payload in enumerate(payloads, first):
        images = head.images_of(number)
        block = lossless_blocks.decode_block(model, payload, len(images), head.height, head.width)
        out += [255 - image if head.inverted[i] else image for i, image in zip(images, block)]
    return out


def decode_batches(read: Read, head: ArchiveHead) -> Iterator[list[np.ndarray]]:
    """Every image of the archive after ``head``, decoded a batch at a time (bounded by pixels: a block each in
    a version 4 archive)."""
    first = 0
    batch = 1 if head.block else images_per_batch(head.width * head.height)
    for payloads in payload_batches(read, head, batch):
        yield decode_payloads(head, first, payloads)
        first += len(payloads)


class ArchiveWriter:
    """Codes images batch by batch into ``spool``; :meth:`write` puts the head, then the spooled payloads."""

    def __init__(self, quality: int = DEFAULT_LEVEL, effort: int = api.DEFAULT_EFFORT, spool: IO[bytes] | None = None):
        """Quality :data:`LOSSLESS` codes every image losslessly: small ones in blocks (the block model), larger
        ones one by one (the pixel model)."""
        self.quality, self.effort = api.check_quality(quality), api.check_effort(effort)
        self.spool = spool if spool is not None else io.BytesIO()
        self.size: tuple[int, int] | None = None
        self.model_id: int | None = None
        self.lengths: list[int] = []
        self.inverted: list[bool] = []
        self.block = 0
        self._pending: list[np.ndarray] = []  # images (or latent streams) waiting for their block to fill
        self._model: FrozenModel | None = None  # a lossy archive's model, once known
        self.crc = 0

    def add(self, prepared: Sequence[Prepared]) -> None:
        """Code and spool some images (of the archive's one size), each with the level's own model."""
        if not prepared:
            return
        shapes = {p.pixels.shape for p in prepared} | ({self.size} if self.size else set())
        if len(shapes) > 1:
            raise ImageError(f"an archive holds images of one size; got {len(shapes)} sizes")
        check_count(self.count + len(prepared))
        self.size = prepared[0].pixels.shape
        self.inverted += [item.inverted for item in prepared]
        if self.quality == LOSSLESS and lossless_blocks.blocked(prepared[0].pixels.size):
            self.block = lossless_blocks.BLOCK
            self._pending += [item.pixels for item in prepared]
            while len(self._pending) >= self.block:
                self._flush()
            return
        if self.quality != LOSSLESS and choice.home_size(load_model(self.quality), *self.size):
            self._model, streams = Encoder(self.quality, self.effort).streams(prepared)
            self.model_id, self.block = self._model.model_id, latent_blocks.block_size(self._model)
            self._pending += streams
            while len(self._pending) >= self.block:
                self._flush()
            return
        if self.quality == LOSSLESS:
            exact = lossless.load()
            self.model_id, coded = exact.model_id, [lossless.encode(exact, item.pixels) for item in prepared]
        else:
            model, payloads = Encoder(self.quality, self.effort).payloads(prepared)
            self.model_id, coded = model.model_id, [p.data for p in payloads]
        for payload in coded:
            check_payload(len(payload))  # before spooling the rest: the head checks again when written
            self._spool(payload)

    def _flush(self) -> None:
        """Code the pending images' first block (the last one may be shorter) and spool it."""
        pending, self._pending = self._pending[: self.block], self._pending[self.block :]
        if self._model is not None:
            self._spool(latent_blocks.encode_block(self._model, pending))
            return
        model = lossless_blocks.load()
        self.model_id = model.model_id
        self._spool(lossless_blocks.encode_block(model, np.stack(pending)))

    def _spool(self, payload: bytes) -> None:
        self.spool.write(payload)
        self.crc = _crc(payload, self.crc)
        self.lengths.append(len(payload))

    @property
    def count(self) -> int:
        return len(self.inverted)

    def head(self) -> ArchiveHead:
        """The head of everything added (codes the last, short block first)."""
        if self._pending:
            self._flush()
        if self.size is None or self.model_id is None:
            raise ImageError("an archive needs at least one image")
        height, width = self.size
        inverted, lengths = np.array(self.inverted, bool), np.array(self.lengths, np.int64)
        return ArchiveHead(self.quality, self.model_id, width, height, inverted, lengths, self.block)

    def write(self, out: IO[bytes]) -> int:
        """Write the whole archive to ``out``; returns its size in bytes."""
        head = self.head().to_bytes()
        out.write(head)
        self.spool.seek(0)
        shutil.copyfileobj(self.spool, out, 1 << 20)
        out.write(self.crc.to_bytes(_CRC, "little"))
        return len(head) + sum(self.lengths) + _CRC


def pack(images: Sequence[ImageLike], quality: int = DEFAULT_LEVEL, effort: int = api.DEFAULT_EFFORT) -> bytes:
    """One archive of ``images`` (all of one size) at ``quality`` (:data:`LOSSLESS`: every pixel kept).

    >>> import numpy as np
    >>> images = [np.zeros((28, 28), np.uint8)] * 3
    >>> archive = open_archive(pack(images, quality=2))
    >>> len(archive), archive[1].shape
    (3, (28, 28))
    """
    check_count(len(images))
    writer = ArchiveWriter(quality, effort)
    first = 0
    while first < len(images):
        prepared = [prepare(images[first])]
        step = images_per_batch(prepared[0].pixels.size)
        prepared += [prepare(image) for image in images[first + 1 : first + step]]
        writer.add(prepared)
        first += len(prepared)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@dataclass(frozen=True)
class Archive:
    """A parsed archive held in memory: its head and payloads, decodable one image (or block) at a time."""

    head: ArchiveHead
    offsets: np.ndarray  # (payloads + 1,) payload boundaries within ``body``
    body: bytes

    @property
    def level(self) -> int:
        return self.head.level

    @property
    def model_id(self) -> int:
        return self.head.model_id

    @property
    def width(self) -> int:
        return self.head.width

    @property
    def height(self) -> int:
        return self.head.height

    @property
    def inverted(self) -> np.ndarray:
        return self.head.inverted

    def __len__(self) -> int:
        return self.head.count

    def payload(self, number: int) -> bytes:
        """Payload ``number``: image ``number``'s, or block ``number``'s in an archive of blocks."""
        return self.body[self.offsets[number] : self.offsets[number + 1]]

    def __getitem__(self, index: int) -> np.ndarray:
        """Decode image ``index`` alone (random access; in an archive of blocks, its block)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"archive holds {len(self)} images")
        index %= len(self)
        number = index // self.head.block if self.head.block else index
        images = decode_payloads(self.head, number, [self.payload(number)])
        return images[index - self.head.images_of(number).start]

    def decode_all(self) -> list[np.ndarray]:
        """Every image."""
        return decode_payloads(self.head, 0, [self.payload(i) for i in range(len(self.offsets) - 1)])

    @property
    def payload_bytes(self) -> int:
        return len(self.body)


def is_archive(data: bytes) -> bool:
    """Whether ``data`` starts like an archive (its first two bytes suffice: no single-file version is 12)."""
    return len(data) >= 2 and data[:2] == MAGIC[:2]


def open_archive(data: bytes) -> Archive:
    """Parse and check an archive in memory (both checksums: reading bytes is cheap, decoding is what random
    access saves)."""
    stream = io.BytesIO(bytes(data))
    head = read_head(stream.read)
    body = b"".join(b"".join(batch) for batch in payload_batches(stream.read, head, len(head.lengths)))
    offsets = np.concatenate([[0], np.cumsum(head.lengths)])
    return Archive(head, offsets, body)


def unpack(data: bytes) -> list[np.ndarray]:
    """Every image of an archive."""
    return open_archive(data).decode_all()
