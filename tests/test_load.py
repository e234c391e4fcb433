"""The whole MNIST test set in one batch call: bounded memory, the same bytes as one at a time."""

from __future__ import annotations

import tracemalloc

import numpy as np

import codec

#: The most memory a batch of 10,000 digits may allocate at once (inputs and outputs included).
PEAK_LIMIT = 256 << 20


def test_full_test_set_in_one_batch(mnist_test: tuple[np.ndarray, np.ndarray], shipped_levels: list[int]) -> None:
    images = list(mnist_test[0])
    level = shipped_levels[len(shipped_levels) // 2]
    tracemalloc.start()
    try:
        files = codec.compress_many(images, quality=level, effort=0)  # the search's memory: the next test
        decoded = codec.decompress_many(files)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"batch peak {peak / 2**20:.0f} MiB"
    assert len(files) == len(decoded) == 10000
    for i in range(0, 10000, 97):  # the one-at-a-time path gives the same bytes and pixels
        assert codec.compress(images[i], quality=level, effort=0) == files[i]
        assert np.array_equal(codec.decompress(files[i]), decoded[i])


def test_search_memory_is_bounded(mnist_test: tuple[np.ndarray, np.ndarray], shipped_levels: list[int]) -> None:
    """The encoder's search synthesises its candidates in bounded batches, whatever the batch of images (an
    archive's: one model searches them all; a single file's digit is searched alone)."""
    from codec import encoder
    from codec.images import prepare

    images = [prepare(image) for image in mnist_test[0][:300]]
    level = shipped_levels[len(shipped_levels) // 2]
    tracemalloc.start()
    try:
        _, payloads = encoder.encode_payloads(images, level, effort=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"search peak {peak / 2**20:.0f} MiB"
    assert len(payloads) == 300
