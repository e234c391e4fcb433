"""The denoiser: damaged digits come back cleaner than the classic denoisers make them, torch-free, any size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from codec import denoise, models, store
from codec.cli import app
from codec.metrics import psnr
from codec.training.noise import damage, random_damage

runner = CliRunner()


def test_damage_is_what_it_says() -> None:
    rng = np.random.default_rng(0)
    grey = np.full((4, 64, 64), 0.5, np.float32)
    assert abs(float((damage(grey, "gaussian", 0.2, rng) - grey).std()) - 0.2) < 0.01
    hit = damage(grey, "salt-and-pepper", 0.1, rng) != grey
    assert abs(hit.mean() - 0.1) < 0.01
    dot = np.zeros((1, 9, 9), np.float32)
    dot[0, 4, 4] = 1
    blurred = damage(dot, "blur", 1.0, rng)
    assert blurred[0, 4, 4] < 1 and blurred[0, 4, 3] > 0 and abs(blurred.sum() - 1) < 0.01
    mixed = random_damage(grey, rng)
    assert mixed.shape == grey.shape and mixed.dtype == np.float32 and (mixed != grey).any()
    with pytest.raises(ValueError, match="unknown damage"):
        damage(grey, "rain", 0.1, rng)


def test_noisy_digits_come_back_cleaner_than_the_median_makes_them(digits: np.ndarray) -> None:
    from scipy.ndimage import median_filter

    clean = digits[:100]
    noisy = np.clip(np.rint(damage(clean / np.float32(255), "gaussian", 0.3, np.random.default_rng(1)) * 255), 0, 255)
    noisy = noisy.astype(np.uint8)
    cleaned = denoise.denoise_many(list(noisy))
    ours = np.mean([psnr(c, d) for c, d in zip(clean, cleaned)])
    median = np.mean([psnr(c, median_filter(n, size=3)) for c, n in zip(clean, noisy)])
    before = np.mean([psnr(c, n) for c, n in zip(clean, noisy)])
    assert ours > median + 3 and ours > before + 8, (ours, median, before)


def test_any_size_and_polarity(digits: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    digit = digits[0]
    out = denoise.denoise(digit)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert np.array_equal(denoise.denoise(255 - digit), 255 - out)  # dark ink on light comes back so
    wide = np.kron(np.concatenate([digits[1], digits[2]], axis=1)[:27], np.ones((3, 3), np.uint8))  # 81 x 168
    whole = denoise.denoise(wide)
    assert whole.shape == wide.shape
    monkeypatch.setattr(denoise, "STRIP_PIXELS", 168 * 8)  # strips of a few rows: the same pixels
    assert np.array_equal(denoise.denoise(wide), whole)


def test_denoise_command(tmp_path: Path, digits: np.ndarray) -> None:
    source = tmp_path / "noisy.png"
    Image.fromarray(digits[3]).save(source)
    result = runner.invoke(app, ["denoise", str(source)])
    assert result.exit_code == 0, result.output
    written = tmp_path / "noisy.clean.png"
    assert np.array_equal(np.asarray(Image.open(written)), denoise.denoise(digits[3]))
    again = runner.invoke(app, ["denoise", str(source)])
    assert again.exit_code == 1 and "exists" in again.stderr  # never overwritten without --force
    (tmp_path / "bad.png").write_bytes(b"not an image")
    bad = runner.invoke(app, ["denoise", str(tmp_path / "bad.png")])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1


def test_training_stores_a_denoiser(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from codec.training.denoise_fit import train_denoiser

    path, meta = train_denoiser(None, tmp_path, 1, 0, "aec train-denoiser --limit 256", limit=256)
    assert store.preset_path(tmp_path, denoise.ROLE) == path.resolve()
    model = denoise.load(tmp_path)
    assert meta["chosen_epoch"] == 1 and len(meta["history"]) == 1 and meta["data_sha256"]
    assert store.read_metadata(path)["model_sha256"] == model.digest
    assert denoise.denoise(np.zeros((28, 28), np.uint8), model).shape == (28, 28)
    models.clear_cache()
