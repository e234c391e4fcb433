"""``aec levels``, ``aec train``, ``aec train-refinement``, ``aec train-lossless`` and ``aec freeze``: the models."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import CodecError
from .common import Jobs, Quiet, _fail, app

if TYPE_CHECKING:
    from ..models import FrozenModel


#: The columns of ``aec levels``: what :func:`_level_row` gives of each level.
_LEVEL_COLUMNS = [
    "level",
    "model id",
    "trained model",
    "step",
    "lambda",
    "search lambda",
    "bpp",
    "payload bpp",
    "PSNR dB",
    "PSNR of mean MSE",
    "SSIM",
    "train s",
]


def _level_row(model: FrozenModel) -> list[str]:
    """One installed level as ``aec levels`` shows it (its model's metadata and its test-set measurement)."""
    meta, test = model.metadata, model.metadata.get("test", {})
    nan = float("nan")
    return [
        str(model.level),
        f"{model.model_id:03x}",
        str(meta.get("trained_model", "?")),
        f"{meta.get('step', 1.0):g}",
        f"{meta.get('lambda', nan):g}",
        f"{model.search_lambda:g}",
        f"{test.get('bpp', nan):.3f}",
        f"{test.get('payload_bpp', nan):.3f}",
        f"{test.get('psnr', nan):.2f}",
        f"{test.get('psnr_of_mean_mse', nan):.2f}",
        f"{test.get('ssim', nan):.3f}",
        f"{meta.get('train_seconds', nan):.0f}",
    ]


@app.command()
def levels(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table.")] = False,
) -> None:
    """List the installed quality levels with their rate and quality measured on the MNIST test set.

    Examples:

      aec levels

      aec levels --markdown
    """
    from ..models import available_levels, load_model

    columns = _LEVEL_COLUMNS
    try:
        rows = [_level_row(load_model(level)) for level in available_levels()]
    except CodecError as exc:
        raise _fail(str(exc)) from None
    if markdown:
        typer.echo("| " + " | ".join(columns) + " |")
        typer.echo("|" + "---|" * len(columns))
        for row in rows:
            typer.echo("| " + " | ".join(row) + " |")
        return
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in rows:
        typer.echo("  ".join(v.rjust(w) for v, w in zip(row, widths)))


TrainLevels = Annotated[
    list[int] | None, typer.Option("--level", "-l", help="Train the model of this level (repeatable).")
]
TrainModels = Annotated[
    list[str] | None, typer.Option("--model", "-m", help="Model to train, by name (repeatable; see 'aec levels').")
]
Recipe = Annotated[
    bool,
    typer.Option(
        "--recipe",
        help="Train each model by the recipe its shipped weights were trained with (stages, epochs, learning rates, "
        "its weight decay): no --epochs, --lr or --from. An interrupted recipe continues where it stopped.",
    ),
]
StartFrom = Annotated[
    Path | None,
    typer.Option("--from", help="Folder of checkpoints to start from: a further training stage with a fresh schedule."),
]
WeightDecay = Annotated[
    float | None,
    typer.Option(
        min=0.0, help="Decoupled (AdamW) weight decay of the transforms.  [default: the model's: vector-5 0.05, else 0]"
    ),
]
Shift = Annotated[
    int, typer.Option(min=0, max=4, help="Move each training digit by up to N pixels each way (augmentation).")
]
Depth = Annotated[int | None, typer.Option(help="Override the extra 3x3 convolutions per scale (experiments).")]
DataDir = Annotated[Path | None, typer.Option(help="Folder with the MNIST IDX .gz files.")]
ModelDir = Annotated[Path | None, typer.Option(help="Where the model goes (default: the shipped weights).")]
#: The table models fitted on rendered and degraded training images (the refinement layer, the predictive coder).
ImageSeed = Annotated[int, typer.Option(help="Random seed (which digits, renderings and degradations).")]
ImageLimit = Annotated[int | None, typer.Option(help="Fit on the first N training images only (experiments).")]


@app.command()
def train(
    level: TrainLevels = None,
    model: TrainModels = None,
    all_levels: Annotated[bool, typer.Option("--all", help="Train every level's model.")] = False,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training digits.  [default: 8]")] = None,
    recipe: Recipe = False,
    seed: Annotated[int, typer.Option(help="Random seed (initialisation, noise, batch order).")] = 0,
    loss: Annotated[str, typer.Option(help="Distortion: 'mse' or 'bce'.")] = "mse",
    data_dir: DataDir = None,
    checkpoint_dir: Annotated[Path, typer.Option(help="Where checkpoints go.")] = Path("checkpoints"),
    resume: Annotated[bool, typer.Option(help="Continue from an existing checkpoint.")] = True,
    limit: Annotated[int | None, typer.Option(help="Train on the first N digits only.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimiser steps.")] = None,
    lmbda: Annotated[float | None, typer.Option("--lambda", help="Override the level's lambda.")] = None,
    hidden: Annotated[int | None, typer.Option(help="Override the transforms' width (experiments).")] = None,
    latent_channels: Annotated[int | None, typer.Option(help="Override the latent channels (experiments).")] = None,
    depth: Depth = None,
    synthesis_hidden: Annotated[
        int | None, typer.Option(help="The synthesis's own width (experiments; default: the transforms' width).")
    ] = None,
    synthesis_depth: Annotated[
        int | None, typer.Option(help="The synthesis's own extra convolutions per scale (experiments).")
    ] = None,
    activation: Annotated[str | None, typer.Option(help="Override the activation: relu or gdn (experiments).")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.  [default: 2e-3]")] = None,
    start_from: StartFrom = None,
    weight_decay: WeightDecay = None,
    shift: Shift = 0,
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
    device: Annotated[str, typer.Option(help="Torch device to train on: 'cpu', or 'cuda' for a GPU.")] = "cpu",
    quiet: Quiet = False,
) -> None:
    """Train the levels' models (or a named one, such as the variational vae-4) on MNIST into resumable
    checkpoints (needs the [train] extra).

    Levels share a model where they differ only in quantization step, so a
    model is trained once. Examples:

      aec train --all && aec freeze --all

      aec train --all --recipe --device cuda   (the shipped models' own recipes)

      aec train --model vae-4 --recipe && aec freeze --model vae-4
    """
    given = dict(locals())  # the options as given: taken first, before any other name is bound
    try:
        from ..training.levels import LEVELS, MODELS
        from ..training.model import ACTIVATIONS
        from ..training.run import models_of
    except ImportError as exc:
        raise _fail(f"training needs torch: pip install 'aec[train]' ({exc})") from None
    unknown = [name for name in model or [] if name not in MODELS]
    if unknown:
        raise _fail(f"unknown model {unknown[0]!r}; models are {', '.join(MODELS)}", 2)
    names = list(model or [])
    if level or all_levels or not names:
        names += models_of(_levels_arg(level, all_levels, LEVELS))
    if loss not in ("mse", "bce"):
        raise _fail(f"unknown loss {loss!r}; use 'mse' or 'bce'", 2)
    if recipe and (epochs is not None or lr is not None or start_from is not None):
        raise _fail("--recipe sets the epochs, learning rates and stages itself: no --epochs, --lr or --from", 2)
    if activation is not None and activation not in ACTIVATIONS:
        raise _fail(f"unknown activation {activation!r}; use one of {', '.join(ACTIVATIONS)}", 2)
    try:
        paths = _train_models(list(dict.fromkeys(names)), given)
    except (CodecError, FileNotFoundError, ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    for path in paths:
        typer.echo(f"checkpoint: {path}")


#: ``aec train``'s options as the command lines recorded with each checkpoint name them, in order.
_ARCHITECTURE = ("hidden", "latent_channels", "depth", "synthesis_hidden", "synthesis_depth", "activation")
_RECORDED = ("seed", "loss", "limit", "max_steps", "lmbda", *_ARCHITECTURE)
_FLAGS = {
    "max_steps": "max-steps",
    "lmbda": "lambda",
    "latent_channels": "latent-channels",
    "synthesis_hidden": "synthesis-hidden",
    "synthesis_depth": "synthesis-depth",
}


def _train_models(names: list[str], given: dict[str, Any]) -> list[Path]:
    """Train the models named with the options of ``aec train`` (``given``); the checkpoints' paths."""
    from ..training.levels import MODELS
    from ..training.run import train_models, train_recipes

    def command(models: list[str], epochs: int, lr: float | None, start_from: Path | None) -> str:
        """The command line that trains ``models`` so, as the checkpoints record it."""
        device = None if given["device"] == "cpu" else given["device"]
        options: list[tuple[str, object]] = [("model", name) for name in models] + [("epochs", epochs)]
        options += [(_FLAGS.get(key, key), given[key]) for key in _RECORDED]
        options += [("lr", lr), ("from", start_from), ("weight-decay", given["weight_decay"])]
        options += [("shift", given["shift"] or None), ("device", device)]
        return _command_line("aec train", options)

    overrides = {key: given[key] for key in _ARCHITECTURE}
    common: dict[str, Any] = {key: given[key] for key in ("seed", "loss", "data_dir", "checkpoint_dir", "resume")}
    common |= {key: given[key] for key in ("limit", "max_steps", "lmbda", "threads", "device", "weight_decay")}
    common |= {"arch_overrides": {k: v for k, v in overrides.items() if v is not None}, "shift": given["shift"]}
    common["progress"] = not given["quiet"]
    if given["recipe"]:

        def stage_command(name: str, k: int) -> str:
            stage = MODELS[name].recipe[k]
            return command([name], stage.epochs, stage.lr, given["checkpoint_dir"] if k else None)

        return train_recipes(names, stage_command, **common)
    epochs = 8 if given["epochs"] is None else given["epochs"]
    lr, start_from = given["lr"], given["start_from"]
    return train_models(
        names, epochs=epochs, lr=lr, start_dir=start_from, command=command(names, epochs, lr, start_from), **common
    )


def _command_line(program: str, options: Sequence[tuple[str, object]]) -> str:
    """``program`` and ``--NAME VALUE`` for each option given (None: left out; floats as ``%g``)."""
    given = [(name, value) for name, value in options if value is not None]
    return " ".join([program, *(f"--{name} {v:g}" if isinstance(v, float) else f"--{name} {v}" for name, v in given)])


@app.command("train-refinement")
def train_refinement(
    seed: ImageSeed = 0,
    data_dir: DataDir = None,
    weights_dir: ModelDir = None,
    limit: ImageLimit = None,
) -> None:
    """Fit the refinement layer (--max-error, --psnr above the levels) and install it; no torch needed.

    Example:

      aec train-refinement
    """
    from ..training.refine_fit import train_refinement as run

    command = " ".join(["aec train-refinement", f"--seed {seed}"] + ([f"--limit {limit}"] if limit else []))
    try:
        path, meta = run(data_dir, weights_dir, seed, command, limit)
    except (CodecError, ImportError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{path}: {meta['training_images']} images, bpp without a base by max error {meta['train_bpp_no_base']}")


@app.command("train-predictive")
def train_predictive(
    seed: ImageSeed = 0,
    data_dir: DataDir = None,
    weights_dir: ModelDir = None,
    limit: ImageLimit = None,
) -> None:
    """Count the predictive pixel coder's tables (lossless and --max-error files of any image) and install them.

    No torch: the predictors are fixed and the tables are counts over the refinement layer's training
    images; every fourth is held out and measured. Example:

      aec train-predictive
    """
    from ..training.predictive_fit import train_predictive as run

    command = " ".join(["aec train-predictive", f"--seed {seed}"] + ([f"--limit {limit}"] if limit else []))
    try:
        path, meta = run(data_dir, weights_dir, seed, command, limit, report=typer.echo)
    except (CodecError, ImportError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{path}: held-out training images, bpp by max error {meta['validation_bpp_by_max_error']}")


@app.command("train-contexts")
def train_contexts(
    seed: ImageSeed = 0,
    data_dir: DataDir = None,
    weights_dir: ModelDir = None,
    jobs: Jobs = 1,
) -> None:
    """Count where the latents' contexts start (format version 10: images off the models' home grid) and install
    the tables.

    No torch: every installed latent model codes the refinement layer's training images at the scales the encoder
    tries; the tables are their symbols' counts per context. Every fourth image is held out and measured. Run it
    again after retraining a latent model. Example:

      aec train-contexts --jobs 2
    """
    from ..batch import default_jobs
    from ..training.contexts_fit import train_contexts as run

    command = f"aec train-contexts --seed {seed} --jobs {jobs}"
    try:
        path, meta = run(data_dir, weights_dir, seed, command, jobs or default_jobs(), report=typer.echo)
    except (CodecError, ImportError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{path}: held-out training images' context streams {meta['validation_change']:+.1%}")


@app.command("train-lossless")
def train_lossless(
    data_dir: DataDir = None,
    weights_dir: ModelDir = None,
) -> None:
    """Count the lossless pixel models on the MNIST training digits and install them: one for single files
    (--lossless, --max-error 0), one for archives (pack --lossless).

    No torch, no randomness: the tables are counts. The one knob (a prior
    count per model) is chosen on the last 10,000 training digits; the test digits are
    measured only. Example:

      aec train-lossless
    """
    from ..training.lossless_fit import train_lossless as run

    try:
        (path, meta), (blocks_path, blocks_meta) = run(data_dir, weights_dir, "aec train-lossless", step=typer.echo)
    except (CodecError, ImportError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{path}: test digits {meta['test_file_bpp']} bpp as files ({meta['test_payload_bpp']} payload)")
    typer.echo(f"{blocks_path}: test digits {blocks_meta['test_payload_bpp']} bpp in archive blocks (payload)")


@app.command("train-retrieval")
def train_retrieval(
    level: Annotated[
        list[int] | None, typer.Option("--level", "-l", help="Level to fit (repeatable; default: levels 1-6).")
    ] = None,
    data_dir: DataDir = None,
    weights_dir: Annotated[
        Path | None, typer.Option(help="Where the projections go (default: the shipped weights).")
    ] = None,
) -> None:
    """Fit the search projections (aec search) of the levels that code a digit as one latent vector, and install
    them; no torch, no randomness.

    Each is the least-squares map from a level's latents to the training digits'
    pixels, made an integer matrix. Example:

      aec train-retrieval --level 6
    """
    from ..training.retrieval_fit import train_retrieval as run

    chosen = sorted(set(level or range(1, 7)))
    command = " ".join(["aec train-retrieval", *(f"--level {n}" for n in chosen)])
    try:
        run(chosen, data_dir, weights_dir, command, step=typer.echo)
    except (CodecError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None


@app.command("train-denoiser")
def train_denoiser(
    epochs: Annotated[int, typer.Option(help="Passes over the training digits (the best on validation is kept).")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed (initialisation, damage, batch order).")] = 0,
    data_dir: DataDir = None,
    weights_dir: ModelDir = None,
    limit: Annotated[int | None, typer.Option(help="Train on the first N digits only (a smoke run).")] = None,
) -> None:
    """Train the denoiser (aec denoise) on damaged MNIST training digits and install it (needs the [train] extra).

    Each epoch damages every digit afresh (Gaussian noise, salt and pepper or
    blur, at random strengths); the epoch best on training digits held out for
    validation is kept. Example:

      aec train-denoiser --epochs 6
    """
    try:
        from ..training.denoise_fit import train_denoiser as run
    except ImportError as exc:
        raise _fail(f"training needs torch: pip install 'aec[train]' ({exc})") from None
    options = [("epochs", epochs), ("seed", seed), ("limit", limit)]
    try:
        path, meta = run(
            data_dir, weights_dir, epochs, seed, _command_line("aec train-denoiser", options), typer.echo, limit
        )
    except (CodecError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{path}: test digits at Gaussian noise 0.3: {meta['test_psnr_gaussian_0.3']} dB")


def _levels_arg(level: list[int] | None, all_levels: bool, known: Collection[int]) -> list[int]:
    chosen = sorted(known) if all_levels else sorted(set(level or []))
    if not chosen:
        raise _fail("name a level with --level N, or --all", 2)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise _fail(f"unknown level {unknown[0]}; levels are {min(known)}..{max(known)}", 2)
    return chosen


FreezeLevels = Annotated[list[int] | None, typer.Option("--level", "-l", help="Level to freeze (repeatable).")]
FreezeModel = Annotated[
    str | None, typer.Option("--model", "-m", help="Freeze this model that is no level's: the variational vae-4.")
]
WeightsDir = Annotated[Path | None, typer.Option(help="Where frozen models go (default: the shipped weights).")]
TableSets = Annotated[
    int, typer.Option(min=1, max=4096, help="Table sets of the mixture prior, fitted to the training digits.")
]
General = Annotated[
    bool, typer.Option("--general", help="Freeze the levels' general variants (the general model): presets general-N.")
]
MeasureOnly = Annotated[
    bool,
    typer.Option(
        "--measure-only", help="Only measure installed levels again (after an encoder change) into their metadata."
    ),
]
SearchLambda = Annotated[
    float | None,
    typer.Option(
        min=0.0, help="With --measure-only: first set the levels' encoder search lambda (their operating point)."
    ),
]


@app.command()
def freeze(
    level: FreezeLevels = None,
    all_levels: Annotated[bool, typer.Option("--all", help="Freeze every trained level.")] = False,
    model: FreezeModel = None,
    checkpoint_dir: Annotated[Path, typer.Option(help="Where the checkpoints are.")] = Path("checkpoints"),
    weights_dir: WeightsDir = None,
    data_dir: DataDir = None,
    test_limit: Annotated[int | None, typer.Option(help="Measure on the first N test digits only.")] = None,
    table_sets: TableSets = 64,
    general: General = False,
    measure_only: MeasureOnly = False,
    search_lambda: SearchLambda = None,
) -> None:
    """Freeze trained checkpoints into runtime weights and integer tables, and measure them.

    Examples:

      aec freeze --all

      aec freeze --all --measure-only

      aec freeze --all --general

      aec freeze --level 9 --measure-only --search-lambda 60

      aec freeze --model vae-4
    """
    if measure_only:
        _measure_levels(level, all_levels, weights_dir, data_dir, test_limit, search_lambda)
        return
    if search_lambda is not None:
        raise _fail("--search-lambda goes with --measure-only; a level's own lives in training/levels.py", 2)
    try:
        from ..training.levels import LEVELS, MODELS
        from ..training.run import freeze_levels, freeze_variational
    except ImportError as exc:
        raise _fail(f"freezing needs torch: pip install 'aec[train]' ({exc})") from None
    if model is not None and (level or all_levels or general):
        raise _fail("give --model or levels (--level, --all, --general), not both", 2)
    if model is not None and model not in MODELS:
        raise _fail(f"unknown model {model!r}; models are {', '.join(MODELS)}", 2)
    try:
        if model is not None:
            frozen = [freeze_variational(model, checkpoint_dir, weights_dir, data_dir, test_limit, table_sets)]
        else:
            chosen = _levels_arg(level, all_levels, LEVELS)
            frozen = freeze_levels(chosen, checkpoint_dir, weights_dir, data_dir, test_limit, table_sets, general)
        for path, test in frozen:
            typer.echo(
                f"{path}: {test['bpp']:.3f} bpp, PSNR {test['psnr']:.2f} dB, SSIM {test['ssim']:.3f} "
                f"on {test['images']} test digits"
            )
    except CodecError as exc:
        raise _fail(str(exc)) from None


def _measure_levels(
    level: list[int] | None,
    all_levels: bool,
    weights_dir: Path | None,
    data_dir: Path | None,
    limit: int | None,
    search_lambda: float | None,
) -> None:
    """``aec freeze --measure-only``: measure installed levels on the test set, without torch."""

    from .. import models

    with models.using_weights(weights_dir) as folder:
        installed = models.available_levels()
        if not installed:
            raise _fail(f"no levels installed in {folder}")
        chosen = _levels_arg(level, all_levels, installed)
        _measure_installed(chosen, data_dir, limit, search_lambda)


def _measure_installed(
    chosen: list[int], data_dir: Path | None, limit: int | None, search_lambda: float | None
) -> None:
    """Measure the installed ``chosen`` levels on the test set and record it in their metadata."""
    from .. import data as mnist
    from ..evaluate import record_levels, update_metadata

    try:
        images = mnist.load_mnist("test", data_dir)[0][:limit]
        if search_lambda is not None:  # first: every level's lambda weighs each image's one set of files
            for n in chosen:
                update_metadata(n, {"search_lambda": search_lambda})
        for n, measured in record_levels(images, chosen).items():
            test = measured.to_dict()
            typer.echo(
                f"level {n}: {test['bpp']:.3f} bpp, PSNR {test['psnr']:.2f} dB, SSIM {test['ssim']:.3f} "
                f"on {test['images']} test digits"
            )
    except CodecError as exc:
        raise _fail(str(exc)) from None
