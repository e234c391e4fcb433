"""Ablations of the entropy-coding choices, measured on the shipped levels.

``python -m benchmarks.ablation [--limit N]`` codes the MNIST test digits' latents
of every level five ways and writes ``benchmarks/results/ablation.md``:

- shipped: the mixture prior (per image one of the level's table sets, each
  with a table per channel and position, its selector coded first),
  constriction's range coder, stream cut to the bytes the decoder needs (format 3);
- one table set: the positional prior the network was trained with, no selector (format 2);
- the range coder's whole final words, only trailing zero bytes dropped (format 1);
- stationary tables (per channel only, as a factorized prior would), range coder;
- the shipped tables with constriction's ANS coder (its words' trailing zero bytes dropped).

The training-length ablation (8 against 24 epochs) is measured with the
training command itself and recorded in the same file by hand, with the commands.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import constriction
import numpy as np

from codec import coder, data, models
from codec.coder import Segment


def _whole_words(symbols: np.ndarray, segments: list[Segment]) -> int:
    """Bytes of the range coder's full output with up to three trailing zero bytes dropped (format 1)."""
    raw = coder.range_encode(symbols, segments).astype("<u4").tobytes()
    cut = 0
    while cut < 3 and len(raw) > cut and raw[len(raw) - 1 - cut] == 0:
        cut += 1
    return len(raw) - cut


def _ans(symbols: np.ndarray, segments: list[Segment]) -> int:
    """Bytes of the same symbols coded with constriction's ANS coder, trailing zero bytes dropped."""
    ans = constriction.stream.stack.AnsCoder()
    start = len(symbols)
    for count, freqs in reversed(segments):
        model, args = coder._model(freqs)
        ans.encode_reverse(symbols[start - count : start], model, *args)
        start -= count
    raw = ans.get_compressed().astype("<u4").tobytes()
    return len(raw.rstrip(b"\0")) if raw else 0  # rstrip may cut more than 3 bytes: a lower bound


def measure(images: np.ndarray) -> list[dict[str, float]]:
    rows = []
    pixels = images.shape[1] * images.shape[2]
    for level in models.available_levels():
        model = models.load_model(level)
        latents = np.concatenate(
            [model.analyse(images[i : i + 512] / np.float32(255)) for i in range(0, len(images), 512)]
        )
        symbols = model.prior.to_symbols(latents)
        streams = model.prior.streams(symbols)
        symbols = symbols.reshape(len(symbols), -1)
        gh, gw = latents.shape[-2:]
        layout = model.prior.layout(gh, gw)
        shipped = [coder.segments_of(layout, int(s[0])) for s in streams]
        one_set = model.prior.set_segments(0)
        stationary = [(gh * gw, row) for row in model.prior.stationary]
        sizes = {
            "shipped": [len(coder.encode(s, layout)) for s in streams],
            "one_set": [len(coder.encode(s, one_set)) for s in symbols],
            "whole_words": [_whole_words(s, seg) for s, seg in zip(streams, shipped)],
            "stationary": [len(coder.encode(s, stationary)) for s in symbols],
            "ans": [_ans(s, seg) for s, seg in zip(streams, shipped)],
        }
        rows.append({"level": level} | {k: 8 * float(np.mean(v)) / pixels for k, v in sizes.items()})
    return rows


def markdown(rows: list[dict[str, float]], images: int) -> str:
    lines = [
        f"# Ablations ({images:,} MNIST test digits, payload bpp: entropy-coded latents alone)",
        "",
        "| level | shipped: table sets, range coder, cut stream | one table set (format 2) "
        "| whole final words (format 1) | stationary (per-channel) tables | ANS coder instead of range |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        one_set = (r["one_set"] / r["shipped"] - 1) * 100
        whole = (r["whole_words"] / r["shipped"] - 1) * 100
        stationary = (r["stationary"] / r["shipped"] - 1) * 100
        ans = (r["ans"] / r["shipped"] - 1) * 100
        lines.append(
            f"| {int(r['level'])} | {r['shipped']:.4f} | {r['one_set']:.4f} ({one_set:+.1f} %) "
            f"| {r['whole_words']:.4f} ({whole:+.1f} %) "
            f"| {r['stationary']:.4f} ({stationary:+.0f} %) | {r['ans']:.4f} ({ans:+.1f} %) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ablation.md"))
    args = parser.parse_args()
    images = data.load_mnist("test")[0][: args.limit]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(measure(images), len(images)))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
