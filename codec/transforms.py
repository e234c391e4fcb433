"""The numpy runtime: executes a frozen network graph (no torch).

A frozen graph is a list of operations, each a small dict::

    {"op": "conv", "name": "analysis.0", "stride": 2, "padding": 2}
    {"op": "relu"}
    {"op": "pixel_shuffle", "factor": 2}
    {"op": "sigmoid"}

with the convolution weights held in a name -> array mapping. Convolutions are
computed as a sum over kernel offsets of small matrix products, so memory stays
proportional to the output, never to an im2col copy of the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Graph = Sequence[Mapping[str, Any]]


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """2-D cross-correlation of ``x`` (N, C, H, W) with ``weight`` (O, C, kh, kw), as torch's Conv2d."""
    n, c, h, w = x.shape
    out_c, in_c, kh, kw = weight.shape
    if in_c != c:
        raise ValueError(f"conv expects {in_c} input channels, got {c}")
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    out = np.zeros((out_c, n, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride]
            out += np.tensordot(weight[:, :, i, j], patch, axes=([1], [1]))
    out += bias.reshape(-1, 1, 1, 1)
    return out.transpose(1, 0, 2, 3)


def pixel_shuffle(x: np.ndarray, factor: int) -> np.ndarray:
    """Rearrange (N, C*r*r, H, W) into (N, C, H*r, W*r), as torch's PixelShuffle."""
    n, c, h, w = x.shape
    r = factor
    x = x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c // (r * r), h * r, w * r)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, stable for large negative inputs."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def run_graph(graph: Graph, params: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Apply ``graph`` to ``x`` (N, C, H, W); the computation runs in ``x``'s float dtype."""
    dtype = x.dtype
    for layer in graph:
        op = layer["op"]
        if op == "conv":
            name = layer["name"]
            x = conv2d(
                x,
                params[f"{name}.weight"].astype(dtype, copy=False),
                params[f"{name}.bias"].astype(dtype, copy=False),
                stride=int(layer.get("stride", 1)),
                padding=int(layer.get("padding", 0)),
            )
        elif op == "relu":
            x = np.maximum(x, 0, out=x)
        elif op == "pixel_shuffle":
            x = pixel_shuffle(x, int(layer["factor"]))
        elif op == "sigmoid":
            x = sigmoid(x)
        else:
            raise ValueError(f"unknown operation {op!r} in frozen graph")
    return x
