"""aec beside WebP on images that are not MNIST: ``python -m benchmarks.wild``.

For each set of :mod:`benchmarks.sets` and each image: aec's plain levels
(at the default effort, what a user gets) and its refined files at several maximum errors (restored where that
pays, as ``--psnr`` makes them; also without, to show what restoring is worth), WebP at its
quality settings; per image, the BD-rate of aec against WebP (over the PSNR
range both reach) and whether aec reaches 45 dB. Writes
``benchmarks/results/wild.md`` and ``wild.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from codec import api
from codec.images import prepare
from codec.metrics import psnr
from codec.models import DEFAULT_LEVEL, available_levels
from codec.search import DEFAULT_EFFORT
from codec.targets import encode_for_target

from . import rd
from .baselines import Codec, classic_codecs
from .written import write_report

#: The encoder's effort of every aec point: the default, what a user gets.
EFFORT = DEFAULT_EFFORT
#: Maximum errors of the refined points (the encoder picks the base per image).
MAX_ERRORS = (16, 8, 4, 2, 1, 0)
#: Level whose autoencoder a refined file may build on.
BASE_LEVEL = 8
TARGET = 45.0
#: Worst images of each set shown in the gallery.
GALLERY = 10
#: A higher level may give this much less PSNR and still count as "quality rises with the level".
MONOTONE_SLACK = 0.05
#: The PSNR targets ``--psnr`` is measured at, on every TARGET_EVERY-th image of each set (a sample: each
#: target tries every level and the refinement, seconds per image).
PSNR_TARGETS = (30.0, 35.0, 40.0, 45.0)
TARGET_EVERY = 3
OUT = Path(__file__).resolve().parent / "results"


def _capped(value: float) -> float:
    return float(min(value, 99.0))


def _point(name: str, image: np.ndarray, data: bytes) -> tuple[str, float, float]:
    return name, 8 * len(data) / image.size, _capped(float(psnr(image, api.decompress(data))))


def aec_points(image: np.ndarray, restore: bool = True) -> list[tuple[str, float, float]]:
    """(setting, bpp, PSNR) of every aec setting on one image: the levels, then the refined files (``restore``:
    restored where that pays, :mod:`codec.restore`)."""
    points = [_point(f"level {q}", image, api.compress(image, quality=q, effort=EFFORT)) for q in available_levels()]
    return points + refined_points(image, restore)


def refined_points(image: np.ndarray, restore: bool) -> list[tuple[str, float, float]]:
    """(setting, bpp, PSNR) of the refined files at each of :data:`MAX_ERRORS` (lossless is never restored)."""
    return [
        _point(
            f"K={k}",
            image,
            api.compress(image, quality=BASE_LEVEL, effort=EFFORT, max_error=k, restore=restore and k > 0),
        )
        for k in MAX_ERRORS
    ]


#: The classic codecs aec is compared with here; the first is the anchor of the headline.
ANCHORS = ("WebP", "JPEG XL", "AVIF")


def codec_points(codec: Codec, image: np.ndarray) -> list[tuple[str, float, float]]:
    """(setting, bpp, PSNR) of a classic codec at each of its settings on one image."""
    out = []
    for setting in codec.settings:
        data = codec.encode(image, setting)
        out.append((codec.label(setting), 8 * len(data) / image.size, _capped(float(psnr(image, codec.decode(data))))))
    return out


def target_points(image: np.ndarray, ours: list[tuple[str, float, float]]) -> list[dict[str, float | None]]:
    """``--psnr T`` (at :data:`EFFORT`) on one image at each of :data:`PSNR_TARGETS`: the PSNR and bpp it gives, and the
    bpp the RD curve promises, the cheapest of aec's measured settings that reaches T."""
    out = []
    for target in PSNR_TARGETS:
        (choice,) = encode_for_target([prepare(image)], psnr=target, effort=EFFORT)
        assert choice.data is not None
        reaching = [bpp for _, bpp, quality in ours if quality >= target]
        out.append(
            {
                "target": target,
                "psnr": _capped(float(psnr(image, api.decompress(choice.data)))),
                "bpp": 8 * len(choice.data) / image.size,
                "promised_bpp": min(reaching) if reaching else None,
            }
        )
    return out


def _curve(points: list[tuple[str, float, float]]) -> tuple[list[float], list[float]]:
    return [p[1] for p in points], [p[2] for p in points]


