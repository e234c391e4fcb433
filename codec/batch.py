"""Batch work for the command line: find inputs, name outputs, code files in bounded batches.

Workers take a chunk of input paths and yield, per file, the coded bytes or the
error message, so one bad file never stops the others. Every file is read with
a size bound, and images are coded in batches bounded by pixels
(:mod:`codec.limits`), so memory does not grow with the number or the size of
the inputs. With several jobs the chunks go to worker processes, a few at a
time; the output is byte-identical to one job.
"""

from __future__ import annotations

import collections
import gzip
import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image

from . import api
from .bitstream import MAX_FILE_BYTES, Header
from .encoder import Encoded, Encoder
from .errors import CodecError, InputError
from .fileio import STDIO, opened, read_bounded, read_stream
from .images import Prepared, open_image, prepare
from .limits import BATCH_IMAGES, BATCH_PIXELS, MAX_IMAGE_FILE_BYTES, SEARCHED_BATCH_IMAGES, images_per_batch

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = ["STDIO", "Result"]

T = TypeVar("T")

#: Files handed to a worker at once, at most (:func:`chunk_size`).
CHUNK = 256
#: ... and at least, unless there are fewer files.
MIN_CHUNK = 16

IMAGE_SUFFIXES = frozenset({".png", ".bmp", ".gif", ".jpg", ".jpeg", ".pgm", ".pbm", ".ppm", ".tif", ".tiff", ".webp"})
AEC_SUFFIXES = frozenset({".aec"})
#: What ``aec decompress`` writes, by the output's suffix: lossless formats only.
OUTPUT_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".pgm": "PPM", ".pnm": "PPM"}


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


def output_format(target: str) -> str:
    """The image format ``aec decompress`` writes to ``target`` (PNG for standard output and unknown names)."""
    return OUTPUT_FORMATS.get(Path(target).suffix.lower(), "PNG") if target != STDIO else "PNG"


def _bounded_batches(
    items: Iterable[tuple[Result, T | None, int]], images: int = BATCH_IMAGES
) -> Iterator[list[tuple[Result, T | None, int]]]:
    """Group (result, work, pixels) triples into batches of at most ``images`` images or
    :data:`BATCH_PIXELS` pixels (a larger image alone), in order."""
    batch: list[tuple[Result, T | None, int]] = []
    pixels = 0
    for item in items:
        batch.append(item)
        pixels += item[2]
        if len(batch) >= images or pixels >= BATCH_PIXELS:
            yield batch
            batch, pixels = [], 0
    if batch:
        yield batch


def _read_images(sources: Sequence[str]) -> Iterator[tuple[Result, Prepared | None, int]]:
    for source in sources:
        try:
            raw = read_bounded(source, MAX_IMAGE_FILE_BYTES, "image file")
            item = prepare(open_image(io.BytesIO(raw)))
        except CodecError as exc:
            yield Result(source, error=str(exc)), None, 0
            continue
        size = item.pixels.size
        yield Result(source, notice=item.notice, input_bytes=len(raw), pixels=size), item, size


def compress_chunk(
    sources: Sequence[str],
    quality: int,
    psnr: float | None = None,
    max_bytes: int | None = None,
    effort: int = api.DEFAULT_EFFORT,
    max_error: int | None = None,
    restore: bool = False,
) -> Iterator[Result]:
    """Compress image files through one :class:`codec.encoder.Encoder`, a bounded batch at a time.

    With ``max_error`` every image gets the refinement layer (``restore``: restored where it pays); with a PSNR
    or size target the quality is chosen per image (the notice names it).
    """
    encoder = Encoder(quality, effort, max_error, psnr, max_bytes, restore)
    for batch in _bounded_batches(_read_images(sources), BATCH_IMAGES if effort == 0 else SEARCHED_BATCH_IMAGES):
        results = [r for r, _, _ in batch]
        ready = [(i, p) for i, (_, p, _) in enumerate(batch) if p is not None]
        for (index, _), coded in zip(ready, _encode_each(encoder, [p for _, p in ready])):
            notice = ", ".join(filter(None, [results[index].notice, coded.notice])) or None
            if coded.level is not None:  # what a target chose
                notice = ", ".join(filter(None, [f"level {coded.level}", notice]))
            size = len(coded.data or b"")
            results[index] = replace(
                results[index], data=coded.data, error=coded.error, notice=notice, coded_bytes=size
            )
        yield from results


