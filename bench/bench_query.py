"""Similarity queries at 1k to 1M catalogue vectors: exact search against the vector index.

Every size is measured in one run: `BruteForceIndex.search` (exact, one matrix-vector
product; the baseline) and `HnswIndex.search` (FAISS HNSW graphs,
`streamer.library.vectorindex`): build time, size of the saved index, p50/p99 query time
and recall@10 against exact search, in three cases:

- none, but 10 random tracks left out (those played in a session);
- a genre filter, a random genre for each query (mostly not the query's own: the tracks
  that pass lie away from it), answered by that genre's graph;
- a filter that passes a random fifth of the tracks whatever they sound like (a tempo
  range, harmonic keys), answered by the big graph with a wider search.

The vectors are synthetic, of the catalogue's dimension (64 CNN embedding + 11 genres +
61 descriptors + 400 musicnn = 536), unit length, clustered as music is (2,000 centres,
each a genre, and around each centre a spread as large as the centres'), and the queries
come from the same clusters (held out). Their variance is spread over the dimensions as
in real catalogues (`--spectrum real`, the default): the i-th principal component's
variance falls as ``i ** -SPECTRUM_ALPHA``, fitted to the real development set's joined
vectors (136 excerpts of ``../shared/realset``, indexed as a library: half the variance
lies in 4 components, 90 % in 27). `--spectrum flat` spreads it evenly (half in 179 of
536), which no catalogue looks like; at 1M it needs a wider search for the same recall.
`--uniform`: uniform random vectors, no clusters at all.

    .venv/bin/python bench/bench_query.py [--sizes 1000 100000 1000000] [--queries 200]

Larger sizes are extrapolated, not measured (say `--extrapolate 10000000`): memory is
linear in the size, query time grows with its logarithm (fitted on the sizes measured).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from streamer.library.similarity import BruteForceIndex, unit_rows
from streamer.library.vectorindex import EF_SEARCH, HnswIndex

DIMENSIONS = 64 + 11 + 61 + 400
SPECTRUM_ALPHA = 1.45
"""The decay of the real development set's PCA spectrum (a line through the log of its
first 50 eigenvalues against the log of their rank; 1.57 through 2 to 60)."""
GENRES = np.array(
    ["blues", "classical", "country", "disco", "electronic", "hiphop", "jazz", "metal", "pop",
     "reggae", "rock"]
)  # fmt: skip


def vectors_like_a_catalogue(
    size: int, *, seed: int, uniform: bool, spectrum: str = "real"
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors and a genre each (see the module doc); the centres do not depend on
    `seed`, so queries of another seed come from the same clusters."""
    rng = np.random.default_rng(seed)
    if uniform:
        return unit_rows(rng.standard_normal((size, DIMENSIONS), dtype=np.float32)), GENRES[
            rng.integers(0, len(GENRES), size)
        ]
    shape = np.ones(DIMENSIONS, dtype=np.float32)
    if spectrum == "real":
        shape = np.arange(1, DIMENSIONS + 1, dtype=np.float32) ** (-SPECTRUM_ALPHA / 2)
    centres = np.random.default_rng(0).standard_normal((2_000, DIMENSIONS), dtype=np.float32)
    cluster = rng.integers(0, len(centres), size)
    vectors = np.empty((size, DIMENSIONS), dtype=np.float32)
    for start in range(0, size, 100_000):  # bounded temporaries at 1M
        part = slice(start, start + 100_000)
        noise = rng.standard_normal((len(cluster[part]), DIMENSIONS), dtype=np.float32)
        vectors[part] = unit_rows((centres[cluster[part]] + noise) * shape)
    return vectors, GENRES[cluster % len(GENRES)]


