"""``aec compress``, ``aec decompress``, ``aec info`` and ``aec denoise``: single files and folders of them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated

import typer

from .. import batch
from ..batch import STDIO, Result
from ..errors import CodecError
from ..models import DEFAULT_LEVEL
from ..search import DEFAULT_EFFORT
from .common import Effort, Force, Jobs, Output, Quiet, Recursive, Verbose, _check_quality, _fail, _plan, _ratio, app
from .running import _run


def _names(result: Result, target: str) -> tuple[str, str]:
    """The input and output of a coded file as a report names them."""
    return ("<stdin>" if result.source == STDIO else result.source), ("<stdout>" if target == STDIO else target)


def _describe_compress(result: Result, target: str) -> str:
    assert result.data is not None
    size = len(result.data)
    source, where = _names(result, target)
    return f"{source} -> {where}: {size} bytes, {8 * size / result.pixels:.3f} bpp, {_ratio(result.input_bytes, size)}"


def _describe_decompress(result: Result, target: str) -> str:
    assert result.data is not None
    source, where = _names(result, target)
    return f"{source} -> {where}: {result.pixels} pixels, {8 * result.input_bytes / result.pixels:.3f} bpp"


Psnr = Annotated[float | None, typer.Option("--psnr", help="Per image, the smallest level reaching this PSNR (dB).")]
MaxBytes = Annotated[int | None, typer.Option("--max-bytes", min=1, help="Per image, the best level whose file fits.")]
MaxError = Annotated[
    int | None,
    typer.Option(
        "--max-error", min=0, max=127, help="Every pixel within K grey levels (0: lossless), with the refinement layer."
    ),
]
Lossless = Annotated[bool, typer.Option("--lossless", help="Every pixel exactly (the same as --max-error 0).")]
Restore = Annotated[
    bool,
    typer.Option(
        "--restore",
        help="With --max-error K: filters fitted to the image bring it closer (higher PSNR; every pixel within 2K).",
    ),
]


@app.command()
def compress(
    inputs: Annotated[list[str], typer.Argument(help="Image files or folders ('-' reads standard input).")],
    output: Output = None,
    quality: Annotated[int | None, typer.Option("--quality", "-q", help="Quality level (see 'aec levels').")] = None,
    psnr: Psnr = None,
    max_bytes: MaxBytes = None,
    max_error: MaxError = None,
    lossless: Lossless = False,
    restore: Restore = False,
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

      aec compress --lossless digit.png   # every pixel back exactly

      aec compress --max-error 2 photo.png   # every pixel within 2 grey levels (45 dB or more)

      aec compress --max-error 4 --restore photo.png   # fitted filters: more dB, pixels within 8

      aec compress -e 0 -r scans/ -o coded/   # fastest encoder

      cat digit.png | aec compress - > digit.aec
    """
    level, max_error = _coding_settings(quality, psnr, max_bytes, max_error, lossless)
    if restore and not max_error:
        raise _fail("--restore goes with --max-error 1 or more (--psnr restores where it pays)", 2)
    files, targets, errors = _plan(inputs, output, ".aec", batch.IMAGE_SUFFIXES, recursive)
    verbose = verbose or (not quiet and (psnr is not None or max_bytes is not None))  # a target names its level
    settings = (level, psnr, max_bytes, effort, max_error, restore)
    _run(
        batch.compress_chunk,
        files,
        targets,
        errors,
        settings,
        force=force,
        quiet=quiet,
        verbose=verbose,
        jobs=jobs,
        describe=_describe_compress,
    )


def _coding_settings(
    quality: int | None, psnr: float | None, max_bytes: int | None, max_error: int | None, lossless: bool
) -> tuple[int, int | None]:
    """The level and maximum error ``aec compress`` codes with; usage errors (exit 2) for options that clash."""
    if lossless and max_error not in (None, 0):
        raise _fail("give --lossless or --max-error, not both", 2)
    max_error = 0 if lossless else max_error
    level = DEFAULT_LEVEL if quality is None else quality
    if quality is not None and (psnr is not None or max_bytes is not None):
        raise _fail("give --quality or a target (--psnr, --max-bytes), not both", 2)
    if psnr is not None and not 0 < psnr < 1000:  # NaN fails both comparisons
        raise _fail(f"--psnr must be a positive number of dB, got {psnr:g}", 2)
    if max_error is not None and (psnr is not None or max_bytes is not None):
        raise _fail("give --max-error or a target (--psnr, --max-bytes), not both", 2)
    _check_quality(level)
    return level, max_error


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
    planned = _plan(inputs, output, ".png", batch.AEC_SUFFIXES, recursive)
    _write_images(batch.decompress_chunk, _describe_decompress, planned, force, quiet, verbose, jobs)


