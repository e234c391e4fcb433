"""The encoder's search for cheaper latents: never worse, real gains, plain files, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import codec
from codec import api, coder, encoder, models, search
from codec.cli import app
from codec.images import prepare
from codec.metrics import mse, psnr_from_mse

VECTOR_LEVEL, GRID_LEVEL = 3, 8  # one latent vector per digit; a 7x7 grid


def _cost(model: models.FrozenModel, symbols: np.ndarray, images: np.ndarray) -> np.ndarray:
    """bits + lambda * SSE of symbol grids (N, C, H, W) against images (N, 28, 28) in [0, 1]."""
    decoded = np.clip(model.synthesise(model.prior.from_symbols(symbols).astype(np.float32)), 0, 1)
    sse = ((decoded - images) ** 2).sum(axis=(1, 2))
    return model.prior.code_lengths(symbols) + model.search_lambda * sse


def _search(level: int, images: np.ndarray, effort: int) -> tuple[models.FrozenModel, np.ndarray, np.ndarray]:
    model = models.load_model(level)
    x = images / np.float32(255.0)
    latents = model.analyse(x)
    rounded = model.prior.to_symbols(latents)
    found = search.refine(
        rounded, latents, x, model.prior, model.synthesise, model.search_lambda, search.EFFORTS[effort]
    )
    return model, rounded, found


@pytest.mark.parametrize("level", [VECTOR_LEVEL, GRID_LEVEL])
def test_search_never_raises_the_cost_and_lowers_it_on_average(digits: np.ndarray, level: int) -> None:
    images = digits[:48]
    model, rounded, found = _search(level, images, search.DEFAULT_EFFORT)
    x = images / np.float32(255.0)
    before, after = _cost(model, rounded, x), _cost(model, found, x)
    assert np.all(after <= before + 1e-6)
    assert (found != rounded).any(axis=(1, 2, 3)).mean() > 0.5  # most digits move
    assert after.mean() < 0.95 * before.mean()


def _own_model_files(images: list[np.ndarray], level: int, effort: int) -> list[bytes]:
    """Files of the level's own model (no choice of model: the search alone)."""
    return encoder.code_with(encoder.own_model(level, 28, 28), [prepare(image) for image in images], level, effort)


def test_search_buys_quality_not_rate(digits: np.ndarray) -> None:
    """At the same level, effort 2 files are no larger and clearly better than rounded latents' (measured: +1 dB)."""
    images = list(digits[:64])
    for level in (VECTOR_LEVEL, GRID_LEVEL):
        plain = _own_model_files(images, level, effort=0)
        searched = _own_model_files(images, level, effort=2)
        gain = psnr_from_mse(mse(np.stack(images), np.stack(codec.decompress_many(searched))).mean()) - psnr_from_mse(
            mse(np.stack(images), np.stack(codec.decompress_many(plain))).mean()
        )
        assert gain > 0.4, f"level {level}: {gain:.2f} dB"
        assert sum(map(len, searched)) <= 1.02 * sum(map(len, plain))


def test_code_lengths_predict_the_payload(digits: np.ndarray) -> None:
    """The search's rate is the coder's: ideal bits under the chosen set are within a few bits of the payload."""
    model, _, found = _search(GRID_LEVEL, digits[:20], 1)
    layout = model.prior.layout(*found.shape[-2:])
    for symbols, streams in zip(found, model.prior.streams(found)):
        bits = float(model.prior.code_lengths(symbols[None])[0])
        payload = 8 * len(coder.encode(streams, layout))
        assert bits - 8 <= payload <= bits + 12  # a cut stream may end inside its last byte


def test_files_are_plain_and_decode_to_the_searched_latents(digits: np.ndarray) -> None:
    model, _, found = _search(VECTOR_LEVEL, digits[:10], search.DEFAULT_EFFORT)
    for data, expected in zip(_own_model_files(list(digits[:10]), VECTOR_LEVEL, search.DEFAULT_EFFORT), found):
        _, latents = api.decode_latents(data)
        assert np.array_equal(latents, model.prior.from_symbols(expected))


def test_effort_zero_rounds(digits: np.ndarray) -> None:
    model, rounded, _ = _search(GRID_LEVEL, digits[:5], 0)
    for image, expected in zip(digits[:5], rounded):
        _, latents = api.decode_latents(codec.compress(image, quality=GRID_LEVEL, effort=0))
        assert np.array_equal(latents, model.prior.from_symbols(expected))


def test_search_on_other_sizes_and_paper(digits: np.ndarray) -> None:
    """Off the home grid (stationary tables) and for dark ink on paper the search runs and stays exact."""
    canvas = np.zeros((40, 33), np.uint8)
    canvas[5:33, 2:30] = digits[3]
    lam = models.load_model(GRID_LEVEL).search_lambda
    for image in (canvas, 255 - digits[4]):
        costs = []
        for effort in (0, 3):
            data = codec.compress(image, quality=GRID_LEVEL, effort=effort)
            restored = codec.decompress(data)
            assert restored.shape == image.shape
            # The search's units: bits + lambda * SSE with pixels in [0, 1] (file bytes bound the ideal bits).
            costs.append(8 * len(data) + lam * float(mse(image, restored)) * image.size / 255**2)
        assert costs[1] <= costs[0] + 16


def test_search_with_nothing_left_to_try(digits: np.ndarray) -> None:
    """Effort 3 tries more latents than a one-vector level has live ones: the later rounds have nothing to decode."""
    for image in (digits[7], np.zeros((28, 28), np.uint8)):
        data = codec.compress(image, quality=1, effort=3)
        assert codec.decompress(data).shape == (28, 28)


def test_unknown_effort_is_refused(digits: np.ndarray, tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown effort"):
        codec.compress(digits[0], effort=9)
    from PIL import Image

    png = tmp_path / "d.png"
    Image.fromarray(digits[0]).save(png)
    result = CliRunner().invoke(app, ["compress", str(png), "--effort", "4"])
    assert result.exit_code == 2
    assert not png.with_suffix(".aec").exists()
