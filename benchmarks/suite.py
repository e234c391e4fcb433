"""Measure every codec at every setting on a set of images, and report it."""

from __future__ import annotations

import csv
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

import codec
from codec import api
from codec.evaluate import PSNR_CAP, measure_pairs, sweep
from codec.metrics import psnr
from codec.search import DEFAULT_EFFORT

from . import rd
from .baselines import Codec, classic_codecs

TARGETS = (25.0, 30.0, 35.0)
AEC = "aec"
PCA = "PCA"


@dataclass
class Row:
    """One codec at one setting, averaged over all images."""

    codec: str
    library: str
    setting: str
    images: int
    bpp: float  # whole files
    payload_bpp: float  # aec: entropy-coded latents alone; others: same as bpp
    psnr: float | None  # mean of per-image PSNR (each capped at PSNR_CAP); None when every image is lossless
    psnr_of_mean_mse: float | None
    ssim: float
    encode_ips: float  # images per second, one process
    decode_ips: float
    #: Each image's PSNR (capped at PSNR_CAP), in order: not written to the results files (:func:`record`).
    per_image_psnr: tuple[float, ...] = field(default=(), repr=False, compare=False)


def record(row: Row) -> dict[str, Any]:
    """What the results files hold of a row: its averages, not its per-image PSNRs."""
    out = asdict(row)
    del out["per_image_psnr"]
    return out


def _summarise(
    name: str,
    library: str,
    setting: str,
    originals: Sequence[np.ndarray],
    decoded: Sequence[np.ndarray],
    sizes: Sequence[int],
    payloads: Sequence[int],
    encode_s: float,
    decode_s: float,
) -> Row:
    measured = measure_pairs(originals, decoded, sizes, payloads)
    return Row(
        codec=name,
        library=library,
        setting=setting,
        **asdict(measured),
        encode_ips=len(originals) / max(encode_s, 1e-9),
        decode_ips=len(originals) / max(decode_s, 1e-9),
        per_image_psnr=tuple(min(float(psnr(a, b)), PSNR_CAP) for a, b in zip(originals, decoded)),
    )


