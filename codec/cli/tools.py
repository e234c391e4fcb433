"""``aec data``, ``aec bench`` and ``aec latent``: the MNIST files, the benchmarks and the latent view."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from ..errors import CodecError
from ..models import DEFAULT_LEVEL
from ..search import DEFAULT_EFFORT
from .common import Effort, Force, Quiet, _fail, _stdout, app


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
    from .. import data as mnist

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
        root = str(Path(__file__).resolve().parents[2])
        if root not in sys.path:
            sys.path.append(root)
        try:
            return importlib.import_module("benchmarks.report")
        except ModuleNotFoundError as exc:
            raise _fail(f"the benchmark suite needs its extras: pip install 'aec[bench]' ({exc})") from None


Sets = Annotated[
    bool,
    typer.Option(
        "--sets",
        help="Measure on the sets that are not MNIST (font and scanned digits, photos) against WebP, JPEG XL and AVIF "
        "instead: wild.md, wild.json.",
    ),
]
Large = Annotated[
    bool,
    typer.Option(
        "--large", help="Measure time and peak memory on one photo at 512 to 4096 px a side: large.md, large.json."
    ),
]
Speed = Annotated[
    bool,
    typer.Option(
        "--speed",
        help="Measure images per second on MNIST digits (one core; one per call and batches; 200 unless --limit) "
        "beside the classic codecs, and start-up: speed.md, speed.json.",
    ),
]
LosslessBench = Annotated[
    bool,
    typer.Option(
        "--lossless",
        help="Measure --lossless and --max-error K against PNG, WebP and JPEG XL lossless, zlib, gzip and xz on MNIST "
        "(--limit digits) and the sets that are not MNIST: lossless.md, lossless.json, lossless_rd.png.",
    ),
]
SearchBench = Annotated[
    bool,
    typer.Option(
        "--search",
        help="Measure aec search: precision@10 of the test digits (--limit of them; 6x as many training digits "
        "archived) against kNN on raw pixels and PCA, and its speed: retrieval.md, retrieval.json.",
    ),
]
DenoiseBench = Annotated[
    bool,
    typer.Option(
        "--denoise",
        help="Measure aec denoise against non-local means and a median filter per kind and strength of damage "
        "(500 test digits unless --limit): denoising.md, denoising.json.",
    ),
]
Record = Annotated[
    bool,
    typer.Option("--record", help="Write each level's measurement into its metadata (the full MNIST test set only)."),
]


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
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="Worker processes coding aec, the images split between them.")
    ] = 1,
    record: Record = False,
    sets: Sets = False,
    large: Large = False,
    speed: Speed = False,
    lossless: LosslessBench = False,
    search: SearchBench = False,
    denoise: DenoiseBench = False,
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

      aec bench --lossless

      aec bench --search --limit 1000

      aec bench --denoise
    """
    report = _benchmarks_report()
    modes = {"speed": speed, "lossless": lossless, "large": large, "wild": sets, "retrieval": search}
    mode = next((name for name, chosen in {**modes, "denoising": denoise}.items() if chosen), None)
    try:
        if mode is not None:
            text = _other_bench(report, mode, out, limit, data_dir, quiet).read_text()
            typer.echo((text.split("\n## ")[0] if mode == "wild" else text).rstrip())
            return
        if record and (images is not None or limit is not None):
            raise _fail("--record needs the whole MNIST test set (no --images, no --limit)", 2)
        paths = _rd_bench(report, images, limit, data_dir, out, codec_names, quiet, effort, jobs, record)
    except CodecError as exc:
        raise _fail(str(exc)) from None
    if not quiet:
        typer.echo(paths["md"].read_text().split("## Every setting")[0].rstrip())
        typer.echo("")
        for name, path in paths.items():
            typer.echo(f"{name}: {path}")


