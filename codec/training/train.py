"""Training loop: rate + lambda * distortion, with seeds and resumable checkpoints."""

from __future__ import annotations

import math
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from ..fileio import atomic_output
from .model import Architecture, Autoencoder, distortion


@dataclass
class TrainConfig:
    """Everything that determines a training run (recorded in the metadata)."""

    model: str  # the name in codec.training.levels.MODELS
    lmbda: float
    arch: Architecture
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    loss: str = "mse"
    seed: int = 0
    limit: int | None = None  # train on the first N images only (smoke runs)
    max_steps: int | None = None  # stop after N optimiser steps (smoke runs)
    init_from: str | None = None  # start from this checkpoint's weights (a further training stage)
    weight_decay: float = 0.0  # decoupled (AdamW) weight decay of the transforms, not of the prior
    shift: int = 0  # move each training digit by up to this many pixels each way (augmentation)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["arch"] = self.arch.to_dict()
        return d


def normalised_config(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config with the fields added to :class:`TrainConfig` since then at their defaults."""
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    return {**defaults, **saved, "arch": Architecture(**saved["arch"]).to_dict()}


def stages(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The training stages that led to a checkpoint, first to last (``init_from`` chains them)."""
    chain = []
    stage: dict[str, Any] | None = state
    while stage is not None:
        chain.append(stage)
        stage = stage.get("previous")
    return chain[::-1]


def _start_from(model: Autoencoder, source: Path) -> dict[str, Any]:
    """Load ``source``'s weights into ``model``; returns what to keep of the earlier stage."""
    if not source.is_file():
        raise FileNotFoundError(f"no checkpoint to start from at {source}")
    state = torch.load(source, weights_only=False, map_location="cpu")
    if Architecture(**state["config"]["arch"]) != model.arch:
        raise ValueError(f"{source} has another architecture than the model being trained")
    model.load_state_dict(state["model"])
    keep = ("config", "history", "step", "command", "torch_version", "threads", "device", "previous")
    return {k: state[k] for k in keep if k in state}


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` of ``obj`` to ``path``, which appears only when complete (a checkpoint survives a kill)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, force=True) as fh:
        torch.save(obj, fh)


def train(
    config: TrainConfig,
    images: np.ndarray,
    checkpoint: Path,
    resume: bool = True,
    progress: bool = True,
    device: str = "cpu",
) -> Autoencoder:
    """Train one model on ``images`` (N, 28, 28) uint8, checkpointing every epoch.

    With ``resume`` and an existing checkpoint of the same config, training goes
    on from the last finished epoch, with the same result as an unbroken run on
    the same device. ``device`` is a torch device ("cpu", "cuda"); checkpoints
    always hold CPU tensors, so they load anywhere.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    torch.manual_seed(config.seed)
    torch.set_flush_denormal(True)  # denormals slow CPU training several-fold
    torch.backends.cudnn.deterministic = True  # the same run twice gives the same weights on one GPU
    torch.backends.cudnn.benchmark = False
    on_gpu = torch.device(device).type == "cuda"
    trained_on = _device_name(device)
    if config.limit is not None:
        images = images[: config.limit]
    data = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1).to(device)
    model = Autoencoder(config.arch).to(device)
    prior_params = list(model.prior.parameters())
    prior_ids = {id(p) for p in prior_params}
    net_params = [p for p in model.parameters() if id(p) not in prior_ids]
    groups: list[dict[str, Any]] = [
        {"params": net_params, "weight_decay": config.weight_decay},
        {"params": prior_params, "lr": config.lr * 5, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.lr)  # with weight decay 0 exactly Adam
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[config.lr, config.lr * 5], total_steps=max(total_steps, 1), pct_start=0.05
    )
    start_epoch, step, history = 0, 0, []
    previous: dict[str, Any] | None = None
    resumed = False
    if resume and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False, map_location=device)
        if normalised_config(state["config"]) == config.to_dict():
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_epoch, step, history = state["epoch"], state["step"], state["history"]
            previous = state.get("previous")
            torch.set_rng_state(state["rng"].cpu())
            if "cuda_rng" in state and on_gpu:
                torch.cuda.set_rng_state(state["cuda_rng"].cpu())
            resumed = True
    if not resumed and config.init_from is not None:
        previous = _start_from(model, Path(config.init_from))

    columns = (TextColumn("{task.fields[model]}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, TextColumn("{task.fields[status]}"), disable=not progress) as bar:
        task = bar.add_task("train", total=total_steps, completed=step, model=config.model, status="")
        for epoch in range(start_epoch, config.epochs):
            if step >= total_steps:
                break
            started = time.perf_counter()
            order = torch.randperm(len(data), generator=torch.Generator().manual_seed(config.seed * 1000 + epoch))
            if config.shift:
                offsets = random_offsets(len(data), config.shift, config.seed * 1000 + epoch).to(device)
            sums = np.zeros(3)
            model.train()
            for first in range(0, len(data), config.batch_size):
                if step >= total_steps:
                    break
                batch = data[order[first : first + config.batch_size].to(device)]
                if config.shift:
                    batch = shifted(batch, offsets[first : first + len(batch)], config.shift)
                out = model(batch)
                bpp = out["bits"].mean() / (batch.shape[-1] * batch.shape[-2])
                dist = distortion(out["logits"], batch, config.loss).mean()
                loss = bpp + config.lmbda * dist
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                step += 1
                mse = torch.mean((torch.sigmoid(out["logits"].detach()) - batch) ** 2).item()
                sums += (1, bpp.item(), mse)
                psnr = 10 * math.log10(1 / max(sums[2] / sums[0], 1e-12))
                bar.update(
                    task, completed=step, status=f"epoch {epoch + 1} bpp {sums[1] / sums[0]:.3f} PSNR {psnr:.2f}"
                )
            history.append(
                {
                    "epoch": epoch + 1,
                    "bpp": sums[1] / max(sums[0], 1),
                    "mse": sums[2] / max(sums[0], 1),
                    "seconds": time.perf_counter() - started,
                }
            )
            state = {
                "config": config.to_dict(),
                "model": _on_cpu(model.state_dict()),
                "optimizer": _on_cpu(optimizer.state_dict()),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1,
                "step": step,
                "history": history,
                "rng": torch.get_rng_state(),
                "previous": previous,
                "device": trained_on,
            }
            if on_gpu:
                state["cuda_rng"] = torch.cuda.get_rng_state()
            save_atomic(state, checkpoint)
    model.eval()
    model.history = history  # type: ignore[assignment]
    return model


def random_offsets(n: int, shift: int, seed: int) -> torch.Tensor:
    """(n, 2) integer (row, column) moves in ``-shift..shift``, the same for the same seed on every device."""
    generator = torch.Generator().manual_seed(seed + 7_919)  # not the batch order's seed: independent draws
    return torch.randint(-shift, shift + 1, (n, 2), generator=generator)


def shifted(batch: torch.Tensor, offsets: torch.Tensor, shift: int) -> torch.Tensor:
    """Each image of ``batch`` (N, 1, H, W) moved by its (row, column) offset; zeros come in at the edges."""
    n, _, h, w = batch.shape
    padded = F.pad(batch, (shift, shift, shift, shift))
    rows = torch.arange(h, device=batch.device) + shift - offsets[:, :1]
    cols = torch.arange(w, device=batch.device) + shift - offsets[:, 1:]
    index = torch.arange(n, device=batch.device)[:, None, None]
    return padded[index, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def _on_cpu(obj: Any) -> Any:
    """``obj`` (a state dict, nested) with every tensor moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _on_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_on_cpu(v) for v in obj]
    return obj


def _device_name(device: str) -> str:
    """What trained the model, for the metadata: "cpu" or "cuda (NVIDIA H200)"."""
    if torch.device(device).type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(torch.device(device))})"
    return "cpu"


def load_checkpoint(path: Path) -> tuple[Autoencoder, dict[str, Any]]:
    """The model and the saved state (config, history) of a checkpoint."""
    state = torch.load(path, weights_only=False, map_location="cpu")
    model = Autoencoder(Architecture(**state["config"]["arch"]))
    model.load_state_dict(state["model"])
    model.eval()
    return model, state