def _encode_each(encoder: Encoder, prepared: Sequence[Prepared]) -> list[Encoded]:
    """The images coded as one batch; when the batch fails, each alone, so a failure names its own file."""
    try:
        return encoder.encode(prepared)
    except CodecError as exc:
        if len(prepared) == 1:
            return [Encoded(None, error=str(exc))]
    out = []
    for item in prepared:
        try:
            out += encoder.encode([item])
        except CodecError as exc:
            out.append(Encoded(None, error=str(exc)))
    return out


def _read_files(sources: Sequence[str]) -> Iterator[tuple[Result, tuple[Header, api.Decoded] | None, int]]:
    for source in sources:
        try:
            raw = read_bounded(source, MAX_FILE_BYTES, ".aec file")
            header, latents = api.decode_latents(raw)
        except CodecError as exc:
            yield Result(source, error=str(exc)), None, 0
            continue
        yield (
            Result(source, input_bytes=len(raw), coded_bytes=len(raw)),
            (header, latents),
            header.width * header.height,
        )


def decompress_chunk(sources: Sequence[str], image_format: str = "PNG") -> Iterator[Result]:
    """Decompress ``.aec`` files to image files, a bounded batch at a time; failures are reported per file."""
    for batch in _bounded_batches(_read_files(sources)):
        results = [r for r, _, _ in batch]
        ready = [(i, d) for i, (_, d, _) in enumerate(batch) if d is not None]
        for (index, _), pixels in zip(ready, api.reconstruct([d for _, d in ready])):
            data = encode_image(pixels, image_format)
            results[index] = replace(results[index], data=data, pixels=int(pixels.size))
        yield from results


def denoise_chunk(sources: Sequence[str], image_format: str = "PNG") -> Iterator[Result]:
    """Denoise image files to image files (:mod:`codec.denoise`), a bounded batch at a time; failures are
    reported per file."""
    from .denoise import denoise_prepared, load

    model = load()
    for batch in _bounded_batches(_read_images(sources)):
        results = [r for r, _, _ in batch]
        for index, (_, item, _) in enumerate(batch):
            if item is not None:
                data = encode_image(denoise_prepared([item], model)[0], image_format)
                results[index] = replace(results[index], data=data)
        yield from results


def encode_image(pixels: np.ndarray, image_format: str = "PNG") -> bytes:
    """An 8-bit grayscale image file (PNG by default) of ``pixels``."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format=image_format)
    return buffer.getvalue()


def _collect(work: Callable[..., Iterable[Result]], chunk: list[str], *args: object) -> list[Result]:
    """A worker's whole chunk, as a list to send back."""
    return list(work(chunk, *args))


def run_chunks(
    work: Callable[..., Iterable[Result]], sources: Sequence[str], jobs: int, *args: object
) -> Iterator[Result]:
    """Apply ``work(chunk, *args)`` to chunks of ``sources``, in order, with ``jobs`` processes.

    With several processes at most two chunks per process are in flight, so
    finished work waiting to be written stays bounded however many files there are.
    """
    size = chunk_size(len(sources), jobs)
    chunks = [list(sources[i : i + size]) for i in range(0, len(sources), size)]
    if jobs <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield from work(chunk, *args)
        return
    # Imported here: a command on one process starts without them (aec compress digit.png).
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Spawned, not forked: a fork of a process with BLAS threads running is not safe everywhere.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=context) as pool:
        pending: collections.deque[Future[list[Result]]] = collections.deque()
        waiting = collections.deque(chunks)
        while waiting or pending:
            while waiting and len(pending) < 2 * jobs:
                pending.append(pool.submit(_collect, work, waiting.popleft(), *args))
            results = pending.popleft().result()
            yield from results


