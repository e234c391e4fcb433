"""Benchmark sets that are not MNIST: digits as people have them, and photos and documents.

Both are generated reproducibly (a fixed seed) from what packages ship, and
neither shares an image with the refinement model's training data
(:mod:`codec.training.refine_fit`) or the lossless model's (:mod:`codec.training.lossless_fit`):

- ``digits``: digits of 16 to 512 px rendered from every installed font except
  the training fonts (DejaVu Sans), and MNIST *training* digits that neither the
  refinement's training data nor the lossless model's uses (from
  :data:`codec.training.digits.HELD_OUT_FROM` on), rescaled; both polarities, stroke widths, blur, sensor noise,
  JPEG artefacts, off-centre, paper texture, one to six digits in a row.
- ``photos``: scikit-image's sample photos and scans except the training ones,
  plus matplotlib's photo and MRI slice, in grayscale, each scaled so that its
  longer side is at most :data:`PHOTO_SIDE`.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image

from codec.training.digits import HELD_OUT_FROM, find_fonts, font_digits, scanned_digits
from codec.training.refine_fit import TRAINING_FONT, TRAINING_PHOTOS

SEED = 2026
#: Photos are scaled down so that their longer side is at most this many pixels.
PHOTO_SIDE = 256
FONT_IMAGES = 40
SCANNED_IMAGES = 20


#: Fonts without ordinary digits (symbols, fallback glyphs), left out.
NO_DIGITS = ("Siz", "NonUni", "cmex", "cmsy", "LastResort", "MathTeX")


def benchmark_fonts() -> list[Path]:
    """Every installed font with digits but the training ones, each name once."""
    training = {t.name for t in find_fonts(TRAINING_FONT)}
    named = {f.name: f for f in find_fonts() if f.name not in training and not any(n in f.name for n in NO_DIGITS)}
    return [named[name] for name in sorted(named)]


def digits(mnist_train: np.ndarray, training_seed: int = 0) -> list[np.ndarray]:
    """The digit set: font renderings and rescaled MNIST training digits the refinement never saw."""
    from codec.training.refine_fit import training_digit_indices

    rng = np.random.default_rng(SEED)
    held_out = np.arange(HELD_OUT_FROM, len(mnist_train))
    unseen = np.setdiff1d(held_out, training_digit_indices(len(mnist_train), training_seed))
    images = font_digits(benchmark_fonts(), FONT_IMAGES, rng)
    images += scanned_digits(mnist_train[unseen], SCANNED_IMAGES, rng)
    return images


def photos() -> list[tuple[str, np.ndarray]]:
    """The photo set: (name, grayscale image), each at most :data:`PHOTO_SIDE` on its longer side."""
    import matplotlib
    from skimage import data

    folder = Path(data.__file__).parent
    paths = [
        p
        for p in sorted(folder.glob("*"))
        if p.suffix in {".png", ".jpg"} and p.stem not in TRAINING_PHOTOS and not p.stem.startswith("chessboard")
    ]
    out = [(p.stem, Image.open(p).convert("L")) for p in paths]
    sample = Path(matplotlib.get_data_path()) / "sample_data"
    out.append(("grace_hopper", Image.open(sample / "grace_hopper.jpg").convert("L")))
    with gzip.open(sample / "s1045.ima.gz") as fh:  # a 256x256 16-bit MRI slice
        mri = np.frombuffer(fh.read(), np.uint16).astype(np.float64).reshape(256, 256)
    out.append(("mri", Image.fromarray(np.rint(mri * 255.0 / mri.max()).astype(np.uint8))))
    scaled = []
    for name, image in out:
        factor = PHOTO_SIDE / max(image.size)
        if factor < 1:
            image = image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.LANCZOS)
        scaled.append((name, np.asarray(image)))
    return scaled
