"""Training crops for the general models: everything grayscale, not only MNIST digits.

28x28 crops (the networks are fully convolutional, so a model trained on crops
codes any size) drawn in equal parts from MNIST training digits, digits rendered
from the training fonts and rescaled scans (:mod:`codec.training.digits`), the
training photos at several scales (:data:`codec.training.refine_fit.TRAINING_PHOTOS`
and the LFW faces) and generated *dead leaves* images (occluding discs and
rectangles of random grey, blur and noise: the statistics of natural images
without any benchmark image). Each crop is brought to white ink on black as the
encoder brings any image (:func:`codec.images.prepare`). Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .digits import find_fonts, font_digits, scanned_digits
from .refine_fit import TRAINING_FONT, TRAINING_PHOTOS, photos, training_digit_indices

SIDE = 28


def dead_leaves(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """A dead-leaves image: shapes of random grey occluding each other, some blurred and noisy."""
    canvas = Image.new("L", (size, size), int(rng.integers(0, 256)))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(20, 200))):
        radius = size * float(np.exp(rng.uniform(np.log(0.01), np.log(0.4))))
        x, y = rng.uniform(-radius, size + radius, 2)
        box = [x - radius, y - radius, x + radius, y + radius]
        grey = int(rng.integers(0, 256))
        (draw.ellipse if rng.random() < 0.6 else draw.rectangle)(box, fill=grey)
    if rng.random() < 0.5:
        canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 2.0))))
    pixels = np.asarray(canvas).astype(np.float64)
    if rng.random() < 0.5:
        pixels += rng.normal(0, rng.uniform(1, 8), pixels.shape)
    return np.clip(pixels + 0.5, 0, 255).astype(np.uint8)


def _crops(image: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    if image.shape[0] < SIDE or image.shape[1] < SIDE:
        image = np.pad(image, ((0, max(0, SIDE - image.shape[0])), (0, max(0, SIDE - image.shape[1]))), mode="edge")
    ys = rng.integers(0, image.shape[0] - SIDE + 1, count)
    xs = rng.integers(0, image.shape[1] - SIDE + 1, count)
    return [image[y : y + SIDE, x : x + SIDE] for y, x in zip(ys, xs)]


def _scales(image: np.ndarray) -> list[np.ndarray]:
    out = [image]
    for factor in (2, 4):
        height, width = image.shape[0] // factor, image.shape[1] // factor
        if min(height, width) >= SIDE:
            resized = Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS)
            out.append(np.asarray(resized))
    return out


def general_crops(mnist_train: np.ndarray, seed: int, count: int = 60000) -> np.ndarray:
    """``count`` training crops (N, 28, 28) uint8, white ink on black, in a seeded random order."""
    from ..images import prepare

    rng = np.random.default_rng(seed + 7)
    part = count // 5
    digits = mnist_train[training_digit_indices(len(mnist_train), seed)]
    crops = list(digits[rng.integers(0, len(digits), part)])
    rendered = font_digits(find_fonts(TRAINING_FONT), 400, rng, sizes=(16, 160))
    rendered += scanned_digits(digits, 400, rng, sizes=(16, 160))
    each = -(-part * 2 // len(rendered))
    crops += [c for image in rendered for c in _crops(image, each, rng)][: 2 * part]
    pictures = [scaled for photo in photos(TRAINING_PHOTOS) for scaled in _scales(photo)]
    crops += [c for picture in pictures for c in _crops(picture, -(-part // len(pictures)), rng)][:part]
    leaves = [dead_leaves(rng) for _ in range(200)]
    crops += [c for leaf in leaves for c in _crops(leaf, -(-(count - len(crops)) // len(leaves)), rng)]
    crops = crops[:count]
    out = np.stack([prepare(np.ascontiguousarray(c)).pixels for c in crops])
    return out[rng.permutation(len(out))]
