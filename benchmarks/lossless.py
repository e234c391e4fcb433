"""Lossless and near-lossless, ``aec bench --lossless``: every bit back, beside the classic lossless codecs.

On MNIST test digits:

- **per image**: mean bits per pixel of whole files (PNG, WebP lossless, JPEG XL
  lossless at effort 7, zlib -9 of the raw pixels, ``aec --lossless``), each
  checked to decode to the exact pixels;
- **the whole set as one file**: gzip -9 and xz -9e of the IDX file, and the
  lossless ``.aecs`` archive (``aec pack --lossless``);
- **decoding speed** on one core (images/s): aec's batch API and archive, the
  others one image per call;
- **near-lossless** ``--max-error K``: bpp and PSNR, every pixel's error checked,
  placed on the RD plot beside the lossy curves of ``results.json``.

On the sets that are not MNIST (:mod:`benchmarks.sets`): bpp per set against
JPEG XL lossless, WebP lossless and PNG. Writes ``lossless.md``,
``lossless.json`` and ``lossless_rd.png``.
"""

from __future__ import annotations

import gzip
import json
import lzma
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from codec import api, archive, encoder, lossless
from codec.data import write_idx
from codec.images import prepare
from codec.metrics import psnr

from .baselines import Codec, classic_codecs
from .written import write_report

OUT = Path(__file__).resolve().parent / "results"
#: Maximum errors of the near-lossless points, over this level's autoencoder (or none, whichever is smaller).
MAX_ERRORS = (1, 2, 4, 8)
NEAR_LEVEL = 8
#: Digits the near-lossless points and the decoding speeds are measured on (the first ones).
NEAR_COUNT = 1000
SPEED_COUNT = 2000
#: The issue's targets (MNIST test digits, bits per pixel): per image, and the whole set in one archive.
TARGET_FILE_BPP, TARGET_ARCHIVE_BPP = 1.25, 1.10


def _jxl_lossless(image: np.ndarray, _: Any) -> bytes:
    import imagecodecs

    return bytes(imagecodecs.jpegxl_encode(image, lossless=True, effort=7))


def lossless_codecs() -> list[Codec]:
    """The classic lossless codecs available here (PNG, WebP lossless, JPEG XL lossless), and zlib -9 of the raw
    pixels (with the image's size in 4 bytes, as a file needs it)."""
    out = [c for c in classic_codecs() if c.lossless]
    jxl = next((c for c in classic_codecs() if c.name == "JPEG XL"), None)
    if jxl is not None:
        out.append(Codec("JPEG XL lossless", jxl.library, [None], _jxl_lossless, jxl.decode, True))

    def deflate(image: np.ndarray, _: Any) -> bytes:
        size = image.shape[0].to_bytes(2, "little") + image.shape[1].to_bytes(2, "little")
        return size + zlib.compress(image.tobytes(), 9)

    def inflate(data: bytes) -> np.ndarray:
        shape = int.from_bytes(data[:2], "little"), int.from_bytes(data[2:4], "little")
        return np.frombuffer(zlib.decompress(data[4:]), np.uint8).reshape(shape)

    out.append(Codec("zlib -9", f"zlib {zlib.ZLIB_VERSION}", [None], deflate, inflate, True))
    return out


def _rate(work: Callable[[], Any], count: int) -> float:
    start = time.perf_counter()
    work()
    return count / (time.perf_counter() - start)


def _bpp(files: Sequence[bytes], images: Sequence[np.ndarray]) -> float:
    """Mean of the images' bits per pixel."""
    return float(np.mean([8 * len(f) / i.size for f, i in zip(files, images)]))


def per_image(images: Sequence[np.ndarray], speed_count: int) -> list[dict[str, Any]]:
    """Every lossless codec's per-image files: mean bpp (checked exact) and decoding images/s."""
    rows = []
    for c in lossless_codecs():
        files = [c.encode(image, None) for image in images]
        assert all(np.array_equal(c.decode(f), i) for f, i in zip(files, images)), f"{c.name} is not lossless"
        head = files[:speed_count]
        rate = _rate(lambda c=c, head=head: [c.decode(f) for f in head], len(head))  # type: ignore[misc]
        rows.append({"codec": c.name, "library": c.library, "bpp": _bpp(files, images), "decode_per_s": rate})
    files = api.compress_many(list(images), max_error=0)
    assert all(np.array_equal(a, b) for a, b in zip(api.decompress_many(files), images)), "aec is not lossless"
    versions = [api.inspect(f).header.version for f in files]
    head = files[:speed_count]
    rows.append(
        {
            "codec": "aec --lossless",
            "library": f"aec, lossless model {lossless.load().model_id:03x}",
            "bpp": _bpp(files, images),
            "decode_per_s": _rate(lambda: api.decompress_many(head), len(head)),
            "pixel_model_share": versions.count(7) / len(versions),
        }
    )
    return rows


