"""The command line: defaults, -o, --force, stdin/stdout, batches, errors and exit codes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import codec
from codec import batch, bitstream
from codec.cli import app
from codec.metrics import psnr

runner = CliRunner()


@pytest.fixture()
def pngs(tmp_path: Path, digits: np.ndarray) -> list[Path]:
    paths = []
    for i in range(3):
        path = tmp_path / f"d{i}.png"
        Image.fromarray(digits[i]).save(path)
        paths.append(path)
    return paths


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_compress_writes_beside_the_input(pngs: list[Path]) -> None:
    result = runner.invoke(app, ["compress", str(pngs[0])])
    assert result.exit_code == 0, result.output
    out = pngs[0].with_suffix(".aec")
    assert out.is_file()
    assert "bpp" in result.stderr and "smaller than input" in result.stderr
    assert np.array_equal(codec.decompress(out.read_bytes()), codec.decompress(codec.compress(Image.open(pngs[0]))))


def test_decompress_writes_png_beside_the_input(pngs: list[Path]) -> None:
    runner.invoke(app, ["compress", str(pngs[0]), "-o", str(pngs[0].with_name("x.aec"))])
    result = runner.invoke(app, ["decompress", str(pngs[0].with_name("x.aec"))])
    assert result.exit_code == 0, result.output
    image = Image.open(pngs[0].with_name("x.png"))
    assert image.mode == "L" and image.size == (28, 28)


def test_existing_output_needs_force(pngs: list[Path]) -> None:
    target = pngs[0].with_suffix(".aec")
    target.write_bytes(b"keep me")
    result = runner.invoke(app, ["compress", str(pngs[0])])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[0] == f"error: {target} exists (use --force to overwrite)"
    assert target.read_bytes() == b"keep me"
    assert runner.invoke(app, ["compress", str(pngs[0]), "--force"]).exit_code == 0
    assert target.read_bytes()[:2] == bytes([0xAE, bitstream.VERSION << 4])


def test_several_inputs_go_to_a_folder(pngs: list[Path], tmp_path: Path) -> None:
    result = runner.invoke(app, ["compress", *map(str, pngs), "-o", str(tmp_path / "out"), "-q", "2"])
    assert result.exit_code == 0, result.output
    assert _files(tmp_path / "out") == {"d0.aec", "d1.aec", "d2.aec"}
    assert "3 files" in result.stderr
    assert codec.inspect((tmp_path / "out" / "d1.aec").read_bytes()).header.level == 2


def test_several_inputs_refuse_a_file_as_output(pngs: list[Path]) -> None:
    result = runner.invoke(app, ["compress", *map(str, pngs), "-o", str(pngs[0])])
    assert result.exit_code == 2
    assert "not a folder" in result.stderr


def test_folder_input_recursive(pngs: list[Path], tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    Image.open(pngs[0]).save(sub / "deep.png")
    flat = runner.invoke(app, ["compress", str(tmp_path), "-o", str(tmp_path / "flat")])
    assert flat.exit_code == 0 and _files(tmp_path / "flat") == {"d0.aec", "d1.aec", "d2.aec"}
    deep = runner.invoke(app, ["compress", "-r", str(tmp_path), "-o", str(tmp_path / "deep")])
    assert deep.exit_code == 0, deep.output
    assert (tmp_path / "deep" / "sub" / "deep.aec").is_file()


def test_stdin_to_stdout(pngs: list[Path]) -> None:
    result = runner.invoke(app, ["compress", "-", "--quiet"], input=pngs[0].read_bytes())
    assert result.exit_code == 0
    data = result.stdout_bytes
    assert data == codec.compress(Image.open(pngs[0]))
    back = runner.invoke(app, ["decompress", "-", "--quiet"], input=data)
    assert back.exit_code == 0
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(back.stdout_bytes))), codec.decompress(data))


def test_bad_inputs_fail_with_one_line_each(pngs: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    result = runner.invoke(app, ["compress", str(bad), str(pngs[1]), str(tmp_path / "missing.png")])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "Traceback" not in result.output
    assert "bad.png: not a readable image" in errors[0] and "missing.png: no such file" in errors[1]
    assert not (tmp_path / "bad.aec").exists() and pngs[1].with_suffix(".aec").is_file()
    assert bad.read_bytes() == b"not an image at all"


def test_corrupted_file_writes_no_image(pngs: list[Path]) -> None:
    data = bytearray(codec.compress(Image.open(pngs[0])))
    data[-4] ^= 1
    damaged = pngs[0].with_name("damaged.aec")
    damaged.write_bytes(bytes(data))
    result = runner.invoke(app, ["decompress", str(damaged)])
    assert result.exit_code == 1
    assert "corrupted" in result.stderr
    assert not damaged.with_suffix(".png").exists()
    assert not [p for p in damaged.parent.iterdir() if p.name.endswith(".part")]


def test_info(pngs: list[Path]) -> None:
    target = pngs[0].with_suffix(".aec")
    runner.invoke(app, ["compress", str(pngs[0]), "-q", "3"])
    result = runner.invoke(app, ["info", str(target)])
    assert result.exit_code == 0
    level = codec.inspect(target.read_bytes()).header.level  # the level whose model coded it
    assert level in codec.levels()
    assert f"28x28, level {level}'s model" in result.stdout and f"{target.stat().st_size} bytes" in result.stdout
    assert runner.invoke(app, ["info", str(pngs[0])]).exit_code == 1


def test_usage_errors_exit_2(pngs: list[Path]) -> None:
    assert runner.invoke(app, ["compress", str(pngs[0]), "-q", "99"]).exit_code == 2
    assert runner.invoke(app, ["compress"]).exit_code == 2
    assert runner.invoke(app, ["frobnicate"]).exit_code == 2


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and f"format version {bitstream.VERSION}" in result.stdout


def test_jobs_give_identical_files(digits: np.ndarray, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    count = 300  # chunks of 38 files (batch.chunk_size) over two worker processes (effort 0: a few seconds)
    assert batch.chunk_size(count, 2) < count
    for i in range(count):
        Image.fromarray(digits[i % len(digits)]).save(src / f"{i:03d}.png")
    one = runner.invoke(app, ["compress", str(src), "-o", str(tmp_path / "one"), "--quiet", "-e", "0"])
    two = runner.invoke(app, ["compress", str(src), "-o", str(tmp_path / "two"), "--quiet", "-e", "0", "--jobs", "2"])
    assert one.exit_code == two.exit_code == 0
    names = sorted(_files(tmp_path / "one"))
    assert len(names) == count and names == sorted(_files(tmp_path / "two"))
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_interrupted_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from codec import fileio

    def interrupt(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "link", interrupt)  # interrupted between writing and renaming
    with pytest.raises(KeyboardInterrupt):
        fileio.write_file(tmp_path / "out.aec", b"data")
    assert list(tmp_path.iterdir()) == []


def test_python_m_codec_starts_without_torch(tmp_path: Path) -> None:
    code = "import sys, codec.cli, codec.api, codec.batch; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
    out = subprocess.run(
        [sys.executable, "-m", "codec", "--help"], capture_output=True, text=True, cwd=Path(__file__).parent.parent
    )
    assert out.returncode == 0 and "compress" in out.stdout
    env = dict(os.environ)
    bad = subprocess.run(
        [sys.executable, "-m", "codec", "decompress", str(tmp_path / "none.aec")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1 and bad.stderr.strip() == f"error: {tmp_path / 'none.aec'}: no such file"


def test_one_file_off_a_terminal_imports_no_progress_bar_or_validation_library(pngs: list[Path]) -> None:
    # Start-up (#17): rich is imported only to draw a bar, and the typer in use coerces parameters
    # without pydantic; either would add a third to the start of a one-file command.
    code = (
        "import sys; from codec.cli import app; sys.argv = ['aec', 'compress', sys.argv[1], '-e', '0'];\n"
        "try:\n    app()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print(sorted({'rich', 'pydantic', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(pngs[0])], capture_output=True, text=True, cwd=Path(__file__).parent.parent
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]" and pngs[0].with_suffix(".aec").is_file()


def test_psnr_target_picks_the_smallest_level_that_reaches_it(pngs: list[Path], shipped_levels: list[int]) -> None:
    image = np.asarray(Image.open(pngs[0]))
    own = {q: codec.compress(image, q) for q in shipped_levels}  # what the target tries: each quality as -q codes it
    quality = {q: float(psnr(image, codec.decompress(own[q]))) for q in shipped_levels}
    target = (quality[shipped_levels[2]] + quality[shipped_levels[3]]) / 2
    expected = min(q for q in shipped_levels if quality[q] >= target)
    result = runner.invoke(
        app, ["compress", str(pngs[0]), "--psnr", f"{target}", "-o", str(pngs[0].with_name("t.aec"))]
    )
    assert result.exit_code == 0, result.output
    data = pngs[0].with_name("t.aec").read_bytes()
    assert data == own[expected]  # the quality's own file (its model may be a neighbour's: docs/guide.md)
    assert psnr(image, codec.decompress(data)) >= target


def test_max_bytes_picks_the_best_level_that_fits(pngs: list[Path], shipped_levels: list[int]) -> None:
    image = np.asarray(Image.open(pngs[1]))
    sizes = {q: len(codec.compress(image, q)) for q in shipped_levels}
    limit = sizes[shipped_levels[4]]
    result = runner.invoke(
        app, ["compress", str(pngs[1]), "--max-bytes", str(limit), "-o", str(pngs[1].with_name("m.aec"))]
    )
    assert result.exit_code == 0, result.output
    data = pngs[1].with_name("m.aec").read_bytes()
    assert len(data) <= limit
    assert data == codec.compress(image, max(q for q in shipped_levels if sizes[q] <= limit))
    too_small = runner.invoke(
        app, ["compress", str(pngs[1]), "--max-bytes", "3", "-o", str(pngs[1].with_name("n.aec"))]
    )
    assert too_small.exit_code == 1 and "cannot fit in 3 bytes" in too_small.stderr
    assert not pngs[1].with_name("n.aec").exists()
    both = runner.invoke(app, ["compress", str(pngs[1]), "-q", "2", "--psnr", "30"])
    assert both.exit_code == 2


def test_ctrl_c_leaves_no_partial_file(digits: np.ndarray, tmp_path: Path) -> None:
    import signal
    import time

    src = tmp_path / "src"
    src.mkdir()
    for i in range(1500):
        Image.fromarray(digits[i % len(digits)]).save(src / f"{i:04d}.png")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "codec", "compress", str(src), "-o", str(out), "--quiet"],
        cwd=Path(__file__).parent.parent,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job ignores SIGINT and its children inherit that; the user's terminal does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.is_dir() and any(out.iterdir())):
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    written = list(out.iterdir())
    assert process.returncode != 0 or len(written) == 1500
    assert "Traceback" not in stderr
    assert not [p for p in written if p.suffix != ".aec"], "a temporary file was left behind"
    for path in written:  # every file that exists is complete
        assert codec.decompress(path.read_bytes()).shape == (28, 28)


def test_measure_only_rewrites_a_levels_metrics(tmp_path: Path, mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    """``aec freeze --measure-only`` measures an installed level again, leaving its model (and model id) alone:
    the measurement is the level's preset's."""
    import shutil

    from codec import models, store
    from codec.search import DEFAULT_EFFORT

    folder, shipped, environment = tmp_path / "weights", models.weights_dir(), os.environ.get(models.WEIGHTS_ENV)
    shutil.copytree(shipped, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    before = store.presets(folder)["level-1"]
    model = store.model_path(folder, before["model"])
    weights, record = model.read_bytes(), model.with_suffix(".json").read_bytes()
    result = runner.invoke(
        app, ["freeze", "--measure-only", "--level", "1", "--test-limit", "30", "--weights-dir", str(folder)]
    )
    assert result.exit_code == 0, result.output
    after = store.presets(folder)["level-1"]
    assert after["test"]["images"] == 30 and after["test_effort"] == DEFAULT_EFFORT
    assert {k: v for k, v in after.items() if not k.startswith("test")} == {
        k: v for k, v in before.items() if not k.startswith("test")
    }
    assert model.read_bytes() == weights and model.with_suffix(".json").read_bytes() == record
    assert "level 1:" in result.output
    # The command measured in its folder without pointing the process's environment there.
    assert os.environ.get(models.WEIGHTS_ENV) == environment and models.weights_dir() == shipped

    # --search-lambda moves the level's operating point: an encoder setting, the weights stay.
    args = ["freeze", "--measure-only", "--level", "1", "--test-limit", "30", "--weights-dir", str(folder)]
    result = runner.invoke(app, [*args, "--search-lambda", "0.5"])
    assert result.exit_code == 0, result.output
    cheaper = store.presets(folder)["level-1"]
    assert cheaper["search_lambda"] == 0.5 and models.load_model(1, folder).search_lambda == 0.5
    assert cheaper["test"]["payload_bpp"] < after["test"]["payload_bpp"]
    assert cheaper["test"]["psnr"] < after["test"]["psnr"]
    assert model.read_bytes() == weights
    refused = runner.invoke(app, ["freeze", "--level", "1", "--search-lambda", "0.5"])
    assert refused.exit_code == 2 and "--measure-only" in refused.output


def test_bench_record_needs_the_whole_test_set() -> None:
    result = runner.invoke(app, ["bench", "--limit", "10", "--record"])
    assert result.exit_code == 2 and "whole MNIST test set" in result.output


def test_levels_lists_every_installed_level(shipped_levels: list[int]) -> None:
    from codec import models

    result = runner.invoke(app, ["levels", "--markdown"])
    assert result.exit_code == 0, result.output
    header, _, *rows = result.output.strip().splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert len(rows) == len(shipped_levels)
    for level, row in zip(shipped_levels, rows):
        cells = dict(zip(columns, (c.strip() for c in row.strip("|").split("|"))))
        model = models.load_model(level)
        assert cells["level"] == str(level) and cells["model id"] == f"{model.model_id:03x}"
        assert float(cells["search lambda"]) == model.search_lambda
        assert float(cells["bpp"]) == round(model.metadata["test"]["bpp"], 3)


def test_a_command_runs_from_an_app_holding_it_alone(pngs: list[Path]) -> None:
    """The console script builds only the command it runs: the same command, options and callback."""
    from codec.cli.common import app_for, command_name

    names = [command_name(info) for info in app.registered_commands]
    assert len(names) == len(set(names)) and {"compress", "decompress", "info", "pack"} <= set(names)
    lean = app_for(["info", str(pngs[0])])
    assert [command_name(info) for info in lean.registered_commands] == ["info"]
    assert lean.registered_callback is app.registered_callback and len(app.registered_commands) == len(names)
    for args in ([], ["--version"], ["nonsense"], ["--help"]):
        assert app_for(args) is app
    whole = runner.invoke(app, ["compress", "--effort", "0", str(pngs[0]), "-o", "-"])
    alone = runner.invoke(app_for(["compress"]), ["compress", "--effort", "0", str(pngs[0]), "-o", "-"])
    assert alone.exit_code == whole.exit_code == 0 and alone.stdout_bytes == whole.stdout_bytes
    bad = runner.invoke(app_for(["compress"]), ["compress", "--effort", "9", str(pngs[0])])
    assert bad.exit_code == 2 and "--effort" in bad.output
    version = runner.invoke(app_for(["info"]), ["--version"])
    assert version.exit_code == 0 and version.output.startswith("aec ")
