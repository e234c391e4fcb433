"""Training loop: rate + lambda * distortion, with seeds and resumable checkpoints."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from ..fileio import atomic_output
from .model import Architecture, Autoencoder, build, distortion


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


@dataclass
class _Run:
    """One training run's state from epoch to epoch: what a checkpoint holds."""

    model: Autoencoder
    optimizer: torch.optim.Optimizer
    scheduler: Any
    total_steps: int
    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    previous: dict[str, Any] | None = None


def _new_run(config: TrainConfig, steps_per_epoch: int, device: str) -> _Run:
    """A fresh model with its optimiser (the prior at 5x the learning rate) and one-cycle schedule."""
    model = build(config.arch).to(device)
    prior_params = list(model.prior.parameters())
    prior_ids = {id(p) for p in prior_params}
    net_params = [p for p in model.parameters() if id(p) not in prior_ids]
    groups: list[dict[str, Any]] = [
        {"params": net_params, "weight_decay": config.weight_decay},
        {"params": prior_params, "lr": config.lr * 5, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.lr)  # with weight decay 0 exactly Adam
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[config.lr, config.lr * 5], total_steps=max(total_steps, 1), pct_start=0.05
    )
    return _Run(model, optimizer, scheduler, total_steps)


def _resumed(run: _Run, config: TrainConfig, checkpoint: Path, device: str) -> bool:
    """Whether ``run`` took up ``checkpoint`` (a run of the same config): its weights, optimiser, schedule, epoch
    and random state."""
    if not checkpoint.is_file():
        return False
    state = torch.load(checkpoint, weights_only=False, map_location=device)
    if normalised_config(state["config"]) != config.to_dict():
        return False
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.epoch, run.step, run.history = state["epoch"], state["step"], state["history"]
    run.previous = state.get("previous")
    torch.set_rng_state(state["rng"].cpu())
    if "cuda_rng" in state and torch.device(device).type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"].cpu())
    return True


def _train_epoch(
    run: _Run, config: TrainConfig, data: torch.Tensor, epoch: int, device: str, report: Callable[[str], None]
) -> dict[str, Any]:
    """One epoch (or what is left of the steps): the batches in the epoch's seeded order; its record."""
    started = time.perf_counter()
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(config.seed * 1000 + epoch))
    if config.shift:
        offsets = random_offsets(len(data), config.shift, config.seed * 1000 + epoch).to(device)
    sums = np.zeros(3)
    run.model.train()
    for first in range(0, len(data), config.batch_size):
        if run.step >= run.total_steps:
            break
        batch = data[order[first : first + config.batch_size].to(device)]
        if config.shift:
            batch = shifted(batch, offsets[first : first + len(batch)], config.shift)
        out = run.model(batch)
        bpp = out["bits"].mean() / (batch.shape[-1] * batch.shape[-2])
        loss = bpp + config.lmbda * distortion(out["logits"], batch, config.loss).mean()
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
        run.optimizer.step()
        run.scheduler.step()
        run.step += 1
        mse = torch.mean((torch.sigmoid(out["logits"].detach()) - batch) ** 2).item()
        sums += (1, bpp.item(), mse)
        psnr = 10 * math.log10(1 / max(sums[2] / sums[0], 1e-12))
        report(f"epoch {epoch + 1} bpp {sums[1] / sums[0]:.3f} PSNR {psnr:.2f}")
    count = max(sums[0], 1)
    return {
        "epoch": epoch + 1,
        "bpp": sums[1] / count,
        "mse": sums[2] / count,
        "seconds": time.perf_counter() - started,
    }


def _checkpoint(run: _Run, config: TrainConfig, trained_on: str, device: str) -> dict[str, Any]:
    """What a checkpoint holds after ``run``'s last epoch (CPU tensors: it loads anywhere)."""
    state = {
        "config": config.to_dict(),
        "model": _on_cpu(run.model.state_dict()),
        "optimizer": _on_cpu(run.optimizer.state_dict()),
        "scheduler": run.scheduler.state_dict(),
        "epoch": run.epoch,
        "step": run.step,
        "history": run.history,
        "rng": torch.get_rng_state(),
        "previous": run.previous,
        "device": trained_on,
    }
    if torch.device(device).type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state()
    return state


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
    trained_on = _device_name(device)
    if config.limit is not None:
        images = images[: config.limit]
    data = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1).to(device)
    run = _new_run(config, math.ceil(len(data) / config.batch_size), device)
    if not (resume and _resumed(run, config, checkpoint, device)) and config.init_from is not None:
        run.previous = _start_from(run.model, Path(config.init_from))
    columns = (TextColumn("{task.fields[model]}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, TextColumn("{task.fields[status]}"), disable=not progress) as bar:
        task = bar.add_task("train", total=run.total_steps, completed=run.step, model=config.model, status="")

        def report(status: str) -> None:
            bar.update(task, completed=run.step, status=status)

        for epoch in range(run.epoch, config.epochs):
            if run.step >= run.total_steps:
                break
            run.history.append(_train_epoch(run, config, data, epoch, device, report))
            run.epoch = epoch + 1
            save_atomic(_checkpoint(run, config, trained_on, device), checkpoint)
    run.model.eval()
    run.model.history = run.history  # type: ignore[assignment]
    return run.model


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
    model = build(Architecture(**state["config"]["arch"]))
    model.load_state_dict(state["model"])
    model.eval()
    return model, state
