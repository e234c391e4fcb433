"""Where a benchmark's results go: its JSON (everything measured) and its markdown report, side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(out: Path, name: str, result: Any, report: str) -> Path:
    """Write ``NAME.json`` (``result``) and ``NAME.md`` (``report``) into ``out``; returns the markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    path = out / f"{name}.md"
    path.write_text(report)
    return path
