"""The ``.aec`` container: header, payload and checksum (see ``docs/format.md``).

Layout of format version 4 (5 bytes of container on a 28x28 digit)::

    magic      1 byte    0xAE
    version    4 bits    high nibble of byte 1 (4)
    flags      4 bits    low nibble: bit 0 inverted polarity, bit 1 explicit size
    level      4 bits    low nibble of byte 2
    model id   4 bits    high nibble of byte 2: the first hex digit of the 12-bit model id
    [width, height]      unsigned LEB128 each, only with the explicit-size flag
    payload    ...       entropy-coded latents (length implied by the file size)
    crc        2 bytes   CRC-16/XMODEM of the whole 12-bit model id (2 bytes, little-endian)
                         followed by every byte before the crc; little-endian

The model id's other 8 bits are implied: the decoder tries the ids of the
level's models it has that start with the digit, and the one whose checksum
matches is the model (like the pseudo-header in TCP's checksum). A wrong model
differs from the right one in at most 12 consecutive bits, a burst CRC-16
always detects. Version 3 (still read) stored all 12 bits in a 16-bit word
(level in bits 0-3) and checksummed only the file's bytes: 6 bytes of container.

Without the explicit-size flag the image is 28x28.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import CorruptFileError, FormatError, ModelMismatchError
from .restore import CLASSES, COEFFICIENTS, Restoration, unzigzag, zigzag

MAGIC = b"\xae"
#: An .aecs archive starts with the same byte; see :mod:`codec.archive`.
ARCHIVE_MAGIC = b"\xae\xc0AS"
VERSION = 4
#: The version of refined files (the refinement layer, ``codec.refine``); plain files stay version 4.
REFINED_VERSION = 5
#: Version 6: latents off the model's home grid coded in adaptive contexts (``codec.contexts``), plain or refined.
CONTEXT_VERSION = 6
#: Version 7: files of the pixel model (``codec.lossless``), lossless or within a bound: level 0, its model's id.
PIXEL_VERSION = 7
#: Version 8: version 5's files without an autoencoder layer, coded by the predictive coder (``codec.predictive``).
PREDICTIVE_VERSION = 8
#: Version 9: a plain file of latents coding the image at a coarser scale (``codec.resolution``); one byte after the
#: size gives the scale and whether the latents are coded in contexts (as version 6's) or with the tables (as 4's).
SCALED_VERSION = 9
#: Version 10: latents off the home grid coded in contexts that start at fitted tables (``codec.context_tables``),
#: plain, refined or scaled; the scale byte is always there, and the checksum covers the tables' id too.
FITTED_VERSION = 10
#: Version 11: version 8's file with a restoration after the predictive model's id (``codec.restore``): filters
#: the encoder fitted bring the decoded image closer, every pixel within twice the maximum error.
RESTORED_VERSION = 11
SUPPORTED_VERSIONS = (3, 4, 5, 6, 7, 8, 9, 10, 11)
#: The factors a scaled file may name (what ``codec.resolution`` codes at), stored as their base-2 logarithm.
FILE_SCALES = (2, 4)
#: Version 9's scale byte: bits 0-3 log2 of the scale, bit 4 latents in contexts; the other bits are 0.
_SCALE_IN_CONTEXT = 0x10
DEFAULT_SIZE = (28, 28)
#: The largest image the format accepts, per side and in pixels.
MAX_SIDE = 8192
#: (2^24 pixels: a 4096x4096 image; aec 0.10 and older accept 2^20.)
MAX_PIXELS = 1 << 24
#: The largest file: 32 bits a pixel of the largest image. A model codes at most about one latent per
#: pixel in at most 16 bits (its tables' precision), and a lossless refinement of pure noise takes about
#: 9 bits a pixel (checked against every shipped model by the tests, enforced by :func:`pack` and
#: :func:`unpack`).
MAX_FILE_BYTES = 64 << 20

FLAG_INVERTED = 0x1
FLAG_EXPLICIT_SIZE = 0x2
#: Version 5: a refinement layer follows (maximum error and refinement model in the header).
FLAG_REFINED = 0x4
_KNOWN_FLAGS = {3: FLAG_INVERTED | FLAG_EXPLICIT_SIZE, 4: FLAG_INVERTED | FLAG_EXPLICIT_SIZE}
_KNOWN_FLAGS[5] = _KNOWN_FLAGS[6] = _KNOWN_FLAGS[8] = _KNOWN_FLAGS[11] = _KNOWN_FLAGS[4] | FLAG_REFINED
_KNOWN_FLAGS[7] = _KNOWN_FLAGS[4] | FLAG_REFINED  # version 7: bit 2 says a maximum error (1 byte) follows
_KNOWN_FLAGS[9] = _KNOWN_FLAGS[4]
_KNOWN_FLAGS[10] = _KNOWN_FLAGS[5]
#: Bytes of fixed header per version: magic, version/flags, level and model id (12 or 4 bits).
_FIXED = {3: len(MAGIC) + 3, **{version: len(MAGIC) + 2 for version in (4, 5, 6, 7, 8, 9, 10, 11)}}
#: The largest maximum error a refined file carries (its step 2K + 1 stays under 256).
MAX_REFINE_ERROR = 127
MAX_LEVEL = 0xF
MODEL_ID_BITS = 12
CRC_BYTES = 2
#: The smallest possible file: fixed header and checksum, empty payload.
MIN_FILE = _FIXED[VERSION] + CRC_BYTES
#: The model ids a decoder has for a level (installed and retired): what a version 4 file is checked against.
#: Level 0 asks for the lossless models' ids (version 7).
KnownIds = Callable[[int], Iterable[int]]
#: The ids of the context tables a decoder has (installed and retired): what a version 10 file is checked against.
KnownTables = Callable[[], Iterable[int]]


@dataclass(frozen=True)
class Header:
    """What a ``.aec`` file says about its image, before the payload."""

    level: int
    model_id: int
    width: int = 28
    height: int = 28
    inverted: bool = False
    version: int = VERSION
    #: Refined files (version 5): the maximum error of every pixel and the refinement model's id (version 8: the
    #: predictive model's).
    max_error: int | None = None
    refine_id: int = 0
    #: Scaled files (version 9): the factor the latents' image is smaller by, and whether they are coded in
    #: contexts (version 6's always are, versions 4 and 5's never).
    scale: int = 1
    in_context: bool = False
    #: Version 10: the id of the context tables its latents' contexts start at.
    contexts_id: int = 0
    #: Version 11: its restoration, filtering at least one class (a file that restores nothing is version 8's).
    restoration: Restoration | None = None

    def __post_init__(self) -> None:
        check_size(self.width, self.height)
        if self.version == FITTED_VERSION:
            if self.level == 0 or self.scale not in (1, *FILE_SCALES) or (self.refined and self.scale != 1):
                raise FormatError(
                    f"a version {FITTED_VERSION} file has a level, a scale of 1, 2 or 4, and no refinement when scaled"
                )
            if self.in_context or not 0 <= self.contexts_id < 1 << MODEL_ID_BITS:
                raise FormatError(f"context tables' id {self.contexts_id} does not fit the format")
        elif self.contexts_id:
            raise FormatError(f"only a version {FITTED_VERSION} file names context tables")
        elif self.version == SCALED_VERSION:
            if self.scale not in FILE_SCALES or self.level == 0 or self.max_error is not None:
                raise FormatError(
                    f"a scaled file (version {SCALED_VERSION}) has a level, no refinement and a scale of "
                    f"{' or '.join(map(str, FILE_SCALES))}"
                )
        elif self.scale != 1 or self.in_context:
            raise FormatError(f"only a scaled file (version {SCALED_VERSION}) names a scale or its latents' coding")
        if not 0 <= self.level <= MAX_LEVEL:
            raise FormatError(f"level {self.level} does not fit the format")
        if not 0 <= self.model_id < 1 << MODEL_ID_BITS:
            raise FormatError(f"model id {self.model_id} does not fit the format")
        if self.refined:
            if self.version < REFINED_VERSION:
                raise FormatError(f"a refined file needs format version {REFINED_VERSION}")
            if not 0 <= self.max_error <= MAX_REFINE_ERROR:  # type: ignore[operator]
                raise FormatError(f"maximum error {self.max_error} does not fit the format (0..{MAX_REFINE_ERROR})")
            if not 0 <= self.refine_id < 1 << MODEL_ID_BITS:
                raise FormatError(f"refinement model id {self.refine_id} does not fit the format")
        if self.pixel_model:
            if self.level or self.refine_id:
                raise FormatError(f"a pixel model's file (version {PIXEL_VERSION}) has level 0 and no refinement")
            if self.max_error is not None and not 1 <= self.max_error <= MAX_REFINE_ERROR:
                raise FormatError(f"a pixel model's maximum error is 1..{MAX_REFINE_ERROR} (none: lossless)")
            return
        if self.predictive and (self.level or not self.refined):
            raise FormatError(f"a predictive file (version {PREDICTIVE_VERSION}) has level 0 and a maximum error")
        if self.version == RESTORED_VERSION:
            if not self.max_error or self.restoration is None or not self.restoration.active:
                raise FormatError(
                    f"a restored file (version {RESTORED_VERSION}) has a maximum error of 1 or more and filters"
                )
        elif self.restoration is not None:
            raise FormatError(f"only a restored file (version {RESTORED_VERSION}) carries a restoration")
        if self.level == 0 and (not self.refined or self.model_id):
            raise FormatError("level 0 (no autoencoder layer) is for refined files only, with model id 0")
        if self.level == 0 and CONTEXT_VERSION <= self.version < PREDICTIVE_VERSION:
            raise FormatError(f"format version {self.version} carries latents: level 0 is a version 5 or 8 file")

    @property
    def latents_in_context(self) -> bool:
        """Whether the latents are coded in adaptive contexts (``codec.contexts``) rather than with the tables."""
        return self.version in (CONTEXT_VERSION, FITTED_VERSION) or self.in_context

    @property
    def coded_size(self) -> tuple[int, int]:
        """(height, width) of the image the latents code: the image's, or a scaled file's coarse image's."""
        return coarse_size(self.height, self.width, self.scale)

    @property
    def refined(self) -> bool:
        """Whether a refinement layer follows the latents (or stands alone, at level 0)."""
        return self.max_error is not None and not self.pixel_model

    @property
    def predictive(self) -> bool:
        """Whether the file is the predictive coder's (version 8, or 11 restored): no latents, every pixel exact or
        within ``max_error`` (restored: twice it)."""
        return self.version in (PREDICTIVE_VERSION, RESTORED_VERSION)

    @property
    def pixel_model(self) -> bool:
        """Whether the file is the pixel model's (version 7): no latents, every pixel exact or within
        ``max_error``."""
        return self.version == PIXEL_VERSION


