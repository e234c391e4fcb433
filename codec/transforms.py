"""The numpy runtime: executes a frozen network graph (no torch).

A frozen graph is a list of operations, each a small dict::

    {"op": "conv", "name": "analysis.0", "stride": 2, "padding": 2}
    {"op": "relu"}
    {"op": "gdn", "name": "synthesis.3", "inverse": true}
    {"op": "pixel_shuffle", "factor": 2}
    {"op": "scale", "factor": 0.8}
    {"op": "sigmoid"}

with the convolution weights held in a name -> array mapping (torch's layout,
(O, C, kh, kw)). The graph runs channels-last internally: a convolution is one
matrix product over sliding windows (im2col), each window row copied as one
contiguous run of ``kw * C`` values, done in blocks of images or output rows of
about :data:`BLOCK_BYTES` so that the copy stays small for any image size. A
layer with far fewer outputs than inputs multiplies first and sums the taps'
shifted products instead.

The matrix products run on one BLAS thread: OpenBLAS splits a product
differently for another thread count and rounds differently, which would make
the encoder's latents (and the decoded pixels) depend on the machine's load and
on ``--jobs``. Parallelism comes from worker processes instead.

A large image runs through a graph in horizontal strips (:func:`run_graph_in_strips`),
each with the rows of context its receptive field needs, so memory stays bounded
whatever the image's size and the work grows linearly with its pixels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided
from threadpoolctl import ThreadpoolController

from . import progress

Graph = Sequence[Mapping[str, Any]]

#: About the memory one block of a convolution's windows takes: blocks about the size of a
#: cache-friendly matrix product (4 MiB ran 1.1-1.2x faster than 1 or 16 MiB, 1.8x faster than 64 MiB
#: with the copies of aec 0.11, on the synthesis of 1,000 digits).
BLOCK_BYTES = 4 << 20


def conv2d_nhwc(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Cross-correlation of channels-last ``x`` (N, H, W, C) with ``weight`` (O, C, kh, kw): (N, Ho, Wo, O)."""
    n, _, _, c = x.shape
    out_c, in_c, kh, kw = weight.shape
    if in_c != c:
        raise ValueError(f"conv expects {in_c} input channels, got {c}")
    if padding:  # zeros around the image: a copy into a zeroed buffer, cheaper than np.pad's general machinery
        padded = np.zeros((n, x.shape[1] + 2 * padding, x.shape[2] + 2 * padding, c), dtype=x.dtype)
        padded[:, padding:-padding, padding:-padding] = x
        x = padded
    x = np.ascontiguousarray(x)
    hp, wp = x.shape[1], x.shape[2]
    ho, wo = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    out = np.empty((n, ho, wo, out_c), dtype=x.dtype)
    few_outputs = stride == 1 and 2 * out_c <= c
    row_bytes = (wp * out_c if few_outputs else wo * c) * kh * kw * x.dtype.itemsize
    for images, rows in _blocks(n, ho, row_bytes):
        source = x[images, rows.start * stride : (rows.stop - 1) * stride + kh]
        if few_outputs:
            _conv_by_taps(source, weight, out[images, rows])
        else:
            _conv_by_windows(source, weight, stride, out[images, rows])
    out += bias
    return out