def _rd_bench(
    report: Any,
    images: Path | None,
    limit: int | None,
    data_dir: Path | None,
    out: Path,
    codec_names: list[str] | None,
    quiet: bool,
    effort: int,
    jobs: int,
    record: bool,
) -> dict[str, Path]:
    """The rate-distortion suite on MNIST's test digits or a folder of images; the paths it wrote."""
    from .. import data as mnist

    if images is not None:
        if not images.is_dir():
            raise _fail(f"{images} is not a folder", 2)
        test = report.load_folder(images, limit)
        if not test:
            raise _fail(f"{images} holds no images")
        train, source = None, f"{len(test):,} images from {images}"
        if len({t.shape for t in test}) == 1 and test[0].shape == (28, 28):
            train = mnist.load_mnist("train", data_dir)[0]
    else:
        test = list(mnist.load_mnist("test", data_dir)[0][:limit])
        train, source = mnist.load_mnist("train", data_dir)[0], f"MNIST test set, {len(test):,} digits"
    rows, paths = report.bench(test, train, out, source, codec_names, not quiet, effort, jobs)
    if record:
        report.record_levels(rows, effort)
    return cast(dict[str, Path], paths)


def _other_bench(report: Any, mode: str, out: Path, limit: int | None, data_dir: Path | None, quiet: bool) -> Path:
    """Run the benchmark beside the RD suite named ``mode`` (a module of the benchmarks); its markdown's path."""
    import importlib

    from .. import data as mnist

    module = importlib.import_module(f"{report.__name__.rsplit('.', 1)[0]}.{mode}")
    if mode == "speed":
        digits = mnist.load_mnist("test", data_dir)[0][: limit or module.COUNT]
        return cast(Path, module.run(digits, out, progress=not quiet))
    if mode == "large":
        return cast(Path, module.run(out, progress=not quiet))
    if mode == "denoising":
        digits = mnist.load_mnist("test", data_dir)[0][: limit or module.COUNT]
        train = mnist.load_mnist("train", data_dir)[0]
        validation = train[module.VALIDATION_FROM : module.VALIDATION_FROM + module.VALIDATION_COUNT]
        return cast(Path, module.run(digits, validation, out, (lambda _: None) if quiet else typer.echo))
    if mode == "retrieval":
        images, labels = mnist.load_mnist("train", data_dir)
        queries, truth = mnist.load_mnist("test", data_dir)
        archived = slice(None, 6 * limit if limit else None)
        test = (queries[:limit], truth[:limit])
        return cast(
            Path, module.run((images[archived], labels[archived]), test, out, (lambda _: None) if quiet else typer.echo)
        )
    train = mnist.load_mnist("train", data_dir)[0]
    if mode == "wild":
        return cast(Path, module.run(out, train, limit, not quiet))
    digits, named = mnist.load_mnist("test", data_dir)[0][:limit], module.benchmark_sets(train, limit)
    return cast(Path, module.run(digits, named, out, (lambda _: None) if quiet else typer.echo))


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
    from .. import data as mnist

    try:
        images, labels = mnist.load_mnist("test", data_dir)
        paths = report.latent_view(images[:limit], labels[:limit], level, out, tsne=tsne)
    except CodecError as exc:
        raise _fail(str(exc)) from None
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


@app.command()
def sample(
    output: Annotated[str, typer.Option("--output", "-o", help="The image to write (PNG unless its suffix says).")],
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=4096, help="Digits to draw.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed: the same digits for the same seed.")] = 0,
    columns: Annotated[int | None, typer.Option(min=1, help="Digits per row (default: a square).")] = None,
    force: Force = False,
) -> None:
    """Draw new digits from the variational model (aec train --model vae-4) as one grid image; no torch needed.

    Examples:

      aec sample -n 64 -o grid.png

      aec sample -n 10 --columns 10 --seed 3 -o row.png
    """
    from .. import batch
    from ..fileio import write_file
    from ..sample import grid, sample

    try:
        image = batch.encode_image(grid(sample(count, seed), columns), batch.output_format(output))
        if output == batch.STDIO:
            out = _stdout()
            out.write(image)
            out.flush()
        else:
            write_file(Path(output), image, force)
    except CodecError as exc:
        raise _fail(str(exc)) from None
    if output != batch.STDIO:
        typer.echo(f"{count} digits -> {output}", err=True)