def coarse_size(height: int, width: int, scale: int) -> tuple[int, int]:
    """The size of the coarse image a scaled file (``scale`` 1: any file) of a (height, width) image codes."""
    return -(-height // scale), -(-width // scale)


def check_size(width: int, height: int) -> None:
    """Refuse sizes the format does not carry, before anything is allocated."""
    if width < 1 or height < 1:
        raise FormatError(f"image size {width}x{height} is empty")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise FormatError(f"image size {width}x{height} is over the limit ({MAX_SIDE} per side, {MAX_PIXELS} pixels)")


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM (polynomial 0x1021, initial value 0)."""
    return binascii.crc_hqx(data, 0)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int, end: int, longest: int = 3, what: str = "size field") -> tuple[int, int]:
    """An unsigned LEB128 value of at most ``longest`` bytes (3 carry 21 bits, more than MAX_SIDE needs)."""
    value = shift = 0
    for i in range(longest):
        if pos >= end:
            raise FormatError("header is truncated" if what == "size field" else f"{what} is truncated")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise FormatError(f"{what} is not minimally encoded")
            return value, pos
    raise FormatError(f"{what} is too long")


def pack_model(level: int, model_id: int) -> bytes:
    """Level (4 bits) and model id (12 bits) as one little-endian 16-bit word."""
    return (level | model_id << 4).to_bytes(2, "little")


def unpack_model(data: bytes) -> tuple[int, int]:
    """Inverse of :func:`pack_model`: (level, model id)."""
    word = int.from_bytes(data[:2], "little")
    return word & 0xF, word >> 4


def header_bytes(header: Header) -> bytes:
    """The bytes of ``header`` (without the checksum), in the header's format version."""
    explicit = (header.width, header.height) != DEFAULT_SIZE
    flags = (FLAG_INVERTED if header.inverted else 0) | (FLAG_EXPLICIT_SIZE if explicit else 0)
    flags |= FLAG_REFINED if header.max_error is not None else 0
    if header.version >= 4:
        model = bytes([header.level | (header.model_id >> (MODEL_ID_BITS - 4)) << 4])
    else:
        model = pack_model(header.level, header.model_id)
    out = MAGIC + bytes([(header.version << 4) | flags]) + model
    if explicit:
        out += _varint(header.width) + _varint(header.height)
    if header.refined:
        out += bytes([header.max_error]) + header.refine_id.to_bytes(2, "little")  # type: ignore[list-item]
    elif header.max_error is not None:  # a pixel model's file within a bound
        out += bytes([header.max_error])
    if header.version in (SCALED_VERSION, FITTED_VERSION):
        out += bytes([header.scale.bit_length() - 1 | (_SCALE_IN_CONTEXT if header.in_context else 0)])
    if header.restoration is not None:
        mask, *coefficients = header.restoration.fields()
        out += bytes([mask]) + b"".join(_varint(zigzag(v)) for v in coefficients)
    return out


def _read_restoration(data: bytes, pos: int, end: int) -> tuple[Restoration, int]:
    """A restored file's restoration, read at ``pos`` (the mask, then its classes' coefficients as zigzag LEB128, at
    most 3 bytes each); and the position after it."""
    if pos >= end:
        raise FormatError("header is truncated")
    mask, pos = data[pos], pos + 1
    fields = [mask]
    for _ in range(COEFFICIENTS * bin(mask & ((1 << CLASSES) - 1)).count("1")):
        value, pos = _read_varint(data, pos, end, 3, "restoration")
        fields.append(unzigzag(value))
    return Restoration.from_fields(tuple(fields)), pos


def join_refined(base: bytes, refinement: bytes, has_base: bool) -> bytes:
    """A refined file's payload: the latents' stream (its length first, LEB128) if any, then the refinement's."""
    return _varint(len(base)) + base + refinement if has_base else refinement


def split_refined(payload: bytes, has_base: bool) -> tuple[bytes, bytes]:
    """Inverse of :func:`join_refined`: (latents' stream, refinement stream)."""
    if not has_base:
        return b"", payload
    try:  # 4 bytes carry 28 bits, more than MAX_FILE_BYTES needs
        value, pos = _read_varint(payload, 0, len(payload), 4, "refined payload's length field")
    except FormatError as exc:
        raise CorruptFileError(str(exc)) from None
    if pos + value > len(payload):
        raise CorruptFileError("refined payload is shorter than its latents' stream")
    return payload[pos : pos + value], payload[pos + value :]


def checksum(version: int, model_id: int, body: bytes, contexts_id: int = 0) -> int:
    """The file's CRC-16 over ``body`` (every byte before it); from version 4 the model id comes first, in version
    10 followed by the context tables' id."""
    if version < 4:
        return crc16(body)
    tables = contexts_id.to_bytes(2, "little") if version == FITTED_VERSION else b""
    return crc16(model_id.to_bytes(2, "little") + tables + body)


def container_bytes(width: int, height: int, inverted: bool = False) -> int:
    """Bytes of a version 4 file around its payload: header and checksum (5 for a 28x28 image)."""
    return len(header_bytes(Header(1, 0, width, height, inverted))) + CRC_BYTES


def pack(header: Header, payload: bytes) -> bytes:
    """A complete file: header, payload, checksum."""
    body = header_bytes(header) + payload
    if len(body) + CRC_BYTES > MAX_FILE_BYTES:
        raise FormatError(f"file would be {len(body) + CRC_BYTES:,} bytes, over the format's {MAX_FILE_BYTES:,}")
    crc = checksum(header.version, header.model_id, body, header.contexts_id)
    return body + crc.to_bytes(CRC_BYTES, "little")


def _implied_model(
    version: int, level: int, digit: int, body: bytes, stored: int, known_ids: KnownIds | None, tables: KnownTables
) -> tuple[int, int]:
    """The model id of a version 4 file: the known one with its first hex ``digit`` whose checksum matches
    (level 0: a lossless model's); with it, a version 10 file's context tables' id among ``tables()``."""
    # Tried in the order given, so that ids known only by reading more (former models) are asked for last.
    ids = (i for i in (known_ids(level) if known_ids else ()) if i >> (MODEL_ID_BITS - 4) == digit)
    tried = False
    for model_id in ids:
        for contexts_id in tables() if version == FITTED_VERSION else (0,):
            tried = True
            if checksum(version, model_id, body, contexts_id) == stored:
                return model_id, contexts_id
    kind = f"a level {level}" if level else "a pixel"
    if tried:
        raise CorruptFileError(
            f"file is corrupted (checksum mismatch), or coded with {kind} model this installation lacks"
        )
    coded = f"at level {level} with a model" if level else "with a pixel model"
    raise ModelMismatchError(f"file was coded {coded} {digit:x}.. that this installation lacks (or it is corrupted)")


def _checked_model(
    version: int, data: bytes, stored: int, known_ids: KnownIds | None, known_tables: KnownTables | None
) -> tuple[int, int, int]:
    """The (level, model id, context tables' id) of a file whose body is ``data`` and whose checksum is
    ``stored``, checked."""
    if version < 4:
        if crc16(data) != stored:
            raise CorruptFileError("file is corrupted (checksum mismatch)")
        return (*unpack_model(data[2:4]), 0)
    level, digit = data[2] & 0x0F, data[2] >> 4
    if version == PIXEL_VERSION and level:
        raise FormatError(f"a pixel model's file (version {PIXEL_VERSION}) names level {level}, not 0")
    if version != PIXEL_VERSION and version >= REFINED_VERSION and level == 0:  # no autoencoder layer: id 0
        if digit or checksum(version, 0, data) != stored:
            raise CorruptFileError("file is corrupted (checksum mismatch)")
        return 0, 0, 0
    tables = known_tables or (lambda: ())
    if version == FITTED_VERSION and next(iter(tables()), None) is None:  # the installed tables are read first
        raise ModelMismatchError(
            f"file's latents start at context tables this installation lacks (format version {FITTED_VERSION})"
        )
    return (level, *_implied_model(version, level, digit, data, stored, known_ids, tables))


def _bound(version: int, flags: int, data: bytes, pos: int, end: int) -> tuple[int | None, int, int]:
    """A refined file's (maximum error, refinement model id), or a bounded pixel model file's maximum error, read at
    ``pos``; and the position after them."""
    if not flags & FLAG_REFINED:
        return None, 0, pos
    size = 1 if version == PIXEL_VERSION else 3
    if pos + size > end:
        raise FormatError("header is truncated")
    return data[pos], int.from_bytes(data[pos + 1 : pos + size], "little"), pos + size


def unpack(
    data: bytes, known_ids: KnownIds | None = None, known_tables: KnownTables | None = None
) -> tuple[Header, bytes]:
    """Parse and check a file; returns its header and payload.

    Checks, in order: magic, version, checksum, flags and sizes. A version 4
    file's checksum covers its model id, of which it stores the first hex digit:
    ``known_ids`` gives the ids to try for a level (none: such a file is
    refused as coded with a model this installation lacks); a version 10 file's
    also covers the id of its context tables, one of ``known_tables``. Raises
    :class:`FormatError` (:class:`CorruptFileError` for a checksum mismatch,
    :class:`ModelMismatchError` when no model of the level could have coded it).
    """
    data = bytes(data)
    if len(data) >= 2 and data[:2] == ARCHIVE_MAGIC[:2]:
        raise FormatError("an .aecs archive, not a single image (use 'aec unpack')")
    if len(data) > MAX_FILE_BYTES:
        raise FormatError(f"file is {len(data):,} bytes, over the format's {MAX_FILE_BYTES:,}")
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise FormatError("not an .aec file (bad magic)")
    if len(data) < 2:
        raise CorruptFileError(f"file is truncated ({len(data)} bytes)")
    version, flags = data[1] >> 4, data[1] & 0x0F
    if version not in SUPPORTED_VERSIONS:
        raise FormatError(
            f"unsupported format version {version} (this aec reads version {', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    pos = _FIXED[version]
    if len(data) < pos + CRC_BYTES:
        raise CorruptFileError(f"file is truncated ({len(data)} bytes, at least {pos + CRC_BYTES} needed)")
    body_end = len(data) - CRC_BYTES
    stored = int.from_bytes(data[body_end:], "little")
    level, model_id, contexts_id = _checked_model(version, data[:body_end], stored, known_ids, known_tables)
    if flags & ~_KNOWN_FLAGS[version]:
        raise FormatError(f"unknown flags 0x{flags:x} in header")
    width, height = DEFAULT_SIZE
    if flags & FLAG_EXPLICIT_SIZE:
        width, pos = _read_varint(data, pos, body_end)
        height, pos = _read_varint(data, pos, body_end)
        if (width, height) == DEFAULT_SIZE:
            raise FormatError("explicit size equals the default size")
    max_error, refine_id, pos = _bound(version, flags, data, pos, body_end)
    scale, in_context = 1, False
    if version in (SCALED_VERSION, FITTED_VERSION):
        if pos >= body_end:
            raise FormatError("header is truncated")
        code, pos = data[pos], pos + 1
        scale, in_context = 1 << (code & 0x0F), bool(code & _SCALE_IN_CONTEXT)
        bits = 0x0F | _SCALE_IN_CONTEXT if version == SCALED_VERSION else 0x0F
        scales = FILE_SCALES if version == SCALED_VERSION else (1, *FILE_SCALES)
        if code & ~bits or scale not in scales:
            raise FormatError(f"unknown scale byte 0x{code:02x} in header")
    restoration = None
    if version == RESTORED_VERSION:
        restoration, pos = _read_restoration(data, pos, body_end)
    header = Header(
        level=level,
        model_id=model_id,
        width=width,
        height=height,
        inverted=bool(flags & FLAG_INVERTED),
        version=version,
        max_error=max_error,
        refine_id=refine_id,
        scale=scale,
        in_context=in_context,
        contexts_id=contexts_id,
        restoration=restoration,
    )
    return header, data[pos:body_end]
