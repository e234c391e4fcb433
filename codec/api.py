"""The Python API: ``compress`` an image to ``.aec`` bytes, ``decompress`` them back.

>>> import numpy as np, codec
>>> digit = np.zeros((28, 28), np.uint8); digit[6:22, 12:16] = 255
>>> data = codec.compress(digit, quality=4)
>>> codec.decompress(data).shape
(28, 28)
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from . import bitstream, choice, coder, models, search
from .bitstream import Header
from .errors import ArgumentError, ModelError, ModelMismatchError
from .images import ImageLike, Prepared, pad_to_stride, prepare
from .limits import images_per_batch
from .models import DEFAULT_LEVEL, FrozenModel, available_levels, load_model, model_for_decoding
from .search import DEFAULT_EFFORT, EFFORTS


@dataclass(frozen=True)
class FileInfo:
    """What ``aec info`` shows about a file."""

    header: Header
    file_bytes: int
    payload_bytes: int

    @property
    def pixels(self) -> int:
        return self.header.width * self.header.height

    @property
    def bpp(self) -> float:
        return 8.0 * self.file_bytes / self.pixels

    @property
    def payload_bpp(self) -> float:
        return 8.0 * self.payload_bytes / self.pixels


def _encode_group(
    model: FrozenModel, padded: np.ndarray, size: tuple[int, int], effort: int, lmbda: float
) -> list[bytes]:
    """Payloads of same-size images padded to (N, H, W) uint8, of ``size`` (height, width) before padding,
    searched at ``lmbda``."""
    payloads: list[bytes] = []
    height, width = size
    step = images_per_batch(height * width)
    for first in range(0, len(padded), step):
        images = padded[first : first + step] / np.float32(255.0)
        latents = model.analyse(images)
        symbols = search.refine(
            model.prior.to_symbols(latents),
            latents,
            images[:, :height, :width],
            model.prior,
            model.synthesise,
            lmbda,
            EFFORTS[effort],
        )
        layout = model.prior.layout(*latents.shape[-2:])
        for stream in model.prior.streams(symbols):
            payloads.append(coder.encode(stream, layout))
    return payloads


def _integer(value: object, name: str) -> int:
    """``value`` as an int (numpy integers included); :class:`ArgumentError` for anything else."""
    if isinstance(value, bool):
        raise ArgumentError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ArgumentError(f"{name} must be an integer, got {value!r}") from None


def check_effort(effort: object) -> int:
    """``effort`` as an int; :class:`ArgumentError` for an effort the encoder does not have."""
    value = _integer(effort, "effort")
    if value not in EFFORTS:
        raise ArgumentError(f"unknown effort {value}; efforts are {min(EFFORTS)} to {max(EFFORTS)}")
    return value


def check_quality(quality: object) -> int:
    """``quality`` as an int (numpy integers included); :class:`ArgumentError` for a non-integer.

    A level that is not installed is the :class:`ModelError` of :func:`load_model`, where the model is loaded.

    >>> check_quality(np.uint8(8))
    8
    """
    return _integer(quality, "quality")


def compress_many(
    images: Iterable[ImageLike], quality: int = DEFAULT_LEVEL, effort: int = DEFAULT_EFFORT, choose: bool = True
) -> list[bytes]:
    """``compress`` for many images at once: the same bytes, batched for speed.

    ``choose=False`` codes every image with the level's own model (no choice among neighbouring levels).

    >>> import numpy as np
    >>> blank = np.zeros((28, 28), np.uint8)
    >>> compress_many([blank, blank]) == [compress(blank)] * 2
    True
    """
    return encode_prepared([prepare(image) for image in images], quality, effort, choose)


def _by_size(prepared: Sequence[Prepared]) -> list[list[int]]:
    """Indices of the images, grouped by size (each group is coded as one batch)."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, item in enumerate(prepared):
        groups[item.pixels.shape].append(index)
    return list(groups.values())


def encode_payloads(
    prepared: Sequence[Prepared],
    quality: int = DEFAULT_LEVEL,
    effort: int = DEFAULT_EFFORT,
    lmbda: float | None = None,
) -> tuple[FrozenModel, list[bytes]]:
    """The level's model and the entropy-coded payload of each prepared image (no container).

    Every image is coded with this level's model; ``lmbda`` is the search's
    lambda (None: the level's own).
    """
    quality, effort = check_quality(quality), check_effort(effort)
    model = load_model(quality)
    lmbda = model.search_lambda if lmbda is None else lmbda
    out: list[bytes] = [b""] * len(prepared)
    for indices in _by_size(prepared):
        padded = pad_to_stride(np.stack([prepared[i].pixels for i in indices]), model.stride)
        size = prepared[indices[0]].pixels.shape
        for i, payload in zip(indices, _encode_group(model, padded, size, effort, lmbda)):
            out[i] = payload
    return model, out


def choose_levels(prepared: Sequence[Prepared], quality: int, effort: int = DEFAULT_EFFORT) -> list[int]:
    """The level whose model codes each image asked for at ``quality`` (:mod:`codec.choice`).

    Effort 0 codes every image with the level's own model.
    """
    quality, effort = check_quality(quality), check_effort(effort)
    lmbda = load_model(quality).search_lambda
    levels = choice.candidates(quality, available_levels()) if effort > 0 and lmbda > 0 else [quality]
    if len(levels) == 1:
        return [quality] * len(prepared)
    candidates = [load_model(level) for level in levels]
    out = [quality] * len(prepared)
    for indices in _by_size(prepared):
        if not choice.applies(*prepared[indices[0]].pixels.shape):
            continue
        images = np.stack([prepared[i].pixels for i in indices]) / np.float32(255.0)
        for i, pick in zip(indices, choice.cheapest(candidates, images, lmbda)):
            out[i] = levels[pick]
    return out


