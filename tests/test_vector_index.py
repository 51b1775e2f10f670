"""The vector index of large catalogues: recall against exact search, filters that keep k
results, and a file kept in step with the catalogue (added, removed, moved, damaged)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from streamer.analysis.describe import Descriptors
from streamer.library.catalogue import Catalogue, TrackRecord
from streamer.library.recommend import Basis, Filters, Library, refresh_vector_index
from streamer.library.similarity import BruteForceIndex, unit_rows
from streamer.library.vectorindex import HnswIndex, index_path

LABELS = ["blues", "classical", "jazz", "rock", "metal", "pop"]


def clustered(n: int, dimension: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around 200 centres (catalogues are clustered, not uniform; the same
    centres whatever the `seed`), and a genre per vector that its cluster decides: a
    filter to another genre than the query's looks where the query is not."""
    centres = np.random.default_rng(dimension).standard_normal((200, dimension))
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, len(centres), n)
    vectors = unit_rows(centres[cluster] + 0.8 * rng.standard_normal((n, dimension)))
    return vectors, np.array(LABELS)[cluster % len(LABELS)]


def recall(index: HnswIndex, exact: BruteForceIndex, queries: np.ndarray, **mask: object) -> float:
    hits = []
    for query in queries:
        want = {i for i, _ in exact.search(query, 10, **mask)}  # type: ignore[arg-type]
        got = [i for i, _ in index.search(query, 10, **mask)]  # type: ignore[arg-type]
        assert len(got) == len(want)
        hits.append(len(want & set(got)) / len(want))
    return float(np.mean(hits))


@pytest.fixture(scope="module")
def searched() -> tuple[HnswIndex, BruteForceIndex, np.ndarray, np.ndarray, np.ndarray]:
    vectors, genres = clustered(30_000, 48)
    ids = np.arange(len(vectors)) * 7 + 3  # ids need not be rows
    index = HnswIndex.build(ids, vectors, genres)
    index.attach(ids, vectors, exact_rows=0)  # the graphs answer every query here
    queries = clustered(60, 48, seed=1)[0]
    return index, BruteForceIndex(ids, vectors), queries, genres, vectors


def test_recall_against_exact_search_unfiltered_and_filtered(searched: tuple) -> None:
    index, exact, queries, genres, _ = searched
    assert recall(index, exact, queries) >= 0.95
    # a genre filter, whatever the query sounds like: the genre's own graph answers
    jazz = genres == "jazz"
    assert recall(index, exact, queries, allowed=jazz, genres={"jazz"}) >= 0.95
    # a filter the genres do not explain (tempo, key): the big graph, searched wider
    rng = np.random.default_rng(2)
    some = rng.random(len(genres)) < 0.2
    assert recall(index, exact, queries, allowed=some) >= 0.95


def test_filtered_queries_return_k_results_when_k_pass(searched: tuple) -> None:
    index, exact, queries, genres, _ = searched
    rng = np.random.default_rng(3)
    for share in (0.001, 0.01, 0.05):  # 30, 300 and 1500 of 30k rows pass
        allowed = rng.random(len(genres)) < share
        got = index.search(queries[0], 10, allowed=allowed)
        assert len(got) == 10
        assert set(i for i, _ in got) <= set(exact.ids[allowed].tolist())
    few = np.zeros(len(genres), dtype=bool)
    few[[5, 900, 20_000]] = True
    assert sorted(i for i, _ in index.search(queries[0], 10, allowed=few)) == sorted(
        exact.ids[few].tolist()
    )


def test_a_small_filter_is_answered_exactly(searched: tuple) -> None:
    index, exact, queries, _, vectors = searched
    ids = exact.ids
    index.attach(ids, vectors)  # the shipped threshold: 8192 rows or fewer are exact
    try:
        allowed = np.random.default_rng(4).random(len(ids)) < 0.2  # about 6000
        for query in queries[:10]:
            assert index.search(query, 10, allowed=allowed) == exact.search(
                query, 10, allowed=allowed
            )
    finally:
        index.attach(ids, vectors, exact_rows=0)


# --- kept in step with the catalogue ---------------------------------------------------------


