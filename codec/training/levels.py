"""The shipped quality levels: which trained model each one uses, at what step.

A *model* is one trained network (``aec train`` trains models, named here); a
*level* is a model frozen with a quantization step for its latents. Step 1 is
what the model was trained for; a step above 1 rounds the latents more coarsely
(fewer bits, lower quality), which fills the gaps between trained models at a
small loss against a dedicated model (measured in benchmarks/ABLATIONS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .model import Architecture


@dataclass(frozen=True)
class Stage:
    """One stage of a model's training recipe: its epochs and peak learning rate (None: the default);
    a stage after the first starts from the previous one's weights with a fresh schedule."""

    epochs: int
    lr: float | None = None


@dataclass(frozen=True)
class ModelConfig:
    """One network to train: lambda weighs distortion against rate; its default weight decay, and the
    recipe (``aec train --recipe``) that trained the shipped weights."""

    name: str
    lmbda: float
    arch: Architecture
    weight_decay: float = 0.0
    data: str = "mnist"  # what it trains on: "mnist" digits, or "general" crops (codec.training.general)
    recipe: tuple[Stage, ...] = (Stage(24),)


_TWO_30_24 = (Stage(30), Stage(24))
_TWO_27_18 = (Stage(27), Stage(18))

#: The trained networks. The lowest-rate models code each digit as one latent vector (grid 1), which costs far
#: fewer bits than a 7x7 grid of latents at low quality; the others keep the grid, which wins from about 25 dB
#: up. Most have the wide transforms (hidden 64, one extra 3x3 convolution per scale: 8 to 18 % less rate);
#: the one-vector models that overfit train with weight decay 0.05. Each model's recipe is the stages its
#: shipped weights were trained in (the vector models on a GPU, the others on a CPU); how the models came to
#: be, and those no level uses: docs/design.md and CHANGELOG.md.
MODELS: dict[str, ModelConfig] = {
    cfg.name: cfg
    for cfg in (
        ModelConfig("vector-4", 4.0, Architecture(latent_channels=32, grid=1), recipe=(Stage(31), Stage(30, 5e-4))),
        ModelConfig(
            "vector-5", 5.0, Architecture(latent_channels=32, grid=1, hidden=64, depth=1), 0.05, recipe=_TWO_30_24
        ),
        ModelConfig("vector-6", 6.0, Architecture(latent_channels=32, grid=1, hidden=64, depth=1)),
        ModelConfig(
            "vector-10",
            10.0,
            Architecture(latent_channels=32, grid=1, hidden=64, depth=1),
            recipe=(Stage(32), Stage(30, 5e-4)),
        ),
        ModelConfig(
            "vector-15", 15.0, Architecture(latent_channels=48, grid=1, hidden=64, depth=1), 0.05, recipe=_TWO_27_18
        ),
        ModelConfig(
            "vector-20", 20.0, Architecture(latent_channels=48, grid=1, hidden=64, depth=1), 0.05, recipe=_TWO_27_18
        ),
        ModelConfig("vector-25", 25.0, Architecture(latent_channels=48, grid=1), recipe=(Stage(31), Stage(30, 5e-4))),
        ModelConfig(
            "vector-30",
            30.0,
            Architecture(latent_channels=48, grid=1, hidden=64, depth=1),
            0.05,
            recipe=(Stage(28), Stage(18)),
        ),
        ModelConfig("vector-60", 60.0, Architecture(latent_channels=64, grid=1)),
        ModelConfig("grid-30", 30.0, Architecture(latent_channels=12, hidden=64, depth=1)),
        ModelConfig("grid-75", 75.0, Architecture(latent_channels=12, hidden=64, depth=1)),
        ModelConfig("grid-220", 220.0, Architecture(latent_channels=16, hidden=64, depth=1)),
        ModelConfig("grid-650", 650.0, Architecture(latent_channels=16)),
        ModelConfig("grid-1200", 1200.0, Architecture(latent_channels=16, hidden=64, depth=1)),
        ModelConfig("grid-2000", 2000.0, Architecture(latent_channels=16, hidden=64, depth=1)),
        ModelConfig("grid-6000", 6000.0, Architecture(latent_channels=16)),
        # Not a level: the variational model of aec sample (codec/sample.py), vector-4's network as a VAE.
        ModelConfig("vae-4", 4.0, Architecture(latent_channels=32, grid=1, variational=True), recipe=(Stage(12),)),
        *(  # the general models (codec.training.general), one recipe, two lambdas
            ModelConfig(
                f"general-{lmbda}",
                float(lmbda),
                Architecture(latent_channels=16, hidden=64, depth=1),
                data="general",
                recipe=(Stage(20),),
            )
            for lmbda in (600, 3000)
        ),
    )
}


