"""The decoder: a file's integer latents (the bit-exact part), then its pixels.

:func:`decode_latents` checks a file and entropy-decodes its payload with the
model it names; :func:`reconstruct` turns many decoded files into pixels,
batched per model and size: the synthesis transform for plain files, the
refinement layer over it (or over mid-grey) for refined ones, the pixel model
for lossless files. The encoder (:mod:`codec.encoder`) makes what this reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

import numpy as np

from . import bitstream, coder, context_tables, contexts, lossless, models, predictive, refine, resolution, restore
from .bitstream import Header
from .errors import FormatError, ModelError, ModelMismatchError
from .limits import images_per_batch
from .models import FrozenModel, available_levels, model_for_decoding


class _Identified(Protocol):
    @property
    def model_id(self) -> int: ...


M = TypeVar("M", bound=_Identified)


def matching(model: _Identified, model_id: int, what: str, container: str = "file") -> None:
    """Refuse a model other than the one a file (or archive) names: every decoder's one check of a model id.

    The stores find a former model by its id (:mod:`codec.store`); a model of another id means the one named is
    not stored here, a :class:`ModelMismatchError` (a :class:`FormatError`) naming both.
    """
    if model.model_id != model_id:
        raise ModelMismatchError(
            f"{container} was coded with {what} {model_id:03x}; this installation has {model.model_id:03x}"
        )


def named_model(load: Callable[..., M], model_id: int, what: str, container: str = "file") -> M:
    """The stored model of ``model_id`` that ``load`` finds (the preset's or a former one), checked by
    :func:`matching`."""
    model = load(model_id=model_id)
    matching(model, model_id, what, container)
    return model


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


def unpack(data: bytes) -> tuple[Header, bytes]:
    """A file's header and payload, checked against the models and context tables installed here."""
    return bitstream.unpack(data, known_ids, context_tables.known_ids)


def _model_for(header: Header) -> FrozenModel:
    try:
        model = model_for_decoding(header.level, header.model_id)
    except ModelError:
        raise ModelMismatchError(
            f"file was coded at level {header.level}, which this installation lacks "
            f"(levels {', '.join(map(str, available_levels())) or 'none'})"
        ) from None
    matching(model, header.model_id, f"level {header.level}'s model")
    return model


def decode_latents(data: bytes) -> tuple[Header, Decoded]:
    """Parse a file and entropy-decode its integer latents (C, H/s, W/s): the bit-exact part.

    A refined file gives its latents and its refinement stream (:class:`Refined`).
    """
    header, payload = unpack(data)
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
    height, width = header.coded_size
    if header.latents_in_context:
        gh, gw = -(-height // model.stride), -(-width // model.stride)
        if (gh, gw) == model.prior.grid:
            raise FormatError(f"format version {header.version} codes latents off the model's home grid only")
        return model.prior.from_symbols(contexts.decode(model.prior, payload, gh, gw, _start(header, model)))
    return latents_with(model, payload, height, width)


def _start(header: Header, model: FrozenModel) -> contexts.Start | None:
    """Where a file's contexts start: version 10's fitted tables for its model, else version 6's."""
    if header.version != bitstream.FITTED_VERSION:
        return None
    try:
        start = context_tables.load(model_id=header.contexts_id).start_for(model)
    except ModelError:
        start = None
    if start is None:
        raise ModelMismatchError(f"file's context tables {header.contexts_id:03x} are not installed for its model")
    return start


def latents_with(model: FrozenModel, payload: bytes, height: int, width: int) -> np.ndarray:
    """The latents of a payload coded with ``model``'s tables (format versions 3 to 5, archives) of an image of
    this size."""
    gh, gw = -(-height // model.stride), -(-width // model.stride)
    stream = coder.decode(payload, model.prior.layout(gh, gw))
    return model.prior.from_symbols(model.prior.symbols_of(stream, gh, gw))


def pixels_of(
    model: FrozenModel, latents: np.ndarray, height: int, width: int, dtype: type = np.float32, scale: int = 1
) -> np.ndarray:
    """The images (N, height, width) uint8 ``model``'s synthesis makes of latents (N, C, GH, GW); with a
    ``scale``, of the coarse images they code, upsampled (:mod:`codec.resolution`) before the rounding."""
    if scale == 1:
        return _to_pixels(model.synthesise(latents, dtype=dtype))[:, :height, :width]
    out = np.empty((len(latents), height, width), np.uint8)
    for first, strip in upsampled_strips(model, latents, height, width, scale, dtype):
        out[:, first : first + strip.shape[1]] = _to_pixels(strip)
    return out


def upsampled_strips(
    model: FrozenModel, latents: np.ndarray, height: int, width: int, scale: int, dtype: type = np.float32
) -> Iterator[tuple[int, np.ndarray]]:
    """What a scaled file's latents (N, C, GH, GW) decode to before rounding: (first row, float rows (N, rows,
    width)) of the coarse synthesis upsampled ``scale`` times to height x width, a strip at a time."""
    coarse_h, coarse_w = resolution.coarse_size(height, width, scale)
    synthesised = model.synthesise(latents, dtype=dtype)[:, :coarse_h, :coarse_w]
    yield from resolution.upsample(synthesised, scale, height, width)


def _to_pixels(images: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def decompress_many(files: Sequence[bytes], dtype: type = np.float32) -> list[np.ndarray]:
    """``decompress`` for many files at once: the same pixels, batched for speed.

    >>> import numpy as np
    >>> from codec import compress_many
    >>> files = compress_many([np.zeros((28, 28), np.uint8), np.zeros((5, 9), np.uint8)])
    >>> [image.shape for image in decompress_many(files)]
    [(28, 28), (5, 9)]
    """
    return reconstruct([decode_latents(data) for data in files], dtype=dtype)


def _refined_pixels(header: Header, item: Refined, dtype: type) -> np.ndarray:
    """The pixels of a refined file: its base (the autoencoder's image or mid-grey) and the refinement (version 8:
    the predictive coder's stream; 11: restored after it)."""
    size = (header.height, header.width)
    if header.predictive:
        coder_model = named_model(predictive.load, header.refine_id, "predictive model")
        max_error = int(header.max_error or 0)
        pixels = predictive.decode(coder_model, item.stream, header.height, header.width, max_error)
        if header.restoration is not None:
            pixels = restore.apply(pixels, max_error, header.restoration)
        return 255 - pixels if header.inverted else pixels
    model = named_model(refine.load, header.refine_id, "refinement model")
    if item.latents is None:
        base = np.full(size, refine.MID_GREY, np.uint8)
    else:
        plain = Header(level=header.level, model_id=header.model_id, width=header.width, height=header.height)
        base = reconstruct([(plain, item.latents)], dtype)[0]
    pixels = refine.decode(model, item.stream, base, int(header.max_error or 0), 1 if item.latents is not None else 0)
    return 255 - pixels if header.inverted else pixels


def _pixel_model_pixels(decoded: Sequence[tuple[Header, Decoded]], indices: Sequence[int]) -> Iterable[np.ndarray]:
    """The pixels of pixel model files (all of one size, model and maximum error), decoded in lockstep a batch at
    a time."""
    header = decoded[indices[0]][0]
    model = named_model(lossless.load, header.model_id, "pixel model")
    step = images_per_batch(header.height * header.width)
    for first in range(0, len(indices), step):
        chunk = indices[first : first + step]
        streams = [cast(PixelCoded, decoded[i][1]).stream for i in chunk]
        images = lossless.decode_many(model, streams, header.height, header.width, header.max_error or 0)
        for i, image in zip(chunk, images):
            yield 255 - image if decoded[i][0].inverted else image


def reconstruct(decoded: Sequence[tuple[Header, Decoded]], dtype: type = np.float32) -> list[np.ndarray]:
    """Images from headers and latents as :func:`decode_latents` gives them, batched."""
    groups: dict[tuple[int, int, int, int, int], list[int]] = defaultdict(list)
    exact: dict[tuple[int, int, int, int], list[int]] = defaultdict(list)
    out: list[np.ndarray] = [np.zeros(0, np.uint8)] * len(decoded)
    for index, (header, item) in enumerate(decoded):
        if isinstance(item, Refined):
            out[index] = _refined_pixels(header, item, dtype)
        elif isinstance(item, PixelCoded):
            exact[(header.model_id, header.height, header.width, item.max_error)].append(index)
        else:
            groups[(header.level, header.model_id, header.height, header.width, header.scale)].append(index)
    for indices in exact.values():
        for i, image in zip(indices, _pixel_model_pixels(decoded, indices)):
            out[i] = image
    for (level, model_id, height, width, scale), indices in groups.items():
        model = model_for_decoding(level, model_id)
        step = images_per_batch(height * width)
        for first in range(0, len(indices), step):
            chunk = indices[first : first + step]
            latents = np.stack([cast(np.ndarray, decoded[i][1]) for i in chunk])
            pixels = pixels_of(model, latents, height, width, dtype, scale)
            for i, image in zip(chunk, pixels):
                out[i] = 255 - image if decoded[i][0].inverted else np.ascontiguousarray(image)
    return out
