"""Per image, the model of any level that codes it at the lowest cost.

A level's model is trained for the average digit, not for each one: a plain
"1" may cost few more bits and far less error under a higher level's model,
and a tangled "8" fewer bits for little more error under a lower one. So
from effort 1 up the encoder weighs, per image, the models of every installed
level by the search's cost

    J = bits + lambda * SSE

(lambda: a level's search lambda; bits: the ideal code length of the
rounded latents under the candidate's integer tables; SSE of its decoded image,
pixels in [0, 1]). This is the mode decision of classic encoders with whole
models as the modes. The candidates are the same at every level, and the
cheapest of one set under a larger lambda never has a larger squared error,
so on every image the quality rises with the level: an image small enough to
search (every digit) has each candidate that some level's lambda picks
searched once (:mod:`codec.search`), and every level takes the cheapest of
that set of searched files at its lambda
(:func:`codec.encoder.exact_choice`); a larger image codes the rounded
latents of its level's pick. The file names the level
whose model coded it (``aec info`` shows it), so any decoder of the format
reads it; a level is an operating point (its lambda) more than one network.
Archives keep one model for all their images and skip the choice.

A digit-sized image weighs every level's own model; any other image every
level's own model and general variant (above :data:`MAX_PIXELS` the general
variants alone; above :data:`GENERAL_PIXELS` its level's two models). Each
candidate is also weighed coding the image's coarse versions (a scaled file,
:mod:`codec.resolution`), its error measured at full size after the format's
upsampling.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np

from . import resolution
from .images import pad_to_stride
from .models import FrozenModel
from .search import DECODE_PIXELS, MAX_PIXELS

#: Images that are not digit-sized weigh every general variant up to this many pixels (a synthesis each).
GENERAL_PIXELS = 512 * 512


def applies(height: int, width: int) -> bool:
    """Whether images of this size are worth the choice among every level's models: the search's limit."""
    return height * width <= MAX_PIXELS


def general_applies(height: int, width: int) -> bool:
    """Whether an image of this size that is not digit-sized weighs every level's general variant."""
    return height * width <= GENERAL_PIXELS


#: The sides of a digit-sized image (MNIST's 28 and what pads to its 7x7 grid of latents at stride 4).
DIGIT_SIDES = range(25, 29)


def digit_sized(height: int, width: int) -> bool:
    """Whether an image is digit-sized (25 to 28 px a side): what the levels' own models were trained on, whatever
    their grid (a one-vector model's home grid holds any image up to 28 px a side)."""
    return height in DIGIT_SIDES and width in DIGIT_SIDES


def home_size(model: FrozenModel, height: int, width: int) -> bool:
    """Whether an image of this size lands on the model's home grid: 25 to 28 px a side for a 7x7 grid, any image
    up to 28 px for a one-vector model (what an archive can code in blocks of latents; the encoder's test of a
    digit is :func:`digit_sized`)."""
    stride = model.stride
    return (-(-height // stride), -(-width // stride)) == model.prior.grid


def rounded_costs(model: FrozenModel, images: np.ndarray, lmbda: float, key: str | None = None) -> np.ndarray:
    """``bits + lmbda * SSE`` (N,) of same-size images (N, h, w) in [0, 1], each latent rounded.

    The images are padded with zeros to the model's stride, as the encoder does. ``key``: the images'
    :func:`images_key`, when the caller has it.
    """
    bits, sse = rounded_rate_distortion(model, images, key)
    return bits + lmbda * sse


#: How many (model, images, scale) rates and errors :func:`rounded_rate_distortion` remembers.
REMEMBERED = 256
_remembered: OrderedDict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()


def rounded_rate_distortion(
    model: FrozenModel, images: np.ndarray, key: str | None = None, coarse: np.ndarray | None = None, scale: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """The bits and SSE (each (N,)) of same-size images (N, h, w) in [0, 1] coded by ``model``, latents rounded.

    With a ``scale``, ``model`` codes ``coarse``, the images' coarse versions (:func:`resolution.downscale`), and
    the SSE is of its synthesis brought back to the images' size by the format's upsampling, as a scaled file
    decodes. Neither depends on the lambda, so the last :data:`REMEMBERED` are kept: trying every level on one
    image (``--psnr``, a benchmark's sweep) runs each candidate once. ``key``: the images' :func:`images_key`.
    """
    remembered = (model.digest, key or images_key(images), scale)
    if remembered in _remembered:
        _remembered.move_to_end(remembered)
        return _remembered[remembered]
    coded = images if coarse is None else coarse
    n, height, width = coded.shape
    padded = pad_to_stride(coded, model.stride)
    bits, sse = np.empty(n, dtype=np.float64), np.empty(n, dtype=np.float64)
    batch = max(1, DECODE_PIXELS // (padded.shape[1] * padded.shape[2]))  # bounds the synthesis' memory
    for first in range(0, n, batch):
        part = padded[first : first + batch]
        symbols = model.prior.to_symbols(model.analyse(part))
        decoded = model.synthesise((symbols - model.prior.radius).astype(np.float32))[:, :height, :width]
        sse[first : first + len(part)] = _squared_errors(decoded, images[first : first + batch], scale)
        bits[first : first + len(part)] = model.prior.set_costs(symbols).min(axis=1)
    bits.setflags(write=False)
    sse.setflags(write=False)
    _remembered[remembered] = (bits, sse)
    if len(_remembered) > REMEMBERED:
        _remembered.popitem(last=False)
    return bits, sse


def forget() -> None:
    """Drop every remembered rate and error (:func:`rounded_rate_distortion`)."""
    _remembered.clear()


def _squared_errors(decoded: np.ndarray, images: np.ndarray, scale: int) -> np.ndarray:
    """Per image, the squared error of a synthesis (N, h, w) against the images (N, H, W) in [0, 1], the
    synthesis upsampled ``scale`` times first (a strip at a time) and clipped to [0, 1]."""
    _, height, width = images.shape
    if scale == 1:
        error = np.clip(decoded, 0.0, 1.0) - images
        return (error.astype(np.float64) ** 2).sum(axis=(1, 2))
    out = np.zeros(len(images))
    for first, strip in resolution.upsample(decoded, scale, height, width):
        error = np.clip(strip, 0.0, 1.0) - images[:, first : first + strip.shape[1]]
        out += (error.astype(np.float64) ** 2).sum(axis=(1, 2))
    return out


def images_key(images: np.ndarray) -> str:
    """A digest of the images' shape and values: what :func:`rounded_rate_distortion` remembers them by."""
    values = np.ascontiguousarray(images, np.float32)
    h = hashlib.sha256(str(values.shape).encode())
    h.update(values.data.cast("B"))
    return h.hexdigest()


def rates_and_errors(
    pairs: Sequence[tuple[FrozenModel, int]], images: np.ndarray, coarse: Mapping[int, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The rounded bits and SSE, each (N, P), of images (N, h, w) in [0, 1] coded by each (model, scale) pair: at a
    scale above 1 the model codes the images' coarse versions ``coarse[scale]`` (each (N, h / scale, w / scale)),
    its error measured at full size (:func:`rounded_rate_distortion`)."""
    key = images_key(images)  # once, not per candidate
    measured = [rounded_rate_distortion(m, images, key, None if s == 1 else coarse[s], s) for m, s in pairs]
    return np.stack([bits for bits, _ in measured], axis=1), np.stack([sse for _, sse in measured], axis=1)
