"""The compatibility contract: committed reference files still decode exactly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec
from codec import api

VECTORS = Path(__file__).resolve().parent / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text()) if (VECTORS / "manifest.json").exists() else {}


def test_vectors_exist() -> None:
    assert len(MANIFEST) >= 8


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_reference_file_decodes_exactly(name: str) -> None:
    expected = MANIFEST[name]
    coded = (VECTORS / f"{name}.aec").read_bytes()
    assert hashlib.sha256(coded).hexdigest() == expected["aec_sha256"], "the reference file itself changed"
    _, latents = api.decode_latents(coded)
    assert hashlib.sha256(latents.astype("<i4").tobytes()).hexdigest() == expected["latents_sha256"]
    pixels = codec.decompress(coded)
    reference = np.asarray(Image.open(VECTORS / f"{name}.png"))
    assert pixels.shape == tuple(expected["shape"]) == reference.shape
    # Symbols are bit-exact everywhere; pixels may move by float rounding, at most one grey level.
    assert np.abs(pixels.astype(int) - reference).max() <= 1
    assert codec.inspect(coded).header.level == expected["level"]
