"""Shards on a cluster: each input packed into its own archive by the workers of a local Dask cluster."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from codec import archive, batch, shards
from codec.cli import app
from codec.data import write_idx


def _cluster_available() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI"):  # CI installs the cluster extra: its absence is a failure there
            pytest.fail(f"dask.distributed not installed in CI: {exc}")
        pytest.skip("dask.distributed not installed (pip install 'aec[cluster]')")


@pytest.fixture()
def idx_shards(tmp_path: Path, digits: np.ndarray) -> list[Path]:
    """Three IDX shards of MNIST test digits (two gzipped), 20 digits each."""
    folder = tmp_path / "shards"
    folder.mkdir()
    paths = []
    for i in range(3):
        data = write_idx(digits[20 * i : 20 * (i + 1)])
        path = folder / (f"part-{i}-idx3-ubyte" + (".gz" if i else ""))
        path.write_bytes(gzip.compress(data, mtime=0) if i else data)
        paths.append(path)
    return paths


def test_shards_on_two_workers_match_packing_here(idx_shards: list[Path], tmp_path: Path, digits: np.ndarray) -> None:
    _cluster_available()
    out = tmp_path / "out"
    out.mkdir()
    bad = tmp_path / "shards" / "broken-idx3-ubyte"
    bad.write_bytes(write_idx(digits[:3])[:-100])  # truncated: fails alone, the others still land
    sources = [str(p) for p in [*idx_shards, bad]]
    done = list(shards.pack_shards(sources, out, quality=2, effort=0, workers=2))
    failed = [s for s in done if s.error is not None]
    assert [Path(s.source).name for s in failed] == ["broken-idx3-ubyte"] and "truncated" in (failed[0].error or "")
    assert sorted(p.name for p in out.iterdir()) == [
        "part-0-idx3-ubyte.aecs",
        "part-1-idx3-ubyte.aecs",
        "part-2-idx3-ubyte.aecs",
    ]
    here = tmp_path / "here.aecs"
    for i, path in enumerate(idx_shards):
        packed = out / f"part-{i}-idx3-ubyte.aecs"
        shards.pack_file(batch.plan_pack([str(path)], False), here, 2, 0, force=True)
        assert packed.read_bytes() == here.read_bytes()  # a worker codes exactly what this process does
        np.testing.assert_array_equal(np.array(archive.unpack(packed.read_bytes())).shape, (20, 28, 28))
    assert sum(s.images for s in done) == 60


def test_existing_archive_is_refused_before_any_work(idx_shards: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "part-1-idx3-ubyte.aecs").write_bytes(b"keep me")
    with pytest.raises(shards.CodecError, match="exists"):
        list(shards.pack_shards([str(p) for p in idx_shards], out, quality=2, effort=0, workers=1))
    assert (out / "part-1-idx3-ubyte.aecs").read_bytes() == b"keep me" and len(list(out.iterdir())) == 1
    with pytest.raises(shards.CodecError, match="both be packed"):
        list(shards.pack_shards([str(idx_shards[0])] * 2, out, quality=2, effort=0, workers=1))


def test_command_line_packs_shards_on_a_local_cluster(idx_shards: list[Path], tmp_path: Path) -> None:
    _cluster_available()
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(
        app, ["pack-shards", *map(str, idx_shards[:2]), "-o", str(out), "-q", "2", "-e", "0", "--workers", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "2 shards, 40 images" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["part-0-idx3-ubyte.aecs", "part-1-idx3-ubyte.aecs"]
    missing = CliRunner().invoke(app, ["pack-shards", str(idx_shards[0]), "-o", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "not a folder" in missing.output


def test_a_running_scheduler_takes_the_shards(idx_shards: list[Path], tmp_path: Path) -> None:
    # The remote path: a scheduler (here a local cluster's) given by its address, as `--scheduler` gives it.
    _cluster_available()
    from distributed import LocalCluster

    out = tmp_path / "out"
    out.mkdir()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        done = list(shards.pack_shards([str(idx_shards[0])], out, 2, 0, scheduler=cluster.scheduler_address))
    assert [s.error for s in done] == [None] and done[0].images == 20
    assert archive.open_archive((out / "part-0-idx3-ubyte.aecs").read_bytes())[19].shape == (28, 28)


def test_a_lossless_shard_gives_its_digits_back(idx_shards: list[Path], tmp_path: Path, digits: np.ndarray) -> None:
    """A worker's task at the lossless quality (``pack-shards --lossless``): the archive holds every pixel."""
    target = tmp_path / "part.aecs"
    shard = shards.pack_shard(str(idx_shards[0]), str(target), archive.LOSSLESS, 0)
    assert shard.error is None and shard.model_id == shards.lossless_blocks.load().model_id  # digits go in blocks
    opened = archive.open_archive(target.read_bytes())
    assert opened.head.lossless and len(opened) == shard.images
    assert np.array_equal(np.stack(opened.decode_all()), digits[: shard.images])
