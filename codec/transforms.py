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
matrix product over sliding windows (im2col) whose rows are contiguous runs of
channels, done in blocks of output rows so that the window copy stays under
:data:`BLOCK_BYTES` for any image size.

The matrix products run on one BLAS thread: OpenBLAS splits a product
differently for another thread count and rounds differently, which would make
the encoder's latents (and the decoded pixels) depend on the machine's load and
on ``--jobs``. Parallelism comes from worker processes instead.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import ThreadpoolController

Graph = Sequence[Mapping[str, Any]]

#: The most memory one block of convolution windows may take.
BLOCK_BYTES = 64 << 20


def conv2d_nhwc(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Cross-correlation of channels-last ``x`` (N, H, W, C) with ``weight`` (O, C, kh, kw): (N, Ho, Wo, O)."""
    n, _, _, c = x.shape
    out_c, in_c, kh, kw = weight.shape
    if in_c != c:
        raise ValueError(f"conv expects {in_c} input channels, got {c}")
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # (N, Ho, Wo, C, kh, kw)
    ho, wo = windows.shape[1], windows.shape[2]
    matrix = weight.transpose(2, 3, 1, 0).reshape(-1, out_c)  # rows in (kh, kw, C) order
    out = np.empty((n, ho, wo, out_c), dtype=x.dtype)
    row_bytes = max(1, n * wo * c * kh * kw * x.dtype.itemsize)
    step = max(1, BLOCK_BYTES // row_bytes)
    for first in range(0, ho, step):
        block = windows[:, first : first + step].transpose(0, 1, 2, 4, 5, 3)
        rows = block.shape[1]
        out[:, first : first + rows] = (block.reshape(n * rows * wo, -1) @ matrix).reshape(n, rows, wo, out_c)
    out += bias
    return out


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
