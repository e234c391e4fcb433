"""The encoder: per image, which model codes it, how its latents are searched, and what file results.

aec's users meet two concepts: the **quality** (a preset: which models may
code an image, at what lambda) and the **effort** (how hard the encoder
searches). :class:`Encoder` holds them, with the optional maximum error of a
refined file or a PSNR or size target, and owns the per-image decision; every
entry point codes through it (``codec.compress`` and ``compress_many``, ``aec
compress``, the Pillow plugin, archives, targets), so an image coded at the
same quality and effort gives the same bytes whichever door it came in by.

The decision has four parts, each in its own module:

- the **choice** of model (:mod:`codec.choice`): from effort 1, the cheapest
  at the quality's lambda of every level's models (at effort 0 the level's
  own: :func:`own_model`), and with it the **scale** (:mod:`codec.resolution`):
  an image that is not digit-sized weighs each model at its full size, half and
  a quarter of it, every error measured at full size (:func:`choose_codings`);
- the **search** of latents under that model (:mod:`codec.search`), for the
  error of what the file decodes to (:func:`search_effort`); an image small
  enough to search (every digit) takes the cheapest of one set of searched
  files, the same at every level, so its quality rises with the level
  (:func:`exact_choice`);
- the **targets** (:mod:`codec.targets`): the lowest quality whose file
  reaches a PSNR, or the highest that fits a size, each quality coded by this
  same encoder.

A refined file (:mod:`codec.refine`) adds a residual layer over an
autoencoder's image (or none), every pixel within a maximum error; the pixel
model's file (:mod:`codec.lossless`) competes with it.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from . import (
    bitstream,
    choice,
    coder,
    context_tables,
    contexts,
    lossless,
    models,
    predictive,
    refine,
    resolution,
    restore,
    search,
)
from .arguments import check_effort, check_max_error, check_quality
from .bitstream import Header
from .decoder import decode_latents, decode_payload, reconstruct, upsampled_strips
from .errors import ArgumentError, FormatError, ImageError
from .images import Prepared, pad_to_stride
from .limits import images_per_batch
from .models import DEFAULT_LEVEL, FrozenModel, available_levels, load_general, load_model
from .search import DEFAULT_EFFORT, EFFORTS


@dataclass(frozen=True)
class Payload:
    """One image's entropy-coded latents, and whether they are coded in contexts (:mod:`codec.contexts`)
    rather than with the model's tables (versions 4 and 5): contexts that start at the id ``fitted`` of the context
    tables (:mod:`codec.context_tables`, version 10) or, when None, at the stationary rows (version 6)."""

    data: bytes
    in_context: bool = False
    fitted: int | None = None


def search_effort(effort: int, height: int, width: int) -> int:
    """The effort of the search of an image's latents when the encoder's is ``effort``.

    An image up to :data:`search.MAX_PIXELS` (every digit) is searched at the
    effort asked, and the encoder then weighs its files exactly
    (:func:`exact_choice`). A larger image codes the rounded latents of the (model, scale) pair
    :func:`choose_codings` picks, so its rate and error are those the choice
    weighed, a fixed set of pairs at every level, and its PSNR rises with the
    level. (A search after that choice could dip the PSNR from one level to
    the next: it moves each level's latents its own way.)
    """
    if height * width <= search.MAX_PIXELS:
        return effort
    return 0


def _searched(
    model: FrozenModel,
    padded: np.ndarray,
    size: tuple[int, int],
    effort: int,
    lmbda: float,
    full: np.ndarray | None = None,
    scale: int = 1,
) -> Iterator[np.ndarray]:
    """The searched symbols (n, C, GH, GW) of same-size images padded to (N, H, W) uint8, of ``size`` (height,
    width) before padding, a bounded batch at a time, searched at ``lmbda`` (at :func:`search_effort`).

    With a ``scale`` the images are the coarse versions of ``full`` (N, H', W') uint8, and the search weighs the
    error of what a scaled file decodes to (upsampled, :mod:`codec.resolution`) against them.
    """
    height, width = size
    rule = EFFORTS[search_effort(effort, *(size if full is None else full.shape[-2:]))]
    step = images_per_batch(height * width * scale**2)
    for first in range(0, len(padded), step):
        images = padded[first : first + step] / np.float32(255.0)
        latents = model.analyse(images)
        target, synthesise = images[:, :height, :width], model.synthesise
        if full is not None and scale > 1:
            target = full[first : first + step] / np.float32(255.0)
            synthesise = partial(_upsampled, model, scale, *target.shape[-2:])
        yield search.refine(
            model.prior.to_symbols(latents),
            latents,
            target,
            model.prior,
            synthesise,
            lmbda,
            rule,
            height * width,
        )


def _upsampled(model: FrozenModel, scale: int, height: int, width: int, latents: np.ndarray) -> np.ndarray:
    """The float images (N, height, width) a scaled file of these latents decodes to, before rounding."""
    return np.concatenate([strip for _, strip in upsampled_strips(model, latents, height, width, scale)], 1)


def _encode_group(
    model: FrozenModel,
    padded: np.ndarray,
    size: tuple[int, int],
    effort: int,
    lmbda: float,
    in_context: bool,
    full: np.ndarray | None = None,
    scale: int = 1,
) -> list[Payload]:
    """Payloads of same-size images padded to (N, H, W) uint8, of ``size`` (height, width) before padding,
    searched at ``lmbda`` (with a ``scale``, for the full-size images ``full``: :func:`_searched`). With
    ``in_context``, latents off the home grid take the smaller of their two codings, their contexts started at the
    installed context tables when they were fitted for ``model``."""
    payloads: list[Payload] = []
    fitted = context_tables.fitted_start(model) if in_context else None
    start = fitted[1] if fitted else None
    for symbols in _searched(model, padded, size, effort, lmbda, full, scale):
        layout = model.prior.layout(*symbols.shape[-2:])
        off_home = in_context and symbols.shape[-2:] != model.prior.grid
        for grid, stream in zip(symbols, model.prior.streams(symbols)):
            coded = Payload(coder.encode(stream, layout))
            if off_home:
                adaptive = contexts.encode(model.prior, grid, start)
                if len(adaptive) < len(coded.data):
                    coded = Payload(adaptive, True, fitted[0] if fitted else None)
            payloads.append(coded)
    return payloads


def encode_streams(prepared: Sequence[Prepared], quality: int, effort: int) -> tuple[FrozenModel, list[np.ndarray]]:
    """The quality's own model and each image's symbol stream (the table set first when it has several), searched
    at its lambda: what a block of an archive codes (:mod:`codec.latent_blocks`)."""
    quality, effort = check_quality(quality), check_effort(effort)
    model = load_model(quality)
    out: list[np.ndarray] = [np.zeros(0, np.int32)] * len(prepared)
    for indices, padded, size in _padded_groups(prepared, model):
        searched = _searched(model, padded, size, effort, model.search_lambda)
        for i, stream in zip(indices, (s for symbols in searched for s in model.prior.streams(symbols))):
            out[i] = stream
    return model, out


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


def refined_file(item: Prepared, max_error: int, base: Base, restored: bool = False) -> tuple[bytes, np.ndarray]:
    """A refined file of a prepared image over ``base``, and the pixels it decodes to here (as the user gave them).

    Without an autoencoder layer (``base.level`` 0) the predictive coder codes it (format version 8, ``restored``:
    11 where restoring pays) when its model is installed, else the refinement layer over mid-grey (version 5).
    """
    max_error = check_max_error(max_error)
    if not base.level and models.preset_id(predictive.ROLE) is not None:
        made = predictive_file(item, max_error, restored=restored)
        assert made is not None  # no budget to pass
        return made
    model = refine.load()
    stream, decoded = refine.encode(model, item.pixels, base.image, max_error, 1 if base.level else 0)
    height, width = item.pixels.shape
    header = _latents_version(
        Header(
            level=base.level,
            model_id=base.model_id,
            width=width,
            height=height,
            inverted=item.inverted,
            version=bitstream.REFINED_VERSION,
            max_error=max_error,
            refine_id=model.model_id,
        ),
        base.payload,
    )
    data = bitstream.pack(header, bitstream.join_refined(base.payload.data, stream, bool(base.level)))
    return data, 255 - decoded if item.inverted else decoded


def predictive_file(
    item: Prepared, max_error: int, budget: int | None = None, restored: bool = False
) -> tuple[bytes, np.ndarray] | None:
    """The predictive coder's file of a prepared image (format version 8), every pixel within ``max_error``, and the
    pixels it decodes to (as the user gave them); None when its payload would pass ``budget`` bytes.

    ``restored``: with the restoration (:mod:`codec.restore`, version 11) where it brings the image closer, every
    pixel then within twice ``max_error``.
    """
    model = predictive.load()
    coded = predictive.encode_within_budget(model, item.pixels, max_error, budget)
    if coded is None:
        return None
    stream, decoded = coded
    height, width = item.pixels.shape
    version, restoration = bitstream.PREDICTIVE_VERSION, None
    if restored and max_error > 0:
        chosen, restored_pixels = restore.choose_and_apply(item.pixels, decoded, max_error)
        if chosen.active:
            version, restoration, decoded = bitstream.RESTORED_VERSION, chosen, restored_pixels
    header = Header(
        0,
        0,
        width,
        height,
        item.inverted,
        version,
        max_error=max_error,
        refine_id=model.model_id,
        restoration=restoration,
    )
    return bitstream.pack(header, stream), 255 - decoded if item.inverted else decoded


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


#: Images of at most this many pixels (64 x 64, what lossless archives code in blocks) try the pixel model first.
DIGIT_SIZED_PIXELS = 4096


def _pixel_model_file(item: Prepared, max_error: int, budget: int | None) -> tuple[bytes, np.ndarray] | None:
    """:func:`pixel_model_file`, or None for an image over the format's size limit (the digit tables fit no such
    image)."""
    with contextlib.suppress(FormatError):
        return pixel_model_file(item, max_error, budget=budget)
    return None


def encode_within(
    item: Prepared,
    max_error: int,
    level: int,
    effort: int = DEFAULT_EFFORT,
    bases: Sequence[Base] | None = None,
    restored: bool = False,
) -> tuple[bytes, np.ndarray]:
    """The smaller of the refined files over ``level``'s autoencoder and over none (or over ``bases``, made once by
    :func:`within_bases`): every pixel within ``max_error``. Returns the file and the pixels it decodes to here.
    ``restored``: the predictive coder's file may be restored (:func:`predictive_file`), every pixel then within
    twice ``max_error``.

    Without an autoencoder layer the file is the predictive coder's (:func:`refined_file`). The pixel
    model's file (:mod:`codec.lossless`, when installed) is a third candidate. Lossless (``max_error`` 0)
    never builds on the autoencoder, whose image may differ by a grey level on another machine: it decodes
    to the same pixels everywhere.
    """
    max_error = check_max_error(max_error)
    if bases is None:
        bases = within_bases(item, max_error, level, effort)
    usable = [b for b in bases if max_error > 0 or not b.level]
    predicted = models.preset_id(predictive.ROLE) is not None and any(not b.level for b in usable)
    made = [refined_file(item, max_error, b, restored) for b in usable if b.level or not predicted]
    # The coders that stop once they pass the smallest file so far; the likelier winner first (the pixel model
    # on digit-sized images), so that the other stops early.
    bounded: list[Callable[[int | None], tuple[bytes, np.ndarray] | None]] = []
    if predicted:
        bounded.append(partial(predictive_file, item, max_error, restored=restored))
    if models.preset_id(lossless.ROLE) is not None:  # a pixel model to code with
        first = item.pixels.size <= DIGIT_SIZED_PIXELS
        bounded.insert(0 if first else len(bounded), partial(_pixel_model_file, item, max_error))
    for make in bounded:
        file = make(min((len(data) for data, _ in made), default=None))
        made += [file] if file is not None else []
    return min(made, key=lambda file: len(file[0]))


def _by_size(prepared: Sequence[Prepared]) -> list[list[int]]:
    """Indices of the images, grouped by size (each group is coded as one batch)."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, item in enumerate(prepared):
        groups[item.pixels.shape].append(index)
    return list(groups.values())


