"""Digits as people have them: rendered from fonts or rescaled from MNIST, with what scanning does to them.

Shared by the refinement model's training data (:mod:`codec.training.refine_fit`)
and the benchmark set of digits that are not MNIST test digits
(:mod:`benchmarks.sets`); the two draw from disjoint fonts and disjoint digits.
Deterministic for a given ``numpy.random.Generator``. Needs Pillow and numpy only.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

#: MNIST training digits from this index on are held out of the models that count every training digit (the
#: lossless pixel model): the benchmark set of scanned digits draws from them (:mod:`benchmarks.sets`).
HELD_OUT_FROM = 59_000
#: Where Debian's font packages put TrueType fonts.
FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"))


def find_fonts(pattern: str = "*.ttf") -> list[Path]:
    """Every installed font file matching ``pattern``, sorted (Debian's folders and matplotlib's bundled fonts)."""
    found: list[Path] = []
    for folder in FONT_DIRS:
        if folder.is_dir():
            found += folder.rglob(pattern)
    try:
        import matplotlib

        found += (Path(matplotlib.get_data_path()) / "fonts" / "ttf").glob(pattern)
    except ImportError:
        pass
    return sorted(set(found))


def render_text(text: str, font: Path, height: int, rng: np.random.Generator) -> np.ndarray:
    """``text`` in white on black, about ``height`` pixels tall, a random stroke and offset: (H, W) uint8."""
    size = max(8, int(height * rng.uniform(0.55, 0.8)))
    face = ImageFont.truetype(str(font), size)
    stroke = int(rng.integers(0, max(1, size // 16) + 1))
    left, top, right, bottom = (int(v) for v in face.getbbox(text, stroke_width=stroke))
    width = max(height, int(right - left) + int(height * rng.uniform(0.1, 0.5)))
    canvas = Image.new("L", (width, height))
    dx = (width - (right - left)) // 2 + int(rng.integers(-height // 8, height // 8 + 1))
    dy = (height - (bottom - top)) // 2 + int(rng.integers(-height // 8, height // 8 + 1))
    ImageDraw.Draw(canvas).text((dx - left, dy - top), text, fill=255, font=face, stroke_width=stroke, stroke_fill=255)
    return np.asarray(canvas)


def rescale(image: np.ndarray, height: int) -> np.ndarray:
    """``image`` resized (bicubic) to ``height`` rows, its aspect kept."""
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What paper, optics and sensors do: polarity, contrast, paper texture, blur, noise, JPEG artefacts."""
    pixels = image.astype(np.float64) / 255.0
    ink, paper = rng.uniform(0.75, 1.0), rng.uniform(0.0, 0.25)
    pixels = paper + (ink - paper) * pixels
    if rng.random() < 0.5:  # paper texture: smooth low-frequency shading
        shade = rng.normal(0, 1, (max(2, image.shape[0] // 16), max(2, image.shape[1] // 16)))
        low = np.asarray(Image.fromarray(shade.astype(np.float32)).resize(image.shape[::-1], Image.Resampling.BICUBIC))
        pixels = pixels + 0.04 * low
    if rng.random() < 0.5:  # dark ink on light paper
        pixels = 1.0 - pixels
    out = Image.fromarray(np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2) * max(1.0, image.shape[0] / 64)))
    array = np.asarray(out).astype(np.float64)
    if rng.random() < 0.5:
        array = array + rng.normal(0, rng.uniform(1.0, 6.0), array.shape)
    out = Image.fromarray(np.clip(array + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        buffer = io.BytesIO()
        out.save(buffer, format="JPEG", quality=int(rng.integers(50, 95)))
        out = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    return np.asarray(out)


def font_digits(
    fonts: list[Path], count: int, rng: np.random.Generator, sizes: tuple[int, int] = (16, 512)
) -> list[np.ndarray]:
    """``count`` degraded renderings of one to six digits (a digit, a postcode, an amount) in the given fonts."""
    out = []
    for _ in range(count):
        digits = int(rng.choice([1, 1, 1, 2, 4, 5, 6]))
        text = "".join(str(d) for d in rng.integers(0, 10, digits))
        if digits >= 4 and rng.random() < 0.3:
            text = text[:-2] + "." + text[-2:]
        height = int(np.exp(rng.uniform(np.log(sizes[0]), np.log(sizes[1] // max(1, digits // 2)))))
        font = fonts[int(rng.integers(len(fonts)))]
        out.append(degrade(render_text(text, font, max(sizes[0], height), rng), rng))
    return out


def scanned_digits(
    digits: np.ndarray, count: int, rng: np.random.Generator, sizes: tuple[int, int] = (16, 512)
) -> list[np.ndarray]:
    """``count`` MNIST digits (from ``digits``, (N, 28, 28)) rescaled to other sizes and degraded."""
    out = []
    for index in rng.choice(len(digits), size=count, replace=False):
        height = int(np.exp(rng.uniform(np.log(sizes[0]), np.log(sizes[1]))))
        out.append(degrade(rescale(digits[index], height), rng))
    return out
