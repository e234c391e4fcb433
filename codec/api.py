"""The Python API: ``compress`` an image to ``.aec`` bytes, ``decompress`` them back.

>>> import numpy as np, codec
>>> digit = np.zeros((28, 28), np.uint8); digit[6:22, 12:16] = 255
>>> data = codec.compress(digit, quality=4)
>>> codec.decompress(data).shape
(28, 28)
"""

from __future__ import annotations

import contextlib
import operator
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import cast

import numpy as np

from . import bitstream, choice, coder, contexts, lossless, models, refine, search
from .bitstream import Header
from .errors import ArgumentError, FormatError, ModelError, ModelMismatchError
from .images import ImageLike, Prepared, pad_to_stride, prepare
from .limits import images_per_batch
from .models import DEFAULT_LEVEL, FrozenModel, available_levels, load_general, load_model, model_for_decoding
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


@dataclass(frozen=True)
class Payload:
    """One image's entropy-coded latents, and whether they are coded in contexts (:mod:`codec.contexts`,
    format version 6) rather than with the model's tables (versions 4 and 5)."""

    data: bytes
    in_context: bool = False


def _encode_group(
    model: FrozenModel, padded: np.ndarray, size: tuple[int, int], effort: int, lmbda: float, in_context: bool
) -> list[Payload]:
    """Payloads of same-size images padded to (N, H, W) uint8, of ``size`` (height, width) before padding,
    searched at ``lmbda``. With ``in_context``, latents off the home grid take the smaller of their two codings."""
    payloads: list[Payload] = []
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
        off_home = in_context and latents.shape[-2:] != model.prior.grid
        for grid, stream in zip(symbols, model.prior.streams(symbols)):
            coded = Payload(coder.encode(stream, layout))
            if off_home:
                adaptive = contexts.encode(model.prior, grid)
                coded = Payload(adaptive, True) if len(adaptive) < len(coded.data) else coded
            payloads.append(coded)
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


@dataclass(frozen=True)
class Refined:
    """A refined file before its pixels: the latents (None without an autoencoder layer) and the refinement stream."""

    latents: np.ndarray | None
    stream: bytes


@dataclass(frozen=True)
class PixelCoded:
    """A pixel model's file before its pixels (:mod:`codec.lossless`): its stream and maximum error (0: lossless)."""

    stream: bytes
    max_error: int = 0


#: What a file's payload decodes to: the latents of a plain file, a refined file's parts or a pixel model's stream.
Decoded = np.ndarray | Refined | PixelCoded


def known_ids(level: int) -> Iterator[int]:
    """The model ids a file of ``level`` may name here (level 0: the pixel model's, :mod:`codec.lossless`)."""
    return lossless.installed_ids() if level == 0 else models.known_model_ids(level)


def check_max_error(max_error: object) -> int:
    """``max_error`` as an int in 0..127; :class:`ArgumentError` otherwise."""
    value = _integer(max_error, "max error")
    if not 0 <= value <= bitstream.MAX_REFINE_ERROR:
        raise ArgumentError(f"max error must be 0 to {bitstream.MAX_REFINE_ERROR}, got {value}")
    return value


def autoencoded(pixels: np.ndarray, level: int, effort: int = 0) -> np.ndarray:
    """``pixels`` (white ink on black, as :func:`prepare` makes them) as ``level``'s own model decodes them.

    (What the refinement model was fitted over: :mod:`codec.training.refine_fit`.)
    """
    return _autoencode(Prepared(pixels, False), level, effort, load_model(level))[2]


def _autoencode(item: Prepared, level: int, effort: int, model: FrozenModel) -> tuple[FrozenModel, Payload, np.ndarray]:
    """A prepared image coded by ``model`` for ``level``: the model, its payload and the image the decoder makes of
    it (white ink on black, before any inversion)."""
    coded, (payload,) = encode_payloads([item], level, effort, model=model)
    (header,) = file_headers(coded, [item], [payload])
    plain = replace(header, inverted=False)  # the decoder's image before the inversion: what a refinement builds on
    return coded, payload, reconstruct([(plain, decode_payload(plain, payload.data))])[0]


