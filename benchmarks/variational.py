"""The variational model against the deterministic ones: ``python -m benchmarks.variational [--limit N]``.

Codes the MNIST test digits with the variational model (``aec train --model
vae-4``: its posterior means rounded and coded with its fitted tables) and with
the model of each of the lowest levels the same way (each model's own tables,
effort 0: no choice of model, no search), by :func:`codec.evaluate.measure_model`.
Writes ``variational.md`` and ``variational.json``: each model's rate and
quality, and the deterministic models' PSNR at the variational model's rate
(interpolated between the two levels around it).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from codec import data, models, sample
from codec.evaluate import measure_model

from .written import write_report

OUT = Path(__file__).resolve().parent / "results"
#: The levels whose models it is compared with: the one-vector models (its kind) and the first grid ones.
LEVELS = (1, 2, 3, 4, 5, 6, 7, 8)


def run(limit: int | None = None, out: Path = OUT) -> Path:
    """Measure and write the table; returns the markdown's path."""
    images = data.load_mnist("test")[0][:limit]
    vae = sample.load()
    rows: list[dict[str, Any]] = [{"model": "vae-4 (variational)", **measure_model(images, vae).to_dict()}]
    for level in LEVELS:
        model = models.load_model(level)
        name = f"level {level}: {model.metadata.get('trained_model', '?')}, step {model.metadata.get('step', 1.0):g}"
        rows.append({"model": name, **measure_model(images, model).to_dict()})
    points = sorted((row["bpp"], row["psnr"]) for row in rows[1:])
    rate = rows[0]["bpp"]
    at_rate = float(np.interp(rate, [p[0] for p in points], [p[1] for p in points]))
    result = {"images": len(images), "rows": rows, "deterministic_psnr_at_vae_rate": at_rate}
    return write_report(out, "variational", result, markdown(result))


def markdown(result: dict[str, Any]) -> str:
    """The table of ``variational.md``."""
    lines = [
        f"# A variational model against the deterministic ones ({result['images']:,} MNIST test digits)",
        "",
        "Each model codes every digit with its own tables at effort 0 (rounded latents: no choice of model, no",
        "search); whole files (a 5-byte container). `python -m benchmarks.variational`.",
        "",
        "| model | bpp | PSNR dB | SSIM |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['model']} | {r['bpp']:.3f} | {r['psnr']:.2f} | {r['ssim']:.3f} |" for r in result["rows"]]
    vae = result["rows"][0]
    lines += [
        "",
        f"At the variational model's {vae['bpp']:.3f} bpp the deterministic models give "
        f"{result['deterministic_psnr_at_vae_rate']:.2f} dB (interpolated between levels), against its "
        f"{vae['psnr']:.2f} dB: {result['deterministic_psnr_at_vae_rate'] - vae['psnr']:+.2f} dB for them.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="the first N test digits only")
    print(run(parser.parse_args().limit).read_text())


if __name__ == "__main__":
    main()
