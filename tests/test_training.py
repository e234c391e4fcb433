"""A tiny training run, frozen and used for coding: the whole pipeline in seconds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")


def test_train_freeze_and_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_test: tuple) -> None:
    from typer.testing import CliRunner

    import codec
    from codec import models, store
    from codec.cli import app

    runner = CliRunner()
    checkpoints, weights = tmp_path / "ck", tmp_path / "w"
    args = ["train", "--level", "2", "--epochs", "2", "--limit", "256", "--max-steps", "6", "--quiet"]
    result = runner.invoke(app, [*args, "--checkpoint-dir", str(checkpoints)])
    assert result.exit_code == 0, result.output
    from codec.training.levels import LEVELS

    state_file = checkpoints / f"{LEVELS[2].model.name}.pt"
    assert state_file.is_file()
    import torch

    # Resuming a finished run trains no further.
    before = torch.load(state_file, weights_only=False)
    assert runner.invoke(app, [*args, "--checkpoint-dir", str(checkpoints)]).exit_code == 0
    after = torch.load(state_file, weights_only=False)
    assert before["step"] == after["step"] == 6
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])

    # A further stage starts from the checkpoint's weights with a fresh schedule.
    from codec.training.train import stages

    stage2 = ["train", "--level", "2", "--epochs", "1", "--limit", "256", "--max-steps", "2", "--lr", "1e-4"]
    stage2 += ["--weight-decay", "0.01", "--shift", "1"]
    second = tmp_path / "ck2"
    result = runner.invoke(app, [*stage2, "--from", str(checkpoints), "--checkpoint-dir", str(second), "--quiet"])
    assert result.exit_code == 0, result.output
    chain = stages(torch.load(second / state_file.name, weights_only=False))
    assert [s["config"]["lr"] for s in chain] == [2e-3, 1e-4] and [len(s["history"]) for s in chain] == [2, 1]
    assert chain[1]["config"]["init_from"] == str(state_file) and chain[0]["step"] == 6
    own_decay = LEVELS[2].model.weight_decay  # stage 1 took the model's own; stage 2 was told
    assert [(s["config"]["weight_decay"], s["config"]["shift"]) for s in chain] == [(own_decay, 0), (0.01, 1)]
    assert "--weight-decay 0.01 --shift 1" in chain[1]["command"]
    result = runner.invoke(app, [*stage2, "--from", str(tmp_path / "none"), "--checkpoint-dir", str(second / "x")])
    assert result.exit_code == 1 and "no checkpoint to start from" in result.stderr

    monkeypatch.setenv(models.WEIGHTS_ENV, str(weights))
    frozen = runner.invoke(
        app,
        [
            "freeze",
            "--level",
            "2",
            "--checkpoint-dir",
            str(checkpoints),
            "--weights-dir",
            str(weights),
            "--test-limit",
            "20",
        ],
    )
    assert frozen.exit_code == 0, frozen.output
    meta = models.load_model(2, weights).metadata  # the model's record and its preset's fields
    assert meta["seed"] == 0 and meta["steps"] == 6 and meta["train_images"] == 256
    assert meta["data_sha256"] and meta["command"].startswith(f"aec train --model {LEVELS[2].model.name}")
    assert meta["trained_model"] == LEVELS[2].model.name and meta["step"] == LEVELS[2].step
    assert meta["lambda"] == LEVELS[2].model.lmbda
    expected = LEVELS[2].model.lmbda if LEVELS[2].search_lambda is None else LEVELS[2].search_lambda
    assert meta["search_lambda"] == expected  # the level's own (a search lambda may be 0)
    assert meta["table_sets"] == 64 and models.load_model(2, weights).prior.sets == 64  # fitted to the 256 digits
    assert meta["train_device"] == "cpu"
    # The weights file is named by model and weights: a retrained model never overwrites a former one's.
    transforms = models.load_model(2, weights).graph["transforms"]
    stored = weights / store.MODELS
    assert transforms.startswith(f"{LEVELS[2].model.name}-") and (stored / f"transforms-{transforms}.npz").is_file()
    assert len(list(stored.glob("transforms-*.npz"))) == 1
    assert set(meta["test"]) >= {"bpp", "psnr", "ssim", "images"} and meta["test"]["images"] == 20
    models.clear_cache()
    digit = mnist_test[0][0]
    data = codec.compress(digit, quality=2)
    assert codec.decompress(data).shape == (28, 28)
    assert codec.inspect(data).header.model_id == int(meta["model_id"], 16)
    models.clear_cache()


def test_train_records_a_narrower_synthesis(tmp_path: Path) -> None:
    """--synthesis-hidden and --synthesis-depth shape the synthesis alone, and the checkpoint's command says so."""
    import torch
    from typer.testing import CliRunner

    from codec.cli import app
    from codec.training.levels import LEVELS

    args = ["train", "--level", "8", "--epochs", "1", "--limit", "64", "--max-steps", "1", "--quiet"]
    args += ["--synthesis-hidden", "16", "--synthesis-depth", "0", "--checkpoint-dir", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / f"{LEVELS[8].model.name}.pt", weights_only=False)
    arch = state["config"]["arch"]
    assert (arch["synthesis_hidden"], arch["synthesis_depth"]) == (16, 0)
    assert arch["hidden"] == LEVELS[8].model.arch.hidden and arch["depth"] == LEVELS[8].model.arch.depth
    assert "--synthesis-hidden 16 --synthesis-depth 0" in state["command"]
    first = next(k for k in state["model"] if k.startswith("synthesis.") and k.endswith("weight"))
    assert state["model"][first].shape[0] == 16