def encode_prepared(
    prepared: Sequence[Prepared], quality: int = DEFAULT_LEVEL, effort: int = DEFAULT_EFFORT, choose: bool = True
) -> list[bytes]:
    """Code images already brought to the model's form by :func:`codec.images.prepare`.

    With ``choose`` (and effort 1 and up) each image may be coded with the model
    of a neighbouring level (:func:`choose_levels`), at this level's lambda; the
    file names the level it was coded with.
    """
    quality, effort = check_quality(quality), check_effort(effort)
    chosen = choose_levels(prepared, quality, effort) if choose else [quality] * len(prepared)
    lmbda = load_model(quality).search_lambda
    out: list[bytes] = [b""] * len(prepared)
    for level in sorted(set(chosen)):
        indices = [i for i, q in enumerate(chosen) if q == level]
        model, payloads = encode_payloads([prepared[i] for i in indices], level, effort, lmbda)
        for i, payload in zip(indices, payloads):
            height, width = prepared[i].pixels.shape
            header = Header(
                level=level, model_id=model.model_id, width=width, height=height, inverted=prepared[i].inverted
            )
            out[i] = bitstream.pack(header, payload)
    return out


def compress(image: ImageLike, quality: int = DEFAULT_LEVEL, effort: int = DEFAULT_EFFORT) -> bytes:
    """Code ``image`` (a PIL image of any mode, or a 2-D uint8 array) as ``.aec`` bytes.

    ``quality`` is a shipped level (see :func:`levels`); higher is better and larger.
    ``effort`` (0 to 3) is how hard the encoder searches for latents that cost
    fewer bits for the quality (:mod:`codec.search`); 0 rounds them, the fastest.

    >>> import numpy as np
    >>> data = compress(np.zeros((28, 28), np.uint8), quality=1)
    >>> data[0] == 0xAE, len(data) < 20
    (True, True)
    """
    return compress_many([image], quality, effort)[0]


def _model_for(header: Header) -> FrozenModel:
    try:
        model = model_for_decoding(header.level, header.model_id)
    except ModelError:
        raise ModelMismatchError(
            f"file was coded at level {header.level}, which this installation lacks "
            f"(levels {', '.join(map(str, available_levels())) or 'none'})"
        ) from None
    if model.model_id != header.model_id:
        raise ModelMismatchError(
            f"file was coded with model {header.model_id:03x}, installed level {header.level} "
            f"is model {model.model_id:03x}"
        )
    return model


def decode_latents(data: bytes) -> tuple[Header, np.ndarray]:
    """Parse a file and entropy-decode its integer latents (C, H/s, W/s): the bit-exact part."""
    header, payload = bitstream.unpack(data, models.known_model_ids)
    return header, decode_payload(header, payload)


def decode_payload(header: Header, payload: bytes) -> np.ndarray:
    """Entropy-decode the integer latents of a payload described by ``header``."""
    model = _model_for(header)
    gh, gw = -(-header.height // model.stride), -(-header.width // model.stride)
    stream = coder.decode(payload, model.prior.layout(gh, gw))
    return model.prior.from_symbols(model.prior.symbols_of(stream, gh, gw))


def _to_pixels(images: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def decompress_many(files: Sequence[bytes], dtype: type = np.float32) -> list[np.ndarray]:
    """``decompress`` for many files at once: the same pixels, batched for speed.

    >>> import numpy as np
    >>> files = compress_many([np.zeros((28, 28), np.uint8), np.zeros((5, 9), np.uint8)])
    >>> [image.shape for image in decompress_many(files)]
    [(28, 28), (5, 9)]
    """
    return reconstruct([decode_latents(data) for data in files], dtype=dtype)


def reconstruct(decoded: Sequence[tuple[Header, np.ndarray]], dtype: type = np.float32) -> list[np.ndarray]:
    """Images from headers and latents as :func:`decode_latents` gives them, batched."""
    groups: dict[tuple[int, int, int, int], list[int]] = defaultdict(list)
    for index, (header, _) in enumerate(decoded):
        groups[(header.level, header.model_id, header.height, header.width)].append(index)
    out: list[np.ndarray] = [np.zeros(0, np.uint8)] * len(decoded)
    for (level, model_id, height, width), indices in groups.items():
        model = model_for_decoding(level, model_id)
        step = images_per_batch(height * width)
        for first in range(0, len(indices), step):
            chunk = indices[first : first + step]
            latents = np.stack([decoded[i][1] for i in chunk])
            pixels = _to_pixels(model.synthesise(latents, dtype=dtype))[:, :height, :width]
            for i, image in zip(chunk, pixels):
                out[i] = 255 - image if decoded[i][0].inverted else np.ascontiguousarray(image)
    return out


def decompress(data: bytes) -> np.ndarray:
    """Decode ``.aec`` bytes to an (H, W) uint8 array.

    >>> import numpy as np
    >>> image = decompress(compress(np.full((30, 40), 255, np.uint8)))
    >>> image.shape, image.dtype
    ((30, 40), dtype('uint8'))
    """
    return decompress_many([data])[0]


def inspect(data: bytes) -> FileInfo:
    """Check a file and describe it without decoding the image.

    >>> import numpy as np
    >>> info = inspect(compress(np.zeros((28, 28), np.uint8), quality=2, effort=0))
    >>> info.header.level, info.header.width, info.file_bytes - info.payload_bytes
    (2, 28, 5)
    """
    header, payload = bitstream.unpack(data, models.known_model_ids)
    return FileInfo(header=header, file_bytes=len(data), payload_bytes=len(payload))


def levels() -> list[int]:
    """The installed quality levels, lowest rate first.

    >>> levels()[0]
    1
    """
    return available_levels()
