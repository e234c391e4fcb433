"""Batch work for the command line: find inputs, name outputs, code files in chunks.

Workers take a chunk of input paths and return, per file, the coded bytes or the
error message, so one bad file never stops the others. With several jobs the
chunks go to worker processes; the output is byte-identical to one job.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from . import api
from .bitstream import Header
from .errors import CodecError
from .images import Prepared, open_image, prepare

STDIO = "-"
#: Files handed to a worker at once.
CHUNK = 256

IMAGE_SUFFIXES = frozenset({".png", ".bmp", ".gif", ".jpg", ".jpeg", ".pgm", ".pbm", ".ppm", ".tif", ".tiff", ".webp"})
AEC_SUFFIXES = frozenset({".aec"})


@dataclass(frozen=True)
class Result:
    """The outcome of coding one input."""

    source: str
    data: bytes | None = None
    error: str | None = None
    notice: str | None = None
    input_bytes: int = 0
    pixels: int = 0
    coded_bytes: int = 0  # the .aec side: the output when compressing, the input when decompressing


def collect_inputs(names: Sequence[str], suffixes: frozenset[str], recursive: bool) -> tuple[list[str], list[str]]:
    """Expand folders into the files inside (with matching suffixes); returns (files, errors)."""
    files: list[str] = []
    errors: list[str] = []
    for name in names:
        path = Path(name)
        if name == STDIO or not path.is_dir():
            files.append(name)
            continue
        pattern = path.rglob("*") if recursive else path.glob("*")
        found = sorted(str(p) for p in pattern if p.is_file() and p.suffix.lower() in suffixes)
        if not found:
            errors.append(
                f"{name}: folder holds no {'/'.join(sorted(suffixes))} files"
                + ("" if recursive else " (use -r to recurse)")
            )
        files.extend(found)
    return files, errors


def output_path(source: str, output: str | None, suffix: str, several: bool, root: str | None = None) -> str:
    """Where the result of ``source`` goes: beside it, in the ``output`` folder, or ``output`` itself."""
    if output == STDIO:
        return STDIO
    if source == STDIO and output is None:
        return STDIO
    stem = "stdin" if source == STDIO else Path(source).stem
    if output is None:
        return str(Path(source).with_name(stem + suffix))
    if several or Path(output).is_dir():
        relative = Path(stem + suffix)
        if root is not None and source != STDIO:
            relative = Path(source).relative_to(root).with_name(stem + suffix)
        return str(Path(output) / relative)
    return output


def read_input(source: str) -> bytes:
    """The bytes of a file, or of standard input for ``-``."""
    if source == STDIO:
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except FileNotFoundError:
        raise CodecError("no such file") from None
    except IsADirectoryError:
        raise CodecError("is a folder") from None
    except OSError as exc:
        raise CodecError(exc.strerror or str(exc)) from None


def compress_chunk(
    sources: Sequence[str],
    quality: int,
    psnr: float | None = None,
    max_bytes: int | None = None,
    effort: int = api.DEFAULT_EFFORT,
) -> list[Result]:
    """Compress a chunk of image files at ``quality``, or per image for a PSNR or size target."""
    results: list[Result] = []
    ready: list[tuple[int, Prepared]] = []
    for source in sources:
        try:
            raw = read_input(source)
            prepared = prepare(open_image(io.BytesIO(raw)))
        except CodecError as exc:
            results.append(Result(source, error=str(exc)))
            continue
        ready.append((len(results), prepared))
        results.append(Result(source, notice=prepared.notice, input_bytes=len(raw), pixels=prepared.pixels.size))
    if ready and psnr is None and max_bytes is None:
        files = api.encode_prepared([p for _, p in ready], quality, effort)
        for (index, _), data in zip(ready, files):
            results[index] = replace(results[index], data=data, coded_bytes=len(data))
    elif ready:
        from .targets import encode_for_target

        for (index, _), choice in zip(ready, encode_for_target([p for _, p in ready], psnr, max_bytes, effort)):
            notice = ", ".join(filter(None, [results[index].notice, choice.notice])) or None
            if choice.level is not None:
                notice = ", ".join(filter(None, [f"level {choice.level}", notice]))
            size = len(choice.data or b"")
            results[index] = replace(
                results[index], data=choice.data, error=choice.error, notice=notice, coded_bytes=size
            )
    return results


def decompress_chunk(sources: Sequence[str], image_format: str = "PNG") -> list[Result]:
    """Decompress a chunk of ``.aec`` files to image files; failures are reported per file."""
    results: list[Result] = []
    ready: list[tuple[int, tuple[Header, np.ndarray]]] = []
    for source in sources:
        try:
            raw = read_input(source)
            ready.append((len(results), api.decode_latents(raw)))
            results.append(Result(source, input_bytes=len(raw), coded_bytes=len(raw)))
        except CodecError as exc:
            results.append(Result(source, error=str(exc)))
    images = api.reconstruct([d for _, d in ready])
    for (index, _), pixels in zip(ready, images):
        results[index] = replace(results[index], data=encode_image(pixels, image_format), pixels=int(pixels.size))
    return results


def encode_image(pixels: np.ndarray, image_format: str) -> bytes:
    """An 8-bit grayscale image file (PNG by default) of ``pixels``."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format=image_format)
    return buffer.getvalue()


def run_chunks(work: Callable[..., list[Result]], sources: Sequence[str], jobs: int, *args: object) -> Iterator[Result]:
    """Apply ``work(chunk, *args)`` to chunks of ``sources``, in order, with ``jobs`` processes."""
    chunks = [list(sources[i : i + CHUNK]) for i in range(0, len(sources), CHUNK)]
    if jobs <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield from work(chunk, *args)
        return
    # Spawned, not forked: a fork of a process with BLAS threads running is not safe everywhere.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=context) as pool:
        futures = [pool.submit(work, chunk, *args) for chunk in chunks]
        for future in futures:
            yield from future.result()


def default_jobs() -> int:
    """Worker processes when ``--jobs 0`` asks for all cores."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def load_images_for_archive(names: Sequence[str], recursive: bool) -> tuple[list[np.ndarray], int]:
    """Images from files, folders and IDX files (.gz or raw), in order; returns them and the input bytes."""
    import gzip

    from .data import read_idx
    from .images import to_grayscale

    files, errors = collect_inputs(names, IMAGE_SUFFIXES, recursive)
    if errors:
        raise CodecError(errors[0])
    images: list[np.ndarray] = []
    total = 0
    for name in files:
        try:
            raw = read_input(name)
        except CodecError as exc:
            raise CodecError(f"{name}: {exc}") from None
        total += len(raw)
        if "idx" in Path(name).name or name.endswith("-ubyte") or name.endswith("-ubyte.gz"):
            try:
                array = read_idx(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
            except (OSError, EOFError) as exc:
                raise CodecError(f"{name}: cannot read ({exc})") from None
            if array.ndim != 3 or array.dtype != np.uint8:
                raise CodecError(f"{name}: expected an IDX file of uint8 images, got shape {array.shape}")
            images.extend(array)
            continue
        try:
            images.append(to_grayscale(open_image(io.BytesIO(raw)))[0])
        except CodecError as exc:
            raise CodecError(f"{name}: {exc}") from None
    return images, total
