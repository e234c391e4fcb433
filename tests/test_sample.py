"""aec sample: digits drawn from the shipped variational model, without torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from codec import sample
from codec.cli import app
from codec.errors import ArgumentError, ModelError


def test_the_shipped_model_draws_digit_like_images() -> None:
    drawn = sample.sample(64, seed=0)
    assert np.array_equal(drawn, sample.sample(64, seed=0))
    ink = (drawn > 128).mean(axis=(1, 2))
    assert (ink > 0.03).all() and (ink < 0.4).all()  # strokes on black, as MNIST digits (about 0.13 inked)
    border = np.concatenate([drawn[:, :2].ravel(), drawn[:, -2:].ravel(), drawn[:, :, :2].ravel()])
    assert (border < 64).mean() > 0.95  # centred: the border stays black
    assert len({image.tobytes() for image in drawn}) == 64


def test_sample_refuses_bad_counts_and_a_store_without_the_model(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    with pytest.raises(ModelError, match="no variational model"):
        sample.load(tmp_path)
    with pytest.raises(ArgumentError, match="1 to 4096"):
        sample.sample(0)
    result = CliRunner().invoke(app, ["sample", "-n", "0", "-o", str(tmp_path / "g.png")])
    assert result.exit_code == 2 and not (tmp_path / "g.png").exists()


def test_grid_tiles_row_by_row() -> None:
    images = np.arange(1, 5, dtype=np.uint8)[:, None, None] * np.ones((4, 2, 3), np.uint8)
    tiled = sample.grid(images, columns=2, gap=1)
    assert tiled.shape == (5, 7) and tiled[0, 0] == 1 and tiled[0, 4] == 2 and tiled[3, 0] == 3 and tiled[3, 4] == 4
    assert tiled[2, 0] == 128 and tiled[0, 3] == 128
