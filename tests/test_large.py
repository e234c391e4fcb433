"""Large images: networks run in strips and the refinement row by row, with the same result, in bounded memory."""

from __future__ import annotations

import resource
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as samples

import codec
from codec import bitstream, coder, models, progress, refine
from codec.transforms import run_graph, run_graph_in_strips

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 72x96 crop of the camera man, in [0, 1]."""
    return samples.camera()[100:172, 200:296].astype(np.float32)[None, None] / np.float32(255.0)


@pytest.mark.parametrize("strip", [1, 2, 5, 17])
def test_strips_compute_what_the_whole_image_does(general: models.FrozenModel, photo: np.ndarray, strip: int) -> None:
    params = general.params_as(np.float32)
    whole = run_graph(general.analysis_graph, params, photo)
    analysed = run_graph_in_strips(general.analysis_graph, params, photo, 4, 1, strip, "a")
    # The same sums; a BLAS may round a row by one unit differently by where it falls in its tiles (OpenBLAS
    # 0.3.31 on AMD EPYC: 4.8e-7), so equal to within float32 rounding.
    np.testing.assert_allclose(analysed, whole, rtol=1e-5, atol=1e-5)
    latents = np.rint(whole)
    image = run_graph(general.synthesis_graph, params, latents)
    strips = run_graph_in_strips(general.synthesis_graph, params, latents, 1, 4, strip, "s")
    np.testing.assert_allclose(strips, image, rtol=1e-5, atol=1e-5)


def test_strips_need_their_context(
    general: models.FrozenModel, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codec import transforms

    params = general.params_as(np.float32)
    latents = np.rint(run_graph(general.analysis_graph, params, photo))
    whole = run_graph(general.synthesis_graph, params, latents)
    monkeypatch.setattr(transforms, "reach", lambda graph, params: Fraction(0))
    cut = run_graph_in_strips(general.synthesis_graph, params, latents, 1, 4, 2, "s")
    assert np.abs(cut - whole).max() > 1e-3  # far beyond rounding


def test_a_large_image_reports_its_progress(general: models.FrozenModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "STRIP_PIXELS", 32 * 96)
    heard: list[tuple[str, int, int]] = []
    image = (samples.camera()[100:172, 200:296]).astype(np.uint8)
    with progress.listening(lambda stage, done, total: heard.append((stage, done, total))):
        data = codec.compress(image, quality=8, effort=0)
        back = codec.decompress(data)
    assert back.shape == image.shape
    for stage in ("analysis", "synthesis"):
        steps = [(done, total) for name, done, total in heard if name == stage]
        assert steps == [(8, 18), (16, 18), (18, 18)], (stage, steps)  # strips of 8 latent rows
    progress.report("analysis", 1, 1)  # nobody listening: nothing happens


def test_a_long_refinement_is_coded_as_it_comes(monkeypatch: pytest.MonkeyPatch) -> None:
    model = refine.load()
    image = samples.camera()[:40, :64]
    base = np.full(image.shape, refine.MID_GREY, np.uint8)
    short, decoded = refine.encode(model, image, base, 1, 0)
    monkeypatch.setattr(coder, "CUT_SYMBOLS", 100)
    long, decoded_long = refine.encode(model, image, base, 1, 0)
    assert len(short) < len(long) <= len(short) + 4  # the uncut stream keeps at most its last word
    np.testing.assert_array_equal(decoded, decoded_long)
    for data in (short, long):
        np.testing.assert_array_equal(refine.decode(model, data, base, 1, 0), decoded)
    assert np.abs(decoded.astype(int) - image).max() <= 1


def test_the_size_limit_is_4096_squared() -> None:
    bitstream.check_size(4096, 4096)
    bitstream.check_size(8192, 2048)
    with pytest.raises(codec.FormatError, match="over the limit"):
        bitstream.check_size(4096, 4097)


def test_a_2048_square_photo_codes_in_bounded_memory(tmp_path: Path) -> None:
    """Whole-image synthesis took 1.3 GB at 2048x2048; in strips the command fits the hostile tests' 2 GB of address
    space (interpreter, numpy and BLAS included)."""
    photo = Image.fromarray(samples.camera()).resize((2048, 2048), Image.Resampling.BICUBIC)
    photo.save(tmp_path / "big.png")
    space = 2 << 30

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (space, space))

    env = {"PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    for args in (["compress", "big.png", "-q", "4", "--effort", "0"], ["decompress", "big.aec", "-o", "back.png"]):
        out = subprocess.run(
            [sys.executable, "-m", "codec", *args, "--quiet"],
            cwd=tmp_path, env=env, preexec_fn=limit, capture_output=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr.decode()
    back = np.asarray(Image.open(tmp_path / "back.png"))
    assert back.shape == (2048, 2048)
    assert codec.inspect((tmp_path / "big.aec").read_bytes()).header.width == 2048


def test_the_reach_is_the_receptive_field(general: models.FrozenModel) -> None:
    from codec.transforms import reach

    params = general.params_as(np.float32)
    # Analysis: kernels 5, 3 at full and half resolution, 5 at half, 3 and 3 at a quarter: 2 + 2 + 4 + 4 + 4 pixels.
    assert reach(general.analysis_graph, params) == 16
    # Synthesis: three 3x3 at the latents', two at twice and one at four times their resolution.
    assert reach(general.synthesis_graph, params) == 3 + Fraction(2, 2) + Fraction(1, 4)


def test_the_command_line_shows_a_bar_per_long_stage() -> None:
    from rich.progress import Progress

    from codec.cli.bars import STAGE_MIN, _stage_bars

    with Progress(disable=True) as bar:
        listen = _stage_bars(bar)
        listen("analysis", 3, STAGE_MIN - 1)  # short work: no bar
        for done in (100, 1024):
            listen("refinement", done, 1024)
        (task,) = bar.tasks
        assert task.description == "refinement" and task.completed == task.total == 1024
