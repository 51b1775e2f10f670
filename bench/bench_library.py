"""Recommendation quality of the library on held-out clips (indexing speed: bench_index.py).

The clips are the held-out side of the synthetic corpus (``held_out=1`` in its manifest:
groove families and a soundfont the shipped model never saw), made by
`scripts/train-default-model.sh` or `streamer-train corpus`. They are linked into a
temporary folder and indexed with the shipped model, like a user's music folder.

For every held-out clip, the 10 nearest other clips; precision@10 is the share of the
same genre. Each part of the joined vector alone is measured beside it, and chance (the
share of same-genre clips among the others) is the baseline.

    .venv/bin/python bench/bench_library.py [--corpus work/corpus]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np

from streamer.analysis.model import DEFAULT_MODEL
from streamer.batch import Engine
from streamer.library.catalogue import Catalogue
from streamer.library.indexer import index
from streamer.library.recommend import Library
from streamer.library.similarity import PART_WEIGHTS, combine, unit_rows


def held_out_clips(corpus: Path) -> list[tuple[Path, str]]:
    with (corpus / "manifest.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("held_out") == "1"]
    if not rows:
        raise SystemExit(f"{corpus}/manifest.csv has no held_out=1 clips: generate the corpus")
    return [(corpus / r["path"], r["label"]) for r in rows]


def link_folder(clips: list[tuple[Path, str]], folder: Path) -> Path:
    for path, label in clips:
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / path.name).symlink_to(path.resolve())
    return folder


def precision_at(vectors: np.ndarray, genres: np.ndarray, k: int) -> float:
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    nearest = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean(genres[nearest] == genres[:, None]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("work/corpus"))
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    clips = held_out_clips(args.corpus)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        folder = link_folder(clips, work / "held-out")
        db = work / "held-out.sqlite"
        with Catalogue(db) as catalogue:
            index([folder], catalogue=catalogue, model_path=DEFAULT_MODEL, engine=Engine(workers=2))
        library = Library.open(db)
    ids = library.ids
    genres = np.array([library.tracks[int(i)].path.parent.name for i in ids])
    records = [library.records[int(i)] for i in ids]
    embeddings = np.stack([r.embedding for r in records])
    probabilities = np.stack([r.probabilities for r in records])
    descriptors = library.scale.weighted(np.stack([r.descriptor_vector for r in records]))
    parts = {
        f"joined (weights {PART_WEIGHTS})": library.vectors,
        "embedding alone": unit_rows(embeddings),
        "genre mixture alone": unit_rows(np.sqrt(probabilities)),
        "descriptors alone": unit_rows(descriptors),
        "embedding + genre (a live query)": combine(embeddings, probabilities),
    }
    same = np.array([np.sum(genres == g) - 1 for g in genres]) / (len(genres) - 1)
    print(f"\n{len(genres)} held-out clips, {len(set(genres))} genres; precision@{args.k}:")
    print(f"   chance (baseline): {np.mean(same):.3f}")
    for name, vectors in parts.items():
        p = precision_at(vectors, genres, args.k)
        print(f"   {name}: {p:.3f} ({p / np.mean(same):.1f}x chance)")


if __name__ == "__main__":
    main()