def timed(search, queries: np.ndarray, masks: list, hints: list) -> tuple[np.ndarray, list]:
    """Seconds per query and the ids found; `search(query, mask, hint)`."""
    times, found = [], []
    for query, mask, hint in zip(queries, masks, hints, strict=True):
        started = time.perf_counter()
        result = search(query, mask, hint)
        times.append(time.perf_counter() - started)
        found.append([i for i, _ in result])
    return np.array(times), found


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    hits = [len(set(f) & set(t)) / max(len(t), 1) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def measure(size: int, args: argparse.Namespace) -> dict[int, dict[str, float]]:
    """Per search breadth (``--ef``), the figures of one size."""
    vectors, genres = vectors_like_a_catalogue(
        size, seed=1, uniform=args.uniform, spectrum=args.spectrum
    )
    queries, _ = vectors_like_a_catalogue(
        args.queries, seed=2, uniform=args.uniform, spectrum=args.spectrum
    )
    ids = np.arange(size, dtype=np.int64)
    exact = BruteForceIndex(ids, vectors)
    started = time.perf_counter()
    index = HnswIndex.build(ids, vectors, genres)
    build = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.vectors"
        index.save(path)
        saved = path.stat().st_size
    rng = np.random.default_rng(3)
    picked = GENRES[rng.integers(0, len(GENRES), args.queries)]
    played = [np.ones(size, dtype=bool) for _ in range(args.queries)]
    for mask in played:  # what a session leaves out: the tracks played and skipped
        mask[rng.integers(0, size, 10)] = False
    cases = {
        "unfiltered": (played, [None] * args.queries),
        "genre": ([genres == g for g in picked], [{str(g)} for g in picked]),
        "a fifth": ([rng.random(size) < 0.2 for _ in picked], [None] * args.queries),
    }
    rows = {ef: {"build_s": build, "saved_mb": saved / 2**20} for ef in args.ef}
    for name, (masks, hints) in cases.items():
        exact_times, truth = timed(
            lambda q, m, _: exact.search(q, args.k, allowed=m), queries, masks, hints
        )
        for ef, row in rows.items():
            index.attach(ids, vectors, ef_search=ef)
            times, found = timed(
                lambda q, m, h: index.search(q, args.k, allowed=m, genres=h),
                queries, masks, hints,
            )  # fmt: skip
            row |= {
                f"{name} exact p50": 1e3 * float(np.median(exact_times)),
                f"{name} p50": 1e3 * float(np.median(times)),
                f"{name} p99": 1e3 * float(np.percentile(times, 99)),
                f"{name} recall": recall(found, truth),
            }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--uniform", action="store_true", help="uniform random vectors")
    parser.add_argument("--spectrum", choices=["real", "flat"], default="real")
    parser.add_argument("--extrapolate", type=int, nargs="*", default=[10_000_000])
    parser.add_argument(
        "--ef", type=int, nargs="+", default=[EF_SEARCH], help="search breadths to measure"
    )
    args = parser.parse_args()
    print(
        f"{DIMENSIONS} dimensions, k={args.k}, {args.queries} queries, one thread for queries,"
        f" {'uniform' if args.uniform else f'clustered ({args.spectrum} spectrum)'} vectors;"
        " times in ms"
    )
    rows = {}
    for size in args.sizes:
        by_ef = measure(size, args)
        for ef, row in by_ef.items():
            print(
                f"{size:>10,}: build {row['build_s']:7.1f} s, saved {row['saved_mb']:8.1f} MiB,"
                f" efSearch {ef}"
            )
            for name in ("unfiltered", "genre", "a fifth"):
                print(
                    f"{'':12}{name:>10}: exact p50 {row[f'{name} exact p50']:8.2f} | index p50 "
                    f"{row[f'{name} p50']:6.2f} p99 {row[f'{name} p99']:6.2f} recall@{args.k} "
                    f"{row[f'{name} recall']:.3f} | "
                    f"{row[f'{name} exact p50'] / row[f'{name} p50']:6.1f}x faster"
                )
        rows[size] = by_ef[EF_SEARCH] if EF_SEARCH in by_ef else next(iter(by_ef.values()))
    measured = sorted(s for s in rows if s >= 100_000)
    for size in args.extrapolate if len(measured) >= 2 else []:
        small, large = measured[0], measured[-1]
        line = f"{size:>10,} (extrapolated from {small:,} and {large:,}, shipped efSearch):"
        for name in ("unfiltered", "genre", "a fifth"):
            slope = (rows[large][f"{name} p50"] - rows[small][f"{name} p50"]) / np.log(
                large / small
            )
            p50 = rows[large][f"{name} p50"] + slope * np.log(size / large)
            line += f" {name} p50 ~{p50:.2f}"
        line += f"; saved ~{rows[large]['saved_mb'] * size / large / 1024:.1f} GiB"
        line += f", build ~{rows[large]['build_s'] * size / large / 60:.0f} min or more"
        print(line)


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")  # numpy's products: one thread, as a query has
    main()
