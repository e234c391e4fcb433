"""``python -m benchmarks`` runs ``aec bench`` (same options)."""

import sys

from codec.cli import app

app(["bench", *sys.argv[1:]])
