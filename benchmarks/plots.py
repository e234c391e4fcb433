"""Pictures of the results: rate-distortion curves, a reconstruction gallery, the latent space."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .suite import AEC, Row, curves


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def rd_plot(rows: Sequence[Row], key: str, label: str, path: Path) -> Path:
    """bpp (log axis) against ``key`` (psnr or ssim), one line per codec; lossless codecs as vertical lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    names = list(dict.fromkeys(r.codec for r in rows if r.codec != AEC))
    palette = plt.get_cmap("tab10")
    for name, (rates, values) in curves(rows, key).items():
        order = np.argsort(rates)
        style: dict[str, object] = {"linewidth": 2.5, "color": "black", "zorder": 5}
        if name != AEC:  # the same colour for a codec in every plot
            style = {"linewidth": 1.2, "color": palette(names.index(name) % 10)}
        ax.plot(np.asarray(rates)[order], np.asarray(values)[order], marker="o", markersize=3.5, label=name, **style)
    for row in rows:
        if row.psnr is None:  # lossless
            ax.axvline(row.bpp, linestyle=":", color="grey", linewidth=1)
            ax.text(
                row.bpp,
                0.02,
                f" {row.codec}",
                rotation=90,
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                color="grey",
            )
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel (whole file, log scale)")
    ax.set_ylabel(label)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{label} against rate on {rows[0].images:,} images")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def gallery(
    originals: np.ndarray,
    columns: Sequence[tuple[str, Callable[[np.ndarray], np.ndarray]]],
    path: Path,
) -> Path:
    """A grid: one row per digit, the original then each reconstruction (titled with its setting)."""
    plt = _pyplot()
    n, m = len(originals), 1 + len(columns)
    fig, axes = plt.subplots(n, m, figsize=(1.1 * m, 1.15 * n + 0.6), dpi=110)
    axes = np.atleast_2d(axes)
    panels = [("original", originals)] + [(title, make(originals)) for title, make in columns]
    for j, (title, images) in enumerate(panels):
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, j].set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def latent_scatter(points: dict[str, np.ndarray], labels: np.ndarray, path: Path, title: str) -> Path:
    """One 2-D scatter per embedding, coloured by digit label."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(points), figsize=(6 * len(points), 5.5), dpi=110)
    for ax, (name, xy) in zip(np.atleast_1d(axes), points.items()):
        scatter = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7, vmin=-0.5, vmax=9.5)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(scatter, ax=axes, ticks=range(10), label="digit")
    fig.suptitle(title)
    fig.savefig(path)
    plt.close(fig)
    return path


def rate_heatmap(bits: np.ndarray, path: Path, title: str) -> Path:
    """Bits spent per latent channel and position: one small map per channel, shared colour scale."""
    plt = _pyplot()
    channels = bits.shape[0]
    cols = min(channels, 8)
    rows = -(-channels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows + 0.8), dpi=110, squeeze=False)
    top = float(bits.max()) or 1.0
    for c in range(rows * cols):
        ax = axes[c // cols, c % cols]
        ax.set_xticks([])
        ax.set_yticks([])
        if c >= channels:
            ax.axis("off")
            continue
        image = ax.imshow(bits[c], cmap="magma", vmin=0, vmax=top)
        ax.set_title(f"ch {c}: {bits[c].sum():.1f} b", fontsize=7)
    fig.colorbar(image, ax=axes, label="bits per digit")
    fig.suptitle(title, fontsize=9)
    fig.savefig(path)
    plt.close(fig)
    return path


def set_rd_plot(curves_by_codec: dict[str, tuple[list[float], list[float]]], title: str, path: Path) -> Path:
    """One set's mean rate-distortion curves: mean bpp (log axis) against mean PSNR per setting, aec in black."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    palette = plt.get_cmap("tab10")
    for i, (name, (rates, values)) in enumerate(curves_by_codec.items()):
        order = np.argsort(rates)
        style: dict[str, object] = (
            {"linewidth": 2.5, "color": "black", "zorder": 5} if name.startswith("aec") else {"color": palette(i % 10)}
        )
        ax.plot(np.asarray(rates)[order], np.asarray(values)[order], marker="o", markersize=3, label=name, **style)
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel (whole file, log scale; mean over the set)")
    ax.set_ylabel("PSNR dB (mean over the set, each capped at 99)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def side_by_side(rows: Sequence[tuple[str, Sequence[tuple[str, np.ndarray]]]], path: Path) -> Path:
    """A grid of images of any sizes: one row per image, its panels titled (original, aec, WebP ...)."""
    plt = _pyplot()
    n, m = len(rows), max(len(panels) for _, panels in rows)
    fig, axes = plt.subplots(n, m, figsize=(2.4 * m, 2.2 * n + 0.4), dpi=100, squeeze=False)
    for i, (name, panels) in enumerate(rows):
        for j in range(m):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(panels):
                ax.axis("off")
                continue
            title, image = panels[j]
            ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(f"{name}: {title}" if j == 0 else title, fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
