"""The ``aec`` command line: a thin layer over :mod:`codec.api`.

Exit codes: 0 everything worked, 1 some input failed, 2 usage error.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, cast

import numpy as np
import typer

from . import batch, progress
from .batch import STDIO, Result
from .errors import ArgumentError, CodecError
from .models import DEFAULT_LEVEL
from .search import DEFAULT_EFFORT, EFFORTS

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

app = typer.Typer(
    name="aec",
    help="aec: a learned image codec for small grayscale images (MNIST-like digits).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 everything worked, 1 some input failed, 2 usage error.",
)

Quiet = Annotated[bool, typer.Option("--quiet", help="Print nothing but errors.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Also print notices about each input.")]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing output files.")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=0, help="Worker processes (0: one per core).")]
Effort = Annotated[
    int,
    typer.Option(
        "--effort",
        "-e",
        min=min(EFFORTS),
        max=max(EFFORTS),
        help="How hard the encoder works: 0 (fastest: the level's own model, rounded latents) to 3 (smallest "
        "files for the quality); from 1 each image may take a neighbouring level's model where it codes cheaper "
        "(not in archives: one model codes them all).",
    ),
]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders of folder inputs.")]
Output = Annotated[
    str | None, typer.Option("--output", "-o", help="Output file, or folder with several inputs ('-': stdout).")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        from . import __version__
        from .bitstream import SUPPORTED_VERSIONS, VERSION
        from .models import available_levels, load_model

        try:
            models = ", ".join(f"{n}:{load_model(n).model_id:03x}" for n in available_levels()) or "none"
        except CodecError as exc:
            models = f"unavailable ({exc})"
        reads = f"{min(SUPPORTED_VERSIONS)}-{max(SUPPORTED_VERSIONS)}"
        typer.echo(f"aec {__version__}, format version {VERSION} (reads {reads}), models {models}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show versions and exit.")
    ] = False,
) -> None:
    """aec: a learned image codec for small grayscale images (MNIST-like digits)."""


def _check_quality(level: int) -> None:
    """A usage error (exit 2) for a level that is not installed."""
    from .models import available_levels

    have = available_levels()
    if level not in have:
        raise _fail(f"unknown quality {level}; levels are {', '.join(map(str, have)) or 'none installed'}", 2)


def _stdout() -> IO[bytes]:
    """Standard output for binary data: refused when closed or a terminal (where bytes would garble it)."""
    if sys.stdout is None or sys.stdout.closed:
        raise _fail("standard output is closed", 2)
    if sys.stdout.isatty():
        raise _fail("refusing to write binary data to a terminal: redirect it or name a file with -o", 2)
    return sys.stdout.buffer


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve() or os.path.samefile(a, b)
    except OSError:
        return False


def _plan(
    inputs: Sequence[str], output: str | None, suffix: str, accepted: frozenset[str], recursive: bool
) -> tuple[list[str], list[str], list[str]]:
    """Inputs expanded (files, their output paths, errors about the inputs); usage errors exit 2.

    Checked before any work: outputs to standard output (not a terminal), an
    output that would replace its own input, two inputs that would write the
    same file (both fail, named), and an output name of the wrong kind.
    """
    if inputs.count(STDIO) > 1:
        raise _fail("standard input can be read only once", 2)
    files, errors = batch.collect_inputs(inputs, accepted, recursive)
    several = len(files) > 1 or any(Path(i).is_dir() for i in inputs if i != STDIO)
    if several and output == STDIO:
        raise _fail("several outputs cannot all go to standard output", 2)
    if several and output is not None and Path(output).exists() and not Path(output).is_dir():
        raise _fail(f"{output} is not a folder (with several inputs, -o names a folder)", 2)
    roots = [i for i in inputs if i != STDIO and Path(i).is_dir()]
    targets = []
    for source in files:
        root = next((r for r in roots if Path(source).is_relative_to(r)), None)
        targets.append(batch.output_path(source, output, suffix, several, root))
    if STDIO in targets:
        _stdout()
    if not several and output not in (None, STDIO) and not Path(output).is_dir():
        _check_output_name(output, suffix)
    kept_files, kept_targets = [], []
    sources_of: dict[str, list[str]] = {}
    for source, target in zip(files, targets):
        sources_of.setdefault(target, []).append(source)
    for source, target in zip(files, targets):
        shown = "<stdin>" if source == STDIO else source
        if target != STDIO and len(sources_of[target]) > 1:
            others = [o for o in sources_of[target] if o != source]
            errors.append(f"{shown}: {target} would also be written from {others[0]}; rename one or use -o")
        elif target != STDIO and source != STDIO and _same_file(source, target):
            errors.append(f"{shown}: the output would replace the input itself")
        else:
            kept_files.append(source)
            kept_targets.append(target)
    return kept_files, kept_targets, errors


def _check_output_name(output: str, suffix: str) -> None:
    """Refuse an output file name whose suffix promises another format than the one written."""
    ending = Path(output).suffix.lower()
    if suffix == ".aec" and ending in batch.IMAGE_SUFFIXES:
        raise _fail(f"{output}: would hold .aec data under an image name; name it {Path(output).stem}.aec", 2)
    if suffix == ".png" and ending not in batch.OUTPUT_FORMATS and ending != ".aec":
        kinds = ", ".join(sorted(batch.OUTPUT_FORMATS))
        raise _fail(f"{output}: decompress writes lossless images ({kinds}); {ending or 'no suffix'} is not one", 2)


class _NoBar:
    """What the commands use of a progress bar, when none is shown (off a terminal, ``--quiet``, one
    small file): messages go straight to standard error, and rich is not even imported (a third of a
    second-long command's start-up)."""

    task_ids: tuple[TaskID, ...] = (cast("TaskID", 0),)

    @property
    def console(self) -> _NoBar:
        return self

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None) -> TaskID:
        return self.task_ids[0]

    def advance(self, task: TaskID, advance: float = 1) -> None:
        return None

    def update(self, task: TaskID, completed: float | None = None, total: float | None = None) -> None:
        return None

    def print(self, text: str, **style: object) -> None:
        typer.echo(text, err=True)


