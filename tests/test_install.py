"""``pip install .`` (not editable) from a clean copy finds the shipped weights."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_installed_package_finds_its_weights(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".venv", ".git", "checkpoints", "build", "*.egg-info", "__pycache__", "results"),
    )
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        cwd=tmp_path,
    )
    stored = sorted(p.name for p in (ROOT / "weights" / "models").iterdir())
    assert sorted(p.name for p in (target / "codec" / "weights" / "models").iterdir()) == stored  # every model
    assert (target / "codec" / "weights" / "presets.json").is_file()
    assert (target / "codec" / "benchmarks" / "report.py").is_file()  # `aec bench` works installed too
    assert (target / "codec" / "py.typed").is_file()
    code = (
        "import numpy as np, codec, codec.models as m;"
        f"assert m.weights_dir().is_relative_to({str(target)!r}), m.weights_dir();"
        "d = np.zeros((28, 28), np.uint8); d[5:20, 10:14] = 255;"
        "assert codec.decompress(codec.compress(d)).shape == (28, 28)"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)
