"""Write the reference .aec files, their decoded PNGs and a manifest of SHA-256s.

Run only when the format or the shipped weights change (on purpose):

    python tests/vectors/generate.py --force

When a level gets a new model (its old one stays in the model store for decoding),
rename the level's old vectors after the former model (``digit7-q2`` ->
``digit7-q2-18e``, in the manifest too) and add the new ones, keeping the rest:

    python tests/vectors/generate.py --missing

When the format version changes, rename the current vectors after the version
they were written in (``digit7-q7`` -> ``digit7-q7-v3``) and add new ones the
same way: every version a decoder still reads keeps its reference files.

Archives (``.aecs``) are written the same way, one per archive version and kind.
The test ``test_vectors.py`` then checks that today's decoder decodes every file
to the same latents and pixels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import codec  # noqa: E402
from codec import api, data, encoder  # noqa: E402
from codec.images import prepare  # noqa: E402
from codec.search import DEFAULT_EFFORT  # noqa: E402


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def camera() -> np.ndarray:
    """A 64x80 crop of scikit-image's camera man (a benchmark photo, never a training one)."""
    from skimage import data as samples

    return np.asarray(samples.camera()[100:164, 200:280])


#: Name -> (max error, level): refined files over a level's own model for the image (format version 5 or 6).
REFINED = {"context-camera-q8-k2": (2, 8)}
#: Name -> scale: scaled files (format version 9), coded at 1/scale of the image's size by the model the level
#: chooses; "-tables": its coarse latents came out smaller coded with the tables (as version 4), the other in contexts.
SCALED = {"scaled-digit7-s2-q8-tables": 2, "scaled-digit7-s4-q12": 4, "scaled-paper-camera-s2-q4-tables": 2}