def _timed(work: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = work(*args)
    return out, time.perf_counter() - start


def measure_aec(images: Sequence[np.ndarray], effort: int = DEFAULT_EFFORT, jobs: int = 1) -> list[Row]:
    """Every shipped level, through the batch API, at the encoder's ``effort``.

    From effort 1 the encoder weighs one set of searched files per image for
    every level (:func:`codec.encoder.exact_choice`) and remembers the last
    few sets, so the images are coded a few at a time at every level
    (:func:`codec.evaluate.sweep`). With ``jobs`` above 1 the images are split between that
    many worker processes (speeds: one process's).
    """
    levels = codec.levels()
    bounds = np.linspace(0, len(images), max(jobs, 1) + 1).round().astype(int)
    shards = [list(images[a:b]) for a, b in zip(bounds, bounds[1:])]  # in order: per_image_psnr stays aligned
    if jobs <= 1:
        swept = [sweep(shards[0], levels, effort)]
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as pool:
            swept = list(pool.map(sweep, shards, [levels] * jobs, [effort] * jobs))
    library = f"aec {codec.__version__}" + (f", effort {effort}" if effort != DEFAULT_EFFORT else "")
    rows = []
    for level in levels:
        files = [data for shard in swept for data in shard[level][0]]
        enc = sum(shard[level][1] for shard in swept)
        decoded, dec = _timed(api.decompress_many, files)
        payloads = [api.inspect(f).payload_bytes for f in files]
        sizes = [len(f) for f in files]
        rows.append(_summarise(AEC, library, str(level), images, decoded, sizes, payloads, enc, dec))
    return rows


def measure_codec(c: Codec, images: Sequence[np.ndarray], progress: Callable[[], None] = lambda: None) -> list[Row]:
    """One classic codec at each of its settings, one image at a time."""
    rows = []
    for setting in c.settings:
        start = time.perf_counter()
        files = [c.encode(image, setting) for image in images]
        enc = time.perf_counter() - start
        start = time.perf_counter()
        decoded = [c.decode(f) for f in files]
        dec = time.perf_counter() - start
        sizes = [len(f) for f in files]
        rows.append(_summarise(c.name, c.library, str(setting), images, decoded, sizes, sizes, enc, dec))
        progress()
    return rows


def measure_pca(images: np.ndarray, train: np.ndarray) -> list[Row]:
    """The PCA codec fitted on ``train``, at each of its k."""
    from .pca import PcaCodec

    pca = PcaCodec(train)
    library = f"scikit-learn {metadata.version('scikit-learn')} + constriction {metadata.version('constriction')}"
    rows = []
    for k in pca.settings:
        files, enc = _timed(pca.encode_many, images, k)
        decoded, dec = _timed(pca.decode_many, files, k)
        sizes = [len(f) for f in files]
        rows.append(_summarise(PCA, library, f"k={k}", list(images), list(decoded), sizes, sizes, enc, dec))
    return rows


def curves(rows: Sequence[Row], key: str = "psnr", rate: str = "bpp") -> dict[str, tuple[list[float], list[float]]]:
    """Per codec: (rate, metric) of its lossy settings (lossless ones have no curve)."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        value = getattr(row, key)
        if value is None or row.psnr is None:
            continue
        rates, values = out.setdefault(row.codec, ([], []))
        rates.append(getattr(row, rate))
        values.append(value)
    return out


#: Where the payload headline reads aec's payload rate (PSNR of the mean MSE, dB).
PAYLOAD_TARGET = 21.5


def payload_headline(rows: Sequence[Row]) -> dict[str, float | None]:
    """The entropy-coded content alone (no container): aec's latents against PCA's coefficients.

    aec's payload bpp at :data:`PAYLOAD_TARGET` dB PSNR of the mean MSE, and the
    BD-rate of aec's payload against the PCA codec's (mean PSNR, like the headline).
    """
    by_psnr = curves(rows, "psnr", rate="payload_bpp")
    by_mean_mse = curves(rows, "psnr_of_mean_mse", rate="payload_bpp")
    ours = by_psnr.get(AEC)
    return {
        f"aec payload bpp@{PAYLOAD_TARGET:g}dB (PSNR of mean MSE)": (
            rd.rate_at(*by_mean_mse[AEC], PAYLOAD_TARGET) if AEC in by_mean_mse else None
        ),
        "aec payload BD-rate vs PCA %": (
            rd.bd_rate(by_psnr[PCA], ours) if ours is not None and PCA in by_psnr else None
        ),
    }


def headline(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Per codec: bpp at the target PSNRs and the BD-rate of aec against it."""
    by_codec = curves(rows)
    ours = by_codec.get(AEC)
    table = []
    for name, (rates, psnrs) in by_codec.items():
        entry: dict[str, Any] = {"codec": name}
        for target in TARGETS:
            entry[f"bpp@{target:g}dB"] = rd.rate_at(rates, psnrs, target)
        entry["aec BD-rate %"] = None if name == AEC or ours is None else rd.bd_rate((rates, psnrs), ours)
        table.append(entry)
    return table


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(rows: Sequence[Row], table: Sequence[dict[str, Any]], source: str) -> str:
    """The results as Markdown: headline table, then every measurement."""
    lines = [f"# Rate-distortion benchmark ({source})", "", "## Headline", ""]
    lines.append("| codec | bpp @ 25 dB | bpp @ 30 dB | bpp @ 35 dB | BD-rate of aec vs it |")
    lines.append("|---|---|---|---|---|")
    for entry in table:
        bd = entry["aec BD-rate %"]
        lines.append(
            f"| {entry['codec']} | {_fmt(entry['bpp@25dB'])} | {_fmt(entry['bpp@30dB'])} | {_fmt(entry['bpp@35dB'])} | "
            + (f"{bd:+.1f} %" if bd is not None else "–")
            + " |"
        )
    payload = payload_headline(rows)
    at_target, against_pca = payload.values()
    lines += [
        "",
        "Payload alone (aec: the entropy-coded latents; PCA: its entropy-coded coefficients): "
        f"aec needs {_fmt(at_target)} bpp at {PAYLOAD_TARGET:g} dB PSNR of the mean MSE; "
        "BD-rate of aec's payload against PCA's: " + (f"{against_pca:+.1f} %." if against_pca is not None else "–."),
    ]
    lines += [
        "",
        "bpp: whole files (aec: header and checksum included); PSNR: mean of per-image PSNR "
        f"(a perfect image counts as {PSNR_CAP:g} dB); "
        "– where a codec does not reach that quality (or shares no PSNR range with aec).",
        "",
    ]
    lines += ["## Every setting", ""]
    lines.append(
        "| codec | setting | bpp | payload bpp | PSNR dB | PSNR of mean MSE | SSIM | encode img/s | decode img/s |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        psnr = "lossless" if r.psnr is None else f"{r.psnr:.2f}"
        of_mean = "lossless" if r.psnr_of_mean_mse is None else f"{r.psnr_of_mean_mse:.2f}"
        lines.append(
            f"| {r.codec} | {r.setting} | {r.bpp:.3f} | {r.payload_bpp:.3f} | {psnr} | {of_mean} | {r.ssim:.4f} | "
            f"{r.encode_ips:,.0f} | {r.decode_ips:,.0f} |"
        )
    libraries = sorted({(r.codec, r.library) for r in rows})
    lines += ["", "## Libraries", ""] + [f"- {name}: {lib}" for name, lib in libraries]
    lines += [
        "",
        f"Measured on {platform.machine()} ({platform.processor() or platform.platform()}), "
        f"Python {platform.python_version()}, one process.",
    ]
    return "\n".join(lines) + "\n"


def write_results(rows: Sequence[Row], out: Path, source: str) -> dict[str, Path]:
    """results.json, results.csv, results.md in ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    table = headline(rows)
    paths = {"json": out / "results.json", "csv": out / "results.csv", "md": out / "results.md"}
    paths["json"].write_text(
        json.dumps(
            {"source": source, "rows": [record(r) for r in rows], "headline": table, "payload": payload_headline(rows)},
            indent=1,
        )
        + "\n"
    )
    with open(paths["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(record(rows[0])))
        writer.writeheader()
        writer.writerows(record(r) for r in rows)
    paths["md"].write_text(markdown(rows, table, source))
    return paths


def run(
    images: Sequence[np.ndarray],
    train: np.ndarray | None,
    out: Path,
    source: str,
    codecs: Sequence[str] | None = None,
    progress: bool = True,
    effort: int = DEFAULT_EFFORT,
    jobs: int = 1,
) -> tuple[list[Row], dict[str, Path]]:
    """The whole suite: aec (at ``effort``, ``jobs`` levels at once), the PCA codec (when ``train`` is given)
    and every classic codec."""
    from rich.progress import Progress

    classic = [c for c in classic_codecs() if codecs is None or c.name in codecs]
    steps = 1 + (train is not None) + sum(len(c.settings) for c in classic)
    rows: list[Row] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("benchmark", total=steps)
        bar.update(task, description="aec")
        rows += measure_aec(images, effort, jobs)
        bar.advance(task)
        if train is not None:
            bar.update(task, description="PCA")
            rows += measure_pca(np.asarray(images), train)
            bar.advance(task)
        for c in classic:
            bar.update(task, description=c.name)
            rows += measure_codec(c, images, lambda: bar.advance(task))
    return rows, write_results(rows, out, source)
