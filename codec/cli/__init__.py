"""The ``aec`` command line: a thin layer over :mod:`codec.api`, one module per group of commands.

Exit codes: 0 everything worked, 1 some input failed, 2 usage error.
"""

from __future__ import annotations

from . import archives, coding, tools, training  # noqa: F401 (each registers its commands with the app)
from .common import app, main

__all__ = ["app", "main"]