def _padded_groups(
    prepared: Sequence[Prepared], model: FrozenModel
) -> Iterator[tuple[list[int], np.ndarray, tuple[int, int]]]:
    """Per size: the images' indices, the images padded to ``model``'s stride (N, H, W) uint8, and their size
    (height, width) before padding: what the encoder codes as one batch."""
    for indices in _by_size(prepared):
        padded = pad_to_stride(np.stack([prepared[i].pixels for i in indices]), model.stride)
        height, width = prepared[indices[0]].pixels.shape
        yield indices, padded, (height, width)


def encode_payloads(
    prepared: Sequence[Prepared],
    quality: int = DEFAULT_LEVEL,
    effort: int = DEFAULT_EFFORT,
    lmbda: float | None = None,
    model: FrozenModel | None = None,
    in_context: bool = True,
    scale: int = 1,
) -> tuple[FrozenModel, list[Payload]]:
    """The model and the entropy-coded payload of each prepared image (no container).

    Every image is coded with ``model`` (None: the level's own); ``lmbda`` is the
    search's lambda (None: the model's own). ``in_context=False`` codes every
    payload with the model's tables (what archives hold). With a ``scale`` the
    payloads code the images' coarse versions (:func:`resolution.downscale`),
    searched for the error at full size of what a scaled file decodes to.
    """
    quality, effort = check_quality(quality), check_effort(effort)
    model = model or load_model(quality)
    lmbda = model.search_lambda if lmbda is None else lmbda
    coded = [Prepared(resolution.downscale(p.pixels, scale), p.inverted) for p in prepared] if scale > 1 else prepared
    out: list[Payload] = [Payload(b"")] * len(prepared)
    for indices, padded, size in _padded_groups(coded, model):
        full = np.stack([prepared[i].pixels for i in indices]) if scale > 1 else None
        for i, payload in zip(indices, _encode_group(model, padded, size, effort, lmbda, in_context, full, scale)):
            out[i] = payload
    return model, out