def measure(named: list[tuple[str, np.ndarray]], progress: Callable[[], None] = lambda: None) -> list[dict[str, Any]]:
    """Per image: every point of aec and of the anchors, aec's BD-rate against each and its best PSNR."""
    anchors = [c for c in classic_codecs() if c.name in ANCHORS]
    rows = []
    for index, (name, image) in enumerate(named):
        ours = aec_points(image)
        theirs = {c.name: codec_points(c, image) for c in anchors}
        levels_only = [p for p in ours if p[0].startswith("level")]
        unrestored = levels_only + refined_points(image, restore=False)
        best = max(p[2] for p in ours)
        by_level = [p[2] for p in levels_only]  # in level order
        rows.append(
            {
                "image": name,
                "size": f"{image.shape[1]}x{image.shape[0]}",
                "bd_rate": {n: rd.bd_rate(_curve(points), _curve(ours)) for n, points in theirs.items()},
                "bd_rate_levels_only_vs_webp": rd.bd_rate(_curve(theirs["WebP"]), _curve(levels_only)),
                "bd_rate_unrestored_vs_webp": rd.bd_rate(_curve(theirs["WebP"]), _curve(unrestored)),
                "best_psnr": best,
                "reaches_45": best >= TARGET,
                "levels_monotone": all(b >= a - MONOTONE_SLACK for a, b in zip(by_level, by_level[1:])),
                "bpp_at_45": rd.rate_at(*_curve(ours), TARGET),
                "webp_bpp_at_45": rd.rate_at(*_curve(theirs["WebP"]), TARGET),
                "targets": target_points(image, ours) if index % TARGET_EVERY == 0 else [],
                "aec": ours,
                **{n: points for n, points in theirs.items()},
            }
        )
        progress()
    return rows


