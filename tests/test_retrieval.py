"""``aec search``: nearest neighbours in an archive's latent space, the archive entropy-decoded only."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from codec import archive, models, projection, retrieval, store
from codec.cli import app
from codec.errors import ArgumentError, ImageError, ModelError
from codec.images import prepare
from codec.projection import Projection
from codec.training.retrieval_fit import fit

runner = CliRunner()


@pytest.fixture(scope="module")
def packed(mnist_test: tuple[np.ndarray, np.ndarray]) -> bytes:
    """The first 1,500 test digits at level 8, effort 0."""
    return archive.pack(list(mnist_test[0][:1500]), quality=8, effort=0)


def _search(packed: bytes, images: list[np.ndarray], k: int = 10) -> list[list[retrieval.Match]]:
    stream = io.BytesIO(packed)
    return retrieval.search(stream.read, archive.read_head(stream.read), [prepare(i) for i in images], k)


def test_an_archived_image_finds_itself_first(packed: bytes, mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    digits = mnist_test[0]
    found = _search(packed, [digits[3], digits[1200], 255 - digits[40]], k=3)
    # Coded at the archive's effort (0), a query's latents are an archived image's own: similarity 1.
    assert [matches[0].index for matches in found] == [3, 1200, 40]  # polarity does not matter
    assert all(abs(matches[0].similarity - 1) < 1e-5 for matches in found)
    assert all(a.similarity >= b.similarity for matches in found for a, b in zip(matches, matches[1:]))


def test_neighbours_share_the_label_as_often_as_raw_pixels_do(
    packed: bytes, mnist_test: tuple[np.ndarray, np.ndarray]
) -> None:
    digits, labels = mnist_test
    queries, truth = digits[1500:1800], labels[1500:1800]
    found = _search(packed, list(queries))
    latent = np.mean([[labels[m.index] == t for m in matches] for matches, t in zip(found, truth)])
    archived = digits[:1500].reshape(1500, -1).astype(np.float32)
    asked = queries.reshape(len(queries), -1).astype(np.float32)
    distances = (asked**2).sum(1)[:, None] - 2 * asked @ archived.T + (archived**2).sum(1)[None]
    pixels = np.mean(labels[:1500][np.argsort(distances, axis=1)[:, :10]] == truth[:, None])
    # kNN on raw pixels is the baseline the issue names; 300 queries measure each within about 0.02.
    assert latent > 0.7 and latent >= pixels - 0.02, (latent, pixels)  # 0.769 and 0.755 when written


def test_batches_give_the_same_neighbours(
    packed: bytes, mnist_test: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = list(mnist_test[0][2000:2005])
    whole = _search(packed, queries, k=7)
    monkeypatch.setattr(retrieval, "SIMILARITIES", 5 * 100)  # 100 archived images a batch
    assert _search(packed, queries, k=7) == whole


def test_what_cannot_be_searched_is_refused(mnist_test: tuple[np.ndarray, np.ndarray], packed: bytes) -> None:
    digits = list(mnist_test[0][:20])
    with pytest.raises(ArgumentError, match="lossless archive"):
        _search(archive.pack(digits, quality=archive.LOSSLESS), digits[:1])
    with pytest.raises(ImageError, match="a query of 20x20"):
        _search(packed, [np.zeros((20, 20), np.uint8)])
    with pytest.raises(ArgumentError, match="k must be"):
        _search(packed, digits[:1], k=0)


def test_search_command(tmp_path: Path, packed: bytes, mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    from codec.data import write_idx

    (tmp_path / "a.aecs").write_bytes(packed)
    Image.fromarray(mnist_test[0][7]).save(tmp_path / "q.png")
    (tmp_path / "q-idx3-ubyte").write_bytes(write_idx(mnist_test[0][8:10]))
    result = runner.invoke(
        app, ["search", str(tmp_path / "q.png"), str(tmp_path / "q-idx3-ubyte"), str(tmp_path / "a.aecs"), "-k", "3"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"{tmp_path / 'q.png'}: 7 (1.000), ")
    assert lines[2].startswith(f"{tmp_path / 'q-idx3-ubyte'}[1]: 9 (1.000), ") and lines[2].count("(") == 3
    for args, code in [
        ([str(tmp_path / "a.aecs")], 2),
        ([str(tmp_path / "q.png"), str(tmp_path / "a.aecs"), "-k", "0"], 2),
        ([str(tmp_path / "q.png"), str(tmp_path / "q.png")], 1),  # not an archive
        ([str(tmp_path / "missing.png"), str(tmp_path / "a.aecs")], 1),
    ]:
        refused = runner.invoke(app, ["search", *args])
        assert refused.exit_code == code and refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1


@pytest.fixture(scope="module")
def packed_vector(mnist_test: tuple[np.ndarray, np.ndarray]) -> bytes:
    """The first 1,500 test digits at level 6 (one latent vector a digit), effort 0."""
    return archive.pack(list(mnist_test[0][:1500]), quality=6, effort=0)


def _precision(found: list[list[retrieval.Match]], labels: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([[labels[m.index] == t for m in matches] for matches, t in zip(found, truth)]))


def test_the_projection_ranks_better_than_raw_latents(
    packed_vector: bytes, mnist_test: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    digits, labels = mnist_test
    queries, truth = list(digits[1500:2100]), labels[1500:2100]
    model = models.load_model(6)
    assert projection.for_model(model) is not None  # shipped for levels 1-6
    projected = _precision(_search(packed_vector, queries), labels, truth)
    monkeypatch.setattr(projection, "for_model", lambda model, folder=None: None)
    raw = _precision(_search(packed_vector, queries), labels, truth)
    assert projected > raw + 0.01, (projected, raw)  # 0.807 and 0.784 when written


def test_fit_makes_feature_distances_those_of_the_pixels() -> None:
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(6, 784))
    latents = rng.integers(-5, 6, size=(400, 6))
    digits = np.clip(latents @ weights * 4 + 128, 0, 255)  # linear in the latents, within [0, 255]
    matrix = fit(latents, digits.astype(np.uint8).reshape(-1, 28, 28), radius=24)
    assert matrix.dtype == np.int64 and matrix.shape == (6, 6)
    found = Projection(matrix, np.zeros(32, np.uint8))
    a, b = found.features(latents[:50]), found.features(latents[50:100])
    assert np.array_equal(a, np.rint(a))  # integers: similarities are exact
    feature = np.linalg.norm(a - b, axis=1)
    pixels = np.linalg.norm(digits[:50] - digits[50:100], axis=1)
    ratio = feature / pixels
    assert np.ptp(ratio) / ratio.mean() < 0.05  # one scale: feature distances are pixel distances
    assert 6 * found.largest_feature(24) ** 2 < projection.EXACT


def test_a_projection_is_used_only_for_its_model_and_checked(weights: Path) -> None:
    folder = weights
    model = models.load_model(6)
    other = models.load_model(5)
    assert projection.for_model(other, folder).model_digest == other.digest  # each level its own
    good = projection.for_model(model, folder)
    wrong_shape = Projection(good.matrix[:10], good.model)
    too_large = Projection(good.matrix * (1 << 20), good.model)
    for bad, message in [(wrong_shape, "of shape"), (too_large, "not be exact")]:
        projection.save(bad, 6, folder, {"command": "test"})
        with pytest.raises(ModelError, match=message):
            projection.for_model(model, folder)
        store.model_path(folder, bad.digest).unlink()
        store.model_path(folder, bad.digest).with_suffix(".json").unlink()
        store.clear_cache()
        projection.clear_cache()
    assert projection.for_model(model, folder).digest == good.digest


def test_shipped_projection_is_what_train_retrieval_fits(mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    from codec import data
    from codec.training import retrieval_fit

    model = models.load_model(6)
    shipped = projection.for_model(model)
    meta = store.read_metadata(store.preset_path(models.weights_dir(), projection.role(6)))
    assert meta["fitted_to"] == model.digest and meta["command"].startswith("aec train-retrieval")
    assert meta["test_precision_projected"] > meta["test_precision_latents"]
    train, _ = data.load_mnist("train")
    fitted = retrieval_fit.fit(
        retrieval_fit.latents_of(model, train[retrieval_fit.FIT]), train[retrieval_fit.FIT], model.prior.radius
    )
    # The same fit, up to LAPACK's rounding: some latents never move on these digits, so the least-squares design is
    # rank-deficient and the last digits of its minimum-norm solution vary with the numpy build (numpy 2.4: up to 15
    # units of entries up to 135,635). Another fit (other digits, another model) differs by thousands.
    assert np.abs(fitted - shipped.matrix).max() <= 1e-3 * np.abs(shipped.matrix).max()


def test_train_retrieval_refuses_a_grid_level(weights: Path, mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    result = runner.invoke(app, ["train-retrieval", "--level", "8", "--weights-dir", str(weights)])
    assert result.exit_code == 1 and result.stderr.startswith("error: level 8 codes a grid")
