"""What ``aec bench`` and ``aec latent`` run: load images, measure, write tables and pictures."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from codec import api, models
from codec.batch import IMAGE_SUFFIXES, collect_inputs
from codec.images import open_image, to_grayscale

from . import plots, suite
from .baselines import Codec, classic_codecs


def load_folder(folder: Path, limit: int | None) -> list[np.ndarray]:
    """Every image in ``folder`` (sorted, recursive) as 8-bit grayscale."""
    paths, _ = collect_inputs([str(folder)], IMAGE_SUFFIXES, recursive=True)  # none found: an empty list
    return [to_grayscale(open_image(p))[0] for p in paths[:limit]]


def bench(
    images: list[np.ndarray],
    train: np.ndarray | None,
    out: Path,
    source: str,
    codecs: list[str] | None = None,
    progress: bool = True,
    effort: int = suite.DEFAULT_EFFORT,
    jobs: int = 1,
) -> tuple[list[suite.Row], dict[str, Path]]:
    """Run the suite and draw its pictures; returns the rows and every file written."""
    rows, paths = suite.run(images, train, out, source, codecs, progress, effort, jobs)
    paths["rd_psnr"] = plots.rd_plot(rows, "psnr", "PSNR (dB, mean over images)", out / "rd_psnr.png")
    paths["rd_ssim"] = plots.rd_plot(rows, "ssim", "SSIM (mean over images)", out / "rd_ssim.png")
    same_size = len({im.shape for im in images}) == 1
    if same_size:
        paths["gallery"] = _gallery(rows, np.stack(images[:8]), out / "gallery.png")
    return rows, paths


def record_levels(rows: list[suite.Row], effort: int) -> None:
    """Write each aec level's measurement into its metadata, as ``aec freeze`` would have measured it."""
    from codec.evaluate import Measurement, write_measurement

    fields = Measurement.__dataclass_fields__
    for row in rows:
        if row.codec == suite.AEC:
            measured = Measurement(**{name: getattr(row, name) for name in fields})
            write_measurement(int(row.setting), measured, effort)


def _aec_round_trip(images: np.ndarray, level: int) -> np.ndarray:
    return np.stack(api.decompress_many(api.compress_many(list(images), level)))


def _classic_round_trip(c: Codec, setting: Any, images: np.ndarray) -> np.ndarray:
    return np.stack([c.decode(c.encode(image, setting)) for image in images])


def _gallery(rows: list[suite.Row], originals: np.ndarray, path: Path) -> Path:
    """Original, aec at each level, and the classic codecs at the rates nearest aec's."""
    columns: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = []
    aec_rows = [r for r in rows if r.codec == suite.AEC]
    for row in aec_rows:
        level = int(row.setting)
        columns.append((f"aec q{level}\n{row.bpp:.2f} bpp", partial(_aec_round_trip, level=level)))
    by_name = {c.name: c for c in classic_codecs()}
    lossy = [r for r in rows if r.codec in by_name and r.psnr is not None]
    if aec_rows and lossy:
        top = max(r.bpp for r in aec_rows)
        within = [r for r in lossy if r.bpp <= top * 1.1]
        # the best classic codec at aec's highest rate, else the smallest classic file
        pick = max(within, key=lambda r: r.psnr or 0) if within else min(lossy, key=lambda r: r.bpp)
        c = by_name[pick.codec]
        setting = c.settings[[str(s) for s in c.settings].index(pick.setting)]
        columns.append((f"{pick.codec} {pick.setting}\n{pick.bpp:.2f} bpp", partial(_classic_round_trip, c, setting)))
    return plots.gallery(originals, columns, path)


def latent_view(images: np.ndarray, labels: np.ndarray, level: int, out: Path, tsne: bool = True) -> dict[str, Path]:
    """2-D embeddings of the quantized latents (PCA, t-SNE), coloured by label, and the rate per latent."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    out.mkdir(parents=True, exist_ok=True)
    model = models.load_model(level)
    latents = np.rint(
        np.concatenate([model.analyse(images[i : i + 512] / np.float32(255)) for i in range(0, len(images), 512)])
    )
    r = model.prior.radius
    latents = np.clip(latents, -r, r)
    flat = latents.reshape(len(latents), -1)
    points = {"PCA": PCA(n_components=2, random_state=0).fit_transform(flat)}
    if tsne:
        points["t-SNE"] = TSNE(n_components=2, init="pca", random_state=0, perplexity=30).fit_transform(flat)
    paths = {
        "latent_embedding": plots.latent_scatter(
            points,
            labels,
            out / f"latent_embedding_q{level}.png",
            f"aec level {level}: quantized latents of {len(images):,} test digits",
        )
    }
    symbols = model.prior.to_symbols(latents)
    chosen = model.prior.choose_sets(symbols)
    freqs = model.prior.tables().astype(np.float64)
    probs = freqs / freqs.sum(-1, keepdims=True)
    c, gh, gw = latents.shape[1:]
    idx = np.indices((c, gh, gw))
    bits = -np.log2(probs[chosen[:, None, None, None], idx[0][None], idx[1][None], idx[2][None], symbols]).mean(axis=0)
    paths["rate_heatmap"] = plots.rate_heatmap(
        bits,
        out / f"rate_heatmap_q{level}.png",
        f"aec level {level}: {bits.sum():.1f} bits per digit by latent channel and position (selector apart)",
    )
    return paths
