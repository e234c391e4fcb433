"""Many archives at once: each input shard packed into its own ``.aecs``, on a Dask cluster.

A dataset of a hundred million digits is a few thousand shards (IDX files, or
folders of images). Each shard is one task: :func:`pack_shard` reads it,
codes its images in bounded batches and writes ``FOLDER/NAME.aecs`` atomically,
so a worker holds one shard's batch at a time, whatever the shard's size, and
a failed or killed task leaves no file behind. :func:`pack_shards` hands the
shards to a ``dask.distributed`` cluster: a scheduler's address (workers on
many machines sharing a file system), or a local cluster of worker processes.

Dask, not Ray: the work is independent numpy tasks over files, which is what
Dask's distributed scheduler does with a pure-Python install (``pip install
'aec[cluster]'``, a few MB) and starts in seconds on a laptop, an HPC batch
system (dask-jobqueue) or Kubernetes; Ray's object store, actors and
autoscaler are not needed here, for a 100+ MB install.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from . import __version__, batch, lossless, lossless_blocks
from .archive import LOSSLESS, ArchiveWriter, check_count
from .errors import ArgumentError, CodecError
from .fileio import STDIO, atomic_output, check_writable

#: Memory a worker process of a local cluster may use before Dask restarts it (a shard's
#: batch takes tens of MB; the models a few).
LOCAL_WORKER_MEMORY = "2GiB"


@dataclass(frozen=True)
class Shard:
    """One shard's outcome: its archive and what it holds, or why it failed (``error``, naming the shard)."""

    source: str
    target: str
    images: int = 0
    pixels: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    model_id: int | None = None
    version: str = __version__
    error: str | None = None


def shard_target(source: str, folder: str | os.PathLike[str]) -> Path:
    """Where shard ``source`` is packed: ``folder/NAME.aecs``, NAME its file name without ``.gz`` and image suffixes.

    >>> str(shard_target("data/train-images-idx3-ubyte.gz", "out"))
    'out/train-images-idx3-ubyte.aecs'
    """
    name = Path(source).name
    for suffix in (".gz", *sorted(batch.IMAGE_SUFFIXES)):
        name = name.removesuffix(suffix)
    return Path(folder) / f"{name}.aecs"


def pack_file(
    plan: Sequence[batch.PackInput],
    target: Path,
    quality: int,
    effort: int,
    force: bool = False,
    advance: Callable[[int], None] = lambda count: None,
) -> Shard:
    """Pack the images of ``plan`` (:func:`codec.batch.plan_pack`) into the archive ``target``, spooled beside
    it and written atomically; ``advance`` hears of each batch coded.

    :class:`CodecError` for an input that cannot be packed (nothing is written then).
    """
    check_writable(target, force)
    with tempfile.TemporaryFile(dir=target.parent) as spool:
        writer, pixels = _coded(plan, quality, effort, spool, advance)
        with atomic_output(target, force) as out:
            size = writer.write(out)
    return _packed(plan, str(target), writer, pixels, size)


def pack_stream(
    plan: Sequence[batch.PackInput],
    out: IO[bytes],
    quality: int,
    effort: int,
    advance: Callable[[int], None] = lambda count: None,
) -> Shard:
    """:func:`pack_file` to a stream (standard output): spooled to a temporary file, then written to ``out``."""
    with tempfile.TemporaryFile() as spool:
        writer, pixels = _coded(plan, quality, effort, spool, advance)
        size = writer.write(out)
        out.flush()
    return _packed(plan, STDIO, writer, pixels, size)


def _coded(
    plan: Sequence[batch.PackInput], quality: int, effort: int, spool: IO[bytes], advance: Callable[[int], None]
) -> tuple[ArchiveWriter, int]:
    """Every image of ``plan`` coded into ``spool`` by an archive writer, and the pixels coded."""
    check_count(sum(item.count for item in plan))
    writer = ArchiveWriter(quality, effort, spool)
    pixels = 0
    for prepared in batch.pack_batches(plan):
        writer.add(prepared)
        pixels += sum(p.pixels.size for p in prepared)
        advance(len(prepared))
    return writer, pixels


def _packed(plan: Sequence[batch.PackInput], target: str, writer: ArchiveWriter, pixels: int, size: int) -> Shard:
    source = plan[0].name if len(plan) == 1 else f"{len(plan)} inputs"
    inputs = sum(item.input_bytes for item in plan)
    return Shard(source, target, writer.count, pixels, inputs, size, writer.model_id)


