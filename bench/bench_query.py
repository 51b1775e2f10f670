"""Similarity query latency at 1k, 100k and 1M catalogue vectors (synthetic, unit length).

`BruteForceIndex.search` (one matrix-vector product and a partial sort) against a full
sort of all scores, the obvious way to rank, measured in the same run. Vectors have the
size of the shipped model's joined vectors (64 embedding + 10 genres + 61 descriptors).

    .venv/bin/python bench/bench_query.py [--sizes 1000 100000 1000000] [--queries 50] [-k 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from streamer.library.similarity import BruteForceIndex, unit_rows

DIMENSIONS = 64 + 10 + 61


def timed(function, queries: np.ndarray) -> np.ndarray:
    """Seconds per query."""
    times = []
    for query in queries:
        started = time.perf_counter()
        function(query)
        times.append(time.perf_counter() - started)
    return np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    queries = unit_rows(rng.standard_normal((args.queries, DIMENSIONS)))
    print(f"{DIMENSIONS} dimensions, k={args.k}, {args.queries} queries, one thread of numpy")
    for size in args.sizes:
        vectors = unit_rows(rng.standard_normal((size, DIMENSIONS)).astype(np.float32))
        index = BruteForceIndex(np.arange(size), vectors)
        allowed = rng.random(size) < 0.9  # filters and exclusions in play

        def full_sort(query: np.ndarray, index: BruteForceIndex = index) -> list[int]:
            return np.argsort(-(index.vectors @ query))[: args.k].tolist()

        index.search(queries[0], args.k)  # warm caches
        ours = timed(lambda q, index=index: index.search(q, args.k), queries)
        masked = timed(lambda q, i=index, a=allowed: i.search(q, args.k, allowed=a), queries)
        baseline = timed(full_sort, queries)
        expected = full_sort(queries[0])
        assert [i for i, _ in index.search(queries[0], args.k)] == expected, "ranking differs"
        print(
            f"{size:>9,} vectors ({vectors.nbytes / 2**20:6.1f} MiB): "
            f"search p50 {1e3 * np.median(ours):8.3f} ms  p99 {1e3 * np.percentile(ours, 99):8.3f}"
            f" ms | with a filter mask p50 {1e3 * np.median(masked):8.3f} ms | full sort p50 "
            f"{1e3 * np.median(baseline):8.3f} ms: {np.median(baseline) / np.median(ours):5.1f}x"
        )


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        main()