def _blocks(images: int, rows: int, row_bytes: int) -> list[tuple[slice, slice]]:
    """(images, output rows) blocks of a convolution's work of about :data:`BLOCK_BYTES` each:
    whole images while one fits, else one image's rows a block at a time."""
    per_block = max(1, BLOCK_BYTES // max(1, row_bytes))
    if per_block >= rows:
        step = per_block // rows
        return [(slice(i, min(images, i + step)), slice(0, rows)) for i in range(0, images, step)]
    return [
        (slice(i, i + 1), slice(r, min(rows, r + per_block))) for i in range(images) for r in range(0, rows, per_block)
    ]


def _conv_by_windows(x: np.ndarray, weight: np.ndarray, stride: int, out: np.ndarray) -> None:
    """``out`` (N, Ho, Wo, O) = the windows of ``x`` (N, H, W, C) times the weights, as one matrix product.

    Each of a window's ``kh`` rows is ``kw * C`` contiguous values of ``x``, so the
    window matrix is one strided copy of such runs.
    """
    n, ho, wo, out_c = out.shape
    c, kh, kw = weight.shape[1:]
    s0, s1, s2, item = x.strides
    windows = np.empty((n, ho, wo, kh, kw * c), dtype=x.dtype)
    windows[...] = as_strided(x, windows.shape, (s0, s1 * stride, s2 * stride, s1, item))
    matrix = weight.transpose(2, 3, 1, 0).reshape(-1, out_c)  # rows in (kh, kw, C) order
    out[...] = (windows.reshape(n * ho * wo, -1) @ matrix).reshape(out.shape)


def _conv_by_taps(x: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
    """``out`` (N, Ho, Wo, O) of a stride-1 convolution with far fewer outputs than inputs (the last layer):
    every pixel times every tap's weights in one product, then the taps' shifted results summed."""
    n, ho, wo, out_c = out.shape
    c, kh, kw = weight.shape[1:]
    taps = weight.transpose(1, 2, 3, 0).reshape(c, kh * kw * out_c)
    products = (x.reshape(-1, c) @ taps).reshape(n, x.shape[1], x.shape[2], kh, kw, out_c)
    out[...] = 0
    for dy in range(kh):
        for dx in range(kw):
            out += products[:, dy : dy + ho, dx : dx + wo, dy, dx]


def pixel_shuffle_nhwc(x: np.ndarray, factor: int) -> np.ndarray:
    """Channels-last PixelShuffle: (N, H, W, C*r*r) -> (N, H*r, W*r, C), channel order as in torch."""
    n, h, w, c = x.shape
    r = factor
    x = x.reshape(n, h, w, c // (r * r), r, r).transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(n, h * r, w * r, c // (r * r))


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """2-D cross-correlation of ``x`` (N, C, H, W), as torch's Conv2d."""
    return conv2d_nhwc(x.transpose(0, 2, 3, 1), weight, bias, stride, padding).transpose(0, 3, 1, 2)


def pixel_shuffle(x: np.ndarray, factor: int) -> np.ndarray:
    """Rearrange (N, C*r*r, H, W) into (N, C, H*r, W*r), as torch's PixelShuffle."""
    return pixel_shuffle_nhwc(x.transpose(0, 2, 3, 1), factor).transpose(0, 3, 1, 2)


def gdn_nhwc(x: np.ndarray, beta: np.ndarray, gamma: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Generalized divisive normalization of channels-last ``x``: ``x / sqrt(beta + x**2 @ gamma.T)``.

    ``inverse`` multiplies by the root instead (IGDN).
    """
    n, h, w, c = x.shape
    norm = np.sqrt((x * x).reshape(-1, c) @ gamma.T + beta).reshape(n, h, w, c)
    return x * norm if inverse else x / norm


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, stable for large negative inputs."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def run_graph(graph: Graph, params: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Apply ``graph`` to ``x`` (N, C, H, W) in ``x``'s float dtype, on one BLAS thread."""
    with _blas().limit(limits=1, user_api="blas"):
        return _run(graph, params, x)


def _run(graph: Graph, params: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    dtype = x.dtype
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    for layer in graph:
        op = layer["op"]
        if op == "conv":
            name = layer["name"]
            x = conv2d_nhwc(
                x,
                params[f"{name}.weight"].astype(dtype, copy=False),
                params[f"{name}.bias"].astype(dtype, copy=False),
                stride=int(layer.get("stride", 1)),
                padding=int(layer.get("padding", 0)),
            )
        elif op == "relu":
            x = np.maximum(x, 0, out=x)
        elif op == "gdn":
            name = layer["name"]
            x = gdn_nhwc(
                x,
                params[f"{name}.beta"].astype(dtype, copy=False),
                params[f"{name}.gamma"].astype(dtype, copy=False),
                inverse=bool(layer.get("inverse", False)),
            )
        elif op == "pixel_shuffle":
            x = pixel_shuffle_nhwc(x, int(layer["factor"]))
        elif op == "scale":
            x = x * dtype.type(layer["factor"])
        elif op == "sigmoid":
            x = sigmoid(x)
        else:
            raise ValueError(f"unknown operation {op!r} in frozen graph")
    return x.transpose(0, 3, 1, 2)


def reach(graph: Graph, params: Mapping[str, np.ndarray]) -> Fraction:
    """Input rows of context each side that an output row depends on: each convolution reaches half its
    kernel at its input's resolution (a stride coarsens the rows after it, a pixel shuffle refines them)."""
    rows, scale = Fraction(0), Fraction(1)  # scale: input rows per row of the current resolution
    for layer in graph:
        if layer["op"] == "conv":
            rows += int(params[f"{layer['name']}.weight"].shape[2]) // 2 * scale
            scale *= int(layer.get("stride", 1))
        elif layer["op"] == "pixel_shuffle":
            scale /= int(layer["factor"])
    return rows


def run_graph_in_strips(
    graph: Graph,
    params: Mapping[str, np.ndarray],
    x: np.ndarray,
    rows_in: int,
    rows_out: int,
    strip: int,
    stage: str,
) -> np.ndarray:
    """:func:`run_graph` on ``x`` (N, C, H, W) a strip at a time; the same sums, in bounded memory.

    The graph maps each *unit* of ``rows_in`` input rows to ``rows_out`` output
    rows (a latent row and its pixel rows). Each strip of ``strip`` units runs
    with the units of context either side that cover :func:`reach`, whose outputs
    are dropped, so no output row sees a strip's edge. One strip runs the whole input. The result equals the
    whole input's to within float rounding: a BLAS may round a row differently by where it falls in its tiles.
    """
    units = x.shape[2] // rows_in
    if units <= strip:
        return run_graph(graph, params, x)
    context = math.ceil(reach(graph, params) / rows_in)
    out: np.ndarray | None = None
    for first in range(0, units, strip):
        last = min(units, first + strip)
        low, high = max(0, first - context), min(units, last + context)
        part = run_graph(graph, params, x[:, :, low * rows_in : high * rows_in])
        if out is None:
            out = np.empty((part.shape[0], part.shape[1], units * rows_out, part.shape[3]), part.dtype)
        out[:, :, first * rows_out : last * rows_out] = part[:, :, (first - low) * rows_out : (last - low) * rows_out]
        progress.report(stage, last, units)
    assert out is not None
    return out
