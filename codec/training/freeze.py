"""Freeze a trained checkpoint into the runtime model: plain arrays and integer tables.

``aec freeze`` is the bridge between training (torch) and coding (numpy +
constriction): it stores the level's model (its ``.npz`` and ``.json``, named by
its digest) and its ``transforms-NAME.npz`` in the weights folder's model store
and points the level's preset at it, then measures the frozen level with the
runtime itself on the MNIST test set and records the result in the preset.
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import store
from ..coder import PRECISION
from ..models import TABLE_PREFIX, cast_params, save_frozen
from ..prior import quantize_pmf, stationary_from_positional, to_symbols
from ..transforms import run_graph
from .mixture import TABLE_SETS, bank_rows, fit_table_sets
from .model import GDN, PRIOR_SCALE, Autoencoder
from .train import normalised_config, stages


def graph_of(sequential: nn.Sequential, prefix: str) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The runtime graph and arrays of a torch ``Sequential``.

    Weights are stored as float16 (half the size; the runtime computes in float32
    or float64): the frozen model *is* the float16 one, so encoder and decoder
    still share exactly the same transforms.
    """
    ops: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    for index, layer in enumerate(sequential):
        name = f"{prefix}.{index}"
        if isinstance(layer, nn.Conv2d):
            if layer.dilation != (1, 1) or layer.groups != 1 or layer.stride[0] != layer.stride[1]:
                raise ValueError(f"{name}: only plain square-stride convolutions can be frozen")
            if layer.padding[0] != layer.padding[1]:
                raise ValueError(f"{name}: only symmetric padding can be frozen")
            ops.append({"op": "conv", "name": name, "stride": layer.stride[0], "padding": layer.padding[0]})
            arrays[f"{name}.weight"] = layer.weight.detach().numpy().astype(np.float16)
            if layer.bias is None:
                raise ValueError(f"{name}: a convolution without bias cannot be frozen")
            arrays[f"{name}.bias"] = layer.bias.detach().numpy().astype(np.float16)
        elif isinstance(layer, nn.ReLU):
            ops.append({"op": "relu"})
        elif isinstance(layer, GDN):
            ops.append({"op": "gdn", "name": name, "inverse": layer.inverse})
            beta, gamma = layer.params()
            arrays[f"{name}.beta"] = beta.detach().numpy().astype(np.float16)
            arrays[f"{name}.gamma"] = gamma.detach().numpy().astype(np.float16)
        elif isinstance(layer, nn.PixelShuffle):
            ops.append({"op": "pixel_shuffle", "factor": layer.upscale_factor})
        else:
            raise ValueError(f"{name}: cannot freeze a {type(layer).__name__}")
    return ops, arrays


