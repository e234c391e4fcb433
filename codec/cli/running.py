"""Code a list of files into their targets: the loop of ``compress`` and ``decompress``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import typer

from .. import batch, progress
from ..batch import STDIO, Result
from ..errors import CodecError
from .bars import _progress, _stage_bars
from .common import _fail


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
    from ..fileio import make_folder, write_file

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
        rate = f", mean {8 * coded / pixels:.3f} bpp" if pixels and coded else ""  # none when nothing is coded
        typer.echo(f"{done} files, {bytes_in:,} bytes in, {bytes_out:,} bytes out{rate}, {failures} failed", err=True)
    if failures:
        raise typer.Exit(1)