def pack_shard(source: str, target: str, quality: int, effort: int, force: bool = False) -> Shard:
    """One shard's task (on a worker, or here): its archive, or the :class:`Shard` saying why not."""
    try:
        return pack_file(batch.plan_pack([source], recursive=True), Path(target), quality, effort, force)
    except CodecError as exc:
        error = str(exc)
    except OSError as exc:
        error = f"cannot write {target} ({exc.strerror or exc})"
    return Shard(source, target, error=error if error.startswith(f"{source}:") else f"{source}: {error}")


def pack_shards(
    sources: Sequence[str],
    folder: str | os.PathLike[str],
    quality: int,
    effort: int,
    *,
    scheduler: str | None = None,
    workers: int = 0,
    force: bool = False,
) -> Iterator[Shard]:
    """Pack each of ``sources`` into ``folder/NAME.aecs`` on a Dask cluster; yields each shard as it ends.

    ``scheduler``: the address of a running scheduler (``tcp://host:8786``), whose
    workers see ``sources`` and ``folder`` at the same paths; without one, a
    local cluster of ``workers`` processes (0: one per core) of one thread each.
    A shard coded by a worker whose aec or model differs from this one's is
    reported as failed.
    """
    from .api import check_effort, check_quality
    from .models import load_model

    quality, effort = check_quality(quality), check_effort(effort)
    expected = (
        (lossless.load().model_id, lossless_blocks.load().model_id)
        if quality == LOSSLESS
        else (load_model(quality).model_id,)
    )
    jobs = _jobs(sources, Path(folder), force)
    with _client(scheduler, workers) as client:
        futures = [client.submit(pack_shard, s, t, quality, effort, force, pure=False) for s, t in jobs]
        yield from (_checked(shard, expected) for shard in _completed(futures, jobs))


def _jobs(sources: Sequence[str], folder: Path, force: bool) -> list[tuple[str, str]]:
    """(source, target) of every shard, as absolute paths; :class:`CodecError` before any work for a name
    given twice, two shards of one target, or an existing target without ``force``."""
    if not sources:
        raise ArgumentError("no shards given")
    if not folder.is_dir():
        raise ArgumentError(f"{folder}: not a folder")
    jobs = [(os.path.abspath(s), str(shard_target(os.path.abspath(s), folder.resolve()))) for s in sources]
    clash = next((t for t, count in Counter(t for _, t in jobs).items() if count > 1), None)
    if clash is not None:
        raise ArgumentError(f"two shards would both be packed into {clash}; give them distinct names")
    for _, target in jobs:
        check_writable(Path(target), force)
    return jobs


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A ``dask.distributed`` client of the scheduler at ``scheduler``, or of a local cluster made for it
    (closed with it: no worker process outlives the call)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise CodecError("packing shards needs dask.distributed: pip install 'aec[cluster]'") from None
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers or batch.default_jobs(),
            threads_per_worker=1,
            processes=True,
            memory_limit=LOCAL_WORKER_MEMORY,
            dashboard_address=":0",  # any free port: two local clusters never clash
            silence_logs=logging.WARNING,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _completed(futures: Sequence[Any], jobs: Sequence[tuple[str, str]]) -> Iterator[Shard]:
    """Each shard as its task ends; a task that died with its worker is a failed shard."""
    from distributed import as_completed

    index = {future.key: i for i, future in enumerate(futures)}
    for future in as_completed(futures):
        source, target = jobs[index[future.key]]
        try:
            yield future.result()
        except Exception as exc:  # the task or its worker died (out of memory, killed): the write was atomic
            yield Shard(source, target, error=f"{source}: its task failed on the cluster ({type(exc).__name__}: {exc})")


def _checked(shard: Shard, expected: tuple[int, ...]) -> Shard:
    """``shard``, or a failure when its worker coded it with another aec or model than this one's (the
    archive stays: it decodes where that model is installed). A lossless shard may name either lossless model
    (the block model's for small images)."""
    if shard.error is None and (shard.version != __version__ or shard.model_id not in expected):
        found = f"aec {shard.version}, model {shard.model_id or 0:03x}"
        models = " or ".join(f"{model_id:03x}" for model_id in expected)
        return replace(shard, error=f"its worker coded it with {found}, not aec {__version__}, model {models}")
    return shard
