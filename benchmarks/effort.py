"""What the encoder's search is worth: every shipped level at each ``--effort``.

``python -m benchmarks.effort [--limit N] [--jobs J]`` codes the first N MNIST
test digits at every level with each effort (0: rounded latents, the encoder
before the search) and writes ``benchmarks/results/effort.md``: per effort the
BD-rate against effort 0 (whole files, mean PSNR, and payload, PSNR of the mean
MSE), the payload at the issue's 21.5 dB, the encoding speed and how many
digits gain PSNR with every level, then every level.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from codec import data
from codec.search import DEFAULT_EFFORT, EFFORTS

from . import rd, suite
from .wild import MONOTONE_SLACK


def rising(measured: list[suite.Row]) -> tuple[float, float]:
    """The share of images whose PSNR never falls by more than :data:`MONOTONE_SLACK` from one level to the next
    (rows in level order), and the largest fall of any image (dB, 0 when none falls)."""
    steps = np.diff(np.array([r.per_image_psnr for r in measured]), axis=0)  # (levels - 1, images)
    return float(np.mean((steps >= -MONOTONE_SLACK).all(axis=0))), float(max(0.0, -steps.min()))


def summary(rows: dict[int, list[suite.Row]]) -> list[dict[str, float | None]]:
    """Per effort: BD-rates against effort 0, payload at the target, mean encoding speed."""
    anchor = rows[0]
    out = []
    for effort, measured in rows.items():
        share, fall = rising(measured)
        whole = ([r.bpp for r in measured], [r.psnr or 0.0 for r in measured])
        payload = ([r.payload_bpp for r in measured], [r.psnr_of_mean_mse or 0.0 for r in measured])
        out.append(
            {
                "effort": effort,
                "bd_whole": rd.bd_rate(([r.bpp for r in anchor], [r.psnr or 0.0 for r in anchor]), whole),
                "bd_payload": rd.bd_rate(
                    ([r.payload_bpp for r in anchor], [r.psnr_of_mean_mse or 0.0 for r in anchor]), payload
                ),
                "payload_at_target": rd.rate_at(*payload, suite.PAYLOAD_TARGET),
                "encode_ips": len(measured) / sum(1 / r.encode_ips for r in measured),
                "rising": share,
                "largest_fall": fall,
            }
        )
    return out


def markdown(rows: dict[int, list[suite.Row]], images: int) -> str:
    lines = [
        f"# The encoder's search ({images:,} MNIST test digits, every level)",
        "",
        "| effort | rounds x latents tried | BD-rate vs effort 0, whole files | BD-rate, payload "
        f"| payload bpp @ {suite.PAYLOAD_TARGET:g} dB (PSNR of mean MSE) | encode img/s (harmonic mean over levels) "
        f"| PSNR rising with the level (slack {MONOTONE_SLACK:g} dB) | largest fall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summary(rows):
        effort = int(s["effort"] or 0)
        e = EFFORTS[effort]
        lines.append(
            f"| {effort}{' (default)' if effort == DEFAULT_EFFORT else ''} | {e.rounds} x {e.candidates} "
            f"| {_pct(s['bd_whole'])} | {_pct(s['bd_payload'])} | {_num(s['payload_at_target'])} "
            f"| {s['encode_ips']:,.0f} | {100 * (s['rising'] or 0):.0f} % | {s['largest_fall'] or 0:.2f} dB |"
        )
    lines += ["", "| level | " + " | ".join(f"effort {e}: bpp / PSNR dB / SSIM" for e in rows) + " |"]
    lines.append("|---|" + "---|" * len(rows))
    for i, row in enumerate(rows[0]):
        cells = [f"{r[i].bpp:.3f} / {r[i].psnr or 0:.2f} / {r[i].ssim:.3f}" for r in rows.values()]
        lines.append(f"| {row.setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f} %"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=1, help="levels measured at once, one process each")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/effort.md"))
    args = parser.parse_args()
    images = list(data.load_mnist("test")[0][: args.limit])
    rows = {effort: suite.measure_aec(images, effort, args.jobs) for effort in sorted(EFFORTS)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(rows, len(images)))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