def cases() -> dict[str, tuple[np.ndarray, int]]:
    """Name -> (image, level): every level on one digit, plus paper polarity, odd sizes and a photo."""
    images, _ = data.load_mnist("test")
    out = {f"digit7-q{level}": (images[0], level) for level in codec.levels()}
    out["paper-digit2"] = (255 - images[1], codec.levels()[len(codec.levels()) // 2])
    wide = np.zeros((20, 45), np.uint8)
    wide[:, :28] = images[2][4:24]
    out["wide-20x45"] = (wide, codec.levels()[-1])
    out["wide-20x45-q1"] = (wide, codec.levels()[0])  # one latent vector per 28x28 block, padded
    out["context-camera-q8"] = (camera(), 8)  # off the home grid: latents in contexts (version 6)
    for name, (_, level) in REFINED.items():
        out[name] = (camera(), level)
    big = np.asarray(Image.fromarray(images[0]).resize((56, 56), Image.Resampling.BICUBIC))  # 28x28 at scale 2
    out["scaled-digit7-s2-q8-tables"] = (big, 8)
    out["scaled-digit7-s4-q12"] = (np.asarray(Image.fromarray(images[0]).resize((150, 131))), 12)
    out["scaled-paper-camera-s2-q4-tables"] = (255 - camera(), 4)
    return out


def code(name: str, image: np.ndarray, level: int) -> bytes:
    """The reference file: the level's own model, refined over it for the names in :data:`REFINED`."""
    if name in REFINED:
        return encoder.encode_refined(prepare(image), REFINED[name][0], level)
    if name in SCALED:
        return encoder.chosen_files([prepare(image)], level, DEFAULT_EFFORT, SCALED[name])[0]
    return encoder.code_with(encoder.own_model(level, *image.shape), [prepare(image)], level, DEFAULT_EFFORT)[0]


#: Files of the pixel model (format version 7), lossless or within K (``-kK``); the PNG is what they decode to.
LOSSLESS = ("lossless-digit7", "lossless-paper-digit2", "lossless-camera", "near-digit7-k2", "near-camera-k3")


def lossless_cases() -> dict[str, tuple[np.ndarray, int]]:
    """Name -> (image, max error) of the pixel model's vectors: a digit, a dark-on-light digit, a photo crop (odd
    size), lossless and near-lossless."""
    images, _ = data.load_mnist("test")
    chosen = (images[0], 255 - images[1], camera(), images[0], camera())
    return {name: (image, max_error_of(name)) for name, image in zip(LOSSLESS, chosen)}


def max_error_of(name: str) -> int:
    """The maximum error a vector's name ends with (``-kK``; none: lossless)."""
    return int(name.rsplit("-k", 1)[1]) if "-k" in name else 0


def write_bounded(
    cases: dict[str, tuple[np.ndarray, int]],
    make: Callable[..., tuple[bytes, np.ndarray] | None],
    replace: bool,
    bound: int = 1,
) -> int:
    """Write the vectors of ``cases`` that are missing (all with ``replace``), each the file ``make(item, max_error)``
    codes (every pixel within ``bound`` times its maximum error) and the PNG it decodes to; returns how many were
    written."""
    written = 0
    for name, (image, max_error) in cases.items():
        if (HERE / f"{name}.aec").exists() and not replace:
            continue
        made = make(prepare(image), max_error)
        assert made is not None
        coded, decoded = made
        assert np.array_equal(codec.decompress(coded), decoded)
        assert np.abs(decoded.astype(int) - image).max() <= bound * max_error
        (HERE / f"{name}.aec").write_bytes(coded)
        Image.fromarray(decoded).save(HERE / f"{name}.png")
        written += 1
    return written


#: Files of the predictive coder (format version 8), lossless or within K (``-kK``); the PNG is what they decode to.
#: "sparse" uses every 8th grey level only: its stream is packed.
PREDICTIVE = ("predictive-camera", "predictive-paper-camera-k3", "predictive-sparse-camera")


def predictive_cases() -> dict[str, tuple[np.ndarray, int]]:
    """Name -> (image, max error) of the predictive coder's vectors: a photo crop, dark on light within 3, and one
    with gaps between its grey levels."""
    chosen = (camera(), 255 - camera(), camera() // 8 * 8)
    return {name: (image, max_error_of(name)) for name, image in zip(PREDICTIVE, chosen)}


#: Restored files of the predictive coder (format version 11), within K (``-kK``) before the restoration.
RESTORED = ("restored-camera-k6", "restored-paper-camera-k4")


def restored_cases() -> dict[str, tuple[np.ndarray, int]]:
    """Name -> (image, max error) of the restored vectors: a photo crop, and dark on light."""
    return {name: (image, max_error_of(name)) for name, image in zip(RESTORED, (camera(), 255 - camera()))}


#: Archives (``.aecs``): name -> quality; the PNG beside each is its images stacked top to bottom.
#: The name ends with the archive version: "archive-q8-v3" was written by aec 0.14, whose writer packed digits as
#: version 3 (aec 0.15 packs them as version 5); it is kept as written.
ARCHIVES = {"archive-lossless-v4": 0, "archive-lossless-v3": 0, "archive-q8-v3": 8, "archive-q8-v5": 8}


def archive_cases() -> dict[str, list[np.ndarray]]:
    """Name -> images: 300 digits in blocks (two dark on light), three photo crops too large for blocks, 20 digits
    at a lossy level, and 250 in blocks of latents (two dark on light; level 8's blocks hold 111)."""
    images, _ = data.load_mnist("test")
    digits = list(images[:300])
    digits[1], digits[290] = 255 - digits[1], 255 - digits[290]
    crops = [np.asarray(camera()[:65, :70]), np.asarray(255 - camera()[-65:, -70:]), np.asarray(camera()[:65, 5:75])]
    latent = list(images[400:650])
    latent[3], latent[200] = 255 - latent[3], 255 - latent[200]
    cases = {"archive-lossless-v4": digits, "archive-lossless-v3": crops, "archive-q8-v3": list(images[300:320])}
    return {**cases, "archive-q8-v5": latent}


def write_archives(replace: bool) -> int:
    """Write the archive vectors that are missing (all with ``replace``); returns how many were written."""
    from codec import archive

    written = 0
    for name, images in archive_cases().items():
        if (HERE / f"{name}.aecs").exists() and not replace:
            continue
        packed = archive.pack(images, quality=ARCHIVES[name], effort=0)
        if packed[4] != int(name.rsplit("-v", 1)[1]):
            print(f"{name}: this aec writes archive version {packed[4]}; kept as written")
            continue
        decoded = archive.unpack(packed)
        if ARCHIVES[name] == archive.LOSSLESS:
            assert all(np.array_equal(a, b) for a, b in zip(decoded, images))
        (HERE / f"{name}.aecs").write_bytes(packed)
        Image.fromarray(np.concatenate(decoded)).save(HERE / f"{name}.png")
        written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="replace existing vectors")
    parser.add_argument("--missing", action="store_true", help="only add the vectors the manifest lacks")
    args = parser.parse_args()
    manifest_path = HERE / "manifest.json"
    if manifest_path.exists() and not (args.force or args.missing):
        sys.exit("error: vectors exist; pass --force to replace them, or --missing to add new ones")
    manifest = json.loads(manifest_path.read_text()) if args.missing and manifest_path.exists() else {}
    kept = len(manifest)
    for name, (image, level) in cases().items():
        if name in manifest:
            continue
        coded = code(name, image, level)
        _, decoded = api.decode_latents(coded)
        latents = decoded.latents if isinstance(decoded, api.Refined) else decoded
        pixels = codec.decompress(coded)
        (HERE / f"{name}.aec").write_bytes(coded)
        Image.fromarray(pixels).save(HERE / f"{name}.png")
        manifest[name] = {
            "aec_sha256": sha256(coded),
            "latents_sha256": sha256(latents.astype("<i4").tobytes()),
            "pixels_sha256": sha256(pixels.tobytes()),
            "shape": list(pixels.shape),
            "level": codec.inspect(coded).header.level,  # the model's level: a scaled file's is the one chosen
            "version": codec.inspect(coded).header.version,
        }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    others = write_bounded(lossless_cases(), encoder.pixel_model_file, args.force)
    others += write_bounded(predictive_cases(), encoder.predictive_file, args.force) + write_archives(args.force)
    others += write_bounded(restored_cases(), partial(encoder.predictive_file, restored=True), args.force, bound=2)
    print(f"wrote {len(manifest) - kept + others} vectors to {HERE} (kept {kept})")


if __name__ == "__main__":
    main()
