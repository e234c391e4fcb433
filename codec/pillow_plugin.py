"""Pillow plugin: ``Image.open("x.aec")`` and ``img.save("x.aec", quality=...)``.

Registered when :mod:`codec` is imported. ``save`` takes ``quality``,
``effort``, ``max_error`` (every pixel within K grey levels) and ``lossless``
(as Pillow's WebP plugin does; the same as ``max_error=0``).

>>> import io, numpy as np, codec
>>> from PIL import Image
>>> buffer = io.BytesIO()
>>> Image.new("L", (28, 28)).save(buffer, format="AEC", quality=2)
>>> Image.open(buffer).size
(28, 28)
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from .bitstream import MAGIC, SUPPORTED_VERSIONS

FORMAT = "AEC"
MIME = "image/x-aec"
EXTENSION = ".aec"


def _accept(prefix: bytes) -> bool:
    return len(prefix) > len(MAGIC) and prefix[: len(MAGIC)] == MAGIC and prefix[len(MAGIC)] >> 4 in SUPPORTED_VERSIONS


class AecImageFile(ImageFile.ImageFile):
    """An ``.aec`` file opened through Pillow: 8-bit grayscale ("L")."""

    format = FORMAT
    format_description = "aec learned image codec"

    def _open(self) -> None:
        from . import api
        from .bitstream import MAX_FILE_BYTES
        from .errors import CodecError

        assert self.fp is not None
        data = self.fp.read(MAX_FILE_BYTES + 1)
        try:
            if len(data) > MAX_FILE_BYTES:
                raise CodecError(f"over the {MAX_FILE_BYTES >> 20} MiB an .aec file can hold")
            info = api.inspect(data)
        except CodecError as exc:
            raise SyntaxError(str(exc)) from None
        self._aec_data = data
        self._mode = "L"
        self._size = (info.header.width, info.header.height)
        self.info["quality"] = info.header.level
        header = info.header
        bounded = header.pixel_model or header.refined  # every pixel within a maximum error (0: lossless)
        self.info["lossless"] = bounded and not header.max_error
        if bounded:
            self.info["max_error"] = header.max_error or 0
        self.tile = [ImageFile._Tile(FORMAT, (0, 0, *self._size), 0, None)]


class AecDecoder(ImageFile.PyDecoder):
    """Decodes a whole ``.aec`` file at once."""

    _pulls_fd = True

    def decode(self, buffer: bytes | bytearray | memoryview | Image.SupportsArrayInterface) -> tuple[int, int]:
        from . import api
        from .bitstream import MAX_FILE_BYTES
        from .errors import CodecError

        assert self.fd is not None
        self.fd.seek(0)
        try:
            pixels = api.decompress(self.fd.read(MAX_FILE_BYTES + 1))
        except CodecError as exc:
            raise OSError(str(exc)) from None
        self.set_as_raw(pixels.tobytes())
        return -1, 0


def _save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from . import api
    from .errors import ArgumentError
    from .models import DEFAULT_LEVEL

    quality = image.encoderinfo.get("quality", DEFAULT_LEVEL)
    effort = image.encoderinfo.get("effort", api.DEFAULT_EFFORT)
    lossless = bool(image.encoderinfo.get("lossless", False))
    max_error = image.encoderinfo.get("max_error", 0 if lossless else None)
    if lossless and max_error != 0:
        raise ArgumentError(f"lossless=True and max_error={max_error} ask for different files; give one")
    fp.write(api.compress(image, quality=quality, effort=effort, max_error=max_error))


def register() -> None:
    """Make Pillow open and save ``.aec`` files."""
    Image.register_open(FORMAT, AecImageFile, _accept)
    Image.register_decoder(FORMAT, AecDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)