def _progress(total: int, quiet: bool, stages: bool = False) -> Progress | _NoBar:
    """A progress bar on stderr, shown for several files on a terminal (or for one, with ``stages``)."""
    if not ((total > 1 or stages) and not quiet and sys.stderr.isatty()):
        return _NoBar()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    )


def _stage_bars(bar: Progress | _NoBar) -> progress.Listener:
    """A listener that shows each stage of one large image's coding (:mod:`codec.progress`) as a bar.

    Only work over :data:`STAGE_MIN` units gets a bar, so a digit shows none.
    """
    tasks: dict[str, TaskID] = {}

    def listen(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            if total < STAGE_MIN:
                return
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return listen


#: The least work (strips or rows) a stage of one image's coding needs to be shown.
STAGE_MIN = 256


def _emit(result: Result, target: str, force: bool, folders: set[Path]) -> None:
    """Write one result to its target (atomically), or to standard output; ``folders`` exist already."""
    assert result.data is not None
    if target == STDIO:
        try:
            out = sys.stdout.buffer
            out.write(result.data)
            out.flush()
        except (OSError, ValueError, AttributeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it is closed"
            raise CodecError(f"cannot write to standard output ({reason})") from None
        return
    from .fileio import make_folder, write_file

    path = Path(target)
    if path.parent not in folders:
        make_folder(path.parent)
        folders.add(path.parent)
    write_file(path, result.data, force=force)


def _run(
    work: Callable[..., Iterable[Result]],
    files: list[str],
    targets: list[str],
    errors: list[str],
    args: tuple[object, ...],
    *,
    force: bool,
    quiet: bool,
    verbose: bool,
    jobs: int,
    describe: Callable[[Result, str], str],
) -> None:
    """Code every file, write every output, report each; exit 1 if any failed."""
    for message in errors:
        typer.echo(f"error: {message}", err=True)
    failures = len(errors)
    several = len(files) + len(errors) > 1
    if not files:
        raise typer.Exit(1 if failures else 0)
    if not force:
        files_targets = [(f, t) for f, t in zip(files, targets) if t != STDIO and Path(t).exists()]
        for _, target in files_targets:
            typer.echo(f"error: {target} exists (use --force to overwrite)", err=True)
        failures += len(files_targets)
        skip = {f for f, _ in files_targets}
        kept = [(f, t) for f, t in zip(files, targets) if f not in skip]
        files, targets = [f for f, _ in kept], [t for _, t in kept]
    by_source = dict(zip(files, targets))
    done = bytes_in = bytes_out = coded = pixels = 0
    folders: set[Path] = set()
    jobs = jobs or batch.default_jobs()
    one = len(files) == 1
    with _progress(len(files), quiet, stages=one) as bar, progress.listening(_stage_bars(bar)):
        task = None if one else bar.add_task("coding", total=len(files))
        results: Iterator[Result] = batch.run_chunks(work, files, jobs, *args)
        try:
            for result in results:
                if task is not None:
                    bar.advance(task)
                target = by_source[result.source]
                if result.error is None:
                    try:
                        _emit(result, target, force, folders)
                    except CodecError as exc:
                        result = Result(result.source, error=str(exc))
                if result.error is not None:
                    failures += 1
                    name = "<stdin>" if result.source == STDIO else result.source
                    bar.console.print(f"error: {name}: {result.error}", markup=False, highlight=False, soft_wrap=True)
                    continue
                assert result.data is not None
                done += 1
                bytes_in += result.input_bytes
                bytes_out += len(result.data)
                coded += result.coded_bytes
                pixels += result.pixels
                if verbose and not quiet and result.notice:
                    bar.console.print(
                        f"note: {result.source}: {result.notice}", markup=False, highlight=False, soft_wrap=True
                    )
                if not quiet:
                    bar.console.print(describe(result, target), markup=False, highlight=False, soft_wrap=True)
        except KeyboardInterrupt:
            typer.echo("interrupted: no partial file was left", err=True)
            raise typer.Exit(130) from None
        except CodecError as exc:  # not about one input: the model itself (missing, damaged weights)
            raise _fail(str(exc)) from None
    if not quiet and several:
        rate = f", mean {8 * coded / pixels:.3f} bpp" if pixels else ""
        typer.echo(f"{done} files, {bytes_in:,} bytes in, {bytes_out:,} bytes out{rate}, {failures} failed", err=True)
    if failures:
        raise typer.Exit(1)


def _describe_compress(result: Result, target: str) -> str:
    assert result.data is not None
    size = len(result.data)
    where = "<stdout>" if target == STDIO else target
    source = "<stdin>" if result.source == STDIO else result.source
    return f"{source} -> {where}: {size} bytes, {8 * size / result.pixels:.3f} bpp, {_ratio(result.input_bytes, size)}"


def _ratio(input_bytes: int, output_bytes: int) -> str:
    """How the output's size compares with the input's, in words that stay true either way.

    >>> _ratio(1000, 100), _ratio(100, 2200), _ratio(0, 10)
    ('10.0x smaller than input', '22.0x larger than input', 'input size unknown')
    """
    if input_bytes <= 0 or output_bytes <= 0:
        return "input size unknown"
    if output_bytes <= input_bytes:
        return f"{input_bytes / output_bytes:.1f}x smaller than input"
    return f"{output_bytes / input_bytes:.1f}x larger than input"


def _describe_decompress(result: Result, target: str) -> str:
    assert result.data is not None
    where = "<stdout>" if target == STDIO else target
    source = "<stdin>" if result.source == STDIO else result.source
    return f"{source} -> {where}: {result.pixels} pixels, {8 * result.input_bytes / result.pixels:.3f} bpp"


@app.command()
def compress(
    inputs: Annotated[list[str], typer.Argument(help="Image files or folders ('-' reads standard input).")],
    output: Output = None,
    quality: Annotated[int | None, typer.Option("--quality", "-q", help="Quality level (see 'aec levels').")] = None,
    psnr: Annotated[
        float | None, typer.Option("--psnr", help="Per image, the smallest level reaching this PSNR (dB).")
    ] = None,
    max_bytes: Annotated[
        int | None, typer.Option("--max-bytes", min=1, help="Per image, the best level whose file fits.")
    ] = None,
    max_error: Annotated[
        int | None,
        typer.Option(
            "--max-error",
            min=0,
            max=127,
            help="Every pixel within K grey levels (0: lossless), with the refinement layer.",
        ),
    ] = None,
    effort: Effort = DEFAULT_EFFORT,
    force: Force = False,
    recursive: Recursive = False,
    jobs: Jobs = 1,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Compress images to .aec files (IN.png -> IN.aec beside it).

    Examples:

      aec compress digit.png

      aec compress -q 6 digit.png -o small.aec

      aec compress -r scans/ -o coded/ --jobs 2

      aec compress --psnr 30 digit.png

      aec compress --max-bytes 20 digit.png

      aec compress --max-error 2 photo.png   # every pixel within 2 grey levels (45 dB or more)

      aec compress -e 0 -r scans/ -o coded/   # fastest encoder

      cat digit.png | aec compress - > digit.aec
    """

    level = DEFAULT_LEVEL if quality is None else quality
    if quality is not None and (psnr is not None or max_bytes is not None):
        raise _fail("give --quality or a target (--psnr, --max-bytes), not both", 2)
    if psnr is not None and not 0 < psnr < 1000:  # NaN fails both comparisons
        raise _fail(f"--psnr must be a positive number of dB, got {psnr:g}", 2)
    if max_error is not None and (psnr is not None or max_bytes is not None):
        raise _fail("give --max-error or a target (--psnr, --max-bytes), not both", 2)
    _check_quality(level)
    files, targets, errors = _plan(inputs, output, ".aec", batch.IMAGE_SUFFIXES, recursive)
    _run(
        batch.compress_chunk,
        files,
        targets,
        errors,
        (level, psnr, max_bytes, effort, max_error),
        force=force,
        quiet=quiet,
        verbose=verbose or (not quiet and (psnr is not None or max_bytes is not None)),
        jobs=jobs,
        describe=_describe_compress,
    )


@app.command()
def decompress(
    inputs: Annotated[list[str], typer.Argument(help=".aec files or folders ('-' reads standard input).")],
    output: Output = None,
    force: Force = False,
    recursive: Recursive = False,
    jobs: Jobs = 1,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Decompress .aec files to PNG images (IN.aec -> IN.png beside it).

    Examples:

      aec decompress digit.aec

      aec decompress digit.aec -o restored.png --force

      aec decompress -r coded/ -o restored/
    """
    files, targets, errors = _plan(inputs, output, ".png", batch.AEC_SUFFIXES, recursive)
    image_format = batch.output_format(targets[0]) if len(targets) == 1 else "PNG"
    _run(
        batch.decompress_chunk,
        files,
        targets,
        errors,
        (image_format,),
        force=force,
        quiet=quiet,
        verbose=verbose,
        jobs=jobs,
        describe=_describe_decompress,
    )


@app.command()
def info(files: Annotated[list[str], typer.Argument(help=".aec files or .aecs archives to describe.")]) -> None:
    """Show what an .aec file holds: size, quality, model, bytes, bits per pixel (or describe an archive).

    Examples:

      aec info digit.aec

      aec info digits.aecs
    """
    failures = 0
    for name in files:
        try:
            typer.echo(f"{name}: {_describe_file(name)}")
        except CodecError as exc:
            typer.echo(f"error: {name}: {exc}", err=True)
            failures += 1
    if failures:
        raise typer.Exit(1)


def _describe_file(name: str) -> str:
    """One line about an .aec file or an .aecs archive (read as a stream: checked, not decoded)."""
    from . import api, archive
    from .bitstream import MAGIC, MAX_FILE_BYTES
    from .fileio import opened

    with opened(name) as stream:
        start = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
        if archive.is_archive(start):
            head = archive.read_head(stream.read)
            for _ in archive.payload_batches(stream.read, head, 4096):
                pass  # checks the payload checksum
            total = head.payload_bytes + len(head.to_bytes()) + 4
            pixels = head.count * head.width * head.height
            return (
                f"aec archive, {head.count} images of {head.width}x{head.height}, quality {head.level}, "
                f"model {head.model_id:03x}, {total:,} bytes ({head.payload_bytes:,} payload), "
                f"{8 * total / pixels:.3f} bpp, {int(head.inverted.sum())} dark on light"
            )
        if start[:1] != MAGIC:
            raise CodecError("not an .aec file (bad magic)")
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise CodecError(f"over the {MAX_FILE_BYTES >> 20} MiB an .aec file can hold (not an .aec file?)")
    meta = api.inspect(data)
    h = meta.header
    layers = f"quality {h.level}, model {h.model_id:03x}" if h.level else "no autoencoder layer"
    if h.refined:
        layers += f", refined to max error {h.max_error} (refinement model {h.refine_id:03x})"
    return (
        f"aec format {h.version}, {h.width}x{h.height}, {layers}, "
        f"{'dark ink on light' if h.inverted else 'light ink on dark'}, {meta.file_bytes} bytes "
        f"({meta.payload_bytes} payload), {meta.bpp:.3f} bpp ({meta.payload_bpp:.3f} payload)"
    )


def _progress_bar(total: int, quiet: bool, what: str) -> Progress | _NoBar:
    """A progress bar for long single jobs (pack, unpack), shown on a terminal."""
    bar = _progress(total, quiet)
    bar.add_task(what, total=total)
    return bar


@app.command()
def pack(
    inputs: Annotated[
        list[str], typer.Argument(help="Image files, folders, or IDX files (.gz or raw) such as MNIST's ('-': stdin).")
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="The archive to write (.aecs; '-': stdout).")],
    quality: Annotated[int, typer.Option("--quality", "-q", help="Quality level (see 'aec levels').")] = DEFAULT_LEVEL,
    effort: Effort = DEFAULT_EFFORT,
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
    """
    _check_quality(quality)
    try:
        if output == STDIO:
            out_stream = _stdout()
        else:
            from .fileio import check_writable

            check_writable(Path(output), force)
        plan = batch.plan_pack(inputs, recursive)
        total = sum(item.count for item in plan)
    except CodecError as exc:
        raise _fail(str(exc)) from None
    try:
        with _progress_bar(total, quiet, "packing") as bar:
            from .shards import pack_file, pack_stream

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
        raise _fail(
            f"cannot write {'standard output' if output == STDIO else output} ({exc.strerror or exc})"
        ) from None
    if not quiet:
        where = "<stdout>" if output == STDIO else output
        typer.echo(
            f"{packed.images} images -> {where}: {packed.output_bytes:,} bytes, "
            f"{8 * packed.output_bytes / packed.pixels:.3f} bpp, {_ratio(packed.input_bytes, packed.output_bytes)}",
            err=True,
        )


@app.command("pack-shards")
def pack_shards(
    inputs: Annotated[
        list[str], typer.Argument(help="The shards: IDX files (.gz or raw), images, or folders of images.")
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="The folder that receives one NAME.aecs per shard.")],
    quality: Annotated[int, typer.Option("--quality", "-q", help="Quality level (see 'aec levels').")] = DEFAULT_LEVEL,
    effort: Effort = DEFAULT_EFFORT,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Address of a running Dask scheduler (tcp://host:8786); default: a local one."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=0, help="Worker processes of the local cluster (0: one per core).")
    ] = 0,
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
    from .shards import pack_shards as run

    _check_quality(quality)
    failures = images = size = pixels = 0
    try:
        with _progress_bar(len(inputs), quiet, "shards") as bar:
            for shard in run(inputs, output, quality, effort, scheduler=scheduler, workers=workers, force=force):
                bar.advance(bar.task_ids[0])
                if shard.error is not None:
                    failures += 1
                    bar.console.print(f"error: {shard.source}: {shard.error}", markup=False, highlight=False)
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
    import gzip

    from . import archive
    from .data import idx_image_header
    from .fileio import StagedFolder, atomic_output, check_writable, opened

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
                if to_idx:
                    with atomic_output(Path(output), force) as fh:
                        gzipped = output.endswith(".gz")
                        with (
                            gzip.GzipFile(fileobj=fh, mode="wb", mtime=0)
                            if gzipped
                            else contextlib.nullcontext(fh) as sink
                        ):
                            sink.write(idx_image_header(head.count, head.height, head.width))
                            for decoded in images:
                                sink.write(np.stack(decoded).tobytes())
                                bar.advance(bar.task_ids[0], len(decoded))
                    written = output
                else:
                    assert staged is not None
                    index = 0
                    for decoded in images:
                        for image in decoded:
                            staged.write(names[index], batch.encode_image(image, "PNG"))
                            index += 1
                        bar.advance(bar.task_ids[0], len(decoded))
                    staged.commit()
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


@app.command()
def levels(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table.")] = False,
) -> None:
    """List the installed quality levels with their rate and quality measured on the MNIST test set.

    Examples:

      aec levels

      aec levels --markdown
    """
    from .models import available_levels, load_model

    columns = [
        "level",
        "model id",
        "trained model",
        "step",
        "lambda",
        "search lambda",
        "bpp",
        "payload bpp",
        "PSNR dB",
        "PSNR of mean MSE",
        "SSIM",
        "train s",
    ]
    rows = []
    for level in available_levels():
        try:
            model = load_model(level)
        except CodecError as exc:
            raise _fail(str(exc)) from None
        meta, test = model.metadata, model.metadata.get("test", {})
        nan = float("nan")
        rows.append(
            [
                str(level),
                f"{model.model_id:03x}",
                str(meta.get("trained_model", "?")),
                f"{meta.get('step', 1.0):g}",
                f"{meta.get('lambda', nan):g}",
                f"{model.search_lambda:g}",
                f"{test.get('bpp', nan):.3f}",
                f"{test.get('payload_bpp', nan):.3f}",
                f"{test.get('psnr', nan):.2f}",
                f"{test.get('psnr_of_mean_mse', nan):.2f}",
                f"{test.get('ssim', nan):.3f}",
                f"{meta.get('train_seconds', nan):.0f}",
            ]
        )
    if markdown:
        typer.echo("| " + " | ".join(columns) + " |")
        typer.echo("|" + "---|" * len(columns))
        for row in rows:
            typer.echo("| " + " | ".join(row) + " |")
        return
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in rows:
        typer.echo("  ".join(v.rjust(w) for v, w in zip(row, widths)))


@app.command()
def train(
    level: Annotated[
        list[int] | None, typer.Option("--level", "-l", help="Train the model of this level (repeatable).")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Model to train, by name (repeatable; see 'aec levels').")
    ] = None,
    all_levels: Annotated[bool, typer.Option("--all", help="Train every level's model.")] = False,
    epochs: Annotated[int, typer.Option(help="Passes over the 60,000 training digits.")] = 8,
    seed: Annotated[int, typer.Option(help="Random seed (initialisation, noise, batch order).")] = 0,
    loss: Annotated[str, typer.Option(help="Distortion: 'mse' or 'bce'.")] = "mse",
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the MNIST IDX .gz files.")] = None,
    checkpoint_dir: Annotated[Path, typer.Option(help="Where checkpoints go.")] = Path("checkpoints"),
    resume: Annotated[bool, typer.Option(help="Continue from an existing checkpoint.")] = True,
    limit: Annotated[int | None, typer.Option(help="Train on the first N digits only.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimiser steps.")] = None,
    lmbda: Annotated[float | None, typer.Option("--lambda", help="Override the level's lambda.")] = None,
    hidden: Annotated[int | None, typer.Option(help="Override the transforms' width (experiments).")] = None,
    latent_channels: Annotated[int | None, typer.Option(help="Override the latent channels (experiments).")] = None,
    depth: Annotated[
        int | None, typer.Option(help="Override the extra 3x3 convolutions per scale (experiments).")
    ] = None,
    activation: Annotated[str | None, typer.Option(help="Override the activation: relu or gdn (experiments).")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.  [default: 2e-3]")] = None,
    start_from: Annotated[
        Path | None,
        typer.Option(
            "--from", help="Folder of checkpoints to start from: a further training stage with a fresh schedule."
        ),
    ] = None,
    weight_decay: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Decoupled (AdamW) weight decay of the transforms.  [default: the model's: vector-5 0.05, else 0]",
        ),
    ] = None,
    shift: Annotated[
        int, typer.Option(min=0, max=4, help="Move each training digit by up to N pixels each way (augmentation).")
    ] = 0,
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
    device: Annotated[str, typer.Option(help="Torch device to train on: 'cpu', or 'cuda' for a GPU.")] = "cpu",
    quiet: Quiet = False,
) -> None:
    """Train the levels' models on MNIST into resumable checkpoints (needs the [train] extra).

    Levels share a model where they differ only in quantization step, so a
    model is trained once. Example:

      aec train --all && aec freeze --all
    """
    try:
        from .training.levels import LEVELS, MODELS
        from .training.model import ACTIVATIONS
        from .training.run import models_of, train_models
    except ImportError as exc:
        raise _fail(f"training needs torch: pip install 'aec[train]' ({exc})") from None

    unknown = [name for name in model or [] if name not in MODELS]
    if unknown:
        raise _fail(f"unknown model {unknown[0]!r}; models are {', '.join(MODELS)}", 2)
    names = list(model or [])
    if level or all_levels or not names:
        names += models_of(_levels_arg(level, all_levels, LEVELS))
    names = list(dict.fromkeys(names))
    if loss not in ("mse", "bce"):
        raise _fail(f"unknown loss {loss!r}; use 'mse' or 'bce'", 2)
    command = " ".join(
        ["aec train", *(f"--model {n}" for n in names), f"--epochs {epochs}", f"--seed {seed}", f"--loss {loss}"]
        + ([f"--limit {limit}"] if limit is not None else [])
        + ([f"--max-steps {max_steps}"] if max_steps is not None else [])
        + ([f"--lambda {lmbda}"] if lmbda is not None else [])
        + ([f"--hidden {hidden}"] if hidden is not None else [])
        + ([f"--latent-channels {latent_channels}"] if latent_channels is not None else [])
        + ([f"--depth {depth}"] if depth is not None else [])
        + ([f"--activation {activation}"] if activation is not None else [])
        + ([f"--lr {lr:g}"] if lr is not None else [])
        + ([f"--from {start_from}"] if start_from is not None else [])
        + ([f"--weight-decay {weight_decay:g}"] if weight_decay is not None else [])
        + ([f"--shift {shift}"] if shift else [])
        + ([f"--device {device}"] if device != "cpu" else [])
    )
    if activation is not None and activation not in ACTIVATIONS:
        raise _fail(f"unknown activation {activation!r}; use one of {', '.join(ACTIVATIONS)}", 2)
    overrides = {"hidden": hidden, "latent_channels": latent_channels, "depth": depth, "activation": activation}
    try:
        paths = train_models(
            names,
            epochs=epochs,
            seed=seed,
            loss=loss,
            data_dir=data_dir,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            limit=limit,
            max_steps=max_steps,
            lmbda=lmbda,
            arch_overrides={k: v for k, v in overrides.items() if v is not None},
            threads=threads,
            progress=not quiet,
            command=command,
            lr=lr,
            start_dir=start_from,
            device=device,
            weight_decay=weight_decay,
            shift=shift,
        )
    except (CodecError, FileNotFoundError, ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    for path in paths:
        typer.echo(f"checkpoint: {path}")


@app.command("train-refinement")
def train_refinement(
    seed: Annotated[int, typer.Option(help="Random seed (which digits, renderings and degradations).")] = 0,
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the MNIST IDX .gz files.")] = None,
    weights_dir: Annotated[
        Path | None, typer.Option(help="Where the model goes (default: the shipped weights).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Fit on the first N training images only (experiments).")] = None,
) -> None:
    """Fit the refinement layer (--max-error, --psnr above the levels) and install it; no torch needed.

    Example:

      aec train-refinement
    """
    from .training.refine_fit import train_refinement as run

    command = " ".join(["aec train-refinement", f"--seed {seed}"] + ([f"--limit {limit}"] if limit else []))
    try:
        path, meta = run(data_dir, weights_dir, seed, command, limit)
    except (CodecError, ImportError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{path}: {meta['training_images']} images, bpp without a base by max error {meta['train_bpp_no_base']}")


def _levels_arg(level: list[int] | None, all_levels: bool, known: Collection[int]) -> list[int]:
    chosen = sorted(known) if all_levels else sorted(set(level or []))
    if not chosen:
        raise _fail("name a level with --level N, or --all", 2)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise _fail(f"unknown level {unknown[0]}; levels are {min(known)}..{max(known)}", 2)
    return chosen


@app.command()
def freeze(
    level: Annotated[list[int] | None, typer.Option("--level", "-l", help="Level to freeze (repeatable).")] = None,
    all_levels: Annotated[bool, typer.Option("--all", help="Freeze every trained level.")] = False,
    checkpoint_dir: Annotated[Path, typer.Option(help="Where the checkpoints are.")] = Path("checkpoints"),
    weights_dir: Annotated[
        Path | None, typer.Option(help="Where frozen levels go (default: the shipped weights).")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the MNIST IDX .gz files.")] = None,
    test_limit: Annotated[int | None, typer.Option(help="Measure on the first N test digits only.")] = None,
    table_sets: Annotated[
        int, typer.Option(min=1, max=4096, help="Table sets of the mixture prior, fitted to the training digits.")
    ] = 64,
    general: Annotated[
        bool,
        typer.Option(
            "--general", help="Freeze the levels' general variants (the general model) into WEIGHTS/general/."
        ),
    ] = False,
    measure_only: Annotated[
        bool,
        typer.Option(
            "--measure-only", help="Only measure installed levels again (after an encoder change) into their metadata."
        ),
    ] = False,
    search_lambda: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="With --measure-only: first set the levels' encoder search lambda (their operating point).",
        ),
    ] = None,
) -> None:
    """Freeze trained checkpoints into runtime weights and integer tables, and measure them.

    Examples:

      aec freeze --all

      aec freeze --all --measure-only

      aec freeze --all --general

      aec freeze --level 9 --measure-only --search-lambda 60
    """
    if measure_only:
        _measure_levels(level, all_levels, weights_dir, data_dir, test_limit, search_lambda)
        return
    if search_lambda is not None:
        raise _fail("--search-lambda goes with --measure-only; a level's own lives in training/levels.py", 2)
    try:
        from .training.levels import LEVELS
        from .training.run import freeze_levels
    except ImportError as exc:
        raise _fail(f"freezing needs torch: pip install 'aec[train]' ({exc})") from None

    chosen = _levels_arg(level, all_levels, LEVELS)
    try:
        for path, test in freeze_levels(chosen, checkpoint_dir, weights_dir, data_dir, test_limit, table_sets, general):
            typer.echo(
                f"{path}: {test['bpp']:.3f} bpp, PSNR {test['psnr']:.2f} dB, SSIM {test['ssim']:.3f} "
                f"on {test['images']} test digits"
            )
    except CodecError as exc:
        raise _fail(str(exc)) from None


def _measure_levels(
    level: list[int] | None,
    all_levels: bool,
    weights_dir: Path | None,
    data_dir: Path | None,
    limit: int | None,
    search_lambda: float | None,
) -> None:
    """``aec freeze --measure-only``: measure installed levels on the test set, without torch."""
    import os

    from . import data as mnist
    from . import models
    from .evaluate import record_level, update_metadata

    if weights_dir is not None:
        os.environ[models.WEIGHTS_ENV] = str(weights_dir)
    installed = models.available_levels()
    if not installed:
        raise _fail(f"no levels installed in {models.weights_dir()}")
    chosen = _levels_arg(level, all_levels, installed)
    try:
        images = mnist.load_mnist("test", data_dir)[0][:limit]
        for n in chosen:
            if search_lambda is not None:
                update_metadata(n, {"search_lambda": search_lambda})
            test = record_level(images, n).to_dict()
            typer.echo(
                f"level {n}: {test['bpp']:.3f} bpp, PSNR {test['psnr']:.2f} dB, SSIM {test['ssim']:.3f} "
                f"on {test['images']} test digits"
            )
    except CodecError as exc:
        raise _fail(str(exc)) from None


@app.command()
def data(
    download: Annotated[bool, typer.Option("--download", help="Fetch the files from the public mirrors.")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Folder to check, or to download into.")] = None,
) -> None:
    """Find (or download) and verify the MNIST IDX files.

    Examples:

      aec data

      aec data --download
    """
    from . import data as mnist

    try:
        folder = mnist.download(data_dir) if download else mnist.find_data_dir(data_dir)
        for split in mnist.SPLITS:
            images, _ = mnist.load_mnist(split, folder)
            typer.echo(f"{split}: {len(images)} digits, checksums verified ({folder})")
    except CodecError as exc:
        raise _fail(str(exc)) from None


def _benchmarks_report() -> Any:
    """The benchmark suite: installed as codec.benchmarks, or benchmarks/ in a source checkout."""
    import importlib
    import importlib.util

    missing = [name for name in ("matplotlib", "sklearn", "imagecodecs") if importlib.util.find_spec(name) is None]
    if missing:
        raise _fail(f"the benchmark suite needs its extras: pip install 'aec[bench]' (missing {', '.join(missing)})")
    try:
        return importlib.import_module("codec.benchmarks.report")
    except ModuleNotFoundError:
        root = str(Path(__file__).resolve().parent.parent)
        if root not in sys.path:
            sys.path.append(root)
        try:
            return importlib.import_module("benchmarks.report")
        except ModuleNotFoundError as exc:
            raise _fail(f"the benchmark suite needs its extras: pip install 'aec[bench]' ({exc})") from None


@app.command()
def bench(
    limit: Annotated[int | None, typer.Option(help="Measure the first N images only (a quick run).")] = None,
    images: Annotated[Path | None, typer.Option(help="A folder of your own images instead of MNIST.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for results, tables and plots.")] = Path("benchmarks/results"),
    codec_names: Annotated[
        list[str] | None, typer.Option("--codec", help="Only these classic codecs (repeatable; aec always runs).")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the MNIST IDX .gz files.")] = None,
    effort: Effort = DEFAULT_EFFORT,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="aec levels measured at once, one each.")] = 1,
    record: Annotated[
        bool,
        typer.Option(
            "--record", help="Write each level's measurement into its metadata (the full MNIST test set only)."
        ),
    ] = False,
    sets: Annotated[
        bool,
        typer.Option(
            "--sets",
            help="Measure on the sets that are not MNIST (font and scanned digits, photos) against WebP, "
            "JPEG XL and AVIF instead: wild.md, wild.json.",
        ),
    ] = False,
    large: Annotated[
        bool,
        typer.Option(
            "--large", help="Measure time and peak memory on one photo at 512 to 4096 px a side: large.md, large.json."
        ),
    ] = False,
    speed: Annotated[
        bool,
        typer.Option(
            "--speed",
            help="Measure images per second on MNIST digits (one core; one per call and batches; 200 unless "
            "--limit) beside the classic codecs, and start-up: speed.md, speed.json.",
        ),
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Measure bits per pixel, PSNR, SSIM and speed of aec, PCA and the classic codecs.

    Writes results.json, results.csv, results.md, rd_psnr.png, rd_ssim.png and
    gallery.png to --out.

    Examples:

      aec bench --limit 500

      aec bench --images my_scans/ --out my_results/

      aec bench --sets

      aec bench --large

      aec bench --speed
    """
    report = _benchmarks_report()
    from . import data as mnist

    if speed:
        import importlib

        module = importlib.import_module(report.__name__.rsplit(".", 1)[0] + ".speed")
        count = limit or module.COUNT
        path = module.run(mnist.load_mnist("test", data_dir)[0][:count], out, progress=not quiet)
        typer.echo(path.read_text().rstrip())
        return
    if large:
        import importlib

        path = importlib.import_module(report.__name__.rsplit(".", 1)[0] + ".large").run(out, progress=not quiet)
        typer.echo(path.read_text().rstrip())
        return
    if sets:
        import importlib

        wild = importlib.import_module(report.__name__.rsplit(".", 1)[0] + ".wild")
        try:
            path = wild.run(out, mnist.load_mnist("train", data_dir)[0], limit, not quiet)
        except CodecError as exc:
            raise _fail(str(exc)) from None
        typer.echo(path.read_text().split("\n## ")[0].rstrip())
        return
    try:
        if images is not None:
            if not images.is_dir():
                raise _fail(f"{images} is not a folder", 2)
            test = report.load_folder(images, limit)
            if not test:
                raise _fail(f"{images} holds no images")
            train, source = None, f"{len(test):,} images from {images}"
        else:
            test = list(mnist.load_mnist("test", data_dir)[0][:limit])
            train, source = mnist.load_mnist("train", data_dir)[0], f"MNIST test set, {len(test):,} digits"
        if images is not None and len({t.shape for t in test}) == 1 and test[0].shape == (28, 28):
            train = mnist.load_mnist("train", data_dir)[0]
        if record and (images is not None or limit is not None):
            raise _fail("--record needs the whole MNIST test set (no --images, no --limit)", 2)
        rows, paths = report.bench(test, train, out, source, codec_names, not quiet, effort, jobs)
        if record:
            report.record_levels(rows, effort)
    except CodecError as exc:
        raise _fail(str(exc)) from None
    if not quiet:
        typer.echo(paths["md"].read_text().split("## Every setting")[0].rstrip())
        typer.echo("")
        for name, path in paths.items():
            typer.echo(f"{name}: {path}")


@app.command()
def latent(
    level: Annotated[int, typer.Option("--level", "-l", help="Quality level whose latents to show.")] = DEFAULT_LEVEL,
    limit: Annotated[int, typer.Option(help="Test digits to embed.")] = 3000,
    out: Annotated[Path, typer.Option(help="Folder for the plots.")] = Path("benchmarks/results"),
    tsne: Annotated[bool, typer.Option(help="Also embed with t-SNE (slower).")] = True,
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the MNIST IDX .gz files.")] = None,
) -> None:
    """Show what the encoder learned: 2-D embeddings of the latents and the rate per latent.

    Example:

      aec latent --level 8 --limit 2000
    """
    report = _benchmarks_report()
    from . import data as mnist

    try:
        images, labels = mnist.load_mnist("test", data_dir)
        paths = report.latent_view(images[:limit], labels[:limit], level, out, tsne=tsne)
    except CodecError as exc:
        raise _fail(str(exc)) from None
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


def main() -> None:
    """Console-script entry point: a reader that went away (``aec info x | head -0``) ends the program quietly,
    as it does ``cat``; running out of memory is one error line, not a traceback."""
    try:
        app()
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        sys.exit(1)
    except MemoryError:
        typer.echo("error: out of memory", err=True)
        sys.exit(1)