def own_model(level: int, height: int, width: int) -> FrozenModel:
    """The model a level codes an image of this size with, without a choice: the level's own for a digit-sized
    image (:func:`choice.digit_sized`), its general variant (when installed) for any other size."""
    model = load_model(level)
    if not choice.digit_sized(height, width):
        return load_general(level) or model
    return model


def choose_codings(
    prepared: Sequence[Prepared], quality: int, effort: int = DEFAULT_EFFORT, scale: int | None = None
) -> list[tuple[FrozenModel, int]]:
    """The model and the scale that code each image asked for at ``quality`` (:mod:`codec.choice`): the pair of
    lowest rounded cost at the quality's lambda, its error measured at the image's full size.

    Effort 0 takes :func:`own_model` at full size. From effort 1 a digit-sized
    image (MNIST's) weighs every installed level's own model at full size; any
    other image every pair of a model of :func:`off_home_candidates` and a
    scale of :func:`resolution.scales_for` (full size included). Either way the
    pairs are the same whatever the level (:func:`exact_choice` weighs them at
    every level's lambda). A ``scale`` given restricts the pairs to it (what a
    reference vector forces).
    """
    quality, effort = check_quality(quality), check_effort(effort)
    lmbda = load_model(quality).search_lambda
    out = [(own_model(quality, *item.pixels.shape), scale or 1) for item in prepared]
    if effort == 0 or lmbda <= 0:
        return out
    installed = available_levels()
    for indices in _by_size(prepared):
        height, width = prepared[indices[0]].pixels.shape
        pairs = _pairs(quality, installed, height, width, scale)
        if len(pairs) == 1:
            continue
        bits, sse = _pair_costs(pairs, [prepared[i].pixels for i in indices])
        for i, pick in zip(indices, np.argmin(bits + lmbda * sse, axis=1)):
            out[i] = pairs[pick]
    return out


