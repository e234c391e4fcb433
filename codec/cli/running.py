"""Code a list of files into their targets: the loop of ``compress`` and ``decompress``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
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


@dataclass
class _Tally:
    """What a run has done so far, for its summary line."""

    failures: int = 0
    done: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    coded: int = 0
    pixels: int = 0

    def add(self, result: Result) -> None:
        assert result.data is not None
        self.done += 1
        self.bytes_in += result.input_bytes
        self.bytes_out += len(result.data)
        self.coded += result.coded_bytes
        self.pixels += result.pixels

    def summary(self) -> str:
        rate = f", mean {8 * self.coded / self.pixels:.3f} bpp" if self.pixels and self.coded else ""  # none: not coded
        return (
            f"{self.done} files, {self.bytes_in:,} bytes in, {self.bytes_out:,} bytes out{rate}, {self.failures} failed"
        )


def _without_existing(files: list[str], targets: list[str]) -> tuple[list[str], list[str], int]:
    """The files whose targets do not exist yet (each one that does is an error line), and how many were left."""
    existing = [(f, t) for f, t in zip(files, targets) if t != STDIO and Path(t).exists()]
    for _, target in existing:
        typer.echo(f"error: {target} exists (use --force to overwrite)", err=True)
    skip = {f for f, _ in existing}
    kept = [(f, t) for f, t in zip(files, targets) if f not in skip]
    return [f for f, _ in kept], [t for _, t in kept], len(existing)


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
    tally = _Tally(failures=len(errors))
    several = len(files) + len(errors) > 1
    if not files:
        raise typer.Exit(1 if tally.failures else 0)
    if not force:
        files, targets, existing = _without_existing(files, targets)
        tally.failures += existing
    by_source = dict(zip(files, targets))
    folders: set[Path] = set()
    one = len(files) == 1
    with _progress(len(files), quiet, stages=one) as bar, progress.listening(_stage_bars(bar)):
        task = None if one else bar.add_task("coding", total=len(files))
        results: Iterator[Result] = batch.run_chunks(work, files, jobs or batch.default_jobs(), *args)

        def say(text: str) -> None:
            bar.console.print(text, markup=False, highlight=False, soft_wrap=True)

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
                    tally.failures += 1
                    say(f"error: {'<stdin>' if result.source == STDIO else result.source}: {result.error}")
                    continue
                tally.add(result)
                if verbose and not quiet and result.notice:
                    say(f"note: {result.source}: {result.notice}")
                if not quiet:
                    say(describe(result, target))
        except KeyboardInterrupt:
            typer.echo("interrupted: no partial file was left", err=True)
            raise typer.Exit(130) from None
        except CodecError as exc:  # not about one input: the model itself (missing, damaged weights)
            raise _fail(str(exc)) from None
    if not quiet and several:
        typer.echo(tally.summary(), err=True)
    if tally.failures:
        raise typer.Exit(1)
