"""``aec pack``, ``aec pack-shards``, ``aec unpack`` and ``aec search``: many same-size images in ``.aecs`` archives."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from .. import batch
from ..batch import STDIO
from ..errors import ArgumentError, CodecError
from ..models import DEFAULT_LEVEL
from ..search import DEFAULT_EFFORT
from .bars import _progress_bar
from .common import Effort, Force, Quality, Quiet, Recursive, _check_quality, _fail, _ratio, _stdout, app

ArchiveOutput = Annotated[str, typer.Option("--output", "-o", help="The archive to write (.aecs; '-': stdout).")]
Scheduler = Annotated[
    str | None,
    typer.Option("--scheduler", help="Address of a running Dask scheduler (tcp://host:8786); default: a local one."),
]
Workers = Annotated[
    int, typer.Option("--workers", "-w", min=0, help="Worker processes of the local cluster (0: one per core).")
]

if TYPE_CHECKING:
    from ..archive import ArchiveHead
    from ..fileio import StagedFolder
    from ..shards import Shard

Lossless = Annotated[
    bool, typer.Option("--lossless", help="Keep every pixel (the lossless pixel model); --quality does not apply.")
]


def _pack_quality(quality: int, lossless: bool) -> int:
    """The archive's quality: the level asked for, or the lossless one; a usage error for a level not installed."""
    from ..archive import LOSSLESS

    if lossless:
        return LOSSLESS
    _check_quality(quality)
    return quality


@app.command()
def pack(
    inputs: Annotated[
        list[str], typer.Argument(help="Image files, folders, or IDX files (.gz or raw) such as MNIST's ('-': stdin).")
    ],
    output: ArchiveOutput,
    quality: Quality = DEFAULT_LEVEL,
    effort: Effort = DEFAULT_EFFORT,
    lossless: Lossless = False,
    force: Force = False,
    recursive: Recursive = False,
    quiet: Quiet = False,
) -> None:
    """Pack many same-size images into one .aecs archive: one header, one byte per image.

    Inputs are told apart by content: an IDX file (MNIST's format, gzipped or
    not) gives all its images, any other file is one image. Images are coded as
    they are read, with a progress bar; the archive appears only when complete.

    Examples:

      aec pack digits/ -o digits.aecs -q 6

      aec pack t10k-images-idx3-ubyte.gz -o mnist-test.aecs

      aec pack --lossless t10k-images-idx3-ubyte.gz -o mnist-test.aecs   # unpack gives the IDX file back
    """
    quality = _pack_quality(quality, lossless)
    try:
        if output == STDIO:
            out_stream = _stdout()
        else:
            from ..fileio import check_writable

            check_writable(Path(output), force)
        plan = batch.plan_pack(inputs, recursive)
        total = sum(item.count for item in plan)
    except CodecError as exc:
        raise _fail(str(exc)) from None
    try:
        with _progress_bar(total, quiet, "packing") as bar:
            from ..shards import pack_file, pack_stream

            advance = partial(bar.advance, bar.task_ids[0])
            if output == STDIO:
                packed = pack_stream(plan, out_stream, quality, effort, advance)
            else:
                packed = pack_file(plan, Path(output), quality, effort, force, advance)
    except KeyboardInterrupt:
        typer.echo("interrupted: no archive was written", err=True)
        raise typer.Exit(130) from None
    except CodecError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        where = "standard output" if output == STDIO else output
        raise _fail(f"cannot write {where} ({exc.strerror or exc})") from None
    if not quiet:
        typer.echo(_packed_line(packed, "<stdout>" if output == STDIO else output), err=True)


def _packed_line(packed: Shard, where: str) -> str:
    """``aec pack``'s summary of the archive it wrote."""
    rate = 8 * packed.output_bytes / packed.pixels
    return f"{packed.images} images -> {where}: {packed.output_bytes:,} bytes, {rate:.3f} bpp, " + _ratio(
        packed.input_bytes, packed.output_bytes
    )


