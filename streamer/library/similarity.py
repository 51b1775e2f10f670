"""One vector per track for "sounds like", and nearest neighbours by cosine similarity.

A track is described four ways, each normalised on its own, then weighted and joined so
that the cosine of two joined vectors is a weighted sum of four similarities
(`PART_WEIGHTS`):

- musicnn's embedding (`streamer.analysis.tagger`: the MSD tagger's penultimate layer,
  mean and max over the track), each dimension standardised with the library's own mean
  and spread, cosine: what a network trained on real recordings hears;
- the genre CNN's embedding (mean over the track), cosine: what the genre model hears;
- the genre distribution, as the Bhattacharyya coefficient ``sum(sqrt(p * q))`` (the
  cosine of the square roots): how alike the genre mixtures are;
- the hand-crafted descriptors (`streamer.analysis.describe`), standardised like
  musicnn's, in groups that weigh the same whatever their size: timbre (MFCC means and
  spreads) 0.4, texture (spectral contrast and centroid) 0.2, harmony (chroma) 0.2,
  tempo 0.2.

musicnn gets the largest share because, on real recordings, it is by far the best at
telling music apart (`bench/bench_recommend_real.py`, figures in `PART_WEIGHTS`); the
genre CNN has only heard synthetic renderings. The other parts keep a share so that a
query without musicnn's view (a track indexed before the taggers, or a live query that
does not carry it) still ranks, and so that tempo and key count. A query without a part
(live audio has no descriptors) uses the others alone; its ranking is the same as if the
missing part were equal for every track.

Every search goes through `VectorIndex`. `BruteForceIndex` is exact: one matrix-vector
product, milliseconds for a personal library; above `vectorindex.EXACT_BELOW` tracks the
`Library` answers from `vectorindex.HnswIndex` (FAISS HNSW graphs) instead
(bench/bench_query.py measures both, 1k to 1M vectors).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streamer.analysis.describe import N_CONTRAST, N_MFCC, PITCH_CLASSES, Descriptors

PART_WEIGHTS = {"musicnn": 0.85, "embedding": 0.05, "genre": 0.05, "descriptors": 0.05}
"""The share of each part in the joined cosine (they sum to 1).

