"""Progress of long work inside the codec (a large image's strips and rows), for whoever shows it.

The runtime reports through :func:`report`, which costs nothing unless a caller
listens: the command line does, with a progress bar, through :func:`listening`.
A context variable keeps listeners apart between threads and tasks.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

#: A listener: called with the stage (``"analysis"``, ``"synthesis"``, ``"refinement"``), the work done and the total.
Listener = Callable[[str, int, int], None]

_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar("aec_progress", default=None)


def report(stage: str, done: int, total: int) -> None:
    """``done`` of ``total`` units of ``stage`` are finished."""
    listener = _listener.get()
    if listener is not None:
        listener(stage, done, total)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send the reports made inside the block to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
