"""Large images: time and peak memory of aec per image size, ``aec bench --large``.

One photo (scikit-image's camera man, a benchmark image that lends no crop to
training) is scaled to 512 ... 4096 pixels a side and coded at the default
level (effort 0) and with the refinement layer at maximum error 2. Each
measurement runs in a fresh process on one BLAS thread, so its peak resident
memory (``ru_maxrss``) is its own. Writes ``benchmarks/results/large.md`` and
``large.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .written import write_report

SIDES = (512, 1024, 2048, 4096)
#: What is measured per size: the default level alone, and refined to this maximum error over it.
MODES: tuple[tuple[str, int | None], ...] = (("level 8", None), ("level 8, max error 2", 2))
OUT = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def measure_one(side: int, max_error: int | None) -> dict[str, Any]:
    """Code and decode the camera man at ``side`` x ``side`` in this process: times, size, PSNR, peak memory."""
    import resource

    import numpy as np
    from PIL import Image
    from skimage import data as samples

    from codec import api
    from codec.metrics import psnr

    image = np.asarray(Image.fromarray(samples.camera()).resize((side, side), Image.Resampling.BICUBIC))
    start = time.perf_counter()
    data = api.compress(image, quality=8, effort=0, max_error=max_error)
    coded = time.perf_counter()
    back = api.decompress(data)
    decoded = time.perf_counter()
    return {
        "side": side,
        "max_error": max_error,
        "bytes": len(data),
        "bpp": 8 * len(data) / image.size,
        "psnr": min(float(psnr(image, back)), 99.0),
        "largest_error": int(np.abs(back.astype(int) - image).max()),
        "encode_s": coded - start,
        "decode_s": decoded - coded,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _in_fresh_process(side: int, max_error: int | None) -> dict[str, Any]:
    code = f"import json, benchmarks.large as m; print(json.dumps(m.measure_one({side}, {max_error})))"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(out: Path = OUT, sides: tuple[int, ...] = SIDES, progress: bool = True) -> Path:
    """Measure every size and mode; write large.md and large.json to ``out``; returns the table's path."""
    from rich.progress import Progress

    rows = []
    start = time.perf_counter()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("large images", total=len(sides) * len(MODES))
        for side in sides:
            for name, max_error in MODES:
                rows.append({"mode": name, **_in_fresh_process(side, max_error)})
                bar.advance(task)
    return write_report(out, "large", rows, table(rows, time.perf_counter() - start))


def table(rows: list[dict[str, Any]], seconds: float) -> str:
    """The markdown report: one row per size and mode, with time per megapixel to show the growth."""
    lines = [
        "# Large images (`aec bench --large`)",
        "",
        "The camera man scaled to each size, coded by the Python API at level 8 (effort 0), alone and refined to",
        "maximum error 2; each in a fresh process on one core. Peak memory is the process's resident maximum",
        f"(interpreter, numpy and the image included). Measured in {seconds:.0f} s.",
        "",
        "| size | mode | bpp | PSNR | encode s | decode s | encode s/MP | decode s/MP | peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mp = r["side"] ** 2 / 1e6
        lines.append(
            f"| {r['side']}x{r['side']} | {r['mode']} | {r['bpp']:.3f} | {r['psnr']:.2f} | {r['encode_s']:.1f} | "
            f"{r['decode_s']:.1f} | {r['encode_s'] / mp:.1f} | {r['decode_s'] / mp:.1f} | {r['peak_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run().read_text())