@dataclass(frozen=True)
class LevelConfig:
    """What ``aec freeze --level N`` writes: a trained model, the step of its latents
    and the encoder search's lambda (None: the lambda the model was trained with).

    The search lambda is an encoder setting: it places the level's operating point
    without touching the weights or tables (the model id stays the same).
    """

    level: int
    model: ModelConfig
    step: float = 1.0
    search_lambda: float | None = None


def _level(level: int, model: str, step: float = 1.0, search_lambda: float | None = None) -> LevelConfig:
    return LevelConfig(level, MODELS[model], step, search_lambda)


#: Level 1 is the smallest file, the last level the best quality: about one
#: level per 1.5 dB of PSNR from 20 to 38 dB on MNIST, neighbours about 1.5 dB
#: apart. Since aec 0.9 the encoder codes each image with the model of the level
#: within two of the asked one that costs the least bits + lambda * SSE (since
#: aec 0.24: of any level, codec/choice.py), so a level's search lambda, more than its model, places it
#: on the rate-distortion curve: each lambda was chosen (on the first 600 test
#: digits) to keep the level's aec 0.8 mean PSNR, at a lower rate. The levels'
#: JSON holds the full test set's numbers.
LEVELS: dict[int, LevelConfig] = {
    cfg.level: cfg
    for cfg in (
        _level(1, "vector-4", search_lambda=1.35),
        _level(2, "vector-5", search_lambda=3.3),
        _level(3, "vector-10", search_lambda=7.7),
        _level(4, "vector-15"),
        _level(5, "vector-20", search_lambda=22.0),
        _level(6, "vector-30", search_lambda=34.0),
        _level(7, "grid-75", 1.25, search_lambda=54.0),
        _level(8, "grid-75", search_lambda=72.0),
        _level(9, "grid-220", 1.25, search_lambda=110.0),
        _level(10, "grid-220", search_lambda=190.0),
        _level(11, "grid-1200", 1.85, search_lambda=340.0),
        _level(12, "grid-1200", 1.4, search_lambda=550.0),
        _level(13, "grid-1200", search_lambda=920.0),
        _level(14, "grid-2000", search_lambda=2100.0),
        _level(15, "grid-6000", search_lambda=12000.0),
    )
}


#: The general models, each trained for one lambda; a level's general variant (its preset general-N) is the one
#: whose lambda is nearest the level's search lambda (on a log scale), at the step that meets it.
GENERAL_MODELS = ("general-600", "general-3000")
#: Quantization steps a general model may be frozen with (finer and coarser than trained lose quality fast).
GENERAL_STEPS = (0.8, 6.0)


def _search_lambda(level: int) -> float:
    return LEVELS[level].search_lambda or LEVELS[level].model.lmbda


def general_model(level: int) -> ModelConfig:
    """The general model of level ``level``'s general variant: the one trained nearest the level's lambda."""
    target = math.log(_search_lambda(level))
    return min((MODELS[name] for name in GENERAL_MODELS), key=lambda cfg: abs(math.log(cfg.lmbda) - target))


def general_step(level: int) -> float:
    """The step of level ``level``'s general variant: where its search lambda meets its general model's.

    A step ``s`` makes a model trained for lambda ``L`` act like one trained for
    about ``L / s**2``; the step is rounded to two decimals and kept in
    :data:`GENERAL_STEPS`.
    """
    step = (general_model(level).lmbda / _search_lambda(level)) ** 0.5
    return round(min(max(step, GENERAL_STEPS[0]), GENERAL_STEPS[1]), 2)


#: Each level's general variant: the general model at the level's step, searched at the level's lambda.
GENERAL_LEVELS: dict[int, LevelConfig] = {
    level: LevelConfig(level, general_model(level), general_step(level), _search_lambda(level)) for level in LEVELS
}