def _worst(rows: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The ``count`` images of a set with the highest BD-rate against WebP (those without one last)."""
    return sorted(rows, key=lambda r: -(r["bd_rate"].get("WebP") or -1e9))[:count]


def _stats(values: list[float | None]) -> tuple[float | None, float | None]:
    known = [v for v in values if v is not None]
    return (float(np.mean(known)), float(np.median(known))) if known else (None, None)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f} %"


def markdown(results: dict[str, list[dict[str, Any]]], seconds: float) -> str:
    lines = [
        "# aec off MNIST (`aec bench --sets`)",
        "",
        f"aec's levels and refined files (max error {', '.join(map(str, MAX_ERRORS))}, over level {BASE_LEVEL}'s "
        f"autoencoder or none, whichever is smaller), against WebP, JPEG XL and AVIF at their",
        "settings (benchmarks/baselines.py), on the sets of benchmarks/sets.py. BD-rate per image over the PSNR",
        "range both curves reach (negative: aec needs fewer bytes), whole files; mean and median over the set.",
        "'levels only' leaves the refinement out: what the autoencoders alone do; 'not restored' codes the refined",
        "files without the restoration filter (codec/restore.py), each pixel within K.",
        f"Every aec file at effort {EFFORT}, the default.",
        f"Measured in {seconds:.0f} s.",
        "",
        "| set | images | vs WebP mean | median | vs JPEG XL mean | vs AVIF mean | levels only vs WebP mean |"
        " not restored vs WebP mean | reaching 45 dB | PSNR rising with the level |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        webp = _stats([r["bd_rate"].get("WebP") for r in rows])
        jxl = _stats([r["bd_rate"].get("JPEG XL") for r in rows])
        avif = _stats([r["bd_rate"].get("AVIF") for r in rows])
        levels = _stats([r["bd_rate_levels_only_vs_webp"] for r in rows])
        unrestored = _stats([r.get("bd_rate_unrestored_vs_webp") for r in rows])
        reach = sum(bool(r["reaches_45"]) for r in rows) / max(1, len(rows))
        rising = sum(bool(r["levels_monotone"]) for r in rows) / max(1, len(rows))
        lines.append(
            f"| {name} | {len(rows)} | {_pct(webp[0])} | {_pct(webp[1])} | {_pct(jxl[0])} | {_pct(avif[0])} | "
            f"{_pct(levels[0])} | {_pct(unrestored[0])} | {100 * reach:.0f} % | {100 * rising:.0f} % |"
        )
    lines += [
        "",
        f"## PSNR targets (`--psnr T`, effort {EFFORT}, every {TARGET_EVERY}rd image)",
        "",
        "Reached: the file's PSNR is at least T. Bytes against the curve: the target file's bpp over the bpp of",
        "the cheapest measured aec setting (level or maximum error) that reaches T on that image.",
        "",
        "| set | T | images | reached | bytes / curve, median | worst |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        for target in PSNR_TARGETS:
            points = [t for r in rows for t in r.get("targets", []) if t["target"] == target]
            if not points:
                continue
            reached = sum(t["psnr"] >= target for t in points) / len(points)
            ratios = [t["bpp"] / t["promised_bpp"] for t in points if t["promised_bpp"]]
            median = f"{np.median(ratios):.2f}" if ratios else "-"
            worst = f"{max(ratios):.2f}" if ratios else "-"
            lines.append(f"| {name} | {target:.0f} | {len(points)} | {100 * reached:.0f} % | {median} | {worst} |")
    for name, rows in results.items():
        lines += [
            "",
            f"## {name}: the ten worst images (BD-rate against WebP)",
            "",
            "| image | size | BD-rate | best PSNR | aec bpp at 45 dB | WebP bpp at 45 dB |",
            "|---|---|---|---|---|---|",
        ]
        for r in _worst(rows, 10):
            at, webp_at = r["bpp_at_45"], r["webp_bpp_at_45"]
            lines.append(
                f"| {r['image']} | {r['size']} | {_pct(r['bd_rate'].get('WebP'))} | {r['best_psnr']:.1f} | "
                f"{'-' if at is None else f'{at:.2f}'} | {'-' if webp_at is None else f'{webp_at:.2f}'} |"
            )
    return "\n".join(lines) + "\n"


def mean_curves(rows: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """Per codec, the mean bpp and mean PSNR over the set's images at each of its settings (aec: levels and K)."""
    out = {}
    for name, key in (("aec levels", "aec"), ("aec refined", "aec"), *((n, n) for n in ANCHORS)):
        if not rows or key not in rows[0]:
            continue
        labels = [p[0] for p in rows[0][key] if (key != "aec") or (p[0].startswith("level") == (name == "aec levels"))]
        points = [[next(p for p in r[key] if p[0] == label) for r in rows] for label in labels]
        out[name] = (
            [float(np.mean([p[1] for p in ps])) for ps in points],
            [float(np.mean([p[2] for p in ps])) for ps in points],
        )
    return out


def pictures(
    results: dict[str, list[dict[str, Any]]], named: dict[str, list[tuple[str, np.ndarray]]], out: Path
) -> None:
    """wild_rd_N.png per set, and wild_gallery.png: each set's worst images (BD-rate against WebP) at the default
    level beside WebP at the most bytes that do not exceed aec's."""
    from .plots import set_rd_plot, side_by_side

    webp = next(c for c in classic_codecs() if c.name == "WebP")
    rows_out = []
    for index, (name, rows) in enumerate(results.items()):
        set_rd_plot(mean_curves(rows), f"{name}: {len(rows)} images", out / f"wild_rd_{index + 1}.png")
        images = dict(named[name])
        for row in _worst(rows, GALLERY):
            image = images[row["image"]]
            data = api.compress(image, quality=DEFAULT_LEVEL, effort=EFFORT)
            ours = api.decompress(data)
            fitting = [(len(coded), q, coded) for q in range(0, 101, 5) for coded in [webp.encode(image, q)]]
            size, quality, coded = max([f for f in fitting if f[0] <= len(data)] or [min(fitting)])
            theirs = webp.decode(coded)
            rows_out.append(
                (
                    row["image"],
                    [
                        ("original", image),
                        (f"aec level {DEFAULT_LEVEL}: {len(data)} B, {float(psnr(image, ours)):.1f} dB", ours),
                        (f"WebP q{quality}: {size} B, {float(psnr(image, theirs)):.1f} dB", theirs),
                    ],
                )
            )
    side_by_side(rows_out, out / "wild_gallery.png")


def run(out: Path, mnist_train: np.ndarray, limit: int | None = None, progress: bool = True) -> Path:
    """Measure both sets (the first ``limit`` images of each) and write wild.md and wild.json into ``out``."""
    from rich.progress import Progress

    from . import sets

    started = time.time()
    named = {
        "digits (not MNIST)": [(f"digit-{i}", image) for i, image in enumerate(sets.digits(mnist_train))][:limit],
        "photos": sets.photos()[:limit],
    }
    results = {}
    with Progress(disable=not progress, transient=True) as bar:
        for name, images in named.items():
            task = bar.add_task(name, total=len(images))
            results[name] = measure(images, lambda task=task: bar.advance(task))  # type: ignore[misc]
    path = write_report(out, "wild", results, markdown(results, time.time() - started))
    pictures(results, named, out)
    return path


def main() -> None:
    from codec import data

    print(run(OUT, data.load_mnist("train")[0]).read_text())


if __name__ == "__main__":
    main()