def test_shift_moves_each_digit_by_its_own_offset() -> None:
    """The augmentation moves an image as a zero-filled np.roll would, each by its offset."""
    import torch

    from codec.training.train import random_offsets, shifted

    rng = np.random.default_rng(0)
    images = rng.random((6, 1, 9, 9)).astype(np.float32)
    offsets = random_offsets(6, 2, seed=3)
    assert torch.equal(offsets, random_offsets(6, 2, seed=3)) and int(offsets.abs().max()) <= 2
    moved = shifted(torch.from_numpy(images), offsets, 2).numpy()
    for image, (dy, dx), got in zip(images[:, 0], offsets.tolist(), moved[:, 0], strict=True):
        want = np.zeros_like(image)
        want[max(dy, 0) : 9 + min(dy, 0), max(dx, 0) : 9 + min(dx, 0)] = image[
            max(-dy, 0) : 9 + min(-dy, 0), max(-dx, 0) : 9 + min(-dx, 0)
        ]
        np.testing.assert_array_equal(got, want)


def test_train_refuses_unknown_level_and_model() -> None:
    from typer.testing import CliRunner

    from codec.cli import app

    result = CliRunner().invoke(app, ["train", "--level", "42"])
    assert result.exit_code == 2 and "unknown level 42" in result.stderr
    result = CliRunner().invoke(app, ["train", "--model", "nonesuch"])
    assert result.exit_code == 2 and "unknown model 'nonesuch'" in result.stderr
    result = CliRunner().invoke(app, ["train", "--model", "grid-75", "--activation", "tanh"])
    assert result.exit_code == 2 and "unknown activation 'tanh'" in result.stderr


def test_train_refuses_a_device_it_cannot_use() -> None:
    import torch
    from typer.testing import CliRunner

    from codec.cli import app

    result = CliRunner().invoke(app, ["train", "--model", "vector-4", "--device", "abacus"])
    assert result.exit_code == 1 and "unknown torch device 'abacus'" in result.stderr
    if not torch.cuda.is_available():
        result = CliRunner().invoke(app, ["train", "--model", "vector-4", "--device", "cuda"])
        assert result.exit_code == 1 and "no GPU for --device cuda" in result.stderr


def test_shipped_levels_match_their_configuration() -> None:
    """Each shipped level is what ``aec freeze`` would write for it: model, step and search lambda."""
    from codec import models
    from codec.training.levels import LEVELS

    assert models.available_levels() == sorted(LEVELS)
    for level, cfg in LEVELS.items():
        meta = models.load_model(level).metadata
        assert (meta["trained_model"], meta["step"], meta["lambda"]) == (cfg.model.name, cfg.step, cfg.model.lmbda)
        assert meta.get("weight_decay", 0.0) == cfg.model.weight_decay, level  # levels frozen before aec 0.8: 0
        expected = cfg.model.lmbda if cfg.search_lambda is None else cfg.search_lambda
        assert models.load_model(level).search_lambda == expected, level


