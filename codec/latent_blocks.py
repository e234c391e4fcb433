"""Many images' latents in one range-coded stream: the blocks of a lossy archive (archive version 5).

A version 3 archive codes each digit's latents as a stream of its own: the
coder's tail and a length byte per image, and one decoder (two calls) per
image, which is what reading latents costs (``aec search``). A block codes the
latents of up to :data:`MAX_IMAGES` images of the model's home grid (digits of
25 to 28 px a side) with the same tables as single files, as one stream:

    the block's table-set selectors, one per image, with the selector's table
    (absent when the model has one set), then every image's symbols in C order,
    image after image, each with its row of the set its selector names.

A decoder reads the selectors in one call and all the symbols in a second, so
an archive's latents decode a block at a time. A block holds at most
:data:`MAX_SYMBOLS` symbols, which bounds a decoder's tables (its rows as
float64: 25 MiB).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import coder
from .errors import CorruptFileError, FormatError
from .models import FrozenModel

#: The most images one block holds (what a writer packs, and a reader's bound).
MAX_IMAGES = 256
#: The most latent symbols one block holds: a reader refuses more (the decoder's rows are this many times K).
MAX_SYMBOLS = 1 << 16
#: The longest payload of any block, whatever the model: 16 bits a symbol and a selector each, the coder's last words.
MAX_BLOCK_BYTES = 2 * (MAX_SYMBOLS + MAX_IMAGES) + 8


def symbols_per_image(model: FrozenModel) -> int:
    """The latent symbols of one image on the model's home grid (C x GH x GW)."""
    return int(model.prior.index[0].size)


def block_size(model: FrozenModel) -> int:
    """Images per block for ``model``: as many as :data:`MAX_SYMBOLS` allows, at most :data:`MAX_IMAGES`."""
    return max(1, min(MAX_IMAGES, MAX_SYMBOLS // symbols_per_image(model)))


def check_block(model: FrozenModel, block: int) -> None:
    """Refuse blocks of ``block`` images that a reader does not take with ``model``: more than
    :data:`MAX_IMAGES`, or more than :data:`MAX_SYMBOLS` symbols (:class:`FormatError`)."""
    per_image = symbols_per_image(model)
    if not 1 <= block <= MAX_IMAGES or block * per_image > MAX_SYMBOLS:
        raise FormatError(f"archive: blocks of {block} images of {per_image} latents each are over the bounds")


def max_block_bytes(model: FrozenModel, count: int) -> int:
    """The longest payload a block of ``count`` images can code to: 16 bits a symbol (the tables' precision), a
    selector each, and the coder's last words."""
    return count * (symbols_per_image(model) + 1) * 2 + 8


def _bank_rows(model: FrozenModel, selectors: np.ndarray) -> np.ndarray:
    """The bank row of every symbol (count * C * GH * GW,) of images coded with the sets ``selectors``."""
    return model.prior.index[selectors].reshape(-1)


def encode_block(model: FrozenModel, streams: Sequence[np.ndarray]) -> bytes:
    """One block of home-grid images' symbol streams (as :meth:`codec.prior.LatentPrior.streams` gives them: the
    selector first when the model has several sets)."""
    if not 1 <= len(streams) <= MAX_IMAGES:
        raise ValueError(f"a block holds 1 to {MAX_IMAGES} images, not {len(streams)}")
    switched = model.prior.sets > 1
    selectors = np.array([int(s[0]) for s in streams] if switched else [0] * len(streams), np.int64)
    body = np.concatenate([np.asarray(s[1:] if switched else s, np.int32) for s in streams])
    if len(body) != len(streams) * symbols_per_image(model):
        raise ValueError("every stream of a block holds one home-grid image's symbols")
    stream = coder.StreamEncoder(cut=False)  # a cut saves 2 bytes a block for many decodes of 2^16 symbols
    if switched:
        stream.encode(selectors.astype(np.int32), model.prior.selector)
    stream.encode(body, model.prior.bank[_bank_rows(model, selectors)])
    return stream.finish()


def decode_block(model: FrozenModel, payload: bytes, count: int) -> np.ndarray:
    """The integer latents (count, C, GH, GW) of a block of ``count`` images; :class:`FormatError` for a block
    over the bounds, :class:`CorruptFileError` for a payload that does not decode."""
    check_block(model, count)
    per_image = symbols_per_image(model)
    if len(payload) > max_block_bytes(model, count):
        raise CorruptFileError("archive: a block's payload is longer than its latents can code to")
    stream = coder.StreamDecoder(payload)
    selectors = np.zeros(count, np.int64)
    if model.prior.sets > 1:
        selectors = stream.decode(count, model.prior.selector).astype(np.int64)
    rows = model.prior.bank_probabilities()[_bank_rows(model, selectors)]  # made once per model, not per block
    symbols = stream.decode_with(count * per_image, coder.rows_model(rows))
    return model.prior.from_symbols(symbols.reshape(count, *model.prior.index.shape[1:]))