@dataclass(frozen=True)
class Base:
    """What a refined file builds on: a level's autoencoder layer (its payload and the image the decoder makes of
    it, white ink on black) or, at level 0, none (mid-grey)."""

    level: int
    model_id: int
    payload: Payload
    image: np.ndarray


def refinement_base(item: Prepared, level: int, effort: int = DEFAULT_EFFORT) -> Base:
    """The base of ``item``'s refined files over ``level`` (0: none): the model the level codes an image of this size
    with (:func:`own_model`). It does not depend on the maximum error, so a search over errors makes it once."""
    if not level:
        return Base(0, 0, Payload(b""), np.full(item.pixels.shape, refine.MID_GREY, np.uint8))
    coded, payload, image = _autoencode(item, level, effort, own_model(level, *item.pixels.shape))
    return Base(level, coded.model_id, payload, image)


def refined_file(item: Prepared, max_error: int, base: Base) -> tuple[bytes, np.ndarray]:
    """A refined file of a prepared image over ``base``, and the pixels it decodes to here (as the user gave them)."""
    max_error = check_max_error(max_error)
    model = refine.load()
    stream, decoded = refine.encode(model, item.pixels, base.image, max_error, 1 if base.level else 0)
    height, width = item.pixels.shape
    header = Header(
        level=base.level,
        model_id=base.model_id,
        width=width,
        height=height,
        inverted=item.inverted,
        version=bitstream.CONTEXT_VERSION if base.payload.in_context else bitstream.REFINED_VERSION,
        max_error=max_error,
        refine_id=model.model_id,
    )
    data = bitstream.pack(header, bitstream.join_refined(base.payload.data, stream, bool(base.level)))
    return data, 255 - decoded if item.inverted else decoded


def encode_refined(item: Prepared, max_error: int, level: int, effort: int = DEFAULT_EFFORT) -> bytes:
    """A refined file of a prepared image: every pixel within ``max_error``, over ``level``'s autoencoder (0: none).

    The autoencoder is the one the level codes an image of this size with (:func:`own_model`).
    """
    return refined_file(item, max_error, refinement_base(item, level, effort))[0]


def within_bases(item: Prepared, max_error: int, level: int, effort: int = DEFAULT_EFFORT) -> list[Base]:
    """The bases :func:`encode_within` tries: none, and ``level``'s autoencoder unless the file is lossless."""
    bases = [refinement_base(item, 0)]
    if level and max_error > 0:
        bases.append(refinement_base(item, level, effort))
    return bases


def pixel_model_file(
    item: Prepared, max_error: int = 0, model: lossless.LosslessModel | None = None, budget: int | None = None
) -> tuple[bytes, np.ndarray] | None:
    """The pixel model's file of a prepared image (format version 7), every pixel within ``max_error`` (0:
    lossless), and the pixels it decodes to (as the user gave them); None when its payload would pass ``budget``
    bytes."""
    model = model or lossless.load()
    height, width = item.pixels.shape
    coded = lossless.encode_within_budget(model, item.pixels, max_error, budget)
    if coded is None:
        return None
    payload, decoded = coded
    bound = max_error or None
    header = Header(0, model.model_id, width, height, item.inverted, bitstream.PIXEL_VERSION, max_error=bound)
    return bitstream.pack(header, payload), 255 - decoded if item.inverted else decoded


def encode_within(
    item: Prepared, max_error: int, level: int, effort: int = DEFAULT_EFFORT, bases: Sequence[Base] | None = None
) -> tuple[bytes, np.ndarray]:
    """The smaller of the refined files over ``level``'s autoencoder and over none (or over ``bases``, made once by
    :func:`within_bases`): every pixel within ``max_error``. Returns the file and the pixels it decodes to here.

    The pixel model's file (:mod:`codec.lossless`, when installed) is a third
    candidate. Lossless (``max_error`` 0) never builds on the autoencoder, whose
    image may differ by a grey level on another machine: it decodes to the same
    pixels everywhere.
    """
    max_error = check_max_error(max_error)
    if bases is None:
        bases = within_bases(item, max_error, level, effort)
    usable = [b for b in bases if max_error > 0 or not b.level]
    made = [refined_file(item, max_error, base) for base in usable]
    if models.preset_id(lossless.ROLE) is not None:  # a pixel model to code with
        smallest = min(len(data) for data, _ in made)
        with contextlib.suppress(FormatError):  # over the format's size limit: the digit tables fit no such image
            exact = pixel_model_file(item, max_error, budget=smallest)  # stops once larger than the smallest
            made += [exact] if exact is not None else []
    return min(made, key=lambda file: len(file[0]))


