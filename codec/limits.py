"""The resource limits of the codec, decided before anything is read or allocated.

Every input is read with a bound chosen before the first byte (:func:`codec.fileio.read_bounded`),
and every batch of images is coded in slices bounded by pixels, so memory stays
bounded whatever the input and however many images a batch holds (about 1 GB per
process, measured in ``tests/test_hostile.py``). The format's own limits (image
size, archive count, payload lengths) live with the format: :mod:`codec.bitstream`
and :mod:`codec.archive`; the writers enforce each one where the readers do.
"""

from __future__ import annotations

MiB = 1 << 20

#: The largest image file (PNG, TIFF, ...) read for compression. An image of the
#: format's largest size (2^24 pixels) as 8-bit RGB is 48 MiB uncompressed.
MAX_IMAGE_FILE_BYTES = 64 * MiB

#: Pixels analysed or synthesised at once: 256 digits, or one larger image (coded alone,
#: in strips of :data:`STRIP_PIXELS`). Bounds the memory of every batch.
BATCH_PIXELS = 256 * 28 * 28

#: Pixels a network runs on at once: a larger image goes through it in strips of about this many
#: pixels, each with the rows of context its receptive field needs (:func:`codec.transforms.run_graph_in_strips`).
STRIP_PIXELS = 1 << 19

#: Images coded at once, however small.
BATCH_IMAGES = 256

#: Image files the command line codes at once when the encoder weighs each small image alone (from effort 1,
#: a set of searched files per image: :func:`codec.encoder.exact_choice`), so that outputs and progress come
#: every few seconds.
SEARCHED_BATCH_IMAGES = 16


def images_per_batch(pixels_per_image: int) -> int:
    """How many images of ``pixels_per_image`` pixels are coded at once (at least one).

    >>> images_per_batch(28 * 28), images_per_batch(1024 * 1024)
    (256, 1)
    """
    return max(1, min(BATCH_IMAGES, BATCH_PIXELS // max(1, pixels_per_image)))
