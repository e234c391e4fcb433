"""Train the denoiser (:mod:`codec.denoise`) on damaged MNIST training digits and store it (needs torch).

The network maps a damaged digit to the clean one (mean squared error), every
image damaged afresh each epoch by a kind and strength drawn as
:func:`codec.training.noise.random_damage` draws them. Digits 0-54,999 train
it; 55,000-58,999 are the validation split that picks the epoch whose weights
are kept (the held-out scanned digits of the benchmark, 59,000 on, are never
seen). The test digits are only measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..denoise import DenoiseModel, save
from .freeze import graph_of
from .noise import damage, random_damage

#: Training digits (the rest up to :data:`VALIDATION_END` choose the epoch).
TRAIN_END, VALIDATION_END = 55_000, 59_000
#: Channels of the network's hidden layers.
CHANNELS = 32


def network(channels: int = CHANNELS) -> nn.Sequential:
    """The denoiser: a 3x3 convolution at full resolution, then four at half resolution, back up by a pixel
    shuffle, and a last 3x3 convolution to one channel (linear: the runtime clips it to [0, 1]; a sigmoid there
    stalled training at an all-black output). Sees 25x25 pixels around each one."""
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        *(layer for _ in range(3) for layer in (nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())),
        nn.Conv2d(channels, 4 * channels, 3, padding=1),
        nn.PixelShuffle(2),
        nn.ReLU(),
        nn.Conv2d(channels, 1, 3, padding=1),
    )


def frozen(net: nn.Sequential) -> DenoiseModel:
    """The runtime model of ``net``: its graph and float16 weights."""
    layers, arrays = graph_of(net, "denoise")
    return DenoiseModel({"layers": layers, "stride": 2}, arrays)


def psnr_of(model: DenoiseModel, clean: np.ndarray, damaged: np.ndarray) -> float:
    """Mean PSNR (dB) of ``model``'s output against the clean images (both in [0, 1]), as the runtime computes."""
    out = np.clip(np.rint(model.run(damaged) * 255), 0, 255)
    errors = ((out - np.rint(clean * 255)) ** 2).reshape(len(clean), -1).mean(1)
    return float(np.mean(10 * np.log10(255.0**2 / np.maximum(errors, 1e-10))))


def train_denoiser(
    data_dir: Path | None,
    weights_dir: Path | None,
    epochs: int,
    seed: int,
    command: str,
    step: Callable[[str], None] = lambda _: None,
    limit: int | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train, keep the epoch best on the validation split, store the model; returns its path and metadata."""
    from ..data import dataset_digest, load_mnist
    from ..models import weights_dir as default_weights

    start = time.perf_counter()
    digits = load_mnist("train", data_dir)[0].astype(np.float32) / 255
    train, validation = digits[: limit or TRAIN_END], digits[TRAIN_END:VALIDATION_END][: limit and limit // 4]
    test = load_mnist("test", data_dir)[0][: limit or None].astype(np.float32) / 255
    rng, checked = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    held = random_damage(validation, checked)
    torch.manual_seed(seed)
    net = network()
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs * -(-len(train) // 128))
    history: list[dict[str, float]] = []
    best: tuple[float, DenoiseModel] | None = None
    for epoch in range(epochs):
        began, damaged, order = time.perf_counter(), random_damage(train, rng), rng.permutation(len(train))
        net.train()
        for first in range(0, len(train), 128):
            chosen = order[first : first + 128]
            optimiser.zero_grad()
            out = net(torch.from_numpy(damaged[chosen][:, None]))
            loss = nn.functional.mse_loss(out, torch.from_numpy(train[chosen][:, None]))
            loss.backward()
            optimiser.step()
            schedule.step()
        net.eval()
        model = frozen(net)
        score = psnr_of(model, validation, held)
        history.append({"epoch": epoch + 1, "validation_psnr": round(score, 3), "seconds": time.perf_counter() - began})
        step(f"epoch {epoch + 1}: validation {score:.2f} dB")
        if best is None or score > best[0]:
            best = (score, model)
    assert best is not None
    model = best[1]
    noisy = damage(test, "gaussian", 0.3, np.random.default_rng(seed + 2))
    meta: dict[str, Any] = {
        "command": command,
        "seed": seed,
        "data_sha256": dataset_digest(),
        "training_digits": f"MNIST training digits 0-{len(train) - 1}",
        "validation_digits": f"MNIST training digits {TRAIN_END}-{TRAIN_END + len(validation) - 1}",
        "architecture": {"channels": CHANNELS, "layers": len(model.layers)},
        "epochs": epochs,
        "chosen_epoch": int(np.argmax([h["validation_psnr"] for h in history])) + 1,
        "history": history,
        "test_psnr_gaussian_0.3": round(psnr_of(model, test, noisy), 3),
        "torch_version": torch.__version__,
        "seconds": round(time.perf_counter() - start, 1),
    }
    return save(model, weights_dir or default_weights(), meta), meta