def record(number: int, *, seed: int = 0) -> TrackRecord:
    """A track with random but clustered parts (every number gives the same track)."""
    rng = np.random.default_rng(number * 1000 + seed)
    genre = number % len(LABELS)
    probabilities = rng.dirichlet(np.ones(len(LABELS)) * 0.3).astype(np.float32)
    probabilities[genre] += 2.0
    probabilities /= probabilities.sum()
    centre = np.random.default_rng(genre).standard_normal(400)
    return TrackRecord(
        path=Path(f"/music/track{number:05d}.wav"),
        size=1000 + number,
        mtime_ns=1_700_000_000_000_000_000 + number,
        duration=180.0,
        model_sha256="a" * 64,
        labels=list(LABELS),
        probabilities=probabilities,
        embedding=rng.standard_normal(8).astype(np.float32),
        descriptors={},
        descriptor_vector=rng.standard_normal(Descriptors.VECTOR_SIZE).astype(np.float32),
        tempo=float(rng.uniform(80, 160)),
        taggers_sha256="b" * 64,
        tag_labels=["msd/rock", "msd/jazz"],
        tags=rng.random(2).astype(np.float32),
        tag_embedding=(centre + rng.standard_normal(400)).astype(np.float32),
        sections=[(0.0, rng.standard_normal(8).astype(np.float32))],
    )


@pytest.fixture
def catalogue_path(tmp_path: Path) -> Path:
    path = tmp_path / "library.sqlite"
    with Catalogue(path) as catalogue:
        for number in range(600):
            catalogue.put_track(record(number))
    return path


def rows(path: Path) -> int:
    """How many rows the saved index's big graph has, dead ones included."""
    return len(HnswIndex.load(index_path(path)).graphs[""].ids)


def test_the_index_answers_as_exact_search_and_is_saved_beside_the_catalogue(
    catalogue_path: Path,
) -> None:
    exact = Library.open(catalogue_path)  # 600 tracks: exact, no file
    assert isinstance(exact.index, BruteForceIndex)
    assert not index_path(catalogue_path).exists()
    large = Library.open(catalogue_path, exact_below=0)
    assert isinstance(large.index, HnswIndex)
    assert rows(catalogue_path) == 600
    large.index.attach(large.ids, large.vectors, exact_rows=0)
    for track in list(large.tracks)[:40]:
        query = large.vector(track)
        want = exact.recommend(query, k=5, basis=Basis(), exclude={track})
        got = large.recommend(query, k=5, basis=Basis(), exclude={track})
        assert [r.track.id for r in got] == [r.track.id for r in want]
        jazz = Filters(genres=frozenset({"jazz"}))
        got = large.recommend(query, k=5, basis=Basis(), filters=jazz)
        assert [r.track.id for r in got] == [
            r.track.id for r in exact.recommend(query, k=5, basis=Basis(), filters=jazz)
        ]
        assert all(r.track.genre == "jazz" for r in got)


def test_indexing_a_large_catalogue_brings_its_index_in_step(catalogue_path: Path) -> None:
    assert not refresh_vector_index(catalogue_path)  # 600 tracks: searched exactly
    assert not index_path(catalogue_path).exists()
    assert refresh_vector_index(catalogue_path, exact_below=600)
    assert rows(catalogue_path) == 600


def test_added_removed_and_moved_tracks_change_the_index_without_a_rebuild(
    catalogue_path: Path,
) -> None:
    Library.open(catalogue_path, exact_below=0)
    saved = index_path(catalogue_path)
    with Catalogue(catalogue_path) as catalogue:
        new_id = catalogue.put_track(record(600))
        gone = catalogue.find(Path("/music/track00007.wav"))
        assert gone is not None
        catalogue.remove([gone.path])
    library = Library.open(catalogue_path, exact_below=0)
    stored = HnswIndex.load(saved)
    assert len(stored.graphs[""].ids) == 601  # one row added, none rebuilt
    assert new_id in stored.track_ids and gone.id not in stored.track_ids
    query = library.vector(new_id)
    assert library.recommend(query, k=1, basis=Basis())[0].track.id == new_id
    assert all(r.track.id != gone.id for r in library.recommend(query, k=600, basis=Basis()))
    # a moved track keeps its id and its vector: the file is not even written
    before = saved.stat().st_mtime_ns
    with Catalogue(catalogue_path) as catalogue:
        assert catalogue.move(Path("/music/track00009.wav"), Path("/elsewhere/nine.wav"))
    moved = Library.open(catalogue_path, exact_below=0)
    assert saved.stat().st_mtime_ns == before
    assert moved.tracks[moved.lookup("/elsewhere/nine.wav").id].path == Path(  # type: ignore[union-attr]
        "/elsewhere/nine.wav"
    )


