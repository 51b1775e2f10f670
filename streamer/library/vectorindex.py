"""An approximate index for catalogues too large to search exactly: FAISS HNSW graphs,
kept in step with the catalogue and saved beside it.

Below `EXACT_BELOW` tracks `BruteForceIndex` answers (exact, milliseconds); above, a
brute-force query costs tens to hundreds of milliseconds (bench/bench_query.py), too slow
for a live list, and `HnswIndex` answers.

Why FAISS rather than usearch: FAISS's HNSW search takes an ID selector, so a filtered
query walks the graph and collects only the rows that pass: the best k that pass, not
the best k less those filtered out; usearch's Python search has no filter. FAISS's HNSW
cannot delete: a removed or re-analysed track's row is masked out (a tombstone), and the
graphs are built anew once `MAX_DEAD` of their rows are dead.

Layout: one graph over every track and one per genre. Filtered through the big graph, the
tracks of one genre may lie where the search never goes (a query that sounds like rock,
filtered to jazz); a query limited to a few genres walks their own graphs instead. A
query whose filters leave at most `EXACT_ROWS` rows is answered exactly. The others walk
the big graph with a selector, and a search breadth (``efSearch``) that grows as the
filter narrows. A walk that finds fewer than k rows when k pass falls back to exact.

The file (``CATALOGUE.vectors``, `index_path`) holds the graphs, the track id and genre
of each row, a fingerprint of each track's vector (a fixed random projection of it) and
whatever the caller stores with it (`Library`: the scales its vectors were made with, so
that one new track does not move every vector). Opening checks it against the catalogue
(`HnswIndex.sync`): rows of tracks gone, or whose vector or genre changed, die; tracks
new or changed are added; a file that is unreadable, damaged or of another shape is
never trusted, and is built anew.
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamer.files import write_atomically
from streamer.library.similarity import BruteForceIndex

EXACT_BELOW = 20_000
"""Catalogues of fewer tracks are searched exactly: at 20k tracks a brute-force query is
about 2 ms (bench/bench_query.py), and exact needs no file to keep in step."""
EXACT_ROWS = 8_192
"""A filtered query that leaves at most this many rows is answered exactly: gathering
them and one product costs about as much as a walk through the graph, and is exact."""
M = 16  # HNSW neighbours per node (FAISS's default): memory about 2 * M ints per track
EF_CONSTRUCTION = 80
EF_SEARCH = 128
"""Search breadth of an unfiltered query; filtered, it grows as the share of tracks that
pass narrows (`_Graph.search`; at most `EF_MAX`). Chosen by bench/bench_query.py, the
smallest of 48, 64, 96 and 128 with recall@10 against exact search of at least 0.95 at
1M vectors: 0.954 unfiltered (p50 0.94 ms), 0.998 with a genre filter, 0.972 with a
random fifth passing (48: 0.896, 0.989, 0.929)."""
EF_MAX = 1024
MAX_DEAD = 0.25
"""Share of dead rows (removed or re-analysed tracks) at which the graphs are rebuilt."""
FORMAT = "streamer-vector-index"
VERSION = 1
_FINGERPRINT_SIZE = 4


def index_path(catalogue: Path) -> Path:
    """Where the vector index of the catalogue at `catalogue` is kept: beside it."""
    return catalogue.with_name(catalogue.name + ".vectors")


def fingerprints(vectors: np.ndarray) -> np.ndarray:
    """``(n, 4)``: each vector through a fixed random projection; a changed vector gives
    another fingerprint (all but surely), the same one gives the same."""
    rng = np.random.default_rng(20261201)
    projection = rng.standard_normal((vectors.shape[1], _FINGERPRINT_SIZE)).astype(np.float32)
    found: np.ndarray = np.asarray(vectors, dtype=np.float32) @ projection
    return found


@dataclass
class _Graph:
    """One FAISS HNSW graph: the track id of each of its rows and whether it is alive."""

    index: Any  # faiss.IndexHNSWFlat, inner product
    ids: np.ndarray  # int64, the track of each row
    live: np.ndarray  # bool
    rows: np.ndarray  # int64, the caller's row of each of ours (`attach`); -1 dead
    identity: bool = False  # our rows are the caller's, all alive: masks need no mapping

    @classmethod
    def empty(cls, dimension: int) -> _Graph:
        faiss = _faiss()

        index = faiss.IndexHNSWFlat(dimension, M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        none = np.zeros(0, dtype=np.int64)
        return cls(index, none, np.zeros(0, dtype=bool), none)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            self.ids = np.concatenate([self.ids, ids])
            self.live = np.concatenate([self.live, np.ones(len(ids), dtype=bool)])

    def kill(self, ids: np.ndarray) -> None:
        self.live &= ~np.isin(self.ids, ids)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray, *, share: float, ef: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and caller rows of the best `k` of our rows whose caller row `allowed`
        passes (a boolean per caller row); `ef`: the breadth of an
        unfiltered walk, `share`: this graph's share of all tracks. The walk widens by the
        inverse square root of the share of all tracks that pass, whichever graph walks
        them: a query far from a genre's tracks needs a wider walk through their own
        graph too (bench/bench_query.py: recall of filtered queries at least that of
        unfiltered ones)."""
        faiss = _faiss()

        # row -1 (dead) takes the False appended; the one big gather is spared when it can be
        passing = allowed if self.identity else np.append(allowed, False)[self.rows]
        count = int(np.count_nonzero(passing))
        if count == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        ef = int(min(EF_MAX, max(k, ef * np.sqrt(len(passing) / count / share))))
        if count == len(passing):
            params = faiss.SearchParametersHNSW(efSearch=ef)
        else:
            bitmap = np.packbits(passing, bitorder="little")
            selector = faiss.IDSelectorBitmap(bitmap)  # keeps `bitmap` referenced
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
        scores, found = self.index.search(query[None, :], k, params=params)
        keep = found[0] >= 0
        return scores[0][keep], self.rows[found[0][keep]]

    def to_arrays(self, name: str) -> dict[str, np.ndarray]:
        faiss = _faiss()

        return {
            f"{name}.faiss": faiss.serialize_index(self.index),
            f"{name}.ids": self.ids,
            f"{name}.live": self.live,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], name: str, dimension: int) -> _Graph:
        faiss = _faiss()

        index = faiss.deserialize_index(np.asarray(arrays[f"{name}.faiss"], dtype=np.uint8))
        ids = np.asarray(arrays[f"{name}.ids"], dtype=np.int64)
        live = np.asarray(arrays[f"{name}.live"], dtype=bool)
        if index.d != dimension or index.ntotal != len(ids) or len(live) != len(ids):
            raise ValueError(f"graph {name} does not match its rows")
        return cls(index, ids, live, np.full(len(ids), -1, dtype=np.int64))