def compress_many(
    images: Iterable[ImageLike],
    quality: int = DEFAULT_LEVEL,
    effort: int = DEFAULT_EFFORT,
    choose: bool = True,
    max_error: int | None = None,
) -> list[bytes]:
    """``compress`` for many images at once: the same bytes, batched for speed.

    ``choose=False`` codes every image with the level's own model (no choice among neighbouring levels).

    >>> import numpy as np
    >>> blank = np.zeros((28, 28), np.uint8)
    >>> compress_many([blank, blank]) == [compress(blank)] * 2
    True
    """
    prepared = [prepare(image) for image in images]
    if max_error is not None:
        quality, effort = check_quality(quality), check_effort(effort)
        return [encode_within(item, max_error, quality, effort)[0] for item in prepared]
    return encode_prepared(prepared, quality, effort, choose)


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
    model: FrozenModel | None = None,
    in_context: bool = True,
) -> tuple[FrozenModel, list[Payload]]:
    """The model and the entropy-coded payload of each prepared image (no container).

    Every image is coded with ``model`` (None: the level's own); ``lmbda`` is the
    search's lambda (None: the model's own). ``in_context=False`` codes every
    payload with the model's tables (what archives hold).
    """
    quality, effort = check_quality(quality), check_effort(effort)
    model = model or load_model(quality)
    lmbda = model.search_lambda if lmbda is None else lmbda
    out: list[Payload] = [Payload(b"")] * len(prepared)
    for indices in _by_size(prepared):
        padded = pad_to_stride(np.stack([prepared[i].pixels for i in indices]), model.stride)
        size = prepared[indices[0]].pixels.shape
        for i, payload in zip(indices, _encode_group(model, padded, size, effort, lmbda, in_context)):
            out[i] = payload
    return model, out


def own_model(level: int, height: int, width: int) -> FrozenModel:
    """The model a level codes an image of this size with, without a choice: the level's own for a digit-sized
    image (its home grid), its general variant (when installed) for any other size."""
    model = load_model(level)
    if not choice.home_size(model, height, width):
        return load_general(level) or model
    return model


def choose_models(prepared: Sequence[Prepared], quality: int, effort: int = DEFAULT_EFFORT) -> list[FrozenModel]:
    """The model that codes each image asked for at ``quality`` (:mod:`codec.choice`).

    Effort 0 takes :func:`own_model`. From effort 1 the candidates are the
    models of the levels within :data:`choice.NEIGHBOURS` (only the level's own
    for an image over the search's size limit), and for an image that is not
    digit-sized their general variants too; the cheapest at this level's lambda
    codes the image. A digit-sized image (MNIST's) is coded as before the
    general models came.
    """
    quality, effort = check_quality(quality), check_effort(effort)
    lmbda = load_model(quality).search_lambda
    out = [own_model(quality, *item.pixels.shape) for item in prepared]
    if effort == 0 or lmbda <= 0:
        return out
    near = choice.candidates(quality, available_levels())
    for indices in _by_size(prepared):
        height, width = prepared[indices[0]].pixels.shape
        levels = near if choice.applies(height, width) else [quality]
        candidates = [load_model(level) for level in levels]
        if not choice.home_size(candidates[0], height, width):
            candidates += [g for g in (load_general(level) for level in levels) if g is not None]
        if len(candidates) == 1:
            continue
        images = np.stack([prepared[i].pixels for i in indices]) / np.float32(255.0)
        for i, pick in zip(indices, choice.cheapest(candidates, images, lmbda)):
            out[i] = candidates[pick]
    return out


