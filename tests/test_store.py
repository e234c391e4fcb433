"""The model store: every frozen model once by its digest, presets naming them, former models still decoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import codec
from codec import lossless, models, store
from codec.cli import app
from codec.errors import ModelError, ModelMismatchError


def test_shipped_store_holds_each_model_once_and_names_what_it_holds() -> None:
    folder = models.weights_dir()
    presets = store.presets(folder)
    stored = sorted((folder / store.MODELS).glob("*.npz"))
    named = {preset["model"] for preset in presets.values()}
    assert {store.model_path(folder, digest).name for digest in named} <= {p.name for p in stored}
    for path in stored:
        if path.name.startswith("transforms-"):
            continue
        record = store.read_metadata(path)
        assert path.name == f"{record['model_sha256'][: store.NAME_DIGITS]}.npz"  # named by its content
        kind = record.get("kind", store.LEVEL_KIND)
        kinds = {
            "refine",
            "predictive",
            "lossless",
            "lossless-blocks",
            "denoise",
            "variational",
            "retrieval",
            "contexts",
        }
        assert kind in {store.LEVEL_KIND, *kinds}
        if kind == store.LEVEL_KIND:  # every level model says which levels' files it decodes
            assert record["levels"] and all(isinstance(level, int) for level in record["levels"])
    # One model may serve several roles: general levels 1-4 share the general model at one step.
    assert len({presets[f"general-{level}"]["model"] for level in (1, 2, 3, 4)}) == 1
    assert models.load_general(1).search_lambda != models.load_general(4).search_lambda  # the presets' own
    transforms = {f"transforms-{models.load_model(level).graph['transforms']}.npz" for level in codec.levels()}
    assert transforms <= {p.name for p in stored}


def test_a_replaced_table_model_still_decodes_its_files(weights: Path, digits: np.ndarray) -> None:
    """A retrained pixel model takes the preset; files of the former one decode with it from the store."""
    before = codec.compress(digits[0], max_error=0)
    former = lossless.load()
    other = lossless.LosslessModel(former.class_tables[::-1].copy(), former.value_tables)  # another model
    lossless.save(other, weights, {"command": "test"})
    assert lossless.load().digest == other.digest != former.digest
    assert set(lossless.installed_ids()) == {other.model_id, former.model_id} and former.model_id >> 8 == 4
    assert np.array_equal(codec.decompress(before), digits[0])
    after = codec.compress(digits[0], max_error=0)
    assert codec.inspect(after).header.model_id == other.model_id
    store.model_path(weights, former.digest).unlink()
    models.clear_cache()
    with pytest.raises(ModelMismatchError, match="pixel model 4.. that this installation lacks"):
        codec.decompress(before)


def test_a_damaged_presets_file_is_a_clear_error(weights: Path, tmp_path: Path) -> None:
    (weights / store.PRESETS).write_text("{not json")
    models.clear_cache()
    with pytest.raises(ModelError, match="presets cannot be read"):
        models.load_model(8)
    (weights / store.PRESETS).write_text(json.dumps({"level-8": {"model": "abc"}}))
    models.clear_cache()
    with pytest.raises(ModelError, match="not a table of roles and model digests"):
        models.load_model(8)
    image = tmp_path / "d.png"
    from PIL import Image

    Image.new("L", (28, 28)).save(image)
    result = CliRunner().invoke(app, ["compress", str(image)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "presets" in result.stderr


def test_a_folder_of_the_old_layout_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "level-8.npz").write_bytes(b"")
    with pytest.raises(ModelError, match="layout of aec 0.13"):
        models.load_model(8, tmp_path)


def test_a_preset_names_only_a_stored_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no stored model"):
        store.set_preset(tmp_path, "level-1", "0" * 64)
    with pytest.raises(ModelError, match="no preset"):
        store.update_preset(tmp_path, "level-1", {"test": {}})
