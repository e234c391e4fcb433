"""``python -m codec`` works like the ``aec`` command."""

from .cli import main

main()