@app.command("pack-shards")
def pack_shards(
    inputs: Annotated[
        list[str], typer.Argument(help="The shards: IDX files (.gz or raw), images, or folders of images.")
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="The folder that receives one NAME.aecs per shard.")],
    quality: Quality = DEFAULT_LEVEL,
    effort: Effort = DEFAULT_EFFORT,
    lossless: Lossless = False,
    scheduler: Scheduler = None,
    workers: Workers = 0,
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Pack each shard into its own .aecs archive, on a Dask cluster (pip install 'aec[cluster]').

    Each shard is one task: a worker codes its images in bounded batches and
    writes the archive atomically, so memory per worker stays bounded and a
    failed shard leaves no file. With --scheduler, the workers run wherever
    the scheduler's are and must see the shards and the output folder at the
    same paths (a shared file system), with the same aec installed.

    Examples:

      aec pack-shards shards/*.idx.gz -o archives/ --workers 8

      aec pack-shards /data/shards/ -o /data/aecs/ --scheduler tcp://head:8786
    """
    from ..shards import pack_shards as run

    quality = _pack_quality(quality, lossless)
    failures = images = size = pixels = 0
    try:
        with _progress_bar(len(inputs), quiet, "shards") as bar:
            for shard in run(inputs, output, quality, effort, scheduler=scheduler, workers=workers, force=force):
                bar.advance(bar.task_ids[0])
                if shard.error is not None:
                    failures += 1
                    bar.console.print(f"error: {shard.error}", markup=False, highlight=False)
                    continue
                images, size, pixels = images + shard.images, size + shard.output_bytes, pixels + shard.pixels
                if not quiet:
                    bar.console.print(
                        f"{shard.source} -> {shard.target}: {shard.images} images, {shard.output_bytes:,} bytes",
                        markup=False,
                        highlight=False,
                    )
    except KeyboardInterrupt:
        typer.echo("interrupted: the shards packed so far are complete, no other archive was written", err=True)
        raise typer.Exit(130) from None
    except CodecError as exc:
        raise _fail(str(exc), 2 if isinstance(exc, ArgumentError) else 1) from None
    if not quiet:
        rate = f", {8 * size / pixels:.3f} bpp" if pixels else ""
        typer.echo(
            f"{len(inputs) - failures} shards, {images} images, {size:,} bytes{rate}, {failures} failed", err=True
        )
    if failures:
        raise typer.Exit(1)


@app.command()
def unpack(
    archive_file: Annotated[str, typer.Argument(help="The .aecs archive ('-': standard input).")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="A folder for PNGs, or an IDX file (name ending -ubyte or -ubyte.gz).")
    ],
    force: Force = False,
    quiet: Quiet = False,
) -> None:
    """Restore the images of an archive as PNG files, or as one IDX file.

    The archive is read and decoded as a stream, a batch at a time, with a
    progress bar; the outputs appear only once every image is decoded and both
    checksums hold (PNGs are written to a hidden folder first).

    Examples:

      aec unpack digits.aecs -o digits/

      aec unpack mnist-test.aecs -o t10k-images-idx3-ubyte.gz
    """
    from .. import archive
    from ..fileio import StagedFolder, check_writable, opened

    if output == STDIO:
        raise _fail("unpack writes a folder of PNGs or an IDX file; name one with -o", 2)
    to_idx = output.endswith(("-ubyte", "-ubyte.gz"))
    shown = "<stdin>" if archive_file == STDIO else archive_file
    staged: StagedFolder | None = None
    try:
        with opened(archive_file) as stream:
            try:
                head = archive.read_head(stream.read)
            except CodecError as exc:
                raise CodecError(f"{shown}: {exc}") from None
            digits = max(5, len(str(head.count - 1)))
            names = [f"{i:0{digits}d}.png" for i in range(head.count)]
            if to_idx:
                check_writable(Path(output), force)
            else:
                staged = StagedFolder(Path(output), names, force)
            images = archive.decode_batches(stream.read, head)
            with _progress_bar(head.count, quiet, "unpacking") as bar:
                advance = partial(bar.advance, bar.task_ids[0])
                if staged is None:
                    _write_idx(images, head, Path(output), force, advance)
                    written = output
                else:
                    _write_pngs(images, staged, names, advance)
                    written = f"{output.rstrip('/')}/ ({head.count} PNG files)"
    except KeyboardInterrupt:
        if staged is not None:
            staged.discard()
        typer.echo("interrupted: nothing was written", err=True)
        raise typer.Exit(130) from None
    except CodecError as exc:
        if staged is not None:
            staged.discard()
        raise _fail(str(exc)) from None
    if not quiet:
        typer.echo(f"{shown} -> {written}: {head.count} images", err=True)


def _write_idx(
    images: Iterable[list[np.ndarray]], head: ArchiveHead, output: Path, force: bool, advance: Callable[[int], None]
) -> None:
    """The decoded images as one IDX file (gzipped when its name ends .gz), written atomically."""
    import gzip

    from ..data import idx_image_header
    from ..fileio import atomic_output

    with atomic_output(output, force) as fh:
        gzipped = output.name.endswith(".gz")
        with gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) if gzipped else contextlib.nullcontext(fh) as sink:
            sink.write(idx_image_header(head.count, head.height, head.width))
            for decoded in images:
                sink.write(np.stack(decoded).tobytes())
                advance(len(decoded))


def _write_pngs(
    images: Iterable[list[np.ndarray]], staged: StagedFolder, names: list[str], advance: Callable[[int], None]
) -> None:
    """The decoded images as PNG files in a staged folder, which appears only once every one is written."""
    index = 0
    for decoded in images:
        for image in decoded:
            staged.write(names[index], batch.encode_image(image, "PNG"))
            index += 1
        advance(len(decoded))
    staged.commit()


@app.command()
def search(
    paths: Annotated[
        list[str],
        typer.Argument(help="Query images (image or IDX files), then the archive.", metavar="QUERY... ARCHIVE"),
    ],
    k: Annotated[int, typer.Option("-k", help="Neighbours listed per query.")] = 10,
) -> None:
    """List the archived images nearest each query, most similar first.

    Images are ranked by the cosine similarity of their latents (at levels 1-6
    projected by the level's search projection): the archive is entropy-decoded
    only, never decoded to pixels. Each line names a query, then the indices of
    its neighbours in the archive (as aec unpack numbers them) with their
    similarity. The archive must be packed at a quality level, not --lossless;
    level 6 searches fastest and ranks best (1.1 s a query over 60,000 digits).

    Examples:

      aec pack train-images-idx3-ubyte.gz -o train.aecs -q 6 -e 0

      aec search digit.png train.aecs -k 5

      aec search t10k-images-idx3-ubyte.gz train.aecs -k 10
    """
    from .. import archive, retrieval
    from ..fileio import opened

    if len(paths) < 2:
        raise _fail("give at least one query and then the archive", 2)
    if k < 1:
        raise _fail(f"-k must be at least 1, got {k}", 2)
    *queries, archive_file = paths
    try:
        plan = batch.plan_pack(queries, recursive=False)
        names = [f"{item.name}[{i}]" if item.idx else item.name for item in plan for i in range(item.count)]
        if len(names) > retrieval.MAX_QUERIES:
            raise ArgumentError(f"search takes at most {retrieval.MAX_QUERIES:,} queries, got {len(names):,}")
        prepared = [image for images in batch.pack_batches(plan) for image in images]
        with opened(archive_file) as stream:
            try:
                head = archive.read_head(stream.read)
                found = retrieval.search(stream.read, head, prepared, k)
            except CodecError as exc:
                raise CodecError(f"{archive_file}: {exc}") from None
    except ArgumentError as exc:
        raise _fail(str(exc), 2) from None
    except CodecError as exc:
        raise _fail(str(exc)) from None
    for name, matches in zip(names, found):
        typer.echo(f"{name}: " + ", ".join(f"{m.index} ({m.similarity:.3f})" for m in matches))