def test_a_re_analysed_track_is_found_where_it_now_sounds(catalogue_path: Path) -> None:
    Library.open(catalogue_path, exact_below=0)
    with Catalogue(catalogue_path) as catalogue:
        old = catalogue.find(Path("/music/track00010.wav"))
        assert old is not None
        # analysed again (a new model, say): the same genre, other parts
        changed = dataclasses.replace(record(10, seed=5), path=old.path)
        catalogue.put_track(changed)
    library = Library.open(catalogue_path, exact_below=0)
    stored = HnswIndex.load(index_path(catalogue_path))
    assert len(stored.graphs[""].ids) == 601 and int((~stored.graphs[""].live).sum()) == 1
    found = library.recommend(library.vector(old.id), k=1, basis=Basis())
    assert found[0].track.id == old.id


def test_an_index_of_another_model_is_built_anew(catalogue_path: Path) -> None:
    Library.open(catalogue_path, exact_below=0)
    with Catalogue(catalogue_path) as catalogue:  # every track analysed by a wider model
        for old in catalogue.tracks():
            wider = np.concatenate([old.embedding, old.embedding])
            catalogue.put_track(dataclasses.replace(old, embedding=wider))
    library = Library.open(catalogue_path, exact_below=0)
    assert HnswIndex.load(index_path(catalogue_path)).dimension == library.vectors.shape[1]
    assert rows(catalogue_path) == 600


def test_many_removed_tracks_rebuild_the_index(catalogue_path: Path) -> None:
    Library.open(catalogue_path, exact_below=0)
    with Catalogue(catalogue_path) as catalogue:
        catalogue.remove([Path(f"/music/track{n:05d}.wav") for n in range(200)])
    Library.open(catalogue_path, exact_below=0)
    assert rows(catalogue_path) == 400  # a third dead: built anew, with no dead rows


@pytest.mark.parametrize("damage", ["deleted", "truncated", "flipped", "not-an-index"])
def test_a_missing_or_damaged_index_is_rebuilt_at_open(
    catalogue_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = Library.open(catalogue_path, exact_below=0)
    saved = index_path(catalogue_path)
    data = saved.read_bytes()
    if damage == "deleted":
        saved.unlink()
    elif damage == "truncated":
        saved.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":  # one byte inside the stored arrays: the CRC-32s catch it
        middle = len(data) // 2
        saved.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    else:
        saved.write_text("not an index\n")
    capsys.readouterr()
    library = Library.open(catalogue_path, exact_below=0)
    err = capsys.readouterr().err.splitlines()
    assert "building the vector index of 600 tracks" in err[-1]
    if damage == "deleted":
        assert len(err) == 1
    else:
        assert len(err) == 2 and "damaged vector index" in err[0] and str(saved) in err[0]
    assert HnswIndex.load(saved).track_ids.tolist() == sorted(reference.ids.tolist())
    query = library.vector(int(library.ids[3]))
    assert library.recommend(query, k=1, basis=Basis())[0].track.id == int(library.ids[3])


def test_an_index_that_cannot_be_saved_is_said_and_still_answers(
    catalogue_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_path(catalogue_path).mkdir()  # in the way of the file, even for root
    library = Library.open(catalogue_path, exact_below=0)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and "damaged vector index" in err[0] and "building" in err[1]
    assert "cannot save the vector index" in err[2] and "built anew at each start" in err[2]
    assert len(library.recommend(library.vector(int(library.ids[0])), k=3, basis=Basis())) == 3
