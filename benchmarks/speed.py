"""Speed: images per second of aec and the classic codecs on MNIST digits, and start-up, ``aec bench --speed``.

Everything runs on one core (one BLAS thread, one process): aec one image per
API call and in batches (``compress_many`` / ``decompress_many``) at effort 0
and the default effort, for a spread of levels; the classic codecs one image
per call (they have no batch API). Start-up is the median wall time of a fresh
``aec compress`` / ``aec decompress`` of one digit against that of
``python -c "import numpy, PIL.Image"``. Writes ``speed.md`` and ``speed.json``.
Every rate is a best of ``REPEATS`` runs, so a busy machine's pauses count less.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import codec
from codec import api, encoder
from codec.search import DEFAULT_EFFORT

from .baselines import Codec, classic_codecs
from .written import write_report

#: Levels measured: the lowest, the default, the highest and two between.
LEVELS = (1, 4, 8, 12, 15)
#: The classic codecs and the setting each is timed at (WebP's and JPEG XL's middle quality).
BASELINES = {"WebP": 75, "JPEG XL": 1.0, "PNG": None, "JPEG": 75}
REPEATS = 2
#: Digits timed unless told otherwise (the default effort codes about 10-20 a second).
COUNT = 200
STARTS = 9
OUT = Path(__file__).resolve().parent / "results"


def _rate(work: Callable[[], Any], count: int) -> float:
    """Images per second of ``work`` (which codes ``count`` images): the best of :data:`REPEATS` runs, each
    without what the encoder remembers from the last (its sets of files: a sweep's saving, not one level's)."""
    best = float("inf")
    for _ in range(REPEATS):
        encoder.forget()
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return count / best


def measure_aec(digits: Sequence[np.ndarray], level: int, effort: int) -> dict[str, Any]:
    """One level at one effort: images/s encoding and decoding, one per call and as one batch."""
    images = list(digits)
    files = api.compress_many(images, level, effort)
    return {
        "codec": "aec",
        "setting": f"level {level}, effort {effort}",
        "bpp": 8 * sum(map(len, files)) / sum(d.size for d in images),
        "encode_one": _rate(lambda: [api.compress(d, level, effort) for d in images], len(images)),
        "decode_one": _rate(lambda: [api.decompress(f) for f in files], len(images)),
        "encode_batch": _rate(lambda: api.compress_many(images, level, effort), len(images)),
        "decode_batch": _rate(lambda: api.decompress_many(files), len(images)),
    }


def measure_baselines(digits: Sequence[np.ndarray]) -> list[dict[str, Any]]:
    """The classic codecs of :data:`BASELINES`, one image per call."""
    rows = []
    for c in classic_codecs():
        if c.name not in BASELINES:
            continue
        setting = BASELINES[c.name]
        files = [c.encode(d, setting) for d in digits]
        rows.append(
            {
                "codec": c.name,
                "setting": c.label(setting),
                "bpp": 8 * sum(map(len, files)) / sum(d.size for d in digits),
                "encode_one": _rate(partial(_encode_all, c, setting, digits), len(digits)),
                "decode_one": _rate(partial(_decode_all, c, files), len(digits)),
            }
        )
    return rows


def _encode_all(c: Codec, setting: Any, images: Sequence[np.ndarray]) -> list[bytes]:
    return [c.encode(image, setting) for image in images]


def _decode_all(c: Codec, files: Sequence[bytes]) -> list[np.ndarray]:
    return [c.decode(f) for f in files]


def _median_start(command: Sequence[str], before: Callable[[], None] = lambda: None) -> float:
    times = []
    for _ in range(STARTS):
        before()
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_start(digit: np.ndarray) -> dict[str, float]:
    """Median wall seconds of a fresh process: the imports baseline, and aec's one-digit commands."""
    from PIL import Image

    aec = [sys.executable, "-m", "codec"]
    with tempfile.TemporaryDirectory() as folder:
        png, coded, out = Path(folder, "d.png"), Path(folder, "d.aec"), Path(folder, "out")
        Image.fromarray(digit).save(png)
        coded.write_bytes(api.compress(digit))

        def clear() -> None:  # each run writes a new output
            for path in (out.with_suffix(".aec"), out.with_suffix(".png")):
                path.unlink(missing_ok=True)

        encode = [str(png), "-o", str(out.with_suffix(".aec"))]
        return {
            "import numpy, PIL.Image": _median_start([sys.executable, "-c", "import numpy, PIL.Image"]),
            "aec compress": _median_start([*aec, "compress", *encode], clear),
            "aec compress -e 0": _median_start([*aec, "compress", "-e", "0", *encode], clear),
            "aec decompress": _median_start(
                [*aec, "decompress", str(coded), "-o", str(out.with_suffix(".png"))], clear
            ),
        }


def _fmt(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:,.0f}"


def markdown(rows: list[dict[str, Any]], start: dict[str, float], count: int) -> str:
    webp = next((r for r in rows if r["codec"] == "WebP"), None)
    lines = [
        f"# Speed (first {count:,} MNIST test digits, one core)",
        "",
        f"aec {codec.__version__}; images per second, best of {REPEATS} runs; one: one image per API call, "
        "batch: `compress_many` / `decompress_many`; x WebP: against WebP q75 (method 6) one per call.",
        "",
        "| codec | setting | bpp | encode one | decode one | encode batch | decode batch "
        "| encode x WebP (one / batch) | decode x WebP (one / batch) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = ""
        if webp is not None:
            enc = [r.get(k) for k in ("encode_one", "encode_batch")]
            dec = [r.get(k) for k in ("decode_one", "decode_batch")]
            ratio = " | ".join(
                " / ".join(f"{v / webp[base]:.2f}x" for v in values if v is not None)
                for values, base in ((enc, "encode_one"), (dec, "decode_one"))
            )
        lines.append(
            f"| {r['codec']} | {r['setting']} | {r['bpp']:.3f} | {_fmt(r.get('encode_one'))} | "
            f"{_fmt(r.get('decode_one'))} | {_fmt(r.get('encode_batch'))} | {_fmt(r.get('decode_batch'))} | {ratio} |"
        )
    base = start["import numpy, PIL.Image"]
    lines += [
        "",
        f"## Start-up (median of {STARTS} fresh processes, one digit)",
        "",
        "| command | seconds | x `import numpy, PIL.Image` |",
        "|---|---|---|",
    ]
    lines += [f"| `{name}` | {seconds:.3f} | {seconds / base:.2f}x |" for name, seconds in start.items()]
    return "\n".join(lines) + "\n"


def run(digits: Sequence[np.ndarray], out: Path = OUT, levels: Sequence[int] = LEVELS, progress: bool = True) -> Path:
    """Measure and write ``speed.md`` and ``speed.json`` to ``out``; returns the markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with threadpool_limits(1):
        api.decompress(api.compress(digits[0]))  # models loaded and caches warm before timing
        for level in levels:
            for effort in sorted({0, DEFAULT_EFFORT}):
                rows.append(measure_aec(digits, level, effort))
                if progress:
                    r = rows[-1]
                    print(
                        f"aec {r['setting']}: encode {r['encode_one']:.0f}/{r['encode_batch']:.0f}, "
                        f"decode {r['decode_one']:.0f}/{r['decode_batch']:.0f} images/s",
                        file=sys.stderr,
                    )
        rows += measure_baselines(list(digits))
    start = measure_start(digits[0])
    result = {"images": len(digits), "rows": rows, "start": start}
    return write_report(out, "speed", result, markdown(rows, start, len(digits)))
