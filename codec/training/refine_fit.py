"""Train the refinement model (:mod:`codec.refine`): predictors by least squares, tables by counting.

No torch: the model is integer predictors and frequency tables. The training
images are MNIST *training* digits, digits rendered from the training fonts
(DejaVu Sans, never a benchmark font), and the photos of
:data:`TRAINING_PHOTOS` (never a benchmark photo). Mode 1 (a residual over the
autoencoder) codes each image over the reconstruction of the levels in
:data:`BASE_LEVELS`; mode 0 over mid-grey. The tables are shared by every
maximum error and fitted on :data:`MAX_ERRORS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .. import refine
from ..prior import quantize_pmf
from ..refine import FEATURES, MODES, PASSES, PREDICTOR_SHIFT, RefineModel
from .digits import find_fonts, font_digits, scanned_digits

#: Maximum errors the tables are fitted on (equal weight).
MAX_ERRORS = (0, 1, 2, 3, 5, 8)
#: Levels whose reconstructions are mode 1's bases.
BASE_LEVELS = (4, 8, 12, 15)
#: The fonts the training renders digits with (the benchmark uses every other installed font).
TRAINING_FONT = "DejaVuSans*.ttf"
#: scikit-image sample images used for training; every other one is a benchmark photo.
TRAINING_PHOTOS = ("motorcycle_left", "motorcycle_right", "color", "logo", "chessboard_GRAY")
#: Count added to every (context, symbol) before the tables are made.
PRIOR_COUNT = 0.5

Sample = tuple[np.ndarray, np.ndarray, int]  # image, base, mode


def training_images(mnist_train: np.ndarray, seed: int, digits: int = 3000, renders: int = 150) -> list[np.ndarray]:
    """The training images, white ink on black as the codec codes them: an MNIST mosaic, fonts, scans, photos."""
    from ..images import prepare

    chosen = mnist_train[training_digit_indices(len(mnist_train), seed, digits)]
    rng = np.random.default_rng(seed + 1)
    images = [np.concatenate(list(chosen[i : i + 100]), axis=1) for i in range(0, digits, 100)]
    images += font_digits(find_fonts(TRAINING_FONT), renders, rng, sizes=(16, 256))
    images += scanned_digits(chosen, renders, rng, sizes=(16, 256))
    images += photos(TRAINING_PHOTOS)
    return [prepare(image).pixels for image in images]


def training_record(command: str, seed: int, images: list[np.ndarray]) -> dict[str, object]:
    """What a model fitted on :func:`training_images` records of them: the command and seed that chose them, the
    MNIST files' checksum, their count and content hash, the font and the photos."""
    from .. import data as mnist

    return {
        "command": command,
        "seed": seed,
        "data_sha256": mnist.dataset_digest(),
        "training_images": len(images),
        "training_images_sha256": hashlib.sha256(b"".join(image.tobytes() for image in images)).hexdigest(),
        "training_fonts": TRAINING_FONT,
        "training_photos": list(TRAINING_PHOTOS),
    }


def training_digit_indices(available: int, seed: int, digits: int = 3000) -> np.ndarray:
    """The MNIST training digits (indices) the refinement is fitted on; the benchmark uses none of them."""
    return np.random.default_rng(seed).choice(available, size=digits, replace=False)


