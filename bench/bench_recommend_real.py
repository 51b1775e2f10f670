"""Recommendation quality on real recordings, and the choice of the joined vector's weights.

The real development set (``../shared/realset/build.sh OUT``: 136 excerpts of 50 recorded
tracks from Debian game soundtracks, weak genre labels) is indexed with the real indexer
(genre CNN, descriptors and musicnn's taggers) into a temporary catalogue, or into
``--db`` (kept; a second run is incremental). For every excerpt, its 10 nearest excerpts
are taken, the excerpts of its own track left out of the candidates (they would flatter
every figure); precision@10 is the share of the same source (game) and the share of the
same genre (``a|b``: either; ``other`` is never a query and never matches). A query with
no relevant candidate outside its own track (a source or a genre of one track) does not
count for that figure.

Printed: each part alone (the musicnn variants: MSD or MSD+MTT, mean or mean and max, raw
or standardised), today's joined vector, a few weightings, and the weights chosen by
cross-validation over tracks: on each fold, the grid's best weights on the other tracks
alone (queries and candidates), scored with the held-out tracks' queries against every
excerpt. The weights chosen on all tracks are the defaults (`PART_WEIGHTS`); the
held-out figure is the estimate to quote. The final line scores the shipped defaults
through `Library.recommend` itself.

    .venv/bin/python bench/bench_recommend_real.py [--realset /work/realset] [--db FILE]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamer.analysis.model import DEFAULT_MODEL
from streamer.library.catalogue import Catalogue, TrackRecord
from streamer.library.indexer import index
from streamer.library.recommend import Basis, Library, musicnn_part
from streamer.library.similarity import (
    PART_WEIGHTS,
    TODAY_WEIGHTS,
    LibraryScale,
    combine,
    tagger_embeddings,
    unit_rows,
)

K = 10
STEP = 0.05  # the grid's step
FLOOR = 0.05  # every part but musicnn keeps this much (a query without musicnn still ranks)
FOLDS = 5
PARTS = tuple(PART_WEIGHTS)


@dataclass(frozen=True)
class Realset:
    """The indexed excerpts and what counts as relevant to what."""

    records: list[TrackRecord]
    same_track: np.ndarray  # (n, n) bool
    same_source: np.ndarray  # (n, n) bool
    same_genre: np.ndarray  # (n, n) bool; False in the rows and columns of "other"
    tracks: np.ndarray  # (n,) the track of each excerpt (its excerpts' shared name)


def load(realset: Path, db: Path) -> Realset:
    manifest = realset / "manifest.csv"
    if not manifest.is_file():
        raise SystemExit(f"{manifest}: missing; build it with ../shared/realset/build.sh")
    with manifest.open(newline="") as handle:
        rows = {(realset / r["file"]).resolve(): r for r in csv.DictReader(handle)}
    with Catalogue(db) as catalogue:
        report = index([realset / "clips"], catalogue=catalogue, model_path=DEFAULT_MODEL)
        records = [r for r in catalogue.tracks(sections=False) if Path(r.path) in rows]
    print(f"indexed {report.analysed} excerpts ({report.unchanged} unchanged) "
          f"in {report.wall_seconds:.0f} s; {len(records)} excerpts in the catalogue")  # fmt: skip
    meta = [rows[Path(r.path)] for r in records]
    tracks = np.array([re.sub(r" @\d+%$", "", m["track"]) for m in meta])  # "... @25%"
    sources = np.array([m["source"] for m in meta])
    genres = [set(m["expected"].split("|")) - {"other"} for m in meta]
    return Realset(
        records=records,
        same_track=tracks[:, None] == tracks[None, :],
        same_source=sources[:, None] == sources[None, :],
        same_genre=np.array([[bool(a & b) for b in genres] for a in genres]),
        tracks=tracks,
    )


def hits(
    data: Realset, scores: np.ndarray, candidates: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For same source, then same genre: every query's precision@K among `candidates`, and
    whether it counts (some candidate is relevant to it)."""
    allowed = candidates[None, :] & ~data.same_track
    masked = np.where(allowed, scores, -np.inf)
    top = np.argsort(-masked, axis=1, kind="stable")[:, :K]
    rows = np.arange(len(scores))[:, None]
    return [
        (relevant[rows, top].mean(axis=1), (relevant & allowed).any(axis=1))
        for relevant in (data.same_source, data.same_genre)
    ]


def precision(
    data: Realset, scores: np.ndarray, queries: np.ndarray, candidates: np.ndarray
) -> tuple[float, float]:
    """Mean precision@K (same source, same genre) of the `queries` rows among `candidates`."""
    (source, counts_s), (genre, counts_g) = hits(data, scores, candidates)
    return float(source[queries & counts_s].mean()), float(genre[queries & counts_g].mean())


def part_scores(data: Realset) -> dict[str, np.ndarray]:
    """The cosine matrix of each part of the joined vector alone, through `combine`."""
    records = data.records
    embeddings = np.stack([r.embedding for r in records])
    probabilities = np.stack([r.probabilities for r in records])
    descriptors = np.stack([r.descriptor_vector for r in records])
    musicnn = musicnn_part(records)
    scales = {"scale": LibraryScale.fit(descriptors), "musicnn_scale": LibraryScale.fit(musicnn)}
    found = {}
    for part in PARTS:
        alone = {name: float(name == part) for name in PARTS}
        vectors = combine(embeddings, probabilities, descriptors, musicnn, weights=alone, **scales)
        found[part] = vectors @ vectors.T
    return found