class HnswIndex:
    """`VectorIndex` over FAISS HNSW graphs: one over all tracks, one per genre.

    Build it with `build` (or `load` a saved one and `sync` it), then `attach` it to the
    caller's rows; `search` then takes the caller's row masks.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> vectors = rng.standard_normal((500, 8)).astype(np.float32)
    >>> vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    >>> ids, genres = np.arange(500) + 1, np.array(["rock", "jazz"] * 250)
    >>> index = HnswIndex.build(ids, vectors, genres)
    >>> index.attach(ids, vectors)
    >>> index.search(vectors[7], 1)[0][0]  # track 8 is nearest to itself
    8
    >>> jazz = genres == "jazz"
    >>> all(genres[i - 1] == "jazz" for i, _ in index.search(vectors[7], 5, allowed=jazz))
    True
    """

    def __init__(
        self,
        graphs: dict[str, _Graph],
        *,
        dimension: int,
        track_ids: np.ndarray,
        track_genres: np.ndarray,
        track_fingerprints: np.ndarray,
        built_with: int,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.graphs = graphs  # "" is every track; the others one genre each
        self.dimension = dimension
        self.track_ids = track_ids  # the live tracks, sorted
        self.track_genres = track_genres
        self.track_fingerprints = track_fingerprints
        self.built_with = built_with  # tracks at the last full build
        self.extra = dict(extra or {})
        self._ids = np.zeros(0, dtype=np.int64)
        self._vectors = np.zeros((0, dimension), dtype=np.float32)
        self.exact_rows, self.ef_search = EXACT_ROWS, EF_SEARCH

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        genres: np.ndarray,
        *,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> HnswIndex:
        """A new index of `ids` with their unit `vectors` and genres ("" for none)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = cls(
            {},
            dimension=vectors.shape[1],
            track_ids=np.zeros(0, dtype=np.int64),
            track_genres=np.zeros(0, dtype=str),
            track_fingerprints=np.zeros((0, _FINGERPRINT_SIZE), dtype=np.float32),
            built_with=len(ids),
            extra=extra,
        )
        index._add(np.asarray(ids, dtype=np.int64), vectors, np.asarray(genres, dtype=str))
        return index

    def _add(self, ids: np.ndarray, vectors: np.ndarray, genres: np.ndarray) -> None:
        self._graph("").add(ids, vectors)
        for genre in np.unique(genres):
            if genre:
                self._graph(str(genre)).add(ids[genres == genre], vectors[genres == genre])
        order = np.argsort(np.concatenate([self.track_ids, ids]), kind="stable")
        self.track_ids = np.concatenate([self.track_ids, ids])[order]
        self.track_genres = np.concatenate([self.track_genres, genres])[order]
        self.track_fingerprints = np.concatenate([self.track_fingerprints, fingerprints(vectors)])[
            order
        ]

    def _graph(self, name: str) -> _Graph:
        if name not in self.graphs:
            self.graphs[name] = _Graph.empty(self.dimension)
        return self.graphs[name]

    def _kill(self, ids: np.ndarray) -> None:
        for graph in self.graphs.values():
            graph.kill(ids)
        keep = ~np.isin(self.track_ids, ids)
        self.track_ids = self.track_ids[keep]
        self.track_genres = self.track_genres[keep]
        self.track_fingerprints = self.track_fingerprints[keep]

    def sync(self, ids: np.ndarray, vectors: np.ndarray, genres: np.ndarray) -> bool:
        """Bring the index in step with the catalogue's tracks: rows of tracks gone, or
        whose vector (by fingerprint) or genre changed, die; new and changed tracks are
        added. Rebuilds instead when `MAX_DEAD` of the rows would be dead. True when
        anything changed (the file is then out of date)."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        genres = np.asarray(genres, dtype=str)
        if vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors of {vectors.shape[1]} dimensions, index of {self.dimension}")
        if not len(self.track_ids):
            return self._rebuild(ids, vectors, genres)
        place = np.searchsorted(self.track_ids, ids).clip(0, len(self.track_ids) - 1)
        known = self.track_ids[place] == ids
        same = known.copy()
        same[known] &= self.track_genres[place[known]] == genres[known]
        same[known] &= np.all(
            np.abs(self.track_fingerprints[place[known]] - fingerprints(vectors[known])) < 1e-4,
            axis=1,
        )
        stale = np.concatenate(
            [np.setdiff1d(self.track_ids, ids), ids[known & ~same]]
        )  # gone, or changed
        graph = self.graphs.get("")
        dead_after = (0 if graph is None else int((~graph.live).sum())) + len(stale)
        total_after = (0 if graph is None else len(graph.live)) + int((~same).sum())
        if total_after and dead_after / total_after > MAX_DEAD:
            return self._rebuild(ids, vectors, genres)
        if len(stale):
            self._kill(stale)
        self._add(ids[~same], vectors[~same], genres[~same])
        return bool(len(stale)) or not same.all()

    def _rebuild(self, ids: np.ndarray, vectors: np.ndarray, genres: np.ndarray) -> bool:
        self.__dict__.update(HnswIndex.build(ids, vectors, genres, extra=self.extra).__dict__)
        return True

    def attach(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        *,
        exact_rows: int = EXACT_ROWS,
        ef_search: int = EF_SEARCH,
    ) -> None:
        """Take the caller's rows (track ids and their vectors, as synced): `search`'s
        masks are in their order, and exact answers come from `vectors` when at most
        `exact_rows` rows pass; `ef_search`, the breadth of an unfiltered walk."""
        self.exact_rows, self.ef_search = exact_rows, ef_search
        self._ids = np.asarray(ids, dtype=np.int64)
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        order = np.argsort(self._ids, kind="stable")
        for graph in self.graphs.values():
            place = np.searchsorted(self._ids, graph.ids, sorter=order).clip(0, len(order) - 1)
            rows = order[place] if len(order) else np.zeros(len(graph.ids), dtype=np.int64)
            found = graph.live & (self._ids[rows] == graph.ids) if len(order) else graph.live
            graph.rows = np.where(found, rows, -1)
            graph.identity = len(rows) == len(order) and bool(
                np.array_equal(graph.rows, np.arange(len(rows)))
            )

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        genres: Collection[str] | None = None,
    ) -> list[tuple[int, float]]:
        """The `k` most similar ``(id, similarity)`` of the attached rows, best first;
        `allowed` masks rows out; `genres`, when the filter keeps only these genres,
        lets their graphs answer."""
        query = np.asarray(query, dtype=np.float32)
        mask = np.ones(len(self._ids), dtype=bool) if allowed is None else allowed
        count = int(np.count_nonzero(mask))
        if count > self.exact_rows:
            if genres and len(genres) < len(self.graphs) - 1:
                walked = [self.graphs[genre] for genre in genres if genre in self.graphs]
            else:
                walked = [self.graphs[""]] if "" in self.graphs else []
            total = len(self.graphs[""].ids) if walked else 1
            found = [
                graph.search(query, k, mask, share=len(graph.ids) / total, ef=self.ef_search)
                for graph in walked
            ]
            scores = np.concatenate([scores for scores, _ in found] or [np.zeros(0)])
            rows = np.concatenate([rows for _, rows in found] or [np.zeros(0, dtype=np.int64)])
            if len(rows) >= min(k, count):  # else the walk missed rows that pass: exact
                best = np.lexsort((rows, -scores))[:k]
                return [(int(self._ids[rows[i]]), float(scores[i])) for i in best]
        rows = np.flatnonzero(mask)
        return BruteForceIndex(self._ids[rows], self._vectors[rows]).search(query, k)

    # --- the file -------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the index to `path` at once (readers see the old file or the new)."""
        names = sorted(self.graphs)
        arrays: dict[str, np.ndarray] = {
            "track_ids": self.track_ids,
            "track_genres": self.track_genres.astype(str),
            "track_fingerprints": self.track_fingerprints,
            **{f"extra.{key}": value for key, value in self.extra.items()},
        }
        for number, name in enumerate(names):
            arrays.update(self.graphs[name].to_arrays(f"graph{number}"))
        meta = {
            "format": FORMAT,
            "format_version": VERSION,
            "dimension": self.dimension,
            "built_with": self.built_with,
            "graphs": names,
        }
        buffer = io.BytesIO()
        contents: dict[str, Any] = {"meta": np.array(json.dumps(meta)), **arrays}
        np.savez(buffer, **contents)
        write_atomically(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> HnswIndex:
        """The index saved at `path`. A file that is not one, or damaged (the zip's CRC-32
        of every array is checked as it is read), raises (OSError, ValueError,
        zipfile.BadZipFile, KeyError)."""
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") != FORMAT or meta.get("format_version") != VERSION:
            raise ValueError(f"not {FORMAT} version {VERSION}")
        dimension = int(meta["dimension"])
        graphs = {
            name: _Graph.from_arrays(arrays, f"graph{number}", dimension)
            for number, name in enumerate(meta["graphs"])
        }
        return cls(
            graphs,
            dimension=dimension,
            track_ids=np.asarray(arrays["track_ids"], dtype=np.int64),
            track_genres=np.asarray(arrays["track_genres"], dtype=str),
            track_fingerprints=np.asarray(arrays["track_fingerprints"], dtype=np.float32),
            built_with=int(meta["built_with"]),
            extra={k[6:]: v for k, v in arrays.items() if k.startswith("extra.")},
        )


def _faiss() -> Any:
    """FAISS, imported when a large catalogue first needs it (its stubs are partial)."""
    import faiss

    return faiss