def test_shipped_general_variants_match_their_configuration() -> None:
    """Every level has its general variant, the general model at the level's step and lambda, and picks it up."""
    from codec import models
    from codec.training.levels import GENERAL_LEVELS, GENERAL_MODELS, GENERAL_STEPS

    steps = []
    for level, cfg in GENERAL_LEVELS.items():
        general = models.load_general(level)
        assert general is not None, level
        meta = general.metadata
        assert (meta["trained_model"], meta["step"], meta["lambda"]) == (cfg.model.name, cfg.step, cfg.model.lmbda)
        assert general.search_lambda == models.load_model(level).search_lambda and meta["test"]["images"] >= 1000
        assert general.model_id in models.known_model_ids(level) and meta["training_data"] == "general"
        steps.append(cfg.step)
    assert GENERAL_STEPS[0] <= min(steps) <= max(steps) <= GENERAL_STEPS[1]
    # A higher level's variant acts like a model trained for a larger lambda (the model's over its step squared).
    acting = [cfg.model.lmbda / cfg.step**2 for cfg in GENERAL_LEVELS.values()]
    assert acting == sorted(acting) and {cfg.model.name for cfg in GENERAL_LEVELS.values()} == set(GENERAL_MODELS)


def test_general_model_trains_freezes_and_codes_other_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The general model: trained on general crops, frozen as level 8's variant, picked for a non-digit size."""
    import shutil

    from typer.testing import CliRunner

    import codec
    from codec import models, store
    from codec.cli import app
    from codec.training.levels import GENERAL_LEVELS

    runner = CliRunner()
    general_model = GENERAL_LEVELS[8].model.name
    checkpoints, weights = tmp_path / "ck", tmp_path / "w"
    (weights / store.MODELS).mkdir(parents=True)
    shipped, installed = models.weights_dir(), models.load_model(8)
    source = store.model_path(shipped, installed.digest)
    for path in (
        source,
        source.with_suffix(".json"),
        source.with_name(f"transforms-{installed.graph['transforms']}.npz"),
    ):
        shutil.copy(path, weights / store.MODELS / path.name)
    store.set_preset(weights, "level-8", installed.digest, store.preset_fields(shipped, "level-8"))
    args = ["train", "--model", general_model, "--epochs", "1", "--limit", "256", "--max-steps", "2", "--quiet"]
    result = runner.invoke(app, [*args, "--checkpoint-dir", str(checkpoints)])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv(models.WEIGHTS_ENV, str(weights))
    models.clear_cache()
    freeze = [
        "freeze",
        "--level",
        "8",
        "--general",
        "--checkpoint-dir",
        str(checkpoints),
        "--weights-dir",
        str(weights),
    ]
    result = runner.invoke(app, [*freeze, "--test-limit", "10", "--table-sets", "2"])
    assert result.exit_code == 0, result.output
    assert set(store.presets(weights)) == {"level-8", "general-8"}
    meta = models.load_general(8, weights).metadata
    assert meta["trained_model"] == general_model and meta["step"] == GENERAL_LEVELS[8].step
    assert meta["search_lambda"] == GENERAL_LEVELS[8].search_lambda and meta["test"]["images"] == 10
    general = models.load_general(8)
    assert general is not None and general.model_id != models.load_model(8).model_id
    image = np.random.default_rng(0).integers(0, 256, (40, 36)).astype(np.uint8)
    data = codec.compress(image, quality=8, effort=0)  # not digit-sized: the general variant codes it
    assert codec.inspect(data).header.model_id == general.model_id
    assert codec.decompress(data).shape == (40, 36)
    digit = codec.compress(np.zeros((28, 28), np.uint8), quality=8, effort=0)
    assert codec.inspect(digit).header.model_id == models.load_model(8).model_id
    models.clear_cache()


def test_shipped_models_record_the_stages_of_their_recipe() -> None:
    # `aec train --recipe` retrains what was shipped: each level's metadata holds the stages it was trained in.
    from codec import models
    from codec.training.levels import GENERAL_LEVELS, LEVELS

    for level, cfg in LEVELS.items():
        meta = models.load_model(level).metadata
        held = meta.get("stages") or [{"epochs": meta["epochs"], "learning_rate": meta["learning_rate"]}]
        recipe = [(s.epochs, s.lr or 2e-3) for s in cfg.model.recipe]
        assert [(s["epochs"], s["learning_rate"]) for s in held] == recipe, (level, cfg.model.name)
    for level, cfg in GENERAL_LEVELS.items():
        general = models.load_general(level).metadata
        recipe = [(s.epochs, s.lr or 2e-3) for s in cfg.model.recipe]
        assert [(general["epochs"], general["learning_rate"])] == recipe, (level, cfg.model.name)