def _write_images(
    work: Callable[..., Iterable[Result]],
    describe: Callable[[Result, str], str],
    planned: tuple[list[str], list[str], list[str]],
    force: bool,
    quiet: bool,
    verbose: bool,
    jobs: int,
) -> None:
    """Run a command that writes an image file per input (decompress, denoise): in the format its output's
    suffix names when there is one output, else PNG."""
    files, targets, errors = planned
    image_format = batch.output_format(targets[0]) if len(targets) == 1 else "PNG"
    _run(
        work,
        files,
        targets,
        errors,
        (image_format,),
        force=force,
        quiet=quiet,
        verbose=verbose,
        jobs=jobs,
        describe=describe,
    )


@app.command()
def info(files: Annotated[list[str], typer.Argument(help=".aec files or .aecs archives to describe.")]) -> None:
    """Show what an .aec file holds: size, the model that coded it, bytes, bits per pixel (or describe an archive).

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
    from .. import api, archive
    from ..bitstream import FITTED_VERSION, MAGIC, MAX_FILE_BYTES
    from ..fileio import opened

    with opened(name) as stream:
        start = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
        if archive.is_archive(start):
            head = archive.read_head(stream.read)
            for _ in archive.payload_batches(stream.read, head, 4096):
                pass  # checks the payload checksum
            total = head.payload_bytes + len(head.to_bytes()) + 4
            pixels = head.count * head.width * head.height
            kind = "lossless, model" if head.lossless else f"level {head.level}'s model"
            return (
                f"aec archive, {head.count} images of {head.width}x{head.height}, {kind} "
                f"{head.model_id:03x}, {total:,} bytes ({head.payload_bytes:,} payload), "
                f"{8 * total / pixels:.3f} bpp, {int(head.inverted.sum())} dark on light"
            )
        if start[:1] != MAGIC:
            raise CodecError("not an .aec file (bad magic)")
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise CodecError(f"over the {MAX_FILE_BYTES >> 20} MiB an .aec file can hold (not an .aec file?)")
    meta = api.inspect(data)
    h = meta.header
    # The model that coded the image (from effort 1 a neighbour of the quality asked for: docs/guide.md).
    layers = f"level {h.level}'s model {h.model_id:03x}" if h.level else "no autoencoder layer"
    if h.pixel_model:
        bound = "lossless" if h.max_error is None else f"every pixel within {h.max_error}"
        layers = f"pixel model {h.model_id:03x}, {bound}"
    if h.predictive:
        bound = "lossless" if not h.max_error else f"every pixel within {h.max_error}"
        if h.restoration is not None:
            classes = sum(f is not None for f in h.restoration.filters)
            bound = f"restored ({classes} of 4 classes filtered), every pixel within {2 * (h.max_error or 0)}"
        layers = f"predictive model {h.refine_id:03x}, {bound}"
    elif h.refined:
        layers += f", refined to max error {h.max_error} (refinement model {h.refine_id:03x})"
    if h.scale > 1:
        layers += f", coded at 1/{h.scale} of its size"
    if h.version == FITTED_VERSION:
        layers += f", latents in contexts from tables {h.contexts_id:03x}"
    return (
        f"aec format {h.version}, {h.width}x{h.height}, {layers}, "
        f"{'dark ink on light' if h.inverted else 'light ink on dark'}, {meta.file_bytes} bytes "
        f"({meta.payload_bytes} payload), {meta.bpp:.3f} bpp ({meta.payload_bpp:.3f} payload)"
    )


def _describe_denoise(result: Result, target: str) -> str:
    source, where = _names(result, target)
    return f"{source} -> {where}: {result.pixels} pixels"


@app.command()
def denoise(
    inputs: Annotated[list[str], typer.Argument(help="Image files or folders ('-' reads standard input).")],
    output: Output = None,
    force: Force = False,
    recursive: Recursive = False,
    jobs: Jobs = 1,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Clean damaged digits (noise, salt and pepper, blur) with the trained denoiser (IN.png -> IN.clean.png).

    The denoiser is a small network trained on damaged MNIST digits (aec
    train-denoiser); it runs without torch, on images of any size and polarity.

    Examples:

      aec denoise noisy.png

      aec denoise noisy.png -o clean.png --force

      aec denoise -r scans/ -o cleaned/
    """
    planned = _plan(inputs, output, ".clean.png", batch.IMAGE_SUFFIXES, recursive)
    _write_images(batch.denoise_chunk, _describe_denoise, planned, force, quiet, verbose, jobs)
