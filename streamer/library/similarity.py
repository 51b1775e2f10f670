"""One vector per track for "sounds like", and nearest neighbours by cosine similarity.

A track is described three ways, each normalised on its own, then weighted and joined so
that the cosine of two joined vectors is a weighted sum of three similarities:

- the CNN embedding (mean over the track), cosine: what the model hears (weight 0.5);
- the genre distribution, as the Bhattacharyya coefficient ``sum(sqrt(p * q))`` (the
  cosine of the square roots): how alike the genre mixtures are (weight 0.25);
- the hand-crafted descriptors (`streamer.analysis.describe`), each dimension standardised with the
  library's own mean and spread, in groups that weigh the same whatever their size:
  timbre (MFCC means and spreads) 0.4, texture (spectral contrast and centroid) 0.2,
  harmony (chroma) 0.2, tempo 0.2 (weight 0.25 in all).

The embedding gets the largest share because it is the only part trained to tell music
apart; the descriptors add what it is blind to by design (a 3 s patch hears no global
tempo or key) and keep the ranking sensible where the model is unsure. A query without
descriptors (live audio) uses the first two parts alone; its ranking is the same as if the
missing part were equal for every track.

Every search goes through `VectorIndex`. `BruteForceIndex`, the one used, is exact: one
matrix-vector product, milliseconds for a personal library (bench/bench_query.py measures
1k to 1M vectors). An approximate index (FAISS, usearch) can replace it for larger ones
without touching the callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streamer.analysis.describe import N_CONTRAST, N_MFCC, PITCH_CLASSES, Descriptors

PART_WEIGHTS = {"embedding": 0.5, "genre": 0.25, "descriptors": 0.25}
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


@dataclass(frozen=True)
class DescriptorScale:
    """Per-dimension mean and spread of the library's descriptor vectors."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, vectors: np.ndarray) -> DescriptorScale:
        """Fit on ``(n, d)`` vectors; a constant dimension gets spread 1 (it then adds 0)."""
        vectors = np.asarray(vectors, dtype=np.float64)
        std = vectors.std(axis=0)
        return cls(vectors.mean(axis=0), np.where(std > 1e-9, std, 1.0))

    def weighted(self, vectors: np.ndarray) -> np.ndarray:
        """Standardised ``(n, d)`` vectors with every group scaled to its share."""
        z = (np.asarray(vectors, dtype=np.float64) - self.mean) / self.std
        out: np.ndarray = np.zeros_like(z)
        for part, share in DESCRIPTOR_GROUPS.values():
            size = len(range(*part.indices(z.shape[1])))
            out[:, part] = z[:, part] * np.sqrt(share / size)
        return out


def combine(
    embeddings: np.ndarray,
    probabilities: np.ndarray,
    descriptors: np.ndarray | None = None,
    *,
    scale: DescriptorScale | None = None,
) -> np.ndarray:
    """Joined unit vectors ``(n, E + L + D)`` from per-track parts (see the module doc).

    Parameters
    ----------
    embeddings : numpy.ndarray
        ``(n, E)`` mean CNN embeddings.
    probabilities : numpy.ndarray
        ``(n, L)`` genre distributions.
    descriptors : numpy.ndarray, optional
        ``(n, D)`` descriptor vectors; with `scale` fitted on the library. None: that part
        is zero (a live query), and the vector is still of unit length.
    scale : DescriptorScale, optional
        Required with `descriptors`.

    Examples
    --------
    >>> e = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> p = np.array([[0.9, 0.1], [0.9, 0.1]])
    >>> v = combine(e, p)
    >>> round(float(v[0] @ v[1]), 3)  # embeddings orthogonal, genres equal: 0.25 / 0.75
    0.333
    """
    n = len(embeddings)
    parts = [
        unit_rows(embeddings) * np.sqrt(PART_WEIGHTS["embedding"]),
        unit_rows(np.sqrt(np.clip(probabilities, 0.0, None))) * np.sqrt(PART_WEIGHTS["genre"]),
    ]
    if descriptors is not None:
        if scale is None:
            raise ValueError("descriptors need the library's DescriptorScale")
        weighted = unit_rows(scale.weighted(descriptors))
        parts.append(weighted * np.sqrt(PART_WEIGHTS["descriptors"]))
    elif scale is not None:
        parts.append(np.zeros((n, len(scale.mean)), dtype=np.float32))
    return unit_rows(np.concatenate(parts, axis=1))


class VectorIndex(Protocol):
    """Nearest neighbours of unit vectors by cosine similarity: what `Library` searches with.

    The rows are the vectors in the order they were given; ids need not be unique (a
    track's sections share its id).
    """

    def search(
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The `k` most similar ``(id, similarity)``, best first, equal ones in row order;
        `allowed`, a boolean per row, masks rows out."""
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
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None
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