Chosen by `bench/bench_recommend_real.py` on the real development set (136 excerpts of 50
recorded tracks, ``../shared/realset``): a grid in steps of 0.05, every part but musicnn
kept at 0.05 or more, scored by precision@10 (mean of same source and same genre, the
query's own track left out of the candidates); chosen on folds of tracks, scored on the
held-out tracks. Measured in one run (queries held out, one fold's choice each):
precision@10 same source 0.366, same genre 0.544; today's joined vector (`TODAY_WEIGHTS`)
0.250 and 0.442; musicnn alone 0.377 and 0.538 (a live query without musicnn's view
would then not rank at all). The five folds chose musicnn 0.75 to 0.85; all tracks chose
these weights (in-sample 0.370 and 0.542).
"""
TODAY_WEIGHTS = {"musicnn": 0.0, "embedding": 0.5, "genre": 0.25, "descriptors": 0.25}
"""The weights before musicnn was indexed, for comparison in the benchmarks."""
MUSICNN_TAGGERS = ("msd",)
"""Whose embeddings the musicnn part uses. The MSD tagger alone retrieves better than MSD
and MTT joined on the real set (same source 0.38 against 0.35, same genre 0.49 against
0.48, mean and max standardised; `bench/bench_recommend_real.py` prints both)."""
_TEXTURE = 2 * N_MFCC + N_CONTRAST + 1  # end of contrast and log centroid
DESCRIPTOR_GROUPS = {
    # name: (slice of Descriptors.vector(), share of the descriptor part), in its order
    "timbre": (slice(0, 2 * N_MFCC), 0.4),
    "texture": (slice(2 * N_MFCC, _TEXTURE), 0.2),
    "harmony": (slice(_TEXTURE, _TEXTURE + len(PITCH_CLASSES)), 0.2),
    "tempo": (slice(_TEXTURE + len(PITCH_CLASSES), Descriptors.VECTOR_SIZE), 0.2),
}


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    unit: np.ndarray = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return unit


def tagger_embeddings(
    tag_embeddings: np.ndarray, tag_labels: Sequence[str], *, taggers: Sequence[str]
) -> np.ndarray:
    """The pooled embeddings of some `taggers` out of the catalogue's joined ones.

    A catalogue row holds the mean, then the max, of the taggers' joined embeddings, in the
    order of its tag labels' prefixes (``"msd/rock"``: tagger ``msd``); every tagger's
    embedding has the same size (musicnn's 200). Returns ``(n, 2 * 200 * len(taggers))``:
    their means, then their maxes.
    """
    names = list(dict.fromkeys(label.split("/", 1)[0] for label in tag_labels))
    width = np.shape(tag_embeddings)[1] // (2 * len(names))
    columns = [
        pool * len(names) * width + names.index(name) * width + np.arange(width)
        for pool in (0, 1)
        for name in taggers
    ]
    picked: np.ndarray = np.asarray(tag_embeddings)[:, np.concatenate(columns)]
    return picked


@dataclass(frozen=True)
class LibraryScale:
    """Per-dimension mean and spread of a part of the library's vectors (descriptors,
    musicnn's embedding)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray) -> LibraryScale:
        """Fit on ``(n, d)`` vectors; a constant dimension gets spread 1 (it then adds 0)."""
        vectors = np.asarray(vectors, dtype=np.float64)
        std = vectors.std(axis=0)
        return cls(vectors.mean(axis=0), np.where(std > 1e-9, std, 1.0))

    def standardise(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, d)`` vectors less the mean, over the spread; all-zero rows (a part a track
        lacks: analysed without the taggers, or no music) stay zero."""
        vectors = np.asarray(vectors, dtype=np.float64)
        z: np.ndarray = (vectors - self.mean) / self.std
        z[~vectors.any(axis=1)] = 0.0
        return z

    def weighted(self, vectors: np.ndarray) -> np.ndarray:
        """Standardised ``(n, d)`` descriptor vectors with every group scaled to its share."""
        z = self.standardise(vectors)
        out: np.ndarray = np.zeros_like(z)
        for part, share in DESCRIPTOR_GROUPS.values():
            size = len(range(*part.indices(z.shape[1])))
            out[:, part] = z[:, part] * np.sqrt(share / size)
        return out


def combine(
    embeddings: np.ndarray,
    probabilities: np.ndarray,
    descriptors: np.ndarray | None = None,
    musicnn: np.ndarray | None = None,
    *,
    scale: LibraryScale | None = None,
    musicnn_scale: LibraryScale | None = None,
    weights: Mapping[str, float] = PART_WEIGHTS,
) -> np.ndarray:
    """Joined unit vectors ``(n, E + L + D + M)`` from per-track parts (see the module doc).

    Parameters
    ----------
    embeddings : numpy.ndarray
        ``(n, E)`` mean CNN embeddings.
    probabilities : numpy.ndarray
        ``(n, L)`` genre distributions.
    descriptors : numpy.ndarray, optional
        ``(n, D)`` descriptor vectors; with `scale` fitted on the library. None: that part
        is zero (a live query), and the vector is still of unit length.
    musicnn : numpy.ndarray, optional
        ``(n, M)`` musicnn embeddings (`tagger_embeddings` of `MUSICNN_TAGGERS`), with
        `musicnn_scale`; None, or an all-zero row: that part is zero.
    scale, musicnn_scale : LibraryScale, optional
        Fitted on the library; required with their part, and without it they give the
        width of its zeros.
    weights : mapping, optional
        The share of each part (`PART_WEIGHTS`).

    Examples
    --------
    >>> e = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> p = np.array([[0.9, 0.1], [0.9, 0.1]])
    >>> v = combine(e, p)
    >>> round(float(v[0] @ v[1]), 3)  # embeddings orthogonal, genres equal: 0.05 / 0.10
    0.5
    """
    n = len(embeddings)
    parts = [
        unit_rows(embeddings) * np.sqrt(weights["embedding"]),
        unit_rows(np.sqrt(np.clip(probabilities, 0.0, None))) * np.sqrt(weights["genre"]),
        _scaled(descriptors, scale, LibraryScale.weighted, n=n) * np.sqrt(weights["descriptors"]),
        _scaled(musicnn, musicnn_scale, LibraryScale.standardise, n=n)
        * np.sqrt(weights["musicnn"]),
    ]
    return unit_rows(np.concatenate(parts, axis=1))


def _scaled(
    values: np.ndarray | None,
    scale: LibraryScale | None,
    method: Callable[[LibraryScale, np.ndarray], np.ndarray],
    *,
    n: int,
) -> np.ndarray:
    """One scaled part as unit rows; zeros (as wide as `scale` knows) where it is missing."""
    if values is None:
        return np.zeros((n, 0 if scale is None else len(scale.mean)), dtype=np.float32)
    if scale is None:
        raise ValueError("a scaled part needs the library's LibraryScale")
    return unit_rows(method(scale, values))


class VectorIndex(Protocol):
    """Nearest neighbours of unit vectors by cosine similarity: what `Library` searches with.

    The rows are the vectors in the order they were given; ids need not be unique (a
    track's sections share its id).
    """

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        genres: Collection[str] | None = None,
    ) -> list[tuple[int, float]]:
        """The `k` most similar ``(id, similarity)``, best first, equal ones in row order;
        `allowed`, a boolean per row, masks rows out; `genres`, when `allowed` keeps only
        tracks of these genres, is a hint an index may search by."""
        ...


class BruteForceIndex:
    """Exact `VectorIndex`: one matrix-vector product and a partial sort.

    Examples
    --------
    >>> index = BruteForceIndex(np.array([7, 8, 9]), np.eye(3, dtype=np.float32))
    >>> index.search(np.array([0.0, 1.0, 0.0]), 1)
    [(8, 1.0)]
    >>> index.search(np.array([0.0, 1.0, 0.0]), 1, allowed=np.array([True, False, True]))
    [(7, 0.0)]
    >>> ties = BruteForceIndex(np.arange(7), np.array([[1], [1], [0], [1], [1], [2], [2]]))
    >>> ties.search(np.array([1.0]), 3)  # equal scores in row order
    [(5, 2.0), (6, 2.0), (0, 1.0)]
    """

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.ids):
            raise ValueError(f"need (n, d) vectors for {len(self.ids)} ids")

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        genres: Collection[str] | None = None,
    ) -> list[tuple[int, float]]:
        scores = self.vectors @ np.asarray(query, dtype=np.float32)
        rows = np.arange(len(scores)) if allowed is None else np.flatnonzero(allowed)
        k = min(k, len(rows))
        if k <= 0:
            return []
        candidates = scores[rows]
        cut = candidates[np.argpartition(-candidates, k - 1)[k - 1]]  # the k-th best score
        above = np.flatnonzero(candidates > cut)
        best = np.concatenate([above, np.flatnonzero(candidates == cut)[: k - len(above)]])
        best = best[np.argsort(-candidates[best], kind="stable")]
        return [(int(self.ids[rows[i]]), float(candidates[i])) for i in best]