def photos(names: Iterable[str]) -> list[np.ndarray]:
    """scikit-image's sample images by name, in grayscale, plus the LFW faces as one mosaic for the training set."""
    from PIL import Image
    from skimage import data

    out = []
    folder = Path(data.__file__).parent
    for name in names:
        path = next(folder.glob(f"{name}.*"))
        out.append(np.asarray(Image.open(path).convert("L")))
    faces = np.clip(data.lfw_subset() * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out.append(np.concatenate([np.concatenate(list(faces[i : i + 20]), axis=1) for i in range(0, 200, 20)], axis=0))
    return out


def samples(images: list[np.ndarray]) -> Iterator[Sample]:
    """Each image over mid-grey (mode 0) and over each base level's reconstruction (mode 1)."""
    for image in images:
        yield image, np.full(image.shape, refine.MID_GREY, np.uint8), 0
        if image.size > 1 << 20:
            continue
        for level in BASE_LEVELS:
            yield image, base_image(image, level), 1


def base_image(image: np.ndarray, level: int) -> np.ndarray:
    """The reconstruction of a prepared image (white ink on black) by ``level``'s autoencoder, rounded latents."""
    from ..encoder import autoencoded

    return autoencoded(image, level)


def _neighbours(residual: np.ndarray, pass_: int, mode: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel of a pass with its true neighbours (for the least-squares fit): (n, F) and (n,)."""
    pad = refine._Rows.PAD
    height, width = residual.shape
    padded = np.full((height + pad, width + 2 * pad), -refine.MID_GREY if mode == 0 else 0, dtype=np.int64)
    padded[pad:, pad : pad + width] = residual
    xs = np.arange(pass_, width, 2)
    if pass_ == 1 and width % 2 == 0:  # the last odd column reads its left neighbour as its right one
        padded[pad:, pad + width] = padded[pad:, pad + width - 1]
    rows = np.arange(height)[:, None] + pad
    cols = xs[None, :] + pad
    features = np.stack([padded[rows + dy, cols + dx].reshape(-1) for dy, dx in FEATURES[pass_]], axis=1)
    return features, residual[:, xs].reshape(-1)


def fit_predictors(data: list[Sample]) -> tuple[np.ndarray, ...]:
    """Per mode, pass and gradient class, the least-squares linear predictor of a residual from its neighbours.

    Mode 0 codes pixels (around mid-grey), so its weights sum to one (a flat
    area predicts itself); mode 1's residuals are near zero and its weights are
    free. A class with too few pixels takes the pass's predictor over all classes.
    """
    classes = len(refine.PREDICTOR_CLASSES) + 1
    out = []
    for mode in range(MODES):
        for pass_ in range(PASSES):
            size = len(FEATURES[pass_])
            gram, moment = np.zeros((classes, size, size)), np.zeros((classes, size))
            seen = np.zeros(classes)
            for image, base, sample_mode in data:
                if sample_mode != mode or image.shape[1] <= pass_:
                    continue
                x, y = _neighbours(image.astype(np.int64) - base, pass_, mode)
                group = refine.predictor_classes(refine.gradients(x))
                x, y = x.astype(np.float64), y.astype(np.float64)
                if mode == 0:  # y - x0 = (x_i - x0) w_i for i > 0; w_0 = 1 - sum(w_i)
                    x, y = x - x[:, :1], y - x[:, 0]
                    x[:, 0] = 0.0
                for c in range(classes):
                    chosen = group == c
                    gram[c] += x[chosen].T @ x[chosen]
                    moment[c] += x[chosen].T @ y[chosen]
                    seen[c] += chosen.sum()
            scale = 1 << PREDICTOR_SHIFT
            weights = np.zeros((classes, size), dtype=np.int64)
            overall = np.linalg.solve(gram.sum(0) + 1e-3 * np.eye(size), moment.sum(0))
            for c in range(classes):
                fitted = np.linalg.solve(gram[c] + 1e-3 * np.eye(size), moment[c]) if seen[c] >= 1000 else overall
                weights[c] = np.rint(fitted * scale).astype(np.int64)
                if mode == 0:
                    weights[c, 0] = scale - weights[c, 1:].sum()
            out.append(weights)
    return tuple(out)


def fit_tables(predictors: tuple[np.ndarray, ...], data: list[Sample]) -> np.ndarray:
    """Per mode, pass and context, the frequencies of the category symbols the closed loop codes."""
    uniform = np.full((MODES, PASSES, refine.CONTEXTS, refine.SYMBOLS), 1 << 16 >> 5, dtype=np.uint32)
    uniform[..., 0] += (1 << 16) - uniform.sum(axis=-1)
    draft = RefineModel(predictors=predictors, tables=uniform)
    counts = np.zeros(uniform.shape, dtype=np.float64)
    for image, base, mode in data:
        for max_error in MAX_ERRORS:
            for pass_, context, q, _ in refine.coded_rows(draft, image, base, max_error, mode):
                np.add.at(counts[mode, pass_], (context, refine.category_symbols(q)), 1.0)
    return quantize_pmf(counts + PRIOR_COUNT)


def fit(data: list[Sample]) -> RefineModel:
    """The refinement model of the samples."""
    predictors = fit_predictors(data)
    return RefineModel(predictors=predictors, tables=fit_tables(predictors, data))


def train_refinement(
    data_dir: Path | None, weights_dir: Path | None, seed: int, command: str, limit: int | None = None
) -> tuple[Path, dict[str, object]]:
    """Fit the refinement model on the training images and install it; returns its path and metadata.

    The metadata records the command, the seed, the data checksums, what it was
    fitted on and what it measured on its training images (bits per pixel at each
    fitted maximum error, mode 0).
    """
    import time

    from .. import data as mnist
    from ..models import weights_dir as default_weights

    started = time.time()
    train_digits = mnist.load_mnist("train", data_dir)[0]
    images = training_images(train_digits, seed)
    if limit is not None:
        images = images[:limit]
    data = list(samples(images))
    model = fit(data)
    measured = {}
    for max_error in MAX_ERRORS:
        bits = pixels = 0
        for image, base, mode in data:
            if mode == 0:
                bits += 8 * len(refine.encode(model, image, base, max_error, mode)[0])
                pixels += image.size
        measured[str(max_error)] = round(bits / max(pixels, 1), 4)
    metadata: dict[str, object] = {
        **training_record(command, seed, images),
        "base_levels": list(BASE_LEVELS),
        "max_errors": list(MAX_ERRORS),
        "train_bpp_no_base": measured,
        "seconds": round(time.time() - started, 1),
    }
    path = refine.save(model, weights_dir or default_weights(), metadata)
    refine._load.cache_clear()
    return path, metadata
