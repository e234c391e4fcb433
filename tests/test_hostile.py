"""Hostile and unusual input: every case ends in one ``error:`` line and its exit code, in bounded memory,
with no traceback and nothing unreadable or partial left behind.

Commands that read streams, devices and terminals run as real processes (``python -m
codec``) under an address-space limit; the rest run in-process through typer's runner.
"""

from __future__ import annotations

import io
import os
import pty
import resource
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

import codec
from codec import archive, bitstream, models
from codec.cli import app
from codec.limits import MAX_IMAGE_FILE_BYTES

ROOT = Path(__file__).resolve().parent.parent
#: The address space a command may take: the documented 1 GB of work plus the interpreter, numpy and BLAS.
ADDRESS_SPACE = 2 << 30
runner = CliRunner()


def aec(
    *args: str,
    cwd: Path,
    stdin: object = subprocess.DEVNULL,
    stdout: object = subprocess.PIPE,
    umask: int | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """``python -m codec ARGS`` from this checkout, in a process of bounded address space."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
        if umask is not None:
            os.umask(umask)

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "codec", *args],
        cwd=cwd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env, preexec_fn=limit, timeout=300,
    )  # fmt: skip


def one_error(stderr: bytes | str, *expected: str) -> str:
    """The single line of stderr: an ``error:`` naming each of ``expected``."""
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert "Traceback" not in text
    for part in expected:
        assert part in lines[0], lines[0]
    return lines[0]


def clean_fail(result: Result, code: int, *expected: str) -> None:
    """A runner result that failed the way the CLI promises: exit code, one error line, no exception."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    one_error(result.stderr, *expected)


@pytest.fixture()
def digit_png(tmp_path: Path) -> Path:
    path = tmp_path / "a.png"
    path.write_bytes((ROOT / "examples" / "digit.png").read_bytes())
    return path


def _png_header_only(width: int, height: int, mode_byte: int = 6) -> bytes:
    """A PNG that declares ``width`` x ``height`` (RGBA) but holds one compressed row: cheap to make, costly to load."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode_byte, 0, 0, 0)
    idat = zlib.compress(b"\0" * (1 + 4 * width))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# 1. Unbounded reads: every command on an endless input.
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compress", "/dev/zero", "-o", "z.aec"], "over the 64 MiB limit"),
        (["decompress", "/dev/zero", "-o", "z.png"], "over the 64 MiB limit"),
        (["info", "/dev/zero"], "not an .aec file"),
        (["unpack", "/dev/zero", "-o", "zz"], "not an .aecs archive"),
        (["pack", "/dev/zero", "-o", "z.aecs"], "over the 64 MiB limit"),
    ],
)
def test_endless_inputs_are_refused_in_bounded_memory(tmp_path: Path, args: list[str], message: str) -> None:
    out = aec(*args, cwd=tmp_path)
    assert out.returncode == 1
    one_error(out.stderr, "/dev/zero", message)
    assert list(tmp_path.iterdir()) == []


def test_endless_standard_input_is_refused(tmp_path: Path) -> None:
    with open("/dev/zero", "rb") as zero:
        out = aec("compress", "-", "-o", "z.aec", cwd=tmp_path, stdin=zero)
    assert out.returncode == 1
    one_error(out.stderr, "standard input is over the 64 MiB limit")
    assert list(tmp_path.iterdir()) == []


def test_a_large_regular_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with open(big, "wb") as fh:
        fh.truncate(MAX_IMAGE_FILE_BYTES + 1)  # sparse: no disk used
    clean_fail(runner.invoke(app, ["compress", str(big)]), 1, "big.png", "over the 64 MiB limit")


# 2. The archive's count limit: the writer stops exactly where the reader does.
def test_archive_count_limit_is_the_readers(tmp_path: Path) -> None:
    head = archive.ArchiveHead(2, 0x232, 28, 28, np.zeros(archive.MAX_COUNT, bool), np.zeros(archive.MAX_COUNT, int))
    data = head.to_bytes()
    back = archive.read_head(io.BytesIO(data).read)
    assert back.count == archive.MAX_COUNT == (1 << 21) - 1
    over = archive.ArchiveHead(2, 0x232, 28, 28, np.zeros(1 << 21, bool), np.zeros(1 << 21, int))
    with pytest.raises(codec.ImageError, match="at most 2,097,151 images"):
        over.to_bytes()
    with pytest.raises(codec.ImageError, match="at most"):
        archive.check_count(archive.MAX_COUNT + 1)


def test_archive_size_and_payload_limits_are_the_readers() -> None:
    for width, height in [(8192, 128), (1, 1)]:
        head = archive.ArchiveHead(2, 1, width, height, np.zeros(1, bool), np.array([archive.MAX_PAYLOAD]))
        assert archive.read_head(io.BytesIO(head.to_bytes()).read).width == width
    for width, height in [(8193, 1), (4097, 4096)]:
        with pytest.raises(codec.FormatError, match="over the limit"):
            archive.ArchiveHead(2, 1, width, height, np.zeros(1, bool), np.zeros(1, int)).to_bytes()
    with pytest.raises(codec.ImageError, match="65,535"):
        archive.ArchiveHead(2, 1, 28, 28, np.zeros(1, bool), np.array([archive.MAX_PAYLOAD + 1])).to_bytes()


def test_single_file_limit_covers_every_shipped_model(shipped_levels: list[int]) -> None:
    from codec import coder

    for level in shipped_levels:
        model = models.load_model(level)
        grid = -(-4096 // model.stride)
        symbols = sum(count for count, _ in coder.segments_of(model.prior.layout(grid, grid), 0))
        assert 1.5 * (2 * symbols + 64) <= bitstream.MAX_FILE_BYTES, level  # 16 bits a symbol, and a margin
    with pytest.raises(codec.FormatError, match="over the format's"):
        bitstream.pack(bitstream.Header(2, 0x232), bytes(bitstream.MAX_FILE_BYTES))


# 3. Memory before checks: sizes are judged from the header, and batches are bounded by pixels.
@pytest.mark.parametrize("side", [9000, 13000])
def test_an_oversized_image_is_refused_from_its_header(tmp_path: Path, side: int) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header_only(side, side))
    out = aec("compress", str(path), cwd=tmp_path)
    assert out.returncode == 1
    one_error(out.stderr, "huge.png", "over the limit")


def test_a_crafted_archive_of_large_images_unpacks_in_bounded_memory(tmp_path: Path, shipped_levels: list[int]) -> None:
    # Empty payloads, as a 3 KB hostile archive would have them: each decodes to a whole 1024x1024 image.
    level = shipped_levels[0]
    count = 12
    head = archive.ArchiveHead(level, models.load_model(level).model_id, 1024, 1024, np.zeros(count, bool),
                               np.zeros(count, int))  # fmt: skip
    crafted = tmp_path / "crafted.aecs"
    crafted.write_bytes(head.to_bytes() + zlib.crc32(b"").to_bytes(4, "little"))
    assert runner.invoke(app, ["info", str(crafted)]).exit_code == 0
    out = aec("unpack", str(crafted), "-o", "out", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr.decode()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{i:05d}.png" for i in range(count)]


# 4. Output files respect the umask; --force keeps an existing file's mode.
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_respect_the_umask(tmp_path: Path, digit_png: Path, mask: int) -> None:
    out = aec("compress", str(digit_png), "-o", "a.aec", cwd=tmp_path, umask=mask)
    assert out.returncode == 0, out.stderr.decode()
    assert (tmp_path / "a.aec").stat().st_mode & 0o777 == 0o666 & ~mask
    (tmp_path / "a.aec").chmod(0o640)
    again = aec("compress", str(digit_png), "-o", "a.aec", "--force", cwd=tmp_path, umask=mask)
    assert again.returncode == 0
    assert (tmp_path / "a.aec").stat().st_mode & 0o777 == 0o640


# 5. Partial output and late checks.
@pytest.fixture()
def small_archive(tmp_path: Path, digit_png: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(30):
        (folder / f"{i:02d}.png").write_bytes(digit_png.read_bytes())
    path = tmp_path / "small.aecs"
    result = runner.invoke(app, ["pack", str(folder), "-o", str(path), "-e", "0", "-q", "2"])
    assert result.exit_code == 0, result.output
    return path


def test_unpack_checks_every_output_before_work(tmp_path: Path, small_archive: Path) -> None:
    folder = tmp_path / "pre"
    folder.mkdir()
    (folder / "00025.png").write_bytes(b"keep")
    clean_fail(runner.invoke(app, ["unpack", str(small_archive), "-o", str(folder)]), 1, "00025.png", "exist")
    assert [p.name for p in folder.iterdir()] == ["00025.png"]
    assert (folder / "00025.png").read_bytes() == b"keep"


def test_a_damaged_archive_leaves_nothing(tmp_path: Path, small_archive: Path) -> None:
    damaged = bytearray(small_archive.read_bytes())
    damaged[-10] ^= 0x10
    bad = tmp_path / "bad.aecs"
    bad.write_bytes(bytes(damaged))
    clean_fail(runner.invoke(app, ["unpack", str(bad), "-o", str(tmp_path / "out")]), 1, "checksum")
    assert not (tmp_path / "out").exists()
    (tmp_path / "kept").mkdir()
    clean_fail(runner.invoke(app, ["unpack", str(bad), "-o", str(tmp_path / "kept")]), 1, "checksum")
    assert list((tmp_path / "kept").iterdir()) == []
    clean_fail(runner.invoke(app, ["unpack", str(bad), "-o", str(tmp_path / "x-idx3-ubyte")]), 1, "checksum")
    assert not (tmp_path / "x-idx3-ubyte").exists()


def test_pack_checks_its_output_before_work(
    tmp_path: Path, small_archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codec import batch

    def never(*args: object) -> None:
        raise AssertionError("packed before checking the output")

    monkeypatch.setattr(batch, "pack_batches", never)
    clean_fail(runner.invoke(app, ["pack", str(tmp_path / "in"), "-o", str(small_archive)]), 1, "exists")


# 6. Paths and streams that used to end in a traceback.
def test_output_under_a_file_is_an_error(tmp_path: Path, digit_png: Path, small_archive: Path) -> None:
    clean_fail(runner.invoke(app, ["compress", str(digit_png), "-o", f"{digit_png}/x.aec"]), 1, "cannot create folder")
    clean_fail(runner.invoke(app, ["unpack", str(small_archive), "-o", str(digit_png)]), 1, "not a folder")
    clean_fail(runner.invoke(app, ["compress", str(digit_png), "-o", "/proc/x.aec"]), 1, "cannot write")
    clean_fail(runner.invoke(app, ["unpack", str(small_archive), "-o", "/proc/pngs"]), 1, "cannot create folder")


def test_a_full_or_closed_standard_output_is_an_error(tmp_path: Path, digit_png: Path) -> None:
    with open("/dev/full", "wb") as full:
        out = aec("compress", str(digit_png), "-o", "-", cwd=tmp_path, stdout=full)
    assert out.returncode == 1
    one_error(out.stderr, "No space left on device")
    closed = subprocess.run(
        f"{sys.executable} -m codec compress {digit_png} -o - >&-",
        shell=True, cwd=tmp_path, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert closed.returncode == 2
    one_error(closed.stderr, "standard output is closed")


def test_binary_output_to_a_terminal_is_refused(tmp_path: Path, digit_png: Path) -> None:
    leader, follower = pty.openpty()
    try:
        out = aec("compress", str(digit_png), "-o", "-", cwd=tmp_path, stdout=follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert out.returncode == 2
    one_error(out.stderr, "terminal")


def test_bench_without_its_extras_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def without_matplotlib(name: str, *args: object) -> object:
        return None if name == "matplotlib" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without_matplotlib)
    for command in (["bench", "--limit", "5"], ["latent", "--limit", "5"]):
        clean_fail(runner.invoke(app, command), 1, "aec[bench]", "matplotlib")


# 7. Pictures that used to change silently.
def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    image = Image.new("L", (48, 28), 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display: shown 28 wide, 48 high
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert runner.invoke(app, ["compress", str(path), "-q", "2"]).exit_code == 0
    assert codec.inspect((tmp_path / "rotated.aec").read_bytes()).header.width == 28


@pytest.mark.parametrize("suffix", [".gif", ".tif"])
def test_several_frames_are_refused(tmp_path: Path, suffix: str) -> None:
    frames = [Image.new("L", (28, 28), v) for v in (0, 128, 255)]
    path = tmp_path / f"anim{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    clean_fail(runner.invoke(app, ["compress", str(path)]), 1, "3 frames")
    assert not (tmp_path / "anim.aec").exists()


def test_float_images(tmp_path: Path) -> None:
    unit = tmp_path / "unit.tif"
    Image.fromarray(np.linspace(0, 1, 784, dtype=np.float32).reshape(28, 28)).save(unit)
    clean_fail(runner.invoke(app, ["compress", str(unit)]), 1, "values in 0..1")
    grey = np.linspace(0, 255, 784, dtype=np.float32).reshape(28, 28)
    levels = tmp_path / "levels.tif"
    Image.fromarray(grey).save(levels)
    assert runner.invoke(app, ["compress", str(levels), "-q", "2"]).exit_code == 0
    expected = codec.compress(Image.fromarray(grey).convert("L"), quality=2)
    assert (tmp_path / "levels.aec").read_bytes() == expected
    with pytest.raises(codec.ImageError, match="outside 0..255"):
        codec.compress(Image.fromarray(grey * 2))


# 8-9. pack to standard output, and IDX files told apart by content, not name.
def test_pack_to_standard_output_and_idx_by_content(tmp_path: Path, digit_png: Path) -> None:
    odd = tmp_path / "sidx.png"
    odd.write_bytes(digit_png.read_bytes())
    named = tmp_path / "x-images-idx3-ubyte"
    named.write_bytes(digit_png.read_bytes())
    out = aec("pack", str(odd), str(named), "-o", "-", "-q", "2", "-e", "0", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr.decode()
    assert len(archive.open_archive(out.stdout)) == 2
    assert not (tmp_path / "-").exists()
    fake = tmp_path / "fake.gz"
    fake.write_bytes(b"\x1f\x8b" + bytes(30))
    clean_fail(runner.invoke(app, ["pack", str(fake), "-o", str(tmp_path / "f.aecs")]), 1, "fake.gz", "gzip")


# 10. --quiet is quiet.
def test_quiet_is_quiet_with_targets(digit_png: Path) -> None:
    result = runner.invoke(app, ["compress", str(digit_png), "--psnr", "25", "--quiet"])
    assert result.exit_code == 0 and result.stderr == "" and result.stdout == ""


# 11. numpy integers are integers.
def test_numpy_integers_are_integers(digit_png: Path) -> None:
    image = Image.open(digit_png)
    assert codec.compress(image, quality=np.uint8(8)) == codec.compress(image, quality=8)
    assert codec.compress(image, quality=np.int64(3), effort=np.uint8(1)) == codec.compress(image, 3, 1)


# 13. Counts and ratios true, messages that name what they mean.
def test_a_larger_output_is_called_larger(tmp_path: Path) -> None:
    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((1, 8192), np.uint8)).save(wide)
    result = runner.invoke(app, ["compress", str(wide), "-q", "15"])
    assert result.exit_code == 0
    assert "larger than input" in result.stderr and "0.0x" not in result.stderr


def test_truncated_archive_is_named_an_archive(tmp_path: Path, small_archive: Path) -> None:
    stub = tmp_path / "stub.aecs"
    stub.write_bytes(small_archive.read_bytes()[:3])
    clean_fail(runner.invoke(app, ["info", str(stub)]), 1, "truncated")


def test_two_inputs_for_one_output_are_both_named(tmp_path: Path, digit_png: Path) -> None:
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "d.png").write_bytes(digit_png.read_bytes())
    result = runner.invoke(app, ["compress", str(tmp_path / "x/d.png"), str(tmp_path / "y/d.png"), str(digit_png),
                                 "-o", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all("x/d.png" in e and "y/d.png" in e for e in errors), errors
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.aec"]


# 14. Arguments out of range.
@pytest.mark.parametrize("value", ["nan", "inf", "-5", "0"])
def test_bad_psnr_targets_are_usage_errors(digit_png: Path, value: str) -> None:
    clean_fail(runner.invoke(app, ["compress", str(digit_png), "--psnr", value]), 2, "--psnr")


def test_output_names_and_own_input(tmp_path: Path, digit_png: Path) -> None:
    coded = tmp_path / "a.aec"
    assert runner.invoke(app, ["compress", str(digit_png)]).exit_code == 0
    clean_fail(runner.invoke(app, ["decompress", str(coded), "-o", str(tmp_path / "out.jpg")]), 2, ".jpg")
    clean_fail(runner.invoke(app, ["compress", str(digit_png), "-o", str(tmp_path / "b.png")]), 2, "image name")
    before = digit_png.read_bytes()
    (tmp_path / "link.aec").symlink_to(digit_png)
    clean_fail(runner.invoke(app, ["compress", str(digit_png), "-o", str(tmp_path / "link.aec"), "-f"]), 1, "input")
    assert digit_png.read_bytes() == before
    assert runner.invoke(app, ["decompress", str(coded), "-o", str(tmp_path / "out.bmp")]).exit_code == 0
    assert Image.open(tmp_path / "out.bmp").format == "BMP"


@pytest.mark.parametrize(
    "call",
    [
        lambda: codec.compress(np.zeros((28, 28), np.uint8), effort=7),
        lambda: codec.compress(np.zeros((28, 28), np.uint8), quality="8"),  # type: ignore[arg-type]
        lambda: codec.compress(np.zeros((28, 28), np.uint8), quality=2.5),  # type: ignore[arg-type]
        lambda: codec.compress(np.zeros((28, 28), np.float32)),
        lambda: codec.decompress(b"\xae\xc0A"),
        lambda: archive.open_archive(b"\xae\xc0AS\x03"),
    ],
)
def test_the_api_raises_codec_errors(call: Callable[[], object]) -> None:
    with pytest.raises(codec.CodecError):
        call()


def test_a_reader_that_goes_away_ends_quietly(tmp_path: Path) -> None:
    out = subprocess.run(
        f"{sys.executable} -m codec levels | head -c 1",
        shell=True, cwd=tmp_path, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert len(out.stdout) == 1
    assert b"Traceback" not in out.stderr and out.stderr.strip() == b""
