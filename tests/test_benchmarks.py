"""The benchmark suite: BD-rate on curves with a known answer, the PCA codec, a small end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

import codec  # noqa: E402
from benchmarks import rd  # noqa: E402
from benchmarks.pca import PcaCodec  # noqa: E402


def _curve(scale: float) -> tuple[list[float], list[float]]:
    psnr = [20.0, 24.0, 28.0, 32.0, 36.0]
    return [scale * 0.1 * 2 ** ((p - 20) / 6) for p in psnr], psnr


def test_bd_rate_known_answers() -> None:
    anchor = _curve(1.0)
    assert rd.bd_rate(anchor, _curve(0.5)) == pytest.approx(-50.0, abs=1e-6)
    assert rd.bd_rate(anchor, _curve(2.0)) == pytest.approx(100.0, abs=1e-6)
    assert rd.bd_rate(anchor, anchor) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_is_not_moved_by_points_outside_the_shared_range() -> None:
    """A single cubic through a whole curve (VCEG-M33) let a lossless point at 99 dB move the BD-rate over
    20-36 dB; the piecewise interpolation keeps it where the curves are."""
    anchor, test = _curve(1.0), _curve(0.5)
    # near-lossless and lossless points past the anchor's range (the single cubic gave -44.2 %)
    far = ([*test[0], 2.0, 3.0, 5.0], [*test[1], 40.0, 50.0, 99.0])
    assert rd.bd_rate(anchor, far) == pytest.approx(-50.0, abs=1.0)


def test_bd_rate_needs_a_shared_range() -> None:
    low = ([0.1, 0.2], [10.0, 15.0])
    high = ([0.5, 1.0], [20.0, 30.0])
    assert rd.bd_rate(low, high) is None


def test_rate_at_interpolates_in_log_rate() -> None:
    rates, psnrs = [0.1, 0.4], [20.0, 30.0]
    assert rd.rate_at(rates, psnrs, 25.0) == pytest.approx(0.2)
    assert rd.rate_at(rates, psnrs, 35.0) is None
    # a dominated point (more bits, less quality) is ignored
    assert rd.rate_at([0.1, 0.3, 0.4], [20.0, 19.0, 30.0], 25.0) == pytest.approx(0.2)


def test_pca_codec_roundtrip(mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    images = mnist_test[0]
    pca = PcaCodec(images[1000:4000], ks=(8, 40))
    test = images[:30]
    previous = None
    for k in pca.settings:
        files = pca.encode_many(test, k)
        decoded = pca.decode_many(files, k)
        assert decoded.shape == test.shape and decoded.dtype == np.uint8
        assert np.array_equal(pca.decode(files[0], k), decoded[0])
        error = np.mean((decoded.astype(float) - test) ** 2)
        size = sum(map(len, files))
        if previous is not None:
            assert error < previous[0] and size > previous[1]
        previous = (error, size)


def test_suite_end_to_end(mnist_test: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    from benchmarks import report

    images = list(mnist_test[0][:24])
    rows, paths = report.bench(images, mnist_test[0][5000:7000], tmp_path, "test run", ["WebP", "PNG"], progress=False)
    assert {r.codec for r in rows} == {"aec", "PCA", "WebP", "PNG"}
    for name in ("json", "csv", "md", "rd_psnr", "rd_ssim", "gallery"):
        assert paths[name].is_file() and paths[name].stat().st_size > 0
    stored = json.loads(paths["json"].read_text())
    assert len(stored["rows"]) == len(rows)
    aec = [r for r in rows if r.codec == "aec"]
    assert all(r.images == 24 and r.bpp > r.payload_bpp > 0 and r.psnr is not None for r in aec)
    png = next(r for r in rows if r.codec == "PNG")
    assert png.psnr is None and png.ssim == pytest.approx(1.0)
    assert "| aec |" in paths["md"].read_text()


def test_latent_view(mnist_test: tuple[np.ndarray, np.ndarray], tmp_path: Path, shipped_levels: list[int]) -> None:
    from benchmarks import report

    paths = report.latent_view(mnist_test[0][:60], mnist_test[1][:60], shipped_levels[0], tmp_path, tsne=False)
    assert all(p.is_file() for p in paths.values())


def test_payload_headline_compares_payloads() -> None:
    from benchmarks.suite import PAYLOAD_TARGET, Row, payload_headline

    def rows(name: str, scale: float, container: float) -> list[Row]:
        rates, psnrs = _curve(scale)
        return [
            Row(name, "lib", f"s{i}", 10, r + container, r, p, p - 0.5, 0.9, 1.0, 1.0)
            for i, (r, p) in enumerate(zip(rates, psnrs))
        ]

    # aec's files carry a container the PCA codec lacks; its payloads are half of PCA's.
    result = payload_headline(rows("aec", 0.5, 0.06) + rows("PCA", 1.0, 0.0))
    at_target, against_pca = result.values()
    assert against_pca == pytest.approx(-50.0, abs=1e-6)
    assert at_target == pytest.approx(0.5 * 0.1 * 2 ** ((PAYLOAD_TARGET + 0.5 - 20) / 6))


def test_effort_summary_against_effort_zero() -> None:
    from benchmarks.effort import markdown, summary
    from benchmarks.suite import Row

    def rows(scale: float, ips: float, fall: float = 0.0) -> list[Row]:
        """Ten images at each level, all at the level's PSNR but image 0 at level 3: ``fall`` below level 2's."""
        rates, psnrs = _curve(scale)
        per_image = [[p] * 10 for p in psnrs]
        per_image[2][0] = psnrs[1] - fall
        return [
            Row("aec", "lib", str(i + 1), 10, r + 0.06, r, p, p - 0.5, 0.9, ips, 1.0, tuple(per_image[i]))
            for i, (r, p) in enumerate(zip(rates, psnrs))
        ]

    measured = {0: rows(1.0, 100.0), 2: rows(0.8, 10.0, fall=0.3)}
    base, searched = summary(measured)
    assert base["bd_payload"] == pytest.approx(0.0, abs=1e-9) and base["encode_ips"] == pytest.approx(100.0)
    assert searched["bd_payload"] == pytest.approx(-20.0, abs=1e-6)
    assert -20.0 < searched["bd_whole"] < 0  # the container's bytes are the same at both efforts
    assert (base["rising"], base["largest_fall"]) == (1.0, 0.0)
    assert searched["rising"] == pytest.approx(0.9) and searched["largest_fall"] == pytest.approx(0.3)
    assert "| 2 (default) | 2 x 16 |" in markdown(measured, 10) and "| 90 % | 0.30 dB |" in markdown(measured, 10)


def test_levels_measured_in_parallel_match(mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    from benchmarks.suite import measure_aec
    from codec.evaluate import sweep

    images = list(mnist_test[0][:4])
    one, two = measure_aec(images, 1, jobs=1), measure_aec(images, 1, jobs=2)
    assert [(r.setting, r.bpp, r.psnr, r.ssim) for r in one] == [(r.setting, r.bpp, r.psnr, r.ssim) for r in two]
    swept = sweep(images, [3, 9], 1)  # a few images at a time at every level: the files of each level alone
    assert swept[9][0] == codec.compress_many(images, 9, 1) and swept[3][0] == codec.compress_many(images, 3, 1)


def test_sets_hold_out_the_training_images() -> None:
    """No benchmark photo or font is a training one, and the digit set is the same every time."""
    from benchmarks import sets
    from codec.training import refine_fit
    from codec.training.digits import find_fonts

    names = [name for name, _ in sets.photos()]
    assert len(names) >= 20 and not set(names) & set(refine_fit.TRAINING_PHOTOS)
    assert all(max(image.shape) <= sets.PHOTO_SIDE for _, image in sets.photos())
    training = {f.name for f in find_fonts(refine_fit.TRAINING_FONT)}
    assert sets.benchmark_fonts() and not {f.name for f in sets.benchmark_fonts()} & training


def test_wild_benchmark_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """aec bench --sets on one image of each set: every point measured, BD-rates against the classic codecs."""
    from benchmarks import sets, wild

    # Kept short: the photo small (each of its 15 levels tries three scales) and two of the PSNR targets.
    monkeypatch.setattr(sets, "PHOTO_SIDE", 64)
    monkeypatch.setattr(wild, "PSNR_TARGETS", (35.0, 45.0))
    digits = np.random.default_rng(0).integers(0, 256, (60_000, 28, 28), dtype=np.uint8)  # MNIST's training size
    path = wild.run(tmp_path, digits, limit=1, progress=False)
    results = json.loads((tmp_path / "wild.json").read_text())
    assert set(results) == {"digits (not MNIST)", "photos"}
    for rows in results.values():
        (row,) = rows
        assert row["reaches_45"] and row["best_psnr"] >= 45.0
        assert row["bd_rate"]["WebP"] is not None and len(row["aec"]) == 15 + len(wild.MAX_ERRORS)
        assert row["bd_rate_unrestored_vs_webp"] is not None  # what restoring is worth, beside
        assert [t["target"] for t in row["targets"]] == list(wild.PSNR_TARGETS)  # the first image is sampled
        assert all(t["psnr"] >= t["target"] and t["bpp"] > 0 for t in row["targets"])
    text = path.read_text()
    assert "| photos | 1 |" in text and "| photos | 45 | 1 | 100 % |" in text


def test_lossless_benchmark_end_to_end(tmp_path: Path, digits: np.ndarray) -> None:
    """aec bench --lossless on a few digits and two tiny sets: every codec checked exact, every table written."""
    from benchmarks import lossless

    photo = np.asarray(Image.open(Path(__file__).parent / "vectors" / "lossless-camera.png"))
    named = {"digits": [255 - digits[0], np.kron(digits[1], np.ones((2, 2), np.uint8))], "photos": [photo]}
    path = lossless.run(digits[:12], named, tmp_path, progress=lambda _: None)
    result = json.loads((tmp_path / "lossless.json").read_text())
    names = {r["codec"] for r in result["per_image"]}
    assert {"aec --lossless", "PNG", "zlib -9"} <= names
    assert [r["max_error"] for r in result["near_lossless"]] == list(lossless.MAX_ERRORS)
    assert all(r["largest_error"] <= r["max_error"] for r in result["near_lossless"])
    assert [r["set"] for r in result["sets"]] == ["digits", "photos"]
    text = path.read_text()
    assert "| aec pack --lossless |" in text and "| photos | 1 |" in text
    assert (tmp_path / "lossless_rd.png").stat().st_size > 0


def test_search_benchmark_end_to_end(tmp_path: Path, mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    """aec bench --search on a small archive: every ranking's precision, the speeds, both files."""
    from benchmarks import retrieval

    images, labels = mnist_test
    path = retrieval.run((images[:300], labels[:300]), (images[300:340], labels[300:340]), tmp_path, lambda _: None)
    result = json.loads((tmp_path / "retrieval.json").read_text())
    assert len(result["rows"]) == 3 + len(retrieval.LEVELS) and all(0.5 < r["precision"] <= 1 for r in result["rows"])
    assert set(result["speed"]) == {str(level) for level in retrieval.SPEED_LEVELS}
    assert (tmp_path / "search_neighbours.png").stat().st_size > 10_000  # the picture for the guide
    assert all(
        set(times) == {"search_one", "search_all", "decode_one", "decode_all"} for times in result["speed"].values()
    )
    assert "| aec search, level 8 latents, cosine |" in path.read_text()
    # The pixel baseline is a real kNN: an archived digit asked for finds itself first.
    flat = images[:300].reshape(300, -1)
    assert list(retrieval.euclidean_neighbours(flat, flat[[5, 17]])[:, 0]) == [5, 17]


def test_denoise_benchmark_end_to_end(tmp_path: Path, mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    """aec bench --denoise on a few digits: every kind and strength, non-local means tuned, both files."""
    from benchmarks import denoising
    from codec.training.noise import KINDS

    images = mnist_test[0]
    path = denoising.run(images[:8], images[100:104], tmp_path, lambda _: None)
    result = json.loads((tmp_path / "denoising.json").read_text())
    assert len(result["rows"]) == sum(map(len, KINDS.values()))
    assert all(row["nlm_h"] in denoising.NLM_STRENGTHS for row in result["rows"])
    gaussian = next(r for r in result["rows"] if (r["kind"], r["strength"]) == ("gaussian", 0.3))
    assert gaussian["aec denoise"] > gaussian["damaged"] + 5
    assert "At gaussian 0.3:" in path.read_text()
    assert (tmp_path / "denoise_examples.png").stat().st_size > 10_000  # the picture for the guide