def test_recipe_trains_every_stage_and_continues_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_test: tuple
) -> None:
    import torch
    from typer.testing import CliRunner

    from codec.cli import app
    from codec.training.levels import MODELS, Stage
    from codec.training.train import stages

    monkeypatch.setitem(MODELS, "vector-4", replace(MODELS["vector-4"], recipe=(Stage(1), Stage(1, 1e-4))))
    checkpoints = tmp_path / "ck"
    args = ["train", "--model", "vector-4", "--recipe", "--limit", "256", "--max-steps", "2"]
    args += ["--checkpoint-dir", str(checkpoints), "--quiet"]
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    state = torch.load(checkpoints / "vector-4.pt", weights_only=False)
    chain = stages(state)
    assert [(s["config"]["epochs"], s["config"]["lr"]) for s in chain] == [(1, 2e-3), (1, 1e-4)]
    assert f"--from {checkpoints}" in chain[1]["command"] and "--lr 0.0001" in chain[1]["command"]
    assert runner.invoke(app, args).exit_code == 0  # both stages held: nothing more is trained
    again = torch.load(checkpoints / "vector-4.pt", weights_only=False)
    assert all(torch.equal(state["model"][k], again["model"][k]) for k in state["model"])
    refused = runner.invoke(app, [*args, "--epochs", "3"])
    assert refused.exit_code == 2 and "--recipe sets the epochs" in refused.stderr


def test_variational_model_trains_freezes_and_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """aec train --model vae-4, aec freeze --model vae-4, then aec sample: the VAE's whole path, torch-free at the
    end."""
    import torch
    from PIL import Image
    from typer.testing import CliRunner

    from codec import models, sample, store
    from codec.cli import app
    from codec.training.model import Architecture, VariationalAutoencoder, build

    net = build(Architecture(latent_channels=4, grid=1, variational=True))
    assert isinstance(net, VariationalAutoencoder)
    out = net(torch.rand(3, 1, 28, 28))
    assert out["logits"].shape == (3, 1, 28, 28) and bool((out["kl_bits"] > 0).all())
    assert bool((out["bits"] > out["kl_bits"]).all())  # the tables' bits for the rounded means are added
    runner = CliRunner()
    checkpoints, weights = tmp_path / "ck", tmp_path / "w"
    args = ["train", "--model", "vae-4", "--epochs", "1", "--limit", "256", "--max-steps", "3", "--quiet"]
    result = runner.invoke(app, [*args, "--checkpoint-dir", str(checkpoints)])
    assert result.exit_code == 0, result.output
    freeze = ["freeze", "--model", "vae-4", "--checkpoint-dir", str(checkpoints), "--weights-dir", str(weights)]
    result = runner.invoke(app, [*freeze, "--test-limit", "10", "--table-sets", "2"])
    assert result.exit_code == 0, result.output
    assert set(store.presets(weights)) == {sample.ROLE}
    model = sample.load(weights)
    assert model.metadata["kind"] == "variational" and model.metadata["test"]["images"] == 10
    assert model.metadata["command"].startswith("aec train --model vae-4")
    drawn = sample.sample(5, seed=3, model=model)
    assert drawn.shape == (5, 28, 28) and drawn.dtype == np.uint8
    assert np.array_equal(drawn, sample.sample(5, seed=3, model=model))
    assert not np.array_equal(drawn, sample.sample(5, seed=4, model=model))
    monkeypatch.setenv(models.WEIGHTS_ENV, str(weights))
    models.clear_cache()
    grid = tmp_path / "grid.png"
    result = runner.invoke(app, ["sample", "-n", "6", "--columns", "3", "-o", str(grid)])
    assert result.exit_code == 0, result.output
    assert Image.open(grid).size == (3 * 28 + 2 * 2, 2 * 28 + 2)
    again = runner.invoke(app, ["sample", "-n", "6", "-o", str(grid)])
    assert again.exit_code == 1 and "exists" in again.stderr
    both = runner.invoke(app, ["freeze", "--model", "vae-4", "--level", "2"])
    assert both.exit_code == 2 and "not both" in both.stderr
    models.clear_cache()
