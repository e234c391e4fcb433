"""Decoding is bit-exact in its symbols everywhere; pixels move by float noise at most.

The same files are decoded with 1 and 2 BLAS threads (in fresh processes), in
float32 and float64, and with torch running the synthesis: the integer latents
must be identical, the pixels at most one grey level apart.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import codec
from codec import api, models

ROOT = Path(__file__).resolve().parent.parent

_DECODE = """
import sys, numpy as np
from codec import api
stored = np.load(sys.argv[1], allow_pickle=False)
blob, ends = stored["blob"].tobytes(), stored["ends"]
files = [blob[a:b] for a, b in zip([0, *ends[:-1]], ends)]
decoded = [api.decode_latents(f) for f in files]
pixels = api.reconstruct(decoded)
np.savez(sys.argv[2], latents=np.stack([d[1] for d in decoded]), pixels=np.stack(pixels))
"""


@pytest.fixture(scope="module")
def coded(digits: np.ndarray, shipped_levels: list[int]) -> dict[int, list[bytes]]:
    # The encoder's search changes which latents are coded, not how they decode: effort 0 keeps this fast.
    return {level: codec.compress_many(list(digits[:100]), quality=level, effort=0) for level in shipped_levels}


def _reference(files: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    decoded = [api.decode_latents(f) for f in files]
    return np.stack([d[1] for d in decoded]), np.stack(api.reconstruct(decoded))


@pytest.mark.parametrize("threads", ["1", "2"])
def test_thread_counts(coded: dict[int, list[bytes]], tmp_path: Path, threads: str) -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    env["PYTHONPATH"] = str(ROOT)
    for level, files in coded.items():
        inputs = tmp_path / f"in-{level}.npz"
        np.savez(inputs, blob=np.frombuffer(b"".join(files), np.uint8), ends=np.cumsum([len(f) for f in files]))
        out = tmp_path / f"out-{level}.npz"
        subprocess.run([sys.executable, "-c", _DECODE, str(inputs), str(out)], check=True, env=env, cwd=tmp_path)
        result = np.load(out)
        latents, pixels = _reference(files)
        assert np.array_equal(result["latents"], latents), f"level {level}: symbols differ with {threads} threads"
        assert np.abs(result["pixels"].astype(int) - pixels).max() <= 1


def test_float64_synthesis(coded: dict[int, list[bytes]]) -> None:
    for files in coded.values():
        decoded = [api.decode_latents(f) for f in files]
        single = np.stack(api.reconstruct(decoded))
        double = np.stack(api.reconstruct(decoded, dtype=np.float64))
        assert np.abs(single.astype(int) - double).max() <= 1


def test_torch_synthesis(coded: dict[int, list[bytes]]) -> None:
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for level, files in coded.items():
        model = models.load_model(level)
        decoded = [api.decode_latents(f) for f in files]
        x = torch.from_numpy(np.stack([d[1] for d in decoded]).astype(np.float32))
        with torch.no_grad():
            for layer in model.synthesis_graph:
                if layer["op"] == "conv":
                    w = torch.from_numpy(model.params[layer["name"] + ".weight"].astype(np.float32))
                    b = torch.from_numpy(model.params[layer["name"] + ".bias"].astype(np.float32))
                    x = F.conv2d(x, w, b, stride=layer["stride"], padding=layer["padding"])
                elif layer["op"] == "relu":
                    x = F.relu(x)
                elif layer["op"] == "pixel_shuffle":
                    x = F.pixel_shuffle(x, layer["factor"])
                elif layer["op"] == "scale":
                    x = x * layer["factor"]
                else:
                    assert layer["op"] == "sigmoid"
                    x = torch.sigmoid(x)
        expected = np.rint(np.clip(x[:, 0].numpy(), 0, 1) * 255).astype(int)
        ours = np.stack(api.reconstruct(decoded)).astype(int)
        assert np.abs(ours - expected).max() <= 1, f"level {level}"
