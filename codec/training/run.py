"""What ``aec train`` and ``aec freeze`` run: train the levels' models, freeze the levels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import dataset_digest, load_mnist
from .levels import GENERAL_LEVELS, LEVELS, MODELS, Stage
from .mixture import TABLE_SETS
from .train import TrainConfig, save_atomic, train


def checkpoint_path(checkpoint_dir: Path, model: str) -> Path:
    """Where the trained model ``model`` is checkpointed."""
    return checkpoint_dir / f"{model}.pt"


def models_of(levels: list[int]) -> list[str]:
    """The trained models the levels use, each once, in level order."""
    return list(dict.fromkeys(LEVELS[level].model.name for level in levels))


def train_models(
    names: list[str],
    *,
    epochs: int,
    seed: int,
    loss: str,
    data_dir: Path | None,
    checkpoint_dir: Path,
    resume: bool,
    limit: int | None = None,
    max_steps: int | None = None,
    batch_size: int = 64,
    lmbda: float | None = None,
    arch_overrides: dict[str, Any] | None = None,
    threads: int | None = None,
    progress: bool = True,
    command: str = "",
    lr: float | None = None,
    start_dir: Path | None = None,
    device: str = "cpu",
    weight_decay: float | None = None,
    shift: int = 0,
) -> list[Path]:
    """Train each named model of :data:`MODELS` in turn; returns the checkpoint paths.

    ``weight_decay`` None takes each model's own (:attr:`ModelConfig.weight_decay`).

    With ``start_dir`` each model starts from its checkpoint there (a further
    training stage with a fresh learning-rate schedule) instead of from scratch.
    """
    _use_device(device, threads)
    digits, _ = load_mnist("train", data_dir)
    paths = []
    for name in names:
        cfg = MODELS[name]
        images = training_images(cfg.data, digits, seed)
        config = TrainConfig(
            model=name,
            lmbda=cfg.lmbda if lmbda is None else lmbda,
            arch=replace(cfg.arch, **(arch_overrides or {})),
            epochs=epochs,
            batch_size=batch_size,
            loss=loss,
            seed=seed,
            limit=limit,
            max_steps=max_steps,
            init_from=None if start_dir is None else str(checkpoint_path(start_dir, name)),
            weight_decay=cfg.weight_decay if weight_decay is None else weight_decay,
            shift=shift,
            extra=_data_record(cfg.data, images),
        )
        if lr is not None:
            config = replace(config, lr=lr)
        path = checkpoint_path(checkpoint_dir, name)
        train(config, images, path, resume=resume, progress=progress, device=device)
        _record_run(path, command)
        paths.append(path)
    return paths


def _use_device(device: str, threads: int | None) -> None:
    """Check that torch can train on ``device`` (ValueError naming it otherwise); use ``threads`` CPU threads."""
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ValueError(f"unknown torch device {device!r}; use 'cpu' or 'cuda'") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"no GPU for --device {device}: this torch ({torch.__version__}) sees no CUDA device")
    if threads:
        torch.set_num_threads(threads)


def _data_record(data: str, images: np.ndarray) -> dict[str, str]:
    """What a checkpoint records of its training data: the MNIST files' checksum, the kind of data and, for
    images made from them, their own checksum."""
    import hashlib

    extra = {"data_sha256": dataset_digest(), "training_data": data}
    if data != "mnist":
        extra["training_images_sha256"] = hashlib.sha256(images.tobytes()).hexdigest()
    return extra


def _record_run(path: Path, command: str) -> None:
    """Write into the checkpoint at ``path`` the command, torch version and threads that trained it."""
    state = torch.load(path, weights_only=False, map_location="cpu")
    state["command"] = command
    state["torch_version"] = torch.__version__
    state["threads"] = torch.get_num_threads()
    save_atomic(state, path)


def train_recipes(names: list[str], command: Callable[[str, int], str], **common: Any) -> list[Path]:
    """Train each named model by its recipe (:attr:`ModelConfig.recipe`): the first stage from scratch,
    each further one from the checkpoint of the stage before it with a fresh schedule.

    ``command(name, k)`` is stage ``k``'s command line, recorded with it; ``common``
    goes to :func:`train_models` (``checkpoint_dir`` included). Stages a checkpoint
    already holds, finished and as the recipe says, are skipped and a stage in
    progress resumes, so an interrupted recipe continues where it stopped.
    """
    checkpoint_dir = Path(common["checkpoint_dir"])
    for name in names:
        recipe = MODELS[name].recipe
        for k in range(stages_done(checkpoint_path(checkpoint_dir, name), recipe), len(recipe)):
            stage = recipe[k]
            start = checkpoint_dir if k else None
            train_models([name], epochs=stage.epochs, lr=stage.lr, start_dir=start, command=command(name, k), **common)
    return [checkpoint_path(checkpoint_dir, name) for name in names]


def stages_done(path: Path, recipe: tuple[Stage, ...]) -> int:
    """How many of ``recipe``'s stages the checkpoint at ``path`` holds finished (0 without one)."""
    from .train import TrainConfig, stages

    if not path.is_file():
        return 0
    state = torch.load(path, weights_only=False, map_location="cpu")
    chain = stages(state)
    default_lr = TrainConfig.__dataclass_fields__["lr"].default
    done = 0
    for held, stage in zip(chain, recipe):
        config = held["config"]
        if (config["epochs"], config["lr"]) != (stage.epochs, stage.lr or default_lr):
            break
        done += 1
    if done < len(chain):  # it holds stages of another recipe: start again
        return 0
    last = chain[-1]["config"]
    finished = state.get("epoch", 0) >= last["epochs"] or (
        last.get("max_steps") is not None and state.get("step", 0) >= last["max_steps"]
    )
    return done if finished else done - 1


