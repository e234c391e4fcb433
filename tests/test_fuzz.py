"""Hostile and damaged input: every file decodes or fails with the codec's own error.

Property-based (hypothesis, derandomized so runs repeat) and a short run of the
coverage-guided atheris harness in ``fuzz/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codec
from codec import bitstream, context_tables

ROOT = Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def files(digits: np.ndarray, shipped_levels: list[int], photo: np.ndarray) -> list[bytes]:
    wide = np.zeros((20, 45), np.uint8)
    wide[4:16, 10:30] = 200
    plain = [codec.compress(digits[0], quality=level) for level in shipped_levels] + [codec.compress(255 - wide)]
    plain.append(codec.compress(photo[:40, :48], quality=8, effort=0))  # latents in fitted contexts (version 10)
    # The pixel model's files (format version 7), lossless and within a bound, dark ink on light among them.
    return plain + [codec.compress(digits[1], max_error=0), codec.compress(255 - digits[2], max_error=3)]


def _decodes_or_refuses(data: bytes) -> None:
    try:
        pixels = codec.decompress(data)
    except codec.CodecError as exc:
        assert str(exc)
        return
    assert pixels.ndim == 2 and pixels.dtype == np.uint8


def _damaged(original: bytes, data: st.DataObject, flips: int) -> bytes:
    """``original`` cut at a drawn length, with up to ``flips`` drawn bits flipped."""
    damaged = bytearray(original[: data.draw(st.integers(0, len(original)))])
    for _ in range(data.draw(st.integers(0, flips))):
        if damaged:
            bit = data.draw(st.integers(0, 8 * len(damaged) - 1))
            damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


def _reseal(body: bytes, model_id: int, contexts_id: int) -> bytes:
    """``body`` with a checksum for ``model_id`` (the model the decoder will try) and, when it says version 10, for
    the context tables ``contexts_id``; as version 4 when it is too short to say."""
    version = body[1] >> 4 if len(body) > 1 else 4
    return body + bitstream.checksum(version, model_id, body, contexts_id).to_bytes(2, "little")


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _decodes_or_refuses(data)
    _decodes_or_refuses(bitstream.MAGIC + data)


@FUZZ
@given(st.data())
def test_truncated_and_bit_flipped(files: list[bytes], data: st.DataObject) -> None:
    original = data.draw(st.sampled_from(files))
    damaged = _damaged(original, data, 4)
    if damaged != original:
        with pytest.raises(codec.CodecError):
            codec.decompress(damaged)


@FUZZ
@given(st.data())
def test_resealed_mutations_reach_the_checks_behind_the_checksum(files: list[bytes], data: st.DataObject) -> None:
    """Damage that a valid checksum hides: header fields at their limits, payloads too long or short."""
    original = data.draw(st.sampled_from(files))
    header = codec.inspect(original).header
    model_id = header.model_id
    body = bytearray(original[:-2])
    fixed = 3  # magic, version and flags, level and the model id's first digit
    field = data.draw(st.sampled_from(["version", "flags", "level", "model", "size", "payload", "extend", "shorten"]))
    if field == "version":
        body[1] = (data.draw(st.integers(0, 15)) << 4) | (body[1] & 0xF)
    elif field == "flags":
        body[1] = (body[1] & 0xF0) | data.draw(st.integers(0, 15))
    elif field == "level":
        body[2] = (body[2] & 0xF0) | data.draw(st.integers(0, 15))
    elif field == "model":
        body[2] = (body[2] & 0x0F) | data.draw(st.integers(0, 15)) << 4
        model_id = data.draw(st.sampled_from([model_id, model_id ^ 0x0FF, model_id ^ 0x100, 0]))
    elif field == "size":
        width = data.draw(st.sampled_from([0, 1, 27, 28, 29, bitstream.MAX_SIDE, bitstream.MAX_SIDE + 1, 2**21 - 1]))
        height = data.draw(st.sampled_from([0, 1, 28, 1024, bitstream.MAX_SIDE + 1, 2**21 - 1]))
        body[1] |= bitstream.FLAG_EXPLICIT_SIZE
        body = body[:fixed] + bitstream._varint(width) + bitstream._varint(height) + body[fixed:]
    elif field == "payload":
        where = data.draw(st.integers(fixed, max(fixed, len(body) - 1)))
        if where < len(body):
            body[where] ^= data.draw(st.integers(1, 255))
    elif field == "extend":
        body += data.draw(st.binary(min_size=1, max_size=64))
    else:
        body = body[: data.draw(st.integers(0, len(body)))]
    _decodes_or_refuses(_reseal(bytes(body), model_id, header.contexts_id or context_tables.load().model_id))


def test_atheris_harness_short_run(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for seed in (ROOT / "fuzz" / "corpus").iterdir():
        (corpus / seed.name).write_bytes(seed.read_bytes())
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "fuzz" / "fuzz_decoder.py"),
            str(corpus),
            "-runs=3000",
            "-seed=1",
            "-timeout=10",
            "-rss_limit_mb=2048",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # libFuzzer stops at the end of the mutation batch that reaches -runs, so it may report a few more.
    done = re.search(r"Done (\d+) runs", run.stderr)
    assert done is not None and 3000 <= int(done.group(1)) < 3100, run.stderr[-3000:]


@pytest.fixture(scope="module")
def lossless_archive(digits: np.ndarray) -> bytes:
    from codec import archive

    return archive.pack(list(digits[:6]) + [255 - digits[6]], quality=archive.LOSSLESS)


@FUZZ
@given(st.data())
def test_damaged_lossless_archives_are_refused(lossless_archive: bytes, data: st.DataObject) -> None:
    """A lossless archive cut short or with bits flipped: its checksums refuse it, never anything else."""
    from codec import archive

    damaged = _damaged(lossless_archive, data, 3)
    if damaged != lossless_archive:
        with pytest.raises(codec.CodecError):
            archive.open_archive(damaged).decode_all()