def choose_levels(prepared: Sequence[Prepared], quality: int, effort: int = DEFAULT_EFFORT) -> list[int]:
    """The level whose model (its own or its general variant) codes each image asked for at ``quality``."""
    return [model.level for model in choose_models(prepared, quality, effort)]


def encode_prepared(
    prepared: Sequence[Prepared], quality: int = DEFAULT_LEVEL, effort: int = DEFAULT_EFFORT, choose: bool = True
) -> list[bytes]:
    """Code images already brought to the model's form by :func:`codec.images.prepare`.

    With ``choose`` each image is coded with the model :func:`choose_models`
    picks, at this level's lambda; without, with :func:`own_model`. The file
    names the level and the model it was coded with.
    """
    quality, effort = check_quality(quality), check_effort(effort)
    if choose:
        chosen = choose_models(prepared, quality, effort)
    else:
        chosen = [own_model(quality, *item.pixels.shape) for item in prepared]
    lmbda = load_model(quality).search_lambda
    out: list[bytes] = [b""] * len(prepared)
    for digest in dict.fromkeys(model.digest for model in chosen):
        indices = [i for i, m in enumerate(chosen) if m.digest == digest]
        items = [prepared[i] for i in indices]
        model, payloads = encode_payloads(items, quality, effort, lmbda, chosen[indices[0]])
        for i, data in zip(indices, pack_files(model, items, payloads)):
            out[i] = data
    return out


def file_headers(model: FrozenModel, prepared: Sequence[Prepared], payloads: Sequence[Payload]) -> list[Header]:
    """The headers of plain files of the payloads ``model`` coded for the prepared images (level, id, version)."""
    out = []
    for item, payload in zip(prepared, payloads):
        height, width = item.pixels.shape
        version = bitstream.CONTEXT_VERSION if payload.in_context else bitstream.VERSION
        out.append(Header(model.level, model.model_id, width, height, item.inverted, version))
    return out


def pack_files(model: FrozenModel, prepared: Sequence[Prepared], payloads: Sequence[Payload]) -> list[bytes]:
    """Whole files of the payloads ``model`` coded for the prepared images: header, payload, checksum."""
    headers = file_headers(model, prepared, payloads)
    return [bitstream.pack(header, payload.data) for header, payload in zip(headers, payloads)]


def compress(
    image: ImageLike, quality: int = DEFAULT_LEVEL, effort: int = DEFAULT_EFFORT, max_error: int | None = None
) -> bytes:
    """Code ``image`` (a PIL image of any mode, or a 2-D uint8 array) as ``.aec`` bytes.

    ``quality`` is a shipped level (see :func:`levels`); higher is better and larger.
    ``effort`` (0 to 3) is how hard the encoder searches for latents that cost
    fewer bits for the quality (:mod:`codec.search`); 0 rounds them, the fastest.
    ``max_error`` K (0 to 127) adds the refinement layer (:mod:`codec.refine`):
    every pixel comes back within K grey levels, over the level's autoencoder or
    without one, whichever file is smaller (on another machine, whose float
    synthesis may round a pixel of the autoencoder's image the other way, within
    K + 1). K = 0 is lossless on every machine (no autoencoder layer).

    >>> import numpy as np
    >>> data = compress(np.zeros((28, 28), np.uint8), quality=1)
    >>> data[0] == 0xAE, len(data) < 20
    (True, True)
    """
    return compress_many([image], quality, effort, max_error=max_error)[0]


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


def decode_latents(data: bytes) -> tuple[Header, Decoded]:
    """Parse a file and entropy-decode its integer latents (C, H/s, W/s): the bit-exact part.

    A refined file gives its latents and its refinement stream (:class:`Refined`).
    """
    header, payload = bitstream.unpack(data, known_ids)
    return header, decode_payload(header, payload)


def decode_payload(header: Header, payload: bytes) -> Decoded:
    """Entropy-decode the integer latents of a payload described by ``header`` (with a refined file's stream)."""
    if header.pixel_model:
        return PixelCoded(payload, header.max_error or 0)
    if header.refined:
        base, stream = bitstream.split_refined(payload, header.level > 0)
        return Refined(_decode_latents(header, base) if header.level else None, stream)
    return _decode_latents(header, payload)