def training_images(data: str, digits: np.ndarray, seed: int) -> np.ndarray:
    """The (N, 28, 28) training images of a model's ``data``: MNIST's training digits, or general crops."""
    if data == "general":
        from .general import general_crops

        return general_crops(digits, seed)
    return digits


def freeze_levels(
    levels: list[int],
    checkpoint_dir: Path,
    weights_dir: Path | None,
    data_dir: Path | None,
    test_limit: int | None = None,
    table_sets: int = TABLE_SETS,
    general: bool = False,
) -> list[tuple[Path, dict[str, Any]]]:
    """Freeze each level (its model's checkpoint and step) into ``weights_dir``; measure it on the test set.

    With ``general`` each level's general variant (:data:`GENERAL_LEVELS`) is
    stored under the preset ``general-N``, its tables fitted to the general crops, and
    is measured with that model on the MNIST test digits.
    """
    from .. import models

    with models.using_weights(weights_dir) as target:
        return _freeze_levels(levels, checkpoint_dir, target, data_dir, test_limit, table_sets, general)


def _freeze_levels(
    levels: list[int],
    checkpoint_dir: Path,
    target: Path,
    data_dir: Path | None,
    test_limit: int | None,
    table_sets: int,
    general: bool,
) -> list[tuple[Path, dict[str, Any]]]:
    """:func:`freeze_levels` into ``target``, the weights folder in use."""
    from .. import models
    from ..errors import ModelError
    from ..evaluate import measure_model, record_levels, update_metadata
    from .freeze import write_level
    from .train import load_checkpoint

    images, _ = load_mnist("test", data_dir)
    if test_limit is not None:
        images = images[:test_limit]
    digits = load_mnist("train", data_dir)[0] if table_sets > 1 else None
    crops: dict[int, np.ndarray] = {}  # the general crops of each training seed, made once
    done = []
    for level in levels:
        cfg = (GENERAL_LEVELS if general else LEVELS)[level]
        path = checkpoint_path(checkpoint_dir, cfg.model.name)
        if not path.is_file():
            raise ModelError(
                f"no checkpoint of model {cfg.model.name} (level {level}) at {path}; "
                f"run 'aec train --level {level}' first"
            )
        model, state = load_checkpoint(path)
        limit = state["config"]["limit"]  # the digits the network was trained on
        train_images = digits
        if general and digits is not None:  # the crops it was trained on (the same seed gives the same crops)
            seed = state["config"]["seed"]
            if seed not in crops:
                crops[seed] = training_images("general", digits, seed)
            train_images = crops[seed]
        fit_on = None if train_images is None else train_images[:limit]
        meta_path, _ = write_level(
            model, state, target, level, cfg.step, fit_on, table_sets, cfg.search_lambda, general
        )
        models.clear_cache()
        if general:
            variant = models.load_general(level)
            assert variant is not None
            measured = measure_model(images, variant)
            update_metadata(level, {"test": measured.to_dict(), "test_effort": 0}, target, general)
            done.append((meta_path, measured.to_dict()))
        else:
            done.append((meta_path, record_levels(images, [level])[level].to_dict()))
    return done


def freeze_variational(
    name: str,
    checkpoint_dir: Path,
    weights_dir: Path | None,
    data_dir: Path | None,
    test_limit: int | None = None,
    table_sets: int = TABLE_SETS,
) -> tuple[Path, dict[str, Any]]:
    """Freeze the variational model ``name`` into the preset ``vae`` and measure its coding of the MNIST test
    digits (its posterior means rounded and coded with its tables, effort 0) into its metadata."""
    from .. import models, store
    from ..errors import ModelError
    from ..evaluate import measure_model
    from ..sample import ROLE, load
    from .freeze import write_variational
    from .train import load_checkpoint

    path = checkpoint_path(checkpoint_dir, name)
    if not path.is_file():
        raise ModelError(f"no checkpoint of model {name} at {path}; run 'aec train --model {name}' first")
    model, state = load_checkpoint(path)
    if not model.arch.variational:
        raise ModelError(f"model {name} is not variational")
    images = load_mnist("test", data_dir)[0][:test_limit]
    digits = load_mnist("train", data_dir)[0][: state["config"]["limit"]] if table_sets > 1 else None
    with models.using_weights(weights_dir) as target:
        meta_path, meta = write_variational(model, state, target, ROLE, digits, table_sets)
        measured = measure_model(images, load(target)).to_dict()
        store.write_metadata(target, meta["model_sha256"], {**meta, "test": measured, "test_effort": 0})
    return meta_path, measured
