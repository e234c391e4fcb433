"""Progress bars on standard error, drawn only on a terminal (rich is imported only then)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, cast

import typer

from .. import progress

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


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


def _progress_bar(total: int, quiet: bool, what: str) -> Progress | _NoBar:
    """A progress bar for long single jobs (pack, unpack), shown on a terminal."""
    bar = _progress(total, quiet)
    bar.add_task(what, total=total)
    return bar
