"""The predictive coder (format version 8): any image back exactly or within the bound, integer-only, checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import codec
from codec import bitstream, encoder, models, predictive, refine, store
from codec.cli import app
from codec.errors import CodecError, FormatError, ModelError, ModelMismatchError
from codec.images import prepare
from codec.training import predictive_fit

runner = CliRunner()


@pytest.fixture(scope="module")
def model() -> predictive.PredictiveModel:
    return predictive.load()


@pytest.mark.parametrize("max_error", [0, 1, 2, 5, 40, 127])
def test_every_pixel_within_the_bound(model: predictive.PredictiveModel, photo: np.ndarray, max_error: int) -> None:
    stream, decoded = predictive.encode(model, photo, max_error)
    assert np.abs(decoded.astype(int) - photo).max() <= max_error
    assert np.array_equal(predictive.decode(model, stream, *photo.shape, max_error), decoded)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 3), (3, 2), (28, 28), (5, 40)])
@pytest.mark.parametrize("max_error", [0, 3])
def test_odd_shapes_round_trip(model: predictive.PredictiveModel, shape: tuple[int, int], max_error: int) -> None:
    image = np.random.default_rng(shape[0] * 100 + shape[1]).integers(0, 256, shape).astype(np.uint8)
    stream, decoded = predictive.encode(model, image, max_error)
    assert np.abs(decoded.astype(int) - image).max() <= max_error
    assert np.array_equal(predictive.decode(model, stream, *shape, max_error), decoded)


def test_diagonals_visit_every_pixel_once_after_its_neighbours() -> None:
    height, width = 6, 9
    stride = width + 2 * predictive.PAD
    order = np.full((height + predictive.PAD) * stride, -1)
    for t, idx in enumerate(predictive.diagonals(height, width)):
        assert (order[idx] == -1).all()
        order[idx] = t
    inside = order.reshape(height + predictive.PAD, stride)[predictive.PAD :, predictive.PAD : predictive.PAD + width]
    assert (inside >= 0).all()
    for y in range(height):
        for x in range(width):
            for dy, dx in predictive._OFFSETS.values():
                if y + dy >= 0 and 0 <= x + dx < width:
                    assert inside[y + dy, x + dx] < inside[y, x]


def test_images_with_gaps_between_their_grey_levels_are_packed(model: predictive.PredictiveModel) -> None:
    """A contrast-stretched image (every 7th grey level) codes as indices into its levels: smaller, still exact."""
    smooth = np.add.outer(np.arange(40), np.arange(50)) // 3 + np.random.default_rng(2).integers(0, 3, (40, 50))
    image = (smooth * 7 % 256).astype(np.uint8)
    stream, decoded = predictive.encode(model, image, 0)
    plain, _ = predictive._encode(model, image, 0, None)
    assert np.array_equal(decoded, image) and len(stream) < 0.8 * len(plain)
    assert np.array_equal(predictive.decode(model, stream, *image.shape, 0), image)
    near, decoded = predictive.encode(model, image, 2)  # within a bound: never packed (the bound is in grey levels)
    assert np.abs(decoded.astype(int) - image).max() <= 2
    assert np.array_equal(predictive.decode(model, near, *image.shape, 2), decoded)


def test_a_flat_image_costs_almost_nothing(model: predictive.PredictiveModel) -> None:
    stream, _ = predictive.encode(model, np.full((256, 256), 90, np.uint8), 0)
    assert len(stream) < 200  # under 0.025 bits a pixel


def test_costs_less_as_the_bound_grows(model: predictive.PredictiveModel, photo: np.ndarray) -> None:
    sizes = [len(predictive.encode(model, photo, k)[0]) for k in (0, 1, 2, 4, 8)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 2 * sizes[-1]


def test_smaller_than_the_refinement_layer_without_a_base(model: predictive.PredictiveModel, photo: np.ndarray) -> None:
    """What it replaces for files without an autoencoder layer: smaller at every bound on a benchmark photo."""
    old = refine.load()
    grey = np.full(photo.shape, refine.MID_GREY, np.uint8)
    for max_error in (0, 1, 4):
        new = len(predictive.encode(model, photo, max_error)[0])
        assert new < 0.97 * len(refine.encode(old, photo, grey, max_error, 0)[0])


def test_files_are_version_8_both_polarities(photo: np.ndarray) -> None:
    for image in (photo, 255 - photo):
        for max_error in (0, 3):
            data = codec.compress(image, quality=8, effort=0, max_error=max_error)
            header = codec.inspect(data).header
            assert header.version == bitstream.PREDICTIVE_VERSION and header.level == 0 and header.predictive
            assert header.max_error == max_error and header.refine_id == predictive.load().model_id
            assert np.abs(codec.decompress(data).astype(int) - image).max() <= max_error


def test_damaged_files_are_refused_not_crashed(
    photo: np.ndarray, refused_when_damaged: Callable[[bytes], None]
) -> None:
    data = codec.compress(photo[:12, :12], quality=8, effort=0, max_error=0)
    assert codec.inspect(data).header.predictive
    refused_when_damaged(data)


def test_any_stream_decodes_or_is_refused(model: predictive.PredictiveModel) -> None:
    """Past the checksum: random streams give an image in range or a one-line error, never anything else."""
    rng = np.random.default_rng(5)
    for _ in range(30):
        stream = rng.integers(0, 256, int(rng.integers(0, 64))).astype(np.uint8).tobytes()
        try:
            image = predictive.decode(model, stream, 9, 11, int(rng.integers(0, 3)))
        except CodecError:
            continue
        assert image.shape == (9, 11) and image.dtype == np.uint8


def test_header_fields_are_checked() -> None:
    with pytest.raises(FormatError):  # a predictive file has no autoencoder layer
        bitstream.Header(level=3, model_id=1, version=8, max_error=0, refine_id=5)
    with pytest.raises(FormatError):  # and always a maximum error
        bitstream.Header(level=0, model_id=0, version=8)
    header = bitstream.Header(level=0, model_id=0, version=8, max_error=0, refine_id=0xABC, width=5, height=4)
    parsed, payload = bitstream.unpack(bitstream.pack(header, b"\x01\x02"))
    assert parsed == header and parsed.predictive and payload == b"\x01\x02"


def test_a_file_of_another_predictive_model_is_named(photo: np.ndarray, model: predictive.PredictiveModel) -> None:
    data, _ = encoder.predictive_file(prepare(photo[:8, :8]), 1)
    header, payload = bitstream.unpack(data)
    other = bitstream.Header(**{**header.__dict__, "refine_id": (model.model_id + 1) % 4096})
    with pytest.raises(ModelMismatchError, match="predictive model"):
        codec.decompress(bitstream.pack(other, payload))


def test_without_the_model_files_fall_back_to_version_5(weights: Path, photo: np.ndarray) -> None:
    """An installation without the predictive model writes the refinement layer over mid-grey, as aec 0.16 did."""
    path = weights / store.PRESETS
    presets = json.loads(path.read_text())
    del presets[predictive.ROLE]
    path.write_text(json.dumps(presets))
    models.clear_cache()
    data = codec.compress(photo, quality=8, effort=0, max_error=0)
    assert codec.inspect(data).header.version == bitstream.REFINED_VERSION
    assert np.array_equal(codec.decompress(data), photo)
    with pytest.raises(ModelError):
        predictive.load()


def test_cli_info_names_the_predictive_model(tmp_path: Path, photo: np.ndarray) -> None:
    source = tmp_path / "photo.png"
    Image.fromarray(photo).save(source)
    result = runner.invoke(app, ["compress", "--lossless", str(source), "-o", str(tmp_path / "p.aec")])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["info", str(tmp_path / "p.aec")])
    assert f"aec format 8, 80x64, predictive model {predictive.load().model_id:03x}, lossless" in info.output
    result = runner.invoke(app, ["decompress", str(tmp_path / "p.aec"), "-o", str(tmp_path / "back.png")])
    assert result.exit_code == 0 and np.array_equal(np.asarray(Image.open(tmp_path / "back.png")), photo)


def test_fit_counts_what_the_coder_codes() -> None:
    """The tables are the symbols' frequencies in their contexts: a model fitted on flat images expects zeros."""
    images = [np.full((12, 12), v, np.uint8) for v in (0, 60, 200)]
    counts = predictive_fit.count_symbols(images, (0,))
    assert counts.sum() == 2 * sum(i.size for i in images)  # one count per pixel in each of its two rows
    fitted = predictive_fit.fit(images)
    assert (fitted.tables[:, 0] > 30000).any() and fitted.tables.shape == (predictive.TABLE_ROWS, predictive.SYMBOLS)


def test_the_shipped_model_is_what_its_metadata_says() -> None:
    path = store.preset_path(models.weights_dir(), predictive.ROLE)
    assert path is not None
    meta = store.read_metadata(path)
    assert meta["command"].startswith("aec train-predictive") and meta["kind"] == predictive.ROLE
    assert meta["model_sha256"] == predictive.load().digest
    assert set(meta["validation_bpp_by_max_error"]) == {"0", "2"}


def test_a_budget_stops_the_coder_once_passed(model: predictive.PredictiveModel, photo: np.ndarray) -> None:
    stream, _ = predictive.encode(model, photo, 0)
    assert predictive.encode_within_budget(model, photo, 0, len(stream) // 2) is None
    assert predictive.encode_within_budget(model, photo, 0, len(stream) + 8) is not None
    assert encoder.predictive_file(prepare(photo), 0, budget=100) is None
