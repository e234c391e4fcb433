"""Search in archives, ``aec bench --search``: neighbours by latents, beside kNN on raw pixels and on PCA.

The MNIST training digits are packed (at effort 0) into one archive per level;
the test digits are the queries. For each way of ranking, precision@10 by label
(the share of a query's ten nearest archived digits that carry its label):

- ``aec search``: cosine similarity of the entropy-decoded latents' search
  features (:mod:`codec.retrieval`; projected where the level has a
  projection, :mod:`codec.projection`), the archive never decoded to pixels;
- kNN on raw pixels (Euclidean, the issue's baseline; and cosine), and on the
  first 50 principal components of the archived digits (Euclidean).

Speed on one core, at :data:`SPEED_LEVELS`: a search of one query and of every
query through the archive (entropy decoding included), against the baseline
the issue names: decoding the whole archive to pixels and ranking by Euclidean
distance.
Writes ``retrieval.md``, ``retrieval.json`` and a picture of a few queries and their
neighbours at :data:`PICTURE_LEVEL` (``search_neighbours.png``).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from codec import archive, models, projection, retrieval
from codec.images import prepare

from .written import write_report

OUT = Path(__file__).resolve().parent / "results"
#: Levels whose archives are searched.
LEVELS = (5, 6, 8, 12)
#: Neighbours per query, and principal components of the PCA baseline.
K, COMPONENTS = 10, 50
#: The levels the speed is measured at: one latent vector a digit (48 symbols, projected), and the default (a
#: 7x7 grid, 588 symbols).
SPEED_LEVELS = (6, 8)
#: The level, and the number of queries, of the picture.
PICTURE_LEVEL, PICTURE_QUERIES = 6, 6


def precision(neighbours: np.ndarray, labels: np.ndarray, truth: np.ndarray) -> float:
    """The share of each query's neighbours (Q, k) whose label is its own."""
    return float(np.mean(labels[neighbours] == truth[:, None]))


def euclidean_neighbours(archived: np.ndarray, queries: np.ndarray, k: int = K, chunk: int = 1000) -> np.ndarray:
    """The ``k`` nearest archived rows (by Euclidean distance) of each query row, nearest first."""
    archived = archived.astype(np.float64)
    norms = np.einsum("ij,ij->i", archived, archived)
    out = []
    for first in range(0, len(queries), chunk):
        asked = queries[first : first + chunk].astype(np.float64)
        distances = norms[None, :] - 2 * asked @ archived.T
        near = np.argpartition(distances, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(distances, near, 1), axis=1, kind="stable")
        out.append(np.take_along_axis(near, order, 1))
    return np.concatenate(out)