def freeze_model(
    model: Autoencoder,
    step: float = 1.0,
    name: str | None = None,
    train_images: np.ndarray | None = None,
    table_sets: int = TABLE_SETS,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Graph description and arrays (weights and integer frequency tables) of ``model``.

    With a quantization ``step`` other than 1 the analysis ends by dividing the
    latents by it and the synthesis starts by multiplying them back. A ``name``
    stores the weights apart, in ``transforms-NAME.npz``, shared by the levels
    that use the same trained network. With ``train_images`` (N, 28, 28) uint8
    the prior gets ``table_sets`` sets fitted to their latents (:mod:`.mixture`);
    without, one set: the trained positional prior.
    """
    analysis, arrays = graph_of(model.analysis, "analysis")
    synthesis, synth_arrays = graph_of(model.synthesis, "synthesis")
    arrays.update(synth_arrays)
    if step != 1.0:
        analysis = analysis + [{"op": "scale", "factor": 1.0 / step}]
        synthesis = [{"op": "scale", "factor": step}] + synthesis
    with torch.no_grad():
        pmf = model.prior.pmf(step).double().numpy()
    arrays.update(prior_tables(pmf, analysis, arrays, model.arch.symbol_radius, train_images, table_sets))
    graph: dict[str, Any] = {
        "analysis": analysis,
        "synthesis": synthesis + [{"op": "sigmoid"}],
        "radius": model.arch.symbol_radius,
        "precision": PRECISION,
    }
    if name is not None:
        graph["transforms"] = name
    return graph, arrays


def train_symbols(
    analysis: list[dict[str, Any]], arrays: dict[str, np.ndarray], radius: int, images: np.ndarray
) -> np.ndarray:
    """The symbols (N, C * GH * GW) the runtime encoder gives ``images``: float32 analysis, rounded, clamped."""
    params = cast_params(arrays, np.float32)
    out = []
    for first in range(0, len(images), 1000):
        latents = run_graph(analysis, params, images[first : first + 1000, None] / np.float32(255.0))
        out.append(to_symbols(latents, radius).reshape(len(latents), -1))
    return np.concatenate(out)


def prior_tables(
    pmf: np.ndarray,
    analysis: list[dict[str, Any]],
    arrays: dict[str, np.ndarray],
    radius: int,
    train_images: np.ndarray | None,
    table_sets: int,
) -> dict[str, np.ndarray]:
    """The prior's integer arrays: bank, index, selector and stationary tables (see :mod:`codec.prior`)."""
    channels, gh, gw, k = pmf.shape
    base = pmf.reshape(-1, k)
    if train_images is None or table_sets == 1:
        tables, share = base[None], np.ones(1)
        bank, index = base, np.arange(len(base))
    else:
        symbols = train_symbols(analysis, arrays, radius, train_images)
        tables, share = fit_table_sets(symbols, base, table_sets)
        # Set 0 keeps its own rows, exactly the trained prior; the fitted sets share the rest.
        fitted, rows = bank_rows(tables[1:].reshape(-1, k), np.repeat(share[1:], len(base)))
        bank = np.concatenate([tables[0], fitted])
        index = np.concatenate([np.arange(len(base)), len(base) + rows])
    return {
        "prior.bank": quantize_pmf(bank).astype(np.uint16),
        "prior.index": index.reshape(len(tables), channels, gh, gw).astype(np.uint16),
        "prior.selector": quantize_pmf(share).astype(np.uint32),
        "prior.stationary": quantize_pmf(stationary_from_positional(pmf)).astype(np.uint16),
    }


def transforms_name(model: str, arrays: dict[str, np.ndarray]) -> str:
    """The name of a trained network's weights file: the model's name and a digest of its weights.

    Levels frozen from one checkpoint share the file; a retrained model gets a
    file of its own, so the weights of a model it replaces stay in the store for
    the files coded with it.
    """
    digest = hashlib.sha256()
    for name in sorted(arrays):
        if not name.startswith(TABLE_PREFIX):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return f"{model}-{digest.hexdigest()[:6]}"


def write_level(
    model: Autoencoder,
    state: dict[str, Any],
    weights_dir: Path,
    level: int,
    step: float = 1.0,
    train_images: np.ndarray | None = None,
    table_sets: int = TABLE_SETS,
    search_lambda: float | None = None,
    general: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Store the frozen level and its metadata (without test metrics) and point the level's preset (its general
    variant's, with ``general``) at it, with the search lambda; returns the model's JSON path and the metadata.

    ``search_lambda`` is the encoder search's lambda (default: the training lambda).
    """
    digest, meta = _store_frozen(model, state, weights_dir, step, train_images, table_sets, search_lambda)
    preset = {"level": level, "search_lambda": meta.pop("search_lambda")}
    path = store.write_metadata(weights_dir, digest, meta)
    store.set_preset(weights_dir, store.level_role(level, general), digest, preset)
    return path, {**meta, **preset}


def write_variational(
    model: Autoencoder,
    state: dict[str, Any],
    weights_dir: Path,
    role: str,
    train_images: np.ndarray | None = None,
    table_sets: int = TABLE_SETS,
) -> tuple[Path, dict[str, Any]]:
    """Store a variational model (frozen as a level is: its posterior means coded with fitted tables) and point the
    preset ``role`` at it; its metadata records the scale of the Gaussian prior that ``aec sample`` draws from."""
    digest, meta = _store_frozen(model, state, weights_dir, 1.0, train_images, table_sets, None)
    meta |= {"kind": "variational", "prior_scale": PRIOR_SCALE}
    del meta["search_lambda"]  # not a level: no operating point to place
    path = store.write_metadata(weights_dir, digest, meta)
    store.set_preset(weights_dir, role, digest)
    return path, meta


def _store_frozen(
    model: Autoencoder,
    state: dict[str, Any],
    weights_dir: Path,
    step: float,
    train_images: np.ndarray | None,
    table_sets: int,
    search_lambda: float | None,
) -> tuple[str, dict[str, Any]]:
    """Freeze ``model`` into the store (no preset yet); its digest and its metadata (how it was trained)."""
    graph, arrays = freeze_model(model, step, None, train_images, table_sets)
    graph["transforms"] = transforms_name(state["config"]["model"], arrays)
    digest = save_frozen(weights_dir, graph, arrays)
    chain = stages(state)
    configs = [normalised_config(stage["config"]) for stage in chain]
    meta: dict[str, Any] = {
        "model_sha256": digest,
        "model_id": digest[:3],
        "trained_model": configs[-1]["model"],  # the last stage is the checkpoint's own
        "step": step,
        "table_sets": int(arrays["prior.index"].shape[0]),
        "bank_rows": int(arrays["prior.bank"].shape[0]),
        "architecture": model.arch.to_dict(),
        **_training_record(state, chain, configs, search_lambda),
    }
    if len(chain) > 1:
        meta["stages"] = _stage_records(chain, configs)
    return digest, meta


def _training_record(
    state: dict[str, Any], chain: list[dict[str, Any]], configs: list[dict[str, Any]], search_lambda: float | None
) -> dict[str, Any]:
    """How a level's network was trained, for its metadata: the last stage's settings, the data's checksums, the
    commands of every stage, where and how long."""
    config = configs[-1]
    extra = config["extra"]
    images = {"training_images_sha256": extra["training_images_sha256"]} if "training_images_sha256" in extra else {}
    return {
        "lambda": config["lmbda"],
        "search_lambda": config["lmbda"] if search_lambda is None else search_lambda,
        "loss": config["loss"],
        "epochs": config["epochs"],
        "batch_size": config["batch_size"],
        "learning_rate": config["lr"],
        "weight_decay": config["weight_decay"],
        "shift": config["shift"],
        "seed": config["seed"],
        "train_images": config["limit"] or 60000,
        "max_steps": config["max_steps"],
        "steps": state["step"],
        "data_sha256": extra.get("data_sha256"),
        "training_data": extra.get("training_data", "mnist"),
        **images,
        "command": " && ".join(stage.get("command", "") for stage in chain),
        "torch_version": state.get("torch_version", torch.__version__),
        "torch_threads": state.get("threads"),
        "train_device": state.get("device", "cpu"),
        "train_seconds": round(sum(_seconds(stage) for stage in chain), 1),
        "train_history": [{k: float(v) for k, v in h.items()} for stage in chain for h in stage["history"]],
        "platform": platform.platform(),
    }


def _seconds(stage: dict[str, Any]) -> float:
    return float(sum(h["seconds"] for h in stage["history"]))


def _stage_records(chain: list[dict[str, Any]], configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each stage of a model trained in several: its command, epochs, learning rate, regularisation and time."""
    return [
        {
            "command": stage.get("command", ""),
            "epochs": config["epochs"],
            "learning_rate": config["lr"],
            "weight_decay": config["weight_decay"],
            "shift": config["shift"],
            "train_seconds": round(_seconds(stage), 1),
        }
        for stage, config in zip(chain, configs, strict=True)
    ]
