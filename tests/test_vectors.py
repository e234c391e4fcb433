"""The compatibility contract: committed reference files still decode exactly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec
from codec import api, archive, bitstream

VECTORS = Path(__file__).resolve().parent / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text()) if (VECTORS / "manifest.json").exists() else {}


#: Version 5 (refined) reference files, checked by :func:`test_refined_reference_file_decodes`.
REFINED = ("refined-camera-k0", "refined-camera-k3", "refined-digit7-q12-k4")
#: Version 7 (pixel model) reference files, lossless or within K (``-kK``): :func:`test_pixel_model_reference_file`.
LOSSLESS = ("lossless-digit7", "lossless-paper-digit2", "lossless-camera", "near-digit7-k2", "near-camera-k3")
#: Version 8 (predictive coder) reference files, lossless or within K (``-kK``): :func:`test_predictive_reference_file`.
PREDICTIVE = ("predictive-camera", "predictive-paper-camera-k3", "predictive-sparse-camera")
#: Version 11 (restored predictive) reference files, within K before restoring: :func:`test_restored_reference_file`.
RESTORED = ("restored-camera-k6", "restored-paper-camera-k4")


#: Archive reference files (``.aecs``): name -> the archive version it was written in.
ARCHIVES = {"archive-lossless-v4": 4, "archive-lossless-v3": 3, "archive-q8-v3": 3, "archive-q8-v5": 5}


def test_every_reference_file_is_tested() -> None:
    # A vector in neither list would go untested; one missing on disk would fail to open.
    on_disk = {path.stem for path in VECTORS.glob("*.aec")}
    assert on_disk == set(MANIFEST) | set(REFINED) | set(LOSSLESS) | set(PREDICTIVE) | set(RESTORED)
    assert {path.stem for path in VECTORS.glob("*.aecs")} == set(ARCHIVES)
    assert {path.stem for path in VECTORS.glob("*.png")} == on_disk | set(ARCHIVES)
    assert set(ARCHIVES.values()) == {archive.VERSION, archive.BLOCKS_VERSION, archive.LATENT_BLOCKS_VERSION}
    versions = {codec.inspect((VECTORS / f"{name}.aec").read_bytes()).header.version for name in on_disk}
    assert versions == set(bitstream.SUPPORTED_VERSIONS)  # every version this aec reads has a vector


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_reference_file_decodes_exactly(name: str) -> None:
    expected = MANIFEST[name]
    coded = (VECTORS / f"{name}.aec").read_bytes()
    assert hashlib.sha256(coded).hexdigest() == expected["aec_sha256"], "the reference file itself changed"
    _, decoded = api.decode_latents(coded)
    latents = decoded.latents if isinstance(decoded, api.Refined) else decoded
    assert latents is not None
    assert hashlib.sha256(latents.astype("<i4").tobytes()).hexdigest() == expected["latents_sha256"]
    pixels = codec.decompress(coded)
    reference = np.asarray(Image.open(VECTORS / f"{name}.png"))
    assert pixels.shape == tuple(expected["shape"]) == reference.shape
    # Symbols are bit-exact everywhere; pixels may move by float rounding, at most one grey level.
    assert np.abs(pixels.astype(int) - reference).max() <= 1
    header = codec.inspect(coded).header
    assert header.level == expected["level"] and header.version == expected.get("version", header.version)
    if name.startswith("scaled"):  # version 9 (10: fitted contexts): the scale and the latents' coding its name says
        assert f"-s{header.scale}-" in name and header.latents_in_context != name.endswith("-tables")
        assert header.version == (9 if name.endswith(("-tables", "-v9")) else bitstream.FITTED_VERSION)
    if name.startswith("context"):  # latents in contexts started at the stationary rows (version 6) or fitted ones
        assert header.version == (6 if name.endswith("-v6") else bitstream.FITTED_VERSION) and header.scale == 1


@pytest.mark.parametrize("name", REFINED)
def test_refined_reference_file_decodes(name: str) -> None:
    """Version 5 reference files: without an autoencoder layer the pixels are exact, over one within a grey level."""
    coded = (VECTORS / f"{name}.aec").read_bytes()
    header = codec.inspect(coded).header
    assert header.version == 5 and header.max_error == int(name.rsplit("-k", 1)[1])
    pixels = codec.decompress(coded)
    reference = np.asarray(Image.open(VECTORS / f"{name}.png"))
    slack = 0 if header.level == 0 else 1
    assert np.abs(pixels.astype(int) - reference).max() <= slack
    if name.startswith("refined-camera"):
        original = np.asarray(Image.open(VECTORS / "refined-camera-k0.png"))
        assert np.abs(pixels.astype(int) - original).max() <= header.max_error


@pytest.mark.parametrize("name", LOSSLESS)
def test_pixel_model_reference_file(name: str) -> None:
    """Version 7 reference files decode to exactly the pixels they decoded to when written (lossless: the image)."""
    coded = (VECTORS / f"{name}.aec").read_bytes()
    header = codec.inspect(coded).header
    assert header.version == bitstream.PIXEL_VERSION and header.level == 0
    assert header.inverted == name.startswith("lossless-paper")
    assert header.max_error == (int(name.rsplit("-k", 1)[1]) if "-k" in name else None)
    assert np.array_equal(codec.decompress(coded), np.asarray(Image.open(VECTORS / f"{name}.png")))


@pytest.mark.parametrize("name", PREDICTIVE)
def test_predictive_reference_file(name: str) -> None:
    """Version 8 reference files decode to exactly the pixels they decoded to when written (lossless: the image)."""
    coded = (VECTORS / f"{name}.aec").read_bytes()
    header = codec.inspect(coded).header
    assert header.version == bitstream.PREDICTIVE_VERSION and header.level == 0
    assert header.inverted == ("-paper-" in name)
    assert header.max_error == (int(name.rsplit("-k", 1)[1]) if "-k" in name else 0)
    pixels = codec.decompress(coded)
    assert np.array_equal(pixels, np.asarray(Image.open(VECTORS / f"{name}.png")))
    if name == "predictive-sparse-camera":
        assert set(np.unique(pixels)) <= set(range(0, 256, 8))


@pytest.mark.parametrize("name", RESTORED)
def test_restored_reference_file(name: str) -> None:
    """Version 11 reference files decode to exactly the pixels they decoded to when written (integer filters), each
    within twice the maximum error of the image they were coded from."""
    coded = (VECTORS / f"{name}.aec").read_bytes()
    header = codec.inspect(coded).header
    assert header.version == bitstream.RESTORED_VERSION and header.level == 0 and header.restoration
    assert header.inverted == ("-paper-" in name) and header.max_error == int(name.rsplit("-k", 1)[1])
    pixels = codec.decompress(coded)
    assert np.array_equal(pixels, np.asarray(Image.open(VECTORS / f"{name}.png")))
    original = np.asarray(Image.open(VECTORS / "predictive-camera.png"))  # lossless: the crop itself
    original = 255 - original if header.inverted else original
    assert np.abs(pixels.astype(int) - original).max() <= 2 * header.max_error


@pytest.mark.parametrize("name", sorted(ARCHIVES))
def test_archive_reference_file(name: str) -> None:
    """Archives decode to the images they decoded to when written: exactly when lossless, within one grey level
    (float rounding) when lossy."""
    packed = (VECTORS / f"{name}.aecs").read_bytes()
    opened = archive.open_archive(packed)
    assert packed[4] == ARCHIVES[name] and opened.head.lossless == ("lossless" in name)
    images = opened.decode_all()
    reference = np.asarray(Image.open(VECTORS / f"{name}.png")).reshape(len(images), opened.height, opened.width)
    slack = 0 if opened.head.lossless else 1
    assert np.abs(np.stack(images).astype(int) - reference).max() <= slack
    assert opened.inverted.any() == (name in ("archive-lossless-v4", "archive-q8-v5"))  # two dark on light each
