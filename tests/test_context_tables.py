"""Fitted start tables of the latents' contexts (format version 10): smaller, exact, named, checked, reproducible."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from skimage import data as samples
from typer.testing import CliRunner

import codec
from codec import bitstream, context_tables, contexts, models, store
from codec.adaptive import Adaptation
from codec.bitstream import Header
from codec.cli import app
from codec.context_tables import FittedContexts
from codec.errors import CorruptFileError, FormatError, ModelError, ModelMismatchError
from codec.images import pad_to_stride
from codec.training import contexts_fit


def _symbols(model: models.FrozenModel, image: np.ndarray) -> np.ndarray:
    padded = pad_to_stride(image[None], model.stride) / np.float32(255.0)
    symbols: np.ndarray = model.prior.to_symbols(model.analyse(padded))[0]
    return symbols


@pytest.fixture(scope="module")
def tables() -> FittedContexts:
    installed = context_tables.installed()
    assert installed is not None, "no context tables installed"
    return installed


def test_fitted_start_codes_a_benchmark_photo_in_fewer_bits(general: models.FrozenModel) -> None:
    """The reason for version 10: a photo crop (never a training image) costs less than from version 6's start,
    and both streams decode exactly."""
    symbols = _symbols(general, samples.camera()[300:364, 100:180])
    fitted = context_tables.fitted_start(general)
    assert fitted is not None
    stationary = contexts.encode(general.prior, symbols)
    started = contexts.encode(general.prior, symbols, fitted[1])
    assert len(started) < 0.95 * len(stationary)
    grid = symbols.shape[1:]
    np.testing.assert_array_equal(contexts.decode(general.prior, started, *grid, fitted[1]), symbols)
    with pytest.raises(AssertionError):  # a stream decoded from the wrong start is not the image's
        np.testing.assert_array_equal(contexts.decode(general.prior, started, *grid), symbols)


def test_the_shipped_tables_cover_every_latent_model(tables: FittedContexts) -> None:
    """Retraining a latent model without refitting the tables fails here (its files would fall back to version 6)."""
    digests = {m.digest for m in (models.load_model(level) for level in models.available_levels())}
    digests |= {g.digest for g in (models.load_general(level) for level in models.available_levels()) if g}
    assert set(tables.tables) == digests
    path = store.preset_path(models.weights_dir(), context_tables.ROLE)
    assert path is not None
    meta = store.read_metadata(path)
    assert meta["command"].startswith("aec train-contexts") and meta["model_sha256"] == tables.digest
    assert meta["validation_change"] < -0.1  # held-out training images: the fit pays


@pytest.mark.parametrize(("scale", "refined"), [(1, False), (1, True), (2, False), (4, False)])
def test_version_10_headers_round_trip(scale: int, refined: bool) -> None:
    bound = {"max_error": 3, "refine_id": 0x123} if refined else {}
    header = Header(8, 0x5A3, 300, 211, True, bitstream.FITTED_VERSION, scale=scale, contexts_id=0xABC, **bound)
    data = bitstream.pack(header, b"\x01\x02\x03")
    assert bitstream.unpack(data, lambda level: [0x5A3], lambda: [0x111, 0xABC]) == (header, b"\x01\x02\x03")
    assert header.latents_in_context and header.coded_size == (-(-211 // scale), -(-300 // scale))


def test_version_10_headers_are_checked() -> None:
    with pytest.raises(FormatError, match="a level"):
        Header(0, 0, 64, 64, version=bitstream.FITTED_VERSION, max_error=0)
    with pytest.raises(FormatError, match="no refinement when scaled"):
        Header(8, 1, 64, 64, version=bitstream.FITTED_VERSION, scale=2, max_error=2, refine_id=1)
    with pytest.raises(FormatError, match="does not fit"):
        Header(8, 1, 64, 64, version=bitstream.FITTED_VERSION, in_context=True)
    with pytest.raises(FormatError, match="only a version 10"):
        Header(8, 1, 64, 64, version=bitstream.CONTEXT_VERSION, contexts_id=5)
    data = bytearray(bitstream.pack(Header(8, 1, 64, 64, version=bitstream.FITTED_VERSION, contexts_id=7), b"\x00"))
    scale_at = 5  # after magic, version and flags, level and model, and the two one-byte sizes
    for bad in (0x03, 0x11, 0x80):  # scale 8; version 9's in-context bit; an unknown bit
        data[scale_at] = bad
        body = bytes(data[:-2])
        resealed = body + bitstream.checksum(10, 1, body, 7).to_bytes(2, "little")
        with pytest.raises(FormatError, match="scale byte"):
            bitstream.unpack(resealed, lambda level: [1], lambda: [7])


def test_a_file_names_its_tables_through_its_checksum() -> None:
    """No byte names the tables: the checksum covers their id, so a decoder with other tables refuses the file,
    and one that keeps former tables in its store (after a refit) still decodes it."""
    data = bitstream.pack(Header(8, 0x5A3, 64, 64, version=bitstream.FITTED_VERSION, contexts_id=0x42), b"\x07")
    with pytest.raises(ModelMismatchError, match="context tables"):
        bitstream.unpack(data, lambda level: [0x5A3], lambda: [])
    with pytest.raises(CorruptFileError, match="checksum"):
        bitstream.unpack(data, lambda level: [0x5A3], lambda: [0x43])
    assert bitstream.unpack(data, lambda level: [0x5A3], lambda: [0x43, 0x42])[0].contexts_id == 0x42


def test_a_file_of_the_fitted_tables_decodes_and_damage_is_caught(
    photo: np.ndarray, tables: FittedContexts, refused_when_damaged: Callable[[bytes], None], tmp_path: Path
) -> None:
    data = codec.compress(photo[:40, :40], quality=8, effort=0)
    header = codec.inspect(data).header
    assert header.version == bitstream.FITTED_VERSION and header.contexts_id == tables.model_id
    assert 10 * np.log10(255**2 / np.mean((codec.decompress(data) - photo[:40, :40].astype(float)) ** 2)) > 20
    refused_when_damaged(data)
    (tmp_path / "crop.aec").write_bytes(data)
    info = CliRunner().invoke(app, ["info", str(tmp_path / "crop.aec")])
    described = f"aec format 10, 40x40, level 8's model {header.model_id:03x}, latents in contexts from tables"
    assert described in info.output


def test_without_tables_files_are_as_before_and_version_10_is_refused_cleanly(
    weights: Path, photo: np.ndarray, tmp_path: Path
) -> None:
    fitted = codec.compress(photo, quality=8, effort=0)
    assert codec.inspect(fitted).header.version == bitstream.FITTED_VERSION
    presets = json.loads((weights / store.PRESETS).read_text())
    digest = presets.pop(context_tables.ROLE)["model"]
    (weights / store.PRESETS).write_text(json.dumps(presets))
    models.clear_cache()
    plain = codec.compress(photo, quality=8, effort=0)
    assert codec.inspect(plain).header.version in (bitstream.VERSION, bitstream.CONTEXT_VERSION)  # the smaller
    assert len(plain) > len(fitted)
    assert np.array_equal(codec.decompress(fitted), codec.decompress(codec.compress(photo, quality=8, effort=0)))
    for path in store.model_path(weights, digest).parent.glob(f"{digest[:16]}*"):  # the tables leave the store
        path.unlink()
    models.clear_cache()
    (tmp_path / "photo.aec").write_bytes(fitted)
    result = CliRunner().invoke(app, ["decompress", str(tmp_path / "photo.aec")])
    assert result.exit_code != 0 and "context tables this installation lacks" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "photo.png").exists()


def test_tables_that_are_not_frequencies_are_refused(general: models.FrozenModel) -> None:
    rows = contexts.stationary_start(general.prior).tables.copy()
    FittedContexts({general.digest: rows}, contexts_fit.ADAPTATION)
    rows[0, 0, 0, 0] += 1
    with pytest.raises(ModelError, match="summing to 2\\*\\*16"):
        FittedContexts({general.digest: rows}, Adaptation(4096, 64, 1 << 20))


def test_the_fit_counts_what_the_coder_codes(general: models.FrozenModel) -> None:
    """Tables fitted on images code them (and images like them) in fewer bits than version 6's start."""
    crops = [samples.camera()[y : y + 64, x : x + 64] for y in (0, 200, 400) for x in (0, 300)]
    rows = contexts_fit.fitted_rows(general, crops[:-1])
    assert rows.shape == contexts.stationary_start(general.prior).tables.shape
    assert (rows.sum(axis=-1) == 1 << 16).all() and (rows >= 1).all()
    start = contexts.Start(rows, contexts_fit.ADAPTATION)
    held_out = crops[-1:]
    assert contexts_fit.coded_bits(general, held_out, start) < contexts_fit.coded_bits(general, held_out, None)


def test_train_contexts_installs_tables_that_old_files_survive(
    weights: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch, mnist_test: tuple
) -> None:
    """``aec train-contexts`` (a small fit, one model) installs new tables; files written with the former ones still
    decode, and new files name the new ones."""
    before = codec.compress(photo, quality=8, effort=0)
    monkeypatch.setattr(contexts_fit, "DIGITS", 100)
    monkeypatch.setattr(contexts_fit, "RENDERS", 4)
    monkeypatch.setattr(contexts_fit, "latent_models", lambda: [(8, True)])
    result = CliRunner().invoke(app, ["train-contexts", "--seed", "3", "--weights-dir", str(weights)])
    assert result.exit_code == 0, result.output
    models.clear_cache()
    refit = context_tables.load()
    meta = store.read_metadata(store.model_path(weights, refit.digest))
    assert meta["command"] == "aec train-contexts --seed 3 --jobs 1" and meta["seed"] == 3
    assert set(refit.tables) == {models.load_general(8).digest}  # type: ignore[union-attr]
    after = codec.compress(photo, quality=8, effort=0)
    assert codec.inspect(after).header.contexts_id == refit.model_id != codec.inspect(before).header.contexts_id
    assert np.array_equal(codec.decompress(before), codec.decompress(after))
