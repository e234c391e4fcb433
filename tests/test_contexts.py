"""Latents off the home grid coded in adaptive contexts (format version 6; version 10 starts them at fitted
tables: ``test_context_tables.py``): exact, smaller, checked."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as samples

import codec
from codec import api, bitstream, coder, context_tables, contexts, encoder, models
from codec.errors import CodecError, FormatError
from codec.images import pad_to_stride, prepare


def _symbols(model: models.FrozenModel, image: np.ndarray) -> np.ndarray:
    padded = pad_to_stride(prepare(image).pixels[None], model.stride) / np.float32(255.0)
    symbols: np.ndarray = model.prior.to_symbols(model.analyse(padded))[0]
    return symbols


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 3), (5, 8), (9, 9)])
def test_any_grid_round_trips(general: models.FrozenModel, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    symbols = rng.integers(0, 2 * general.prior.radius + 1, size=(general.prior.channels, *shape)).astype(np.int32)
    data = contexts.encode(general.prior, symbols)
    np.testing.assert_array_equal(contexts.decode(general.prior, data, *shape), symbols)


def test_a_large_flat_background_costs_little(general: models.FrozenModel) -> None:
    """The reason for version 6: a big digit on grey paper, whose background the stationary tables pay for."""
    image = np.full((256, 256), 215, np.uint8)
    image[60:200, 110:150] = 30
    symbols = _symbols(general, image)
    stationary = coder.encode(general.prior.streams(symbols[None])[0], general.prior.layout(*symbols.shape[1:]))
    adaptive = contexts.encode(general.prior, symbols)
    assert len(adaptive) < 0.5 * len(stationary)
    np.testing.assert_array_equal(contexts.decode(general.prior, adaptive, *symbols.shape[1:]), symbols)


def test_a_photo_file_is_in_contexts_and_decodes_as_its_latents(general: models.FrozenModel) -> None:
    photo = samples.camera()[:128, :160]
    data = codec.compress(photo, quality=8, effort=0)
    header, latents = api.decode_latents(data)
    assert header.latents_in_context and header.version == bitstream.FITTED_VERSION
    assert np.array_equal(latents, general.prior.from_symbols(_symbols(general, photo)))
    plain = codec.compress_many([photo], 8, 0)[0]
    assert plain == data


def test_the_smaller_coding_is_kept() -> None:
    """A tiny image, too small to learn from, keeps the model's tables (version 4); never a larger file."""
    tiny = samples.camera()[200:218, 300:345]
    _, (payload,) = encoder.encode_payloads([prepare(tiny)], 8, 0, model=encoder.own_model(8, *tiny.shape))
    model = encoder.own_model(8, *tiny.shape)
    symbols = _symbols(model, tiny)
    fitted = context_tables.fitted_start(model)
    assert fitted is not None
    adaptive = contexts.encode(model.prior, symbols, fitted[1])
    stationary = coder.encode(model.prior.streams(symbols[None])[0], model.prior.layout(*symbols.shape[1:]))
    assert len(payload.data) == min(len(adaptive), len(stationary))
    assert payload.in_context == (len(adaptive) < len(stationary))


def test_mnist_digits_keep_version_4(digits: np.ndarray) -> None:
    for data in codec.compress_many(list(digits[:20]), 8, 0):
        assert codec.inspect(data).header.version == bitstream.VERSION


def test_version_6_on_the_home_grid_is_refused(digits: np.ndarray) -> None:
    data = codec.compress(digits[0], quality=8, effort=0)
    header, payload = bitstream.unpack(data, models.known_model_ids)
    forged = bitstream.pack(
        bitstream.Header(header.level, header.model_id, 28, 28, header.inverted, bitstream.CONTEXT_VERSION), payload
    )
    with pytest.raises(FormatError, match="off the model's home grid"):
        codec.decompress(forged)


def test_version_6_without_latents_is_refused() -> None:
    with pytest.raises(FormatError, match="level 0"):
        bitstream.Header(0, 0, 40, 40, version=bitstream.CONTEXT_VERSION, max_error=0)


def test_damaged_files_in_contexts_fail_cleanly() -> None:
    photo = samples.camera()[:96, :96]
    data = bytearray(codec.compress(photo, quality=8, effort=0))
    assert codec.inspect(bytes(data)).header.latents_in_context
    for cut in (len(data) - 3, len(data) // 2, 8):
        with pytest.raises(CodecError):
            codec.decompress(bytes(data[:cut]))
    data[len(data) // 2] ^= 0x40
    with pytest.raises(CodecError):
        codec.decompress(bytes(data))


def test_archives_keep_the_models_tables() -> None:
    """Archives have their own version; their payloads stay coded with the model's tables."""
    photo = samples.camera()[:64, :64]
    model, (payload,) = encoder.encode_payloads([prepare(photo)], 8, 0, in_context=False)
    assert not payload.in_context
    latents = api.decode_payload(bitstream.Header(8, model.model_id, 64, 64), payload.data)
    np.testing.assert_array_equal(latents, model.prior.from_symbols(_symbols(model, photo)))