def _decode_latents(header: Header, payload: bytes) -> np.ndarray:
    model = _model_for(header)
    gh, gw = -(-header.height // model.stride), -(-header.width // model.stride)
    if header.version >= bitstream.CONTEXT_VERSION:
        if (gh, gw) == model.prior.grid:
            raise FormatError(f"format version {header.version} codes latents off the model's home grid only")
        return model.prior.from_symbols(contexts.decode(model.prior, payload, gh, gw))
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


def _refine_model(header: Header) -> refine.RefineModel:
    model = refine.load(model_id=header.refine_id)
    if model.model_id != header.refine_id:
        raise ModelMismatchError(
            f"file was refined with model {header.refine_id:03x}, "
            f"the installed refinement model is {model.model_id:03x}"
        )
    return model


def _refined_pixels(header: Header, item: Refined, dtype: type) -> np.ndarray:
    """The pixels of a refined file: its base (the autoencoder's image or mid-grey) and the refinement."""
    size = (header.height, header.width)
    model = _refine_model(header)
    if item.latents is None:
        base = np.full(size, refine.MID_GREY, np.uint8)
    else:
        plain = Header(level=header.level, model_id=header.model_id, width=header.width, height=header.height)
        base = reconstruct([(plain, item.latents)], dtype)[0]
    pixels = refine.decode(model, item.stream, base, int(header.max_error or 0), 1 if item.latents is not None else 0)
    return 255 - pixels if header.inverted else pixels


def _lossless_model(model_id: int) -> lossless.LosslessModel:
    model = lossless.load(model_id=model_id)
    if model.model_id != model_id:
        raise ModelMismatchError(
            f"file was coded with pixel model {model_id:03x}, the installed pixel model is {model.model_id:03x}"
        )
    return model


def _pixel_model_pixels(decoded: Sequence[tuple[Header, Decoded]], indices: Sequence[int]) -> Iterable[np.ndarray]:
    """The pixels of pixel model files (all of one size, model and maximum error), decoded in lockstep a batch at
    a time."""
    header = decoded[indices[0]][0]
    model = _lossless_model(header.model_id)
    step = images_per_batch(header.height * header.width)
    for first in range(0, len(indices), step):
        chunk = indices[first : first + step]
        streams = [cast(PixelCoded, decoded[i][1]).stream for i in chunk]
        images = lossless.decode_many(model, streams, header.height, header.width, header.max_error or 0)
        for i, image in zip(chunk, images):
            yield 255 - image if decoded[i][0].inverted else image


def reconstruct(decoded: Sequence[tuple[Header, Decoded]], dtype: type = np.float32) -> list[np.ndarray]:
    """Images from headers and latents as :func:`decode_latents` gives them, batched."""
    groups: dict[tuple[int, int, int, int], list[int]] = defaultdict(list)
    exact: dict[tuple[int, int, int, int], list[int]] = defaultdict(list)
    out: list[np.ndarray] = [np.zeros(0, np.uint8)] * len(decoded)
    for index, (header, item) in enumerate(decoded):
        if isinstance(item, Refined):
            out[index] = _refined_pixels(header, item, dtype)
        elif isinstance(item, PixelCoded):
            exact[(header.model_id, header.height, header.width, item.max_error)].append(index)
        else:
            groups[(header.level, header.model_id, header.height, header.width)].append(index)
    for indices in exact.values():
        for i, image in zip(indices, _pixel_model_pixels(decoded, indices)):
            out[i] = image
    for (level, model_id, height, width), indices in groups.items():
        model = model_for_decoding(level, model_id)
        step = images_per_batch(height * width)
        for first in range(0, len(indices), step):
            chunk = indices[first : first + step]
            latents = np.stack([cast(np.ndarray, decoded[i][1]) for i in chunk])
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
    header, payload = bitstream.unpack(data, known_ids)
    return FileInfo(header=header, file_bytes=len(data), payload_bytes=len(payload))


def levels() -> list[int]:
    """The installed quality levels, lowest rate first.

    >>> levels()[0]
    1
    """
    return available_levels()
