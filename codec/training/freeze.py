"""Freeze a trained checkpoint into the runtime model: plain arrays and integer tables.

``aec freeze`` is the bridge between training (torch) and coding (numpy +
constriction): it writes ``level-N.npz``, ``level-N.json`` and the level's
``transforms-NAME.npz`` to the weights folder, then measures the frozen level with the runtime itself on the MNIST
test set and records the result in the metadata.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..models import model_digest, save_frozen
from ..prior import PRECISION, quantize_pmf, stationary_from_positional
from .model import GDN, Autoencoder
from .train import stages


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
    model: Autoencoder, step: float = 1.0, name: str | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Graph description and arrays (weights and integer frequency tables) of ``model``.

    With a quantization ``step`` other than 1 the analysis ends by dividing the
    latents by it and the synthesis starts by multiplying them back. A ``name``
    stores the weights apart, in ``transforms-NAME.npz``, shared by the levels
    that use the same trained network.
    """
    analysis, arrays = graph_of(model.analysis, "analysis")
    synthesis, synth_arrays = graph_of(model.synthesis, "synthesis")
    arrays.update(synth_arrays)
    if step != 1.0:
        analysis = analysis + [{"op": "scale", "factor": 1.0 / step}]
        synthesis = [{"op": "scale", "factor": step}] + synthesis
    with torch.no_grad():
        pmf = model.prior.pmf(step).double().numpy()
    arrays["prior.positional"] = quantize_pmf(pmf).astype(np.uint16)
    arrays["prior.stationary"] = quantize_pmf(stationary_from_positional(pmf)).astype(np.uint16)
    graph: dict[str, Any] = {
        "analysis": analysis,
        "synthesis": synthesis + [{"op": "sigmoid"}],
        "radius": model.arch.symbol_radius,
        "precision": PRECISION,
    }
    if name is not None:
        graph["transforms"] = name
    return graph, arrays


def write_level(
    model: Autoencoder, state: dict[str, Any], weights_dir: Path, level: int, step: float = 1.0
) -> tuple[Path, dict[str, Any]]:
    """Write the frozen level and its metadata (without test metrics); returns the JSON path."""
    graph, arrays = freeze_model(model, step, state["config"]["model"])
    digest = save_frozen(weights_dir, level, graph, arrays)
    if digest != model_digest(graph, arrays):  # pragma: no cover - sanity
        raise RuntimeError("digest mismatch")
    config = state["config"]
    chain = stages(state)
    seconds = [sum(h["seconds"] for h in stage["history"]) for stage in chain]
    meta: dict[str, Any] = {
        "level": level,
        "model_sha256": digest,
        "model_id": digest[:3],
        "trained_model": config["model"],
        "step": step,
        "architecture": model.arch.to_dict(),
        "lambda": config["lmbda"],
        "loss": config["loss"],
        "epochs": config["epochs"],
        "batch_size": config["batch_size"],
        "learning_rate": config["lr"],
        "seed": config["seed"],
        "train_images": config["limit"] or 60000,
        "max_steps": config["max_steps"],
        "steps": state["step"],
        "data_sha256": config["extra"].get("data_sha256"),
        "command": " && ".join(stage.get("command", "") for stage in chain),
        "torch_version": state.get("torch_version", torch.__version__),
        "torch_threads": state.get("threads"),
        "train_seconds": round(sum(seconds), 1),
        "train_history": [{k: float(v) for k, v in h.items()} for stage in chain for h in stage["history"]],
        "platform": platform.platform(),
    }
    if len(chain) > 1:
        meta["stages"] = [
            {
                "command": stage.get("command", ""),
                "epochs": stage["config"]["epochs"],
                "learning_rate": stage["config"]["lr"],
                "train_seconds": round(stage_seconds, 1),
            }
            for stage, stage_seconds in zip(chain, seconds, strict=True)
        ]
    path = weights_dir / f"level-{level}.json"
    write_json(path, meta)
    return path, meta


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