def chunk_size(files: int, jobs: int) -> int:
    """Files per chunk: about four chunks per process, so the processes finish together and progress comes
    often (a searched digit takes a quarter of a second), within :data:`MIN_CHUNK` and :data:`CHUNK`.

    >>> chunk_size(300, 2), chunk_size(100_000, 8), chunk_size(10, 4), chunk_size(5000, 1)
    (38, 256, 16, 256)
    """
    if jobs <= 1:
        return CHUNK
    return max(MIN_CHUNK, min(CHUNK, -(-files // (4 * jobs))))


def default_jobs() -> int:
    """Worker processes when ``--jobs 0`` asks for all cores."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@dataclass(frozen=True)
class PackInput:
    """One input of ``aec pack``: an image file, or an IDX file of many images (told apart by content)."""

    name: str
    count: int
    idx: bool
    input_bytes: int


def _idx_stream(stream: IO[bytes]) -> IO[bytes] | None:
    """The IDX content of a stream (through gzip when compressed), or None when it is not an IDX file."""
    from .data import looks_like_idx

    peek = stream.peek(4)[:4] if hasattr(stream, "peek") else b""
    if peek[:2] == b"\x1f\x8b":
        unzipped = gzip.GzipFile(fileobj=stream)
        try:
            head = unzipped.peek(4)[:4]
        except (OSError, EOFError):
            raise InputError("a gzip file that cannot be read") from None
        if not looks_like_idx(head):
            raise InputError("a gzip file that is not an IDX file")
        return unzipped  # type: ignore[return-value]
    return stream if looks_like_idx(peek) else None


def plan_pack(names: Sequence[str], recursive: bool) -> list[PackInput]:
    """The inputs of ``aec pack`` and how many images each holds, from their headers alone."""
    from .data import read_idx_image_header

    files, errors = collect_inputs(names, IMAGE_SUFFIXES, recursive)
    if errors:
        raise CodecError(errors[0])
    if files.count(STDIO) > 1:
        raise CodecError("standard input can be read only once")
    plan = []
    for name in files:
        shown = "<stdin>" if name == STDIO else name
        try:
            if name == STDIO:
                plan.append(PackInput(name, 1, False, 0))  # told apart when read
                continue
            with opened(name) as stream:
                size = os.fstat(stream.fileno()).st_size
                idx = _idx_stream(stream)
                if idx is None:
                    plan.append(PackInput(name, 1, False, size))
                    continue
                count = read_idx_image_header(idx.read)[0]
                plan.append(PackInput(name, count, True, size))
        except CodecError as exc:
            raise CodecError(f"{shown}: {exc}") from None
    return plan


def pack_batches(plan: Sequence[PackInput]) -> Iterator[list[Prepared]]:
    """The images of ``plan``, in order, prepared in batches bounded by pixels; errors name their file."""
    batch: list[Prepared] = []
    for item in plan:
        shown = "<stdin>" if item.name == STDIO else item.name
        try:
            for prepared in _images_of(item.name):
                batch.append(prepared)
                if len(batch) >= images_per_batch(prepared.pixels.size):
                    yield batch
                    batch = []
        except CodecError as exc:
            raise CodecError(f"{shown}: {exc}") from None
    if batch:
        yield batch


def _images_of(name: str) -> Iterator[Prepared]:
    """Every image of one pack input: an IDX file's, streamed, or one image file's."""
    from .data import read_idx_image_header

    with opened(name) as stream:
        idx = _idx_stream(stream)
        if idx is None:
            yield prepare(open_image(io.BytesIO(read_stream(stream, MAX_IMAGE_FILE_BYTES, "image file"))))
            return
        count, height, width = read_idx_image_header(idx.read)
        size = height * width
        step = images_per_batch(size)
        try:
            for first in range(0, count, step):
                n = min(step, count - first)
                data = idx.read(n * size)
                if len(data) != n * size:
                    raise InputError(f"IDX file is truncated (image {first + len(data) // max(size, 1)} of {count})")
                for image in np.frombuffer(data, np.uint8).reshape(n, height, width):
                    yield prepare(image)
            if idx.read(1):
                raise InputError(f"IDX file has bytes after its {count} images")
        except EOFError as exc:  # a gzip stream cut short (OSError is the opener's)
            raise InputError(f"cannot read ({exc})") from None