def cosine_neighbours(archived: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The ``K`` archived rows of largest cosine similarity to each query row."""

    def unit(rows: np.ndarray) -> np.ndarray:
        rows = rows.astype(np.float64)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    return euclidean_neighbours(unit(archived), unit(queries))


def pca_features(
    archived: np.ndarray, queries: np.ndarray, components: int = COMPONENTS
) -> tuple[np.ndarray, np.ndarray]:
    """Both sets projected on the first principal components of the archived rows."""
    mean = archived.mean(0)
    _, _, basis = np.linalg.svd(archived[:: max(1, len(archived) // 20000)] - mean, full_matrices=False)
    return (archived - mean) @ basis[:components].T, (queries - mean) @ basis[:components].T


def picture(
    packed: bytes, archived: tuple[np.ndarray, np.ndarray], queries: tuple[np.ndarray, np.ndarray], out: Path = OUT
) -> Path:
    """The first :data:`PICTURE_QUERIES` queries and their ``K`` nearest archived digits (label and similarity in
    the titles; a wrong label marked); returns its path."""
    from .plots import side_by_side

    (images, labels), (asked, truth) = archived, queries
    rows = []
    for query, want, found in zip(asked, truth, _search(packed, list(asked[:PICTURE_QUERIES]))):
        panels = [(f"label {want}", query)]
        for match in found:
            mark = "" if labels[match.index] == want else " (wrong)"
            panels.append((f"{labels[match.index]}{mark}, {match.similarity:.3f}", images[match.index]))
        rows.append(("query", panels))
    out.mkdir(parents=True, exist_ok=True)
    return side_by_side(rows, out / "search_neighbours.png")


def _search(packed: bytes, queries: list[np.ndarray], k: int = K) -> list[list[retrieval.Match]]:
    stream = io.BytesIO(packed)
    return retrieval.search(stream.read, archive.read_head(stream.read), [prepare(q) for q in queries], k)


def _timed(work: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    done = work()
    return done, time.perf_counter() - start


def speed(packed: bytes, queries: np.ndarray) -> dict[str, float]:
    """Seconds for one query and for every query: ``aec search``, and decoding the archive then ranking pixels."""
    _, one = _timed(lambda: _search(packed, list(queries[:1])))
    _, every = _timed(lambda: _search(packed, list(queries)))

    def decode_and_rank(asked: np.ndarray) -> np.ndarray:
        pixels = np.stack(archive.unpack(packed)).reshape(-1, asked[0].size)
        return euclidean_neighbours(pixels, asked.reshape(len(asked), -1))

    _, decoded_one = _timed(lambda: decode_and_rank(queries[:1]))
    _, decoded_every = _timed(lambda: decode_and_rank(queries))
    return {"search_one": one, "search_all": every, "decode_one": decoded_one, "decode_all": decoded_every}


def run(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    out: Path = OUT,
    progress: Callable[[str], None] = print,
) -> Path:
    """Measure everything on one core and write retrieval.md and retrieval.json; returns the md."""
    (archived, labels), (queries, truth) = train, test
    started = time.time()
    rows: list[dict[str, Any]] = []
    result: dict[str, Any] = {"archived": len(archived), "queries": len(queries), "k": K, "rows": rows}
    with threadpool_limits(1):
        flat, asked = archived.reshape(len(archived), -1).astype(np.float64), queries.reshape(len(queries), -1)
        progress(f"kNN on raw pixels and PCA-{COMPONENTS}: {len(queries):,} queries, {len(archived):,} digits")
        rows.append(
            {
                "ranking": "raw pixels, Euclidean",
                "precision": precision(euclidean_neighbours(flat, asked), labels, truth),
            }
        )
        cosine = cosine_neighbours(flat, asked)
        rows.append({"ranking": "raw pixels, cosine", "precision": precision(cosine, labels, truth)})
        pca = pca_features(flat, asked.astype(np.float64))
        rows.append(
            {
                "ranking": f"PCA-{COMPONENTS}, Euclidean",
                "precision": precision(euclidean_neighbours(*pca), labels, truth),
            }
        )
        for level in LEVELS:
            progress(f"level {level}: packing {len(archived):,} digits (effort 0), searching")
            packed = archive.pack(list(archived), quality=level, effort=0)
            found = _search(packed, list(queries))
            similarity = "projected cosine" if projection.for_model(models.load_model(level)) else "cosine"
            neighbours = np.array([[m.index for m in matches] for matches in found])
            rows.append(
                {
                    "ranking": f"aec search, level {level} latents, {similarity}",
                    "level": level,
                    "archive_bytes": len(packed),
                    "precision": precision(neighbours, labels, truth),
                }
            )
            if level == PICTURE_LEVEL:
                picture(packed, train, test, out)
            if level in SPEED_LEVELS:
                progress(f"level {level}: speed of search against decoding the archive")
                result.setdefault("speed", {})[str(level)] = speed(packed, queries)
    result["seconds"] = time.time() - started
    return write_report(out, "retrieval", result, markdown(result))


def markdown(result: dict[str, Any]) -> str:
    """The report: precision@10 per ranking, then the speeds."""
    lines = [
        "# Search in archives",
        "",
        f"Queries: {result['queries']:,} MNIST test digits; archive: {result['archived']:,} MNIST training digits "
        f"(effort 0). Precision@{result['k']}: the share of a query's {result['k']} nearest archived digits that "
        "carry its label.",
        "",
        f"| ranking | precision@{result['k']} | archive |",
        "|---|---|---|",
    ]
    for row in result["rows"]:
        size = f"{row['archive_bytes'] / 1e6:.2f} MB" if "archive_bytes" in row else "-"
        lines.append(f"| {row['ranking']} | {row['precision']:.4f} | {size} |")
    count = result["queries"]
    for level, times in result.get("speed", {}).items():
        lines += [
            "",
            f"## Speed, level {level}, one core (seconds; the archive entropy-decoded or decoded each time)",
            "",
            "| | one query | every query | queries/s (every query) |",
            "|---|---|---|---|",
            f"| aec search | {times['search_one']:.2f} | {times['search_all']:.2f} | "
            f"{count / times['search_all']:,.0f} |",
            f"| decode the archive, rank pixels | {times['decode_one']:.2f} | {times['decode_all']:.2f} | "
            f"{count / times['decode_all']:,.0f} |",
            "",
            f"aec search is {times['decode_one'] / times['search_one']:.1f}x faster for one query and "
            f"{times['decode_all'] / times['search_all']:.1f}x for every query (the issue asks for 50x).",
        ]
    lines += ["", f"Measured in {result['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"