def musicnn_variants(data: Realset) -> Iterator[tuple[str, np.ndarray]]:
    """musicnn's embedding pooled and scaled in each way considered, as cosine matrices."""
    records = data.records
    pooled, labels = np.stack([r.tag_embedding for r in records]), records[0].tag_labels
    assert labels is not None
    for taggers in (("msd",), ("msd", "mtt")):
        both = tagger_embeddings(pooled, labels, taggers=taggers)
        half = both.shape[1] // 2
        for pooling, x in (("mean", both[:, :half]), ("mean+max", both)):
            for scaling in ("raw", "standardised"):
                v = unit_rows(LibraryScale.fit(x).standardise(x) if scaling != "raw" else x)
                yield f"musicnn {'+'.join(taggers)} {pooling} {scaling}", v @ v.T


def joined(parts: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """The joined cosine: the weighted sum of the parts' (every part present)."""
    return sum((w * parts[name] for name, w in weights.items()), np.zeros_like(parts["genre"]))


def grid() -> list[dict[str, float]]:
    units = round(1 / STEP)
    floor = round(FLOOR / STEP)
    found = []
    for shares in itertools.product(range(units + 1), repeat=len(PARTS) - 1):
        rest = units - sum(shares)
        weights = dict(zip(PARTS, (rest, *shares), strict=True))
        if rest >= 0 and all(weights[p] >= floor for p in PARTS if p != "musicnn"):
            found.append({p: round(n * STEP, 4) for p, n in weights.items()})
    return found


def choose(
    data: Realset, parts: Mapping[str, np.ndarray], on: np.ndarray, weightings: list[dict]
) -> dict[str, float]:
    """The weighting with the best mean of the two precisions, queries and candidates
    both from `on` alone (the first of equal ones)."""
    scored = [np.mean(precision(data, joined(parts, w), on, on)) for w in weightings]
    return weightings[int(np.argmax(scored))]


def folds(data: Realset) -> list[np.ndarray]:
    """`FOLDS` boolean masks of excerpts, by track (a track's excerpts on one side)."""
    names = np.unique(data.tracks)
    np.random.default_rng(16).shuffle(names)
    return [np.isin(data.tracks, names[i::FOLDS]) for i in range(FOLDS)]


def show(name: str, figures: tuple[float, float]) -> None:
    print(f"  {name:48s} same source {figures[0]:.3f}  same genre {figures[1]:.3f}  "
          f"mean {np.mean(figures):.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--realset", type=Path, default=Path("/work/realset"))
    parser.add_argument("--db", type=Path, help="keep the catalogue here (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        data = load(args.realset.resolve(), args.db or Path(work, "realset.sqlite"))
    n = len(data.records)
    everyone = np.ones(n, dtype=bool)
    parts = part_scores(data)
    print(f"precision@{K}, all {n} excerpts as queries, own track left out:")
    for part in PARTS:
        show(f"{part} alone", precision(data, parts[part], everyone, everyone))
    for name, scores in musicnn_variants(data):
        show(name, precision(data, scores, everyone, everyone))
    today = precision(data, joined(parts, TODAY_WEIGHTS), everyone, everyone)
    show("today's joined (TODAY_WEIGHTS)", today)
    for share in (0.25, 0.5, 0.75):
        weights = {p: w * (1 - share) for p, w in TODAY_WEIGHTS.items()} | {"musicnn": share}
        figures = precision(data, joined(parts, weights), everyone, everyone)
        show(f"today's with musicnn at {share}", figures)

    weightings = grid()
    print(f"cross-validation over tracks ({FOLDS} folds, {len(weightings)} weightings):")
    held_out = np.zeros((2, n))
    counted = np.zeros((2, n), dtype=bool)
    for fold in folds(data):
        chosen = choose(data, parts, ~fold, weightings)
        print(f"  fold of {fold.sum()} excerpts: chose {chosen}")
        for which, (found, counts) in enumerate(hits(data, joined(parts, chosen), everyone)):
            held_out[which, fold] = found[fold]
            counted[which] = counts  # the same whatever the weights: all are candidates
    cv = (float(held_out[0, counted[0]].mean()), float(held_out[1, counted[1]].mean()))
    show("new joined, weights chosen per fold (held out)", cv)
    show("today's joined (nothing chosen)", today)
    final = choose(data, parts, everyone, weightings)
    print(f"chosen on all tracks (the defaults to ship): {final}")
    show("  the same, in-sample", precision(data, joined(parts, final), everyone, everyone))
    print(f"shipped PART_WEIGHTS {PART_WEIGHTS}:")
    show("Library.recommend with the shipped defaults", library_precision(data))


def library_precision(data: Realset) -> tuple[float, float]:
    """Precision@K through the real `Library` (its own vectors, index and exclusions)."""
    library = Library(data.records)
    row = {r.id: i for i, r in enumerate(data.records)}
    ids = np.array([r.id for r in data.records])
    hits: list[list[float]] = [[], []]
    for i, record in enumerate(data.records):
        assert record.id is not None
        own = ids[data.same_track[i]]
        found = library.recommend(library.vector(record.id), k=K, basis=Basis(), exclude=own)
        rows = [row[f.track.id] for f in found]
        for which, relevant in enumerate((data.same_source, data.same_genre)):
            if (relevant[i] & ~data.same_track[i]).any():
                hits[which].append(float(np.mean(relevant[i, rows])))
    return float(np.mean(hits[0])), float(np.mean(hits[1]))


if __name__ == "__main__":
    main()