def whole_set(images: np.ndarray, speed_count: int) -> list[dict[str, Any]]:
    """The whole set as one file: gzip -9 and xz -9e of its IDX file, and aec's lossless archive."""
    idx = write_idx(images)
    pixels = images.size
    packed = archive.pack(list(images), quality=archive.LOSSLESS)
    opened = archive.open_archive(packed)
    assert all(np.array_equal(a, b) for a, b in zip(opened.decode_all(), images)), "the archive is not lossless"
    head = archive.open_archive(archive.pack(list(images[:speed_count]), quality=archive.LOSSLESS))
    return [
        {"codec": "gzip -9 (IDX file)", "bpp": 8 * len(gzip.compress(idx, 9)) / pixels},
        {"codec": "xz -9e (IDX file)", "bpp": 8 * len(lzma.compress(idx, preset=9 | lzma.PRESET_EXTREME)) / pixels},
        {
            "codec": "aec pack --lossless",
            "library": f"aec, block model {opened.model_id:03x}",
            "bpp": 8 * len(packed) / pixels,
            "decode_per_s": _rate(head.decode_all, len(head)),
        },
    ]


def near_lossless(images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
    """``--max-error K`` over level :data:`NEAR_LEVEL` at effort 0 (or no autoencoder): bpp, PSNR, largest error."""
    prepared = [prepare(image) for image in images]
    bases = [encoder.within_bases(item, max(MAX_ERRORS), NEAR_LEVEL, 0) for item in prepared]
    rows = []
    for max_error in MAX_ERRORS:
        made = [encoder.encode_within(item, max_error, NEAR_LEVEL, 0, b) for item, b in zip(prepared, bases)]
        decoded = api.decompress_many([data for data, _ in made])
        worst = max(int(np.abs(d.astype(int) - i).max()) for d, i in zip(decoded, images))
        assert worst <= max_error, f"--max-error {max_error}: a pixel is {worst} off"
        rows.append(
            {
                "max_error": max_error,
                "bpp": _bpp([data for data, _ in made], images),
                "psnr": float(np.mean([min(psnr(i, d), 99.0) for i, d in zip(images, decoded)])),
                "largest_error": worst,
            }
        )
    return rows


def sets_rows(named: dict[str, list[np.ndarray]]) -> list[dict[str, Any]]:
    """Per set that is not MNIST: mean bpp of aec --lossless and each classic lossless codec, and where aec wins."""
    codecs = [c for c in lossless_codecs() if c.name != "zlib -9"]
    rows = []
    for name, images in named.items():
        ours = api.compress_many(images, max_error=0)
        assert all(np.array_equal(a, b) for a, b in zip(api.decompress_many(ours), images))
        theirs = {c.name: [c.encode(image, None) for image in images] for c in codecs}
        jxl = theirs.get("JPEG XL lossless")
        rows.append(
            {
                "set": name,
                "images": len(images),
                "aec --lossless": _bpp(ours, images),
                **{n: _bpp(files, images) for n, files in theirs.items()},
                "aec_at_most_jxl": None if jxl is None else sum(len(a) <= len(b) for a, b in zip(ours, jxl)),
                "pixel_model_share": float(np.mean([api.inspect(f).header.pixel_model for f in ours])),
            }
        )
    return rows


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    count = result["images"]
    lines = [
        "# Lossless and near-lossless",
        "",
        f"MNIST test digits ({count:,}); decoding speed on one core over the first "
        f"{min(count, SPEED_COUNT):,} (aec: the batch API). Every file was checked to decode exactly.",
        "",
        "| per-image files | bpp | x JPEG XL lossless | decoded/s |",
        "|---|---|---|---|",
    ]
    jxl = next((r["bpp"] for r in result["per_image"] if r["codec"] == "JPEG XL lossless"), None)
    for r in sorted(result["per_image"], key=lambda r: r["bpp"]):
        ratio = _fmt(r["bpp"] / jxl, 2) if jxl else "-"
        lines.append(f"| {r['codec']} | {r['bpp']:.3f} | {ratio} | {_fmt(r.get('decode_per_s'), 0)} |")
    lines += ["", "| the whole set in one file | bpp | decoded/s |", "|---|---|---|"]
    for r in result["whole_set"]:
        lines.append(f"| {r['codec']} | {r['bpp']:.3f} | {_fmt(r.get('decode_per_s'), 0)} |")
    ours = next(r for r in result["per_image"] if r["codec"] == "aec --lossless")
    packed = next(r for r in result["whole_set"] if r["codec"] == "aec pack --lossless")
    lines += [
        "",
        f"Targets: per-image files at most {TARGET_FILE_BPP} bpp: {ours['bpp']:.3f} "
        f"({'met' if ours['bpp'] <= TARGET_FILE_BPP else 'not met'}); the archive at most {TARGET_ARCHIVE_BPP} bpp: "
        f"{packed['bpp']:.3f} ({'met' if packed['bpp'] <= TARGET_ARCHIVE_BPP else 'not met'}). "
        f"{ours['pixel_model_share']:.1%} of the per-image files are the pixel model's (format version 7), the "
        "rest the predictive coder's (version 8), whichever was smaller.",
        "",
        f"## Near-lossless (`--max-error K`, over level {NEAR_LEVEL} at effort 0 or no autoencoder), "
        f"first {result['near_images']:,} digits",
        "",
        "| K | bpp | PSNR (dB) | largest error seen |",
        "|---|---|---|---|",
    ]
    for r in result["near_lossless"]:
        lines.append(f"| {r['max_error']} | {r['bpp']:.3f} | {r['psnr']:.2f} | {r['largest_error']} |")
    names = [k for k in result["sets"][0] if k not in {"set", "images", "aec_at_most_jxl", "pixel_model_share"}]
    lines += [
        "",
        "## Sets that are not MNIST (mean bpp per image)",
        "",
        "| set | images | " + " | ".join(names) + " | aec <= JPEG XL lossless | pixel model's files |",
        "|---|---|" + "---|" * len(names) + "---|---|",
    ]
    for r in result["sets"]:
        cells = " | ".join(f"{r[n]:.3f}" for n in names)
        lines.append(
            f"| {r['set']} | {r['images']} | {cells} | {r['aec_at_most_jxl']} of {r['images']} | "
            f"{r['pixel_model_share']:.0%} |"
        )
    verdicts = [
        f"{r['set']} {r['aec --lossless']:.3f} against {r['JPEG XL lossless']:.3f} "
        f"({'met' if r['aec --lossless'] <= r['JPEG XL lossless'] else 'not met'})"
        for r in result["sets"]
        if "JPEG XL lossless" in r
    ]
    if verdicts:
        lines += ["", "Target: per set, at most JPEG XL lossless's mean: " + "; ".join(verdicts) + "."]
    lines += ["", f"Measured in {result['seconds']:.0f} s. Near-lossless points on the RD plot: lossless_rd.png.", ""]
    return "\n".join(lines)


def rd_picture(result: dict[str, Any], out: Path) -> Path | None:
    """The near-lossless points and aec's lossless rate over the lossy curves of ``results.json`` (when there)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    lossy = out / "results.json"
    if lossy.exists():
        rows = json.loads(lossy.read_text())["rows"]
        for name in ("aec", "WebP", "JPEG XL", "AVIF"):
            points = sorted((r["bpp"], r["psnr"]) for r in rows if r["codec"] == name and r["psnr"] is not None)
            if points:
                ax.plot(*zip(*points), marker="o", markersize=3, label=f"{name} (lossy)")
    near = result["near_lossless"]
    ax.plot([r["bpp"] for r in near], [r["psnr"] for r in near], marker="s", color="black", label="aec --max-error K")
    for r in near:
        ax.annotate(
            f"K={r['max_error']}", (r["bpp"], r["psnr"]), fontsize=7, xytext=(4, -10), textcoords="offset points"
        )
    for r in result["per_image"]:
        if r["codec"] in {"aec --lossless", "JPEG XL lossless", "WebP lossless"}:
            ax.axvline(r["bpp"], linestyle=":", color="grey", linewidth=1)
            ax.text(r["bpp"], 0.02, f" {r['codec']}", rotation=90, transform=ax.get_xaxis_transform(), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel (whole file, log scale)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("MNIST test digits: lossy, near-lossless and lossless")
    fig.tight_layout()
    path = out / "lossless_rd.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def run(
    digits: np.ndarray, named: dict[str, list[np.ndarray]], out: Path = OUT, progress: Callable[[str], None] = print
) -> Path:
    """Measure everything on one core and write lossless.md, lossless.json and lossless_rd.png; returns the md."""
    started = time.time()
    with threadpool_limits(1):
        progress(f"per-image files of {len(digits):,} digits")
        result: dict[str, Any] = {"images": len(digits), "per_image": per_image(list(digits), SPEED_COUNT)}
        progress("the whole set in one file")
        result["whole_set"] = whole_set(digits, SPEED_COUNT)
        progress(f"near-lossless on {min(len(digits), NEAR_COUNT):,} digits")
        result["near_images"] = min(len(digits), NEAR_COUNT)
        result["near_lossless"] = near_lossless(list(digits[:NEAR_COUNT]))
        progress("the sets that are not MNIST")
        result["sets"] = sets_rows(named)
    result["seconds"] = time.time() - started
    path = write_report(out, "lossless", result, markdown(result))
    rd_picture(result, out)
    return path


def benchmark_sets(mnist_train: np.ndarray, limit: int | None = None) -> dict[str, list[np.ndarray]]:
    """The sets that are not MNIST (:mod:`benchmarks.sets`), the first ``limit`` images of each."""
    from . import sets

    return {"digits (not MNIST)": sets.digits(mnist_train)[:limit], "photos": [i for _, i in sets.photos()][:limit]}