def _pairs(
    quality: int, installed: Sequence[int], height: int, width: int, scale: int | None
) -> list[tuple[FrozenModel, int]]:
    """The (model, scale) pairs an image of this size weighs at ``quality`` (:func:`choose_codings`)."""
    if scale is None and choice.digit_sized(height, width):
        return [(model, 1) for model in _distinct(map(load_model, installed))]
    scales = (1, *resolution.scales_for(height, width)) if scale is None else (scale,)
    models = off_home_candidates(quality, installed, height, width)
    return [(model, s) for s in scales for model in models]


def _pair_costs(pairs: list[tuple[FrozenModel, int]], pixels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The rounded bits and SSE (each (N, P)) of same-size images (uint8) under each pair
    (:func:`choice.rates_and_errors`), their coarse versions made once per scale."""
    factors = {s for _, s in pairs if s > 1}
    coarse = {s: np.stack([resolution.downscale(p, s) for p in pixels]) / np.float32(255.0) for s in factors}
    return choice.rates_and_errors(pairs, np.stack(pixels) / np.float32(255.0), coarse)


def off_home_candidates(quality: int, installed: Sequence[int], height: int, width: int) -> list[FrozenModel]:
    """The models an image that is not digit-sized may be coded with at ``quality`` (effort 1 and up).

    Up to :data:`choice.MAX_PIXELS` every installed level's own model and general variant, each distinct model
    once; up to :data:`choice.GENERAL_PIXELS` every general variant; above it (a synthesis per candidate would
    cost too long) the level's own model and its general variant. The set does not depend on ``quality`` below
    the last limit: the cheapest at a higher level's (larger) lambda never has a larger squared error.
    """
    if choice.applies(height, width):
        levels, own = list(installed), list(installed)
    elif choice.general_applies(height, width):
        levels, own = list(installed), []
    else:
        levels, own = [quality], [quality]
    found = [load_model(level) for level in own] + [g for g in map(load_general, levels) if g is not None]
    return _distinct(found)


def _distinct(found: Iterable[FrozenModel]) -> list[FrozenModel]:
    """Each distinct model once, in order (levels that share a model: the first)."""
    distinct: dict[str, FrozenModel] = {}
    for model in found:
        distinct.setdefault(model.digest, model)
    return list(distinct.values())


def encode_prepared(
    prepared: Sequence[Prepared], quality: int = DEFAULT_LEVEL, effort: int = DEFAULT_EFFORT
) -> list[bytes]:
    """Code images already brought to the model's form by :func:`codec.images.prepare`.

    Each image is coded with the model and at the scale :func:`choose_codings`
    picks (at effort 0 the level's own model, full size), at this level's
    lambda; from effort 1 a small image (every digit) gets :func:`exact_choice`.
    The file names the level and the model it was coded with.
    """
    return chosen_files(prepared, quality, effort)


def chosen_files(
    prepared: Sequence[Prepared], quality: int, effort: int = DEFAULT_EFFORT, scale: int | None = None
) -> list[bytes]:
    """Each image's file, coded by the model at the scale :func:`choose_codings` picks (``scale``: forced), or
    from effort 1 for an image small enough to search (unless a scale is forced) :func:`exact_choice`'s.

    A scaled file (version 9) codes the image's coarse version
    (:func:`resolution.downscale`), its latents searched for the error of what
    it decodes to at full size.
    """
    quality, effort = check_quality(quality), check_effort(effort)
    out: list[bytes] = [b""] * len(prepared)
    exact = {i for i, item in enumerate(prepared) if scale is None and weighed_exactly(effort, *item.pixels.shape)}
    for i in sorted(exact):
        out[i] = exact_choice(prepared[i], quality, effort)
    rest = [i for i in range(len(prepared)) if i not in exact]
    chosen = dict(zip(rest, choose_codings([prepared[i] for i in rest], quality, effort, scale)))
    lmbda = load_model(quality).search_lambda
    for digest, factor in dict.fromkeys((model.digest, s) for model, s in chosen.values()):
        indices = [i for i, (model, s) in chosen.items() if (model.digest, s) == (digest, factor)]
        group = [prepared[i] for i in indices]
        model, payloads = encode_payloads(group, quality, effort, lmbda, chosen[indices[0]][0], scale=factor)
        for i, data in zip(indices, pack_files(model, group, payloads, factor)):
            out[i] = data
    return out


def weighed_exactly(effort: int, height: int, width: int) -> bool:
    """Whether an image's file is chosen among searched files (:func:`exact_choice`): from effort 1, an image
    that the search takes (up to :data:`search.MAX_PIXELS`; every digit)."""
    return effort > 0 and height * width <= search.MAX_PIXELS


def exact_choice(item: Prepared, quality: int, effort: int) -> bytes:
    """The file of an image small enough to search: the cheapest at ``quality``'s lambda of a fixed set of
    searched files, its bits and the squared error of what it decodes to measured on the files themselves.

    The set is the same at every level: each installed level's lambda picks
    its (model, scale) pair by rounded cost (:func:`choose_codings`), and each
    pair picked is searched once, at the geometric mean of the lambdas that
    picked it. The cheapest of one fixed set under a larger lambda never has a
    larger squared error, so the PSNR rises with the level, exactly; and the
    search's gains count in the choice (a pair whose latents the search
    improves most can win over one the rounded costs preferred).
    """
    files, costs = weighed_files(item, effort)
    return files[int(np.argmin(costs[0] + load_model(quality).search_lambda * costs[1]))]


#: How many images' sets of searched files :func:`exact_choice` remembers (a sweep over the levels makes one set).
REMEMBERED_SETS = 16
_weighed: OrderedDict[tuple[str, bool, int, tuple[str, ...]], tuple[list[bytes], np.ndarray]] = OrderedDict()


def forget() -> None:
    """Drop the remembered sets of files (:func:`weighed_files`) and rounded costs (:mod:`codec.choice`): what a
    sweep over the levels reuses, so that a timing of one level starts as a fresh process would."""
    _weighed.clear()
    choice.forget()


def weighed_files(item: Prepared, effort: int) -> tuple[list[bytes], np.ndarray]:
    """The set of searched files :func:`exact_choice` weighs for an image, and their bits and squared errors
    (2, n); the last :data:`REMEMBERED_SETS` are kept (the set does not depend on the level asked)."""
    installed = available_levels()
    key = (choice.images_key(item.pixels), item.inverted, effort, tuple(load_model(q).digest for q in installed))
    if key in _weighed:
        _weighed.move_to_end(key)
        return _weighed[key]
    lambdas = np.array([load_model(level).search_lambda for level in installed])
    # Up to search.MAX_PIXELS every level weighs the same pairs (off_home_candidates): one table of costs.
    height, width = item.pixels.shape
    pairs = _pairs(installed[0], installed, height, width, None)
    rounded_bits, rounded_sse = _pair_costs(pairs, [item.pixels])
    picks = np.argmin(rounded_bits[0] + lambdas[:, None] * rounded_sse[0], axis=1)  # each level's pair
    files: list[bytes] = []
    for pick in dict.fromkeys(picks.tolist()):
        with np.errstate(divide="ignore"):  # a level searching at lambda 0 (rate alone) makes the mean 0
            lmbda = float(np.exp(np.log(lambdas[picks == pick]).mean()))
        model, payloads = encode_payloads([item], 1, effort, lmbda, pairs[pick][0], scale=pairs[pick][1])
        files += pack_files(model, [item], payloads, pairs[pick][1])
    original = (255 - item.pixels if item.inverted else item.pixels).astype(np.int64)
    decoded = reconstruct([decode_latents(data) for data in files])
    sse = [float(((pixels - original) ** 2).sum()) / 255.0**2 for pixels in decoded]
    _weighed[key] = files, np.array([[8.0 * len(data) for data in files], sse])
    if len(_weighed) > REMEMBERED_SETS:
        _weighed.popitem(last=False)
    return _weighed[key]


def code_with(model: FrozenModel, prepared: Sequence[Prepared], quality: int, effort: int) -> list[bytes]:
    """Whole files of the images, every one coded by ``model`` (no choice), searched at ``quality``'s lambda."""
    model, payloads = encode_payloads(prepared, quality, effort, load_model(quality).search_lambda, model)
    return pack_files(model, prepared, payloads)


def file_headers(
    model: FrozenModel, prepared: Sequence[Prepared], payloads: Sequence[Payload], scale: int = 1
) -> list[Header]:
    """The headers of plain files of the payloads ``model`` coded for the prepared images (level, id, version);
    with a ``scale``, of scaled files (version 9 or 10) whose payloads code the images' coarse versions."""
    out = []
    for item, payload in zip(prepared, payloads):
        height, width = item.pixels.shape
        header = Header(model.level, model.model_id, width, height, item.inverted, bitstream.VERSION)
        out.append(_latents_version(header, payload, scale))
    return out


def _latents_version(header: Header, payload: Payload, scale: int = 1) -> Header:
    """``header`` (version 4, or 5 when refined) made the version its payload's latents need, coding the image at
    ``scale``: 10 in fitted contexts, else 9 scaled, 6 in contexts."""
    if payload.fitted is not None:
        return replace(header, version=bitstream.FITTED_VERSION, scale=scale, contexts_id=payload.fitted)
    if scale > 1:
        return replace(header, version=bitstream.SCALED_VERSION, scale=scale, in_context=payload.in_context)
    return replace(header, version=bitstream.CONTEXT_VERSION) if payload.in_context else header


def pack_files(
    model: FrozenModel, prepared: Sequence[Prepared], payloads: Sequence[Payload], scale: int = 1
) -> list[bytes]:
    """Whole files of the payloads ``model`` coded for the prepared images: header, payload, checksum (with a
    ``scale``, scaled files: :func:`file_headers`)."""
    headers = file_headers(model, prepared, payloads, scale)
    return [bitstream.pack(header, payload.data) for header, payload in zip(headers, payloads)]


@dataclass(frozen=True)
class Encoded:
    """One image's file, or why there is none (a size target no file fits); ``level`` and ``psnr`` say what a
    target chose, ``notice`` anything the user should hear."""

    data: bytes | None
    level: int | None = None
    psnr: float | None = None
    notice: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Encoder:
    """The per-image decision at a quality and effort: every entry point codes through one.

    With ``max_error`` every file is refined (every pixel within it; 0:
    lossless; with ``restore``, the predictive coder's files may be restored,
    :mod:`codec.restore`: a higher PSNR, every pixel within twice the maximum
    error); with ``psnr`` or ``max_bytes`` the quality is chosen per image
    (:mod:`codec.targets`) and ``quality`` is not used. Arguments are checked
    when the encoder is made (:class:`ArgumentError`; a quality that is not
    installed is the :class:`ModelError` of the first image coded).

    >>> from codec.images import prepare
    >>> digit = np.zeros((28, 28), np.uint8); digit[6:22, 12:16] = 255
    >>> (coded,) = Encoder(quality=4, effort=0).encode([prepare(digit)])
    >>> coded.data[:1] == bitstream.MAGIC
    True
    """

    quality: int = DEFAULT_LEVEL
    effort: int = DEFAULT_EFFORT
    max_error: int | None = None
    psnr: float | None = None
    max_bytes: int | None = None
    restore: bool = False

    def __post_init__(self) -> None:
        from .targets import check_target  # targets code each quality through this class

        object.__setattr__(self, "quality", check_quality(self.quality))
        object.__setattr__(self, "effort", check_effort(self.effort))
        if self.max_error is not None:
            object.__setattr__(self, "max_error", check_max_error(self.max_error))
        if self.targeted:
            check_target(self.psnr, self.max_bytes)
            if self.max_error is not None:
                raise ArgumentError("give a maximum error or a target (a PSNR, a size), not both")
        if self.restore and not self.max_error:
            raise ArgumentError("restoration goes with a maximum error of 1 or more (a PSNR target restores itself)")

    @property
    def targeted(self) -> bool:
        """Whether the quality is chosen per image for a PSNR or size target."""
        return self.psnr is not None or self.max_bytes is not None

    def encode(self, prepared: Sequence[Prepared]) -> list[Encoded]:
        """The file of each image brought to the model's form by :func:`codec.images.prepare`."""
        if self.targeted:
            from .targets import encode_for_target

            return encode_for_target(prepared, self.psnr, self.max_bytes, self.effort)
        if self.max_error is not None:
            return [
                Encoded(encode_within(item, self.max_error, self.quality, self.effort, restored=self.restore)[0])
                for item in prepared
            ]
        return [Encoded(data) for data in encode_prepared(prepared, self.quality, self.effort)]

    def files(self, prepared: Sequence[Prepared]) -> list[bytes]:
        """The files of :meth:`encode`; :class:`ImageError` for an image that gets none (over a size target)."""
        out = []
        for coded in self.encode(prepared):
            if coded.data is None:
                raise ImageError(coded.error or "no file")
            out.append(coded.data)
        return out

    def streams(self, prepared: Sequence[Prepared]) -> tuple[FrozenModel, list[np.ndarray]]:
        """One model and each image's symbol stream: what a block of an archive codes (as :meth:`payloads`)."""
        self._archived()
        return encode_streams(prepared, self.quality, self.effort)

    def _archived(self) -> None:
        if self.targeted or self.max_error is not None:
            raise ArgumentError("archives are coded at a quality; a maximum error or target codes single files")

    def payloads(self, prepared: Sequence[Prepared]) -> tuple[FrozenModel, list[Payload]]:
        """One model and each image's payload coded with its tables (what an archive holds).

        An archive names one model for all its images (its header, and the
        shared latent space :mod:`codec.retrieval` ranks in), so the choice
        keeps the quality's own model; the search runs at its lambda as for
        single files (:func:`search_effort`).
        """
        self._archived()
        return encode_payloads(prepared, self.quality, self.effort, in_context=False)
