"""The library catalogue: round trips, replacement rules, paths, durability, concurrency."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamer.errors import StreamerError
from streamer.library.catalogue import (
    NO_MUSIC,
    SCHEMA_VERSION,
    Catalogue,
    TrackRecord,
    default_catalogue_path,
)

LABELS = ["blues", "classical", "jazz", "rock"]
MODEL = "a" * 64
TESTS = Path(__file__).resolve().parent


def numbered_record(
    number: int, *, folder: str = "/music", sections: int | None = None
) -> TrackRecord:
    """Track `number`, every value derived from it (also used by the child processes)."""
    count = 3 + number % 4 if sections is None else sections
    probabilities = np.full(len(LABELS), 0.1, dtype=np.float32)
    probabilities[number % len(LABELS)] = 0.7
    return TrackRecord(
        path=Path(folder, f"track{number:04d}.wav"),
        size=1000 + number,
        mtime_ns=1_700_000_000_000_000_000 + number,
        duration=30.0 * count,
        model_sha256=MODEL,
        labels=list(LABELS),
        probabilities=probabilities,
        embedding=np.full(8, number, dtype=np.float32),
        descriptors={"tempo_bpm": 100.0 + number},
        descriptor_vector=np.full(5, -number, dtype=np.float32),
        genre_tag=LABELS[number % 3],
        tempo=100.0 + number,
        sections=[(30.0 * s, np.full(8, number * 100 + s, dtype=np.float32)) for s in range(count)],
    )


def assert_complete(record: TrackRecord) -> None:
    """`record` is exactly what `numbered_record` made: the row and all of its sections."""
    number = int(record.path.stem.removeprefix("track"))
    expected = numbered_record(number)
    assert record.size == expected.size
    assert np.array_equal(record.embedding, expected.embedding)
    assert record.sections is not None and expected.sections is not None
    assert [start for start, _ in record.sections] == [start for start, _ in expected.sections]
    for (_, got), (_, want) in zip(record.sections, expected.sections, strict=True):
        assert np.array_equal(got, want)


def bits(array: np.ndarray) -> bytes:
    assert array.dtype == np.float32
    return array.tobytes()


@pytest.fixture
def catalogue(tmp_path: Path) -> Any:
    with Catalogue(tmp_path / "library.sqlite") as opened:
        yield opened


# --- round trips ---------------------------------------------------------------------------


def test_round_trip_preserves_every_field_bit_exactly(catalogue: Catalogue, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    special = np.array([np.nan, -0.0, np.inf, -np.inf, 1e-45, 3.4028235e38], dtype=np.float32)
    record = TrackRecord(
        path=tmp_path / "Ünïcode & spaces" / "a 'quoted' track%_.flac",
        size=123_456_789,
        mtime_ns=1_712_345_678_901_234_567,
        duration=187.25,
        title="Title ☃",
        artist="Artist",
        album=None,
        genre_tag="Jazz",
        model_sha256=MODEL,
        labels=list(LABELS),
        probabilities=rng.random(4, dtype=np.float32),
        embedding=np.concatenate([rng.standard_normal(122, dtype=np.float32), special]),
        descriptors={"key": "F# minor", "mfcc_mean": [1.5, -2.25], "tempo_bpm": np.float64(121.5)},
        descriptor_vector=rng.standard_normal(61, dtype=np.float32),
        key="F# minor",
        tempo=121.5,
        indexed_at=1_712_345_999.125,
        sections=[(0.0, special), (30.0, rng.standard_normal(6, dtype=np.float32))],
    )
    track_id = catalogue.put_track(record)
    found = catalogue.find(record.path)
    assert found is not None and found.id == track_id
    for name in ("size", "mtime_ns", "duration", "title", "artist", "album", "genre_tag",
                 "model_sha256", "labels", "key", "tempo", "indexed_at"):  # fmt: skip
        assert getattr(found, name) == getattr(record, name), name
    assert found.path == record.path.resolve()
    assert found.descriptors == {"key": "F# minor", "mfcc_mean": [1.5, -2.25], "tempo_bpm": 121.5}
    for name in ("probabilities", "embedding", "descriptor_vector"):
        assert bits(getattr(found, name)) == bits(getattr(record, name)), name
        assert getattr(found, name).flags.writeable  # a copy, not a view of the row
    assert found.sections is not None and record.sections is not None
    assert [start for start, _ in found.sections] == [0.0, 30.0]
    for (_, got), (_, want) in zip(found.sections, record.sections, strict=True):
        assert bits(got) == bits(want)
    by_id = catalogue.track(track_id)
    assert by_id is not None and by_id.path == found.path
    assert bits(by_id.sections[1][1]) == bits(record.sections[1][1])  # type: ignore[index]


TAGGERS = "b" * 64
TAG_FIELDS = ("taggers_sha256", "tag_labels", "tags", "tag_embedding")


def tagged(record: TrackRecord) -> TrackRecord:
    """`record` with musicnn's fields as the indexer writes them (2 taggers x 3 tags here)."""
    rng = np.random.default_rng(len(str(record.path)))
    record.taggers_sha256 = TAGGERS
    record.tag_labels = [f"{m}/{t}" for m in ("msd", "mtt") for t in ("rock", "fast", "slow")]
    record.tags = rng.random(6, dtype=np.float32)
    record.tag_embedding = rng.standard_normal(2 * 2 * 200, dtype=np.float32)
    return record


def test_the_tagger_fields_are_written_and_read_back_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite"
    with Catalogue(path) as catalogue:
        catalogue.put_track(tagged(numbered_record(3)))
        catalogue.put_track(numbered_record(4))  # analysed without the taggers
        with pytest.raises(ValueError, match="all together"):
            catalogue.put_track(dataclasses.replace(tagged(numbered_record(5)), tags=None))
        with pytest.raises(ValueError, match="5 tags for 6 tag labels"):
            record = tagged(numbered_record(5))
            catalogue.put_track(dataclasses.replace(record, tags=record.tags[:5]))
    with Catalogue(path, readonly=True) as catalogue:
        found, plain = catalogue.tracks()
        assert catalogue.analysed_by(found.path) == (MODEL, TAGGERS)
        assert catalogue.analysed_by(plain.path) == (MODEL, None)
    want = tagged(numbered_record(3))
    assert found.taggers_sha256 == TAGGERS and found.tag_labels == want.tag_labels
    assert found.tags is not None and want.tags is not None
    assert bits(found.tags) == bits(want.tags)
    assert found.tag_embedding is not None and want.tag_embedding is not None
    assert bits(found.tag_embedding) == bits(want.tag_embedding)
    assert all(getattr(plain, name) is None for name in TAG_FIELDS)


def make_version_1(path: Path, records: list[TrackRecord]) -> None:
    """A catalogue of `records` as version 1 wrote it."""
    with Catalogue(path) as catalogue:
        for record in records:
            catalogue.put_track(record)
    downgrade_to_version_1(path)


def downgrade_to_version_2(path: Path) -> None:
    """Make the catalogue at `path` what version 2 wrote: no written tags, user_version 2."""
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("DROP TABLE written_tags")
        raw.execute("PRAGMA user_version = 2")
    raw.close()


def downgrade_to_version_1(path: Path) -> None:
    """Make the catalogue at `path` what version 1 wrote: no tagger columns, user_version 1."""
    downgrade_to_version_2(path)
    raw = sqlite3.connect(path)
    with raw:
        for column in TAG_FIELDS:
            raw.execute(f"ALTER TABLE tracks DROP COLUMN {column}")
        raw.execute("PRAGMA user_version = 1")
    raw.close()


def test_a_version_1_catalogue_is_read_as_it_is_and_migrated_when_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "library.sqlite"
    make_version_1(path, [numbered_record(1), numbered_record(2)])
    with Catalogue(path, readonly=True) as catalogue:
        old = catalogue.tracks()
        assert catalogue.analysed_by(old[0].path) == (MODEL, None)  # analysed again
    assert len(old) == 2 and all(getattr(old[0], name) is None for name in TAG_FIELDS)
    assert_complete(old[0])
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1  # read only: untouched
    raw.close()
    with Catalogue(path) as catalogue:
        catalogue.put_track(tagged(numbered_record(1)))
        first, second = catalogue.tracks()
    assert first.taggers_sha256 == TAGGERS and second.taggers_sha256 is None
    assert_complete(second)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    raw.close()


def test_a_version_2_catalogue_gains_the_written_tags_and_keeps_its_tracks(
    tmp_path: Path,
) -> None:
    path = tmp_path / "library.sqlite"
    with Catalogue(path) as catalogue:
        track_id = catalogue.put_track(tagged(numbered_record(1)))
    downgrade_to_version_2(path)
    with Catalogue(path, readonly=True) as catalogue:  # read as it is: none written
        assert catalogue.written_tags(track_id) == {}
    with Catalogue(path) as catalogue:
        (track,) = catalogue.tracks()
        assert track.taggers_sha256 == TAGGERS and catalogue.analysed_by(track.path) == (
            MODEL,
            TAGGERS,
        )  # not analysed again for a table it did not have
        catalogue.keep_original_tags(track_id, {"genre": {"text": ["Jazz"]}, "bpm": None})
        assert set(catalogue.written_tags(track_id)) == {"genre", "bpm"}
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


def test_written_tags_keep_the_first_original_and_go_with_their_track(
    catalogue: Catalogue,
) -> None:
    track_id = catalogue.put_track(numbered_record(1))
    catalogue.keep_original_tags(track_id, {"genre": ["Deep House"], "key": None})
    catalogue.tags_saved(
        track_id, written={"genre": ["Jazz"], "key": ["8A"]}, state=(5, 6), tags={"genre": "Jazz"}
    )
    catalogue.keep_original_tags(track_id, {"genre": ["Jazz"]})  # a second write
    kept = catalogue.written_tags(track_id)
    assert (kept["genre"].original, kept["genre"].written) == (["Deep House"], ["Jazz"])
    assert (kept["key"].original, kept["key"].written) == (None, ["8A"])
    found = catalogue.track(track_id)
    assert found is not None and (found.size, found.mtime_ns, found.genre_tag) == (5, 6, "Jazz")
    assert catalogue.state(found.path) == (5, 6)  # what `streamer index` compares
    catalogue.tags_saved(track_id, written={"genre": None}, state=None, tags={})  # undone
    assert set(catalogue.written_tags(track_id)) == {"key"}
    assert catalogue.state(found.path) == (5, 6)
    catalogue.keep_original_tags(track_id, {"bpm": None})
    catalogue.forget_unsaved_tags(track_id)  # the save failed: only the unsaved one goes
    assert set(catalogue.written_tags(track_id)) == {"key"}
    catalogue.remove([found.path])
    assert catalogue.written_tags(track_id) == {}


def test_sections_come_back_in_order_and_are_replaced_with_the_track(catalogue: Catalogue) -> None:
    record = numbered_record(1, sections=0)
    record.sections = [(60.0, np.ones(8)), (0.0, np.zeros(8)), (30.0, np.full(8, 2.0))]
    track_id = catalogue.put_track(record)
    assert [start for start, _ in catalogue.sections(track_id)] == [0.0, 30.0, 60.0]
    assert catalogue.sections(track_id)[1][1].tolist() == [2.0] * 8
    record.sections = [(0.0, np.full(8, 7.0))]
    assert catalogue.put_track(record) == track_id  # same path: replaced, id kept
    assert [(s, e.tolist()) for s, e in catalogue.sections(track_id)] == [(0.0, [7.0] * 8)]
    assert catalogue.sections(999) == []


def test_optional_fields_may_be_missing(catalogue: Catalogue) -> None:
    record = numbered_record(2)
    record.genre_tag = record.key = record.tempo = None
    catalogue.put_track(record)
    found = catalogue.find(record.path)
    assert found is not None
    assert (found.genre_tag, found.key, found.tempo, found.title) == (None, None, None, None)
    record.tempo = float("nan")  # SQLite has no NaN: it is stored as unknown
    catalogue.put_track(record)
    assert catalogue.find(record.path).tempo is None  # type: ignore[union-attr]


def test_inconsistent_records_are_refused(catalogue: Catalogue) -> None:
    record = numbered_record(3)
    record.probabilities = np.ones(3)  # 4 labels
    with pytest.raises(ValueError, match="3 probabilities for 4 labels"):
        catalogue.put_track(record)
    record = numbered_record(3)
    record.sections = [(0.0, np.ones(8)), (0.0, np.ones(8))]
    with pytest.raises(ValueError, match="same time"):
        catalogue.put_track(record)
    record = numbered_record(3)
    record.embedding = np.ones((2, 4))
    with pytest.raises(ValueError, match="1-D"):
        catalogue.put_track(record)
    unloaded = numbered_record(3)
    unloaded.sections = None  # as `tracks(sections=False)` returns them
    with pytest.raises(ValueError, match="without its sections"):
        catalogue.put_track(unloaded)
    assert catalogue.stats().tracks == 0


def test_tracks_are_ordered_by_id_with_or_without_sections(catalogue: Catalogue) -> None:
    ids = [catalogue.put_track(numbered_record(n)) for n in (5, 1, 3)]
    assert ids == sorted(ids)
    records = catalogue.tracks()
    assert [r.id for r in records] == ids
    assert [r.path.name for r in records] == ["track0005.wav", "track0001.wav", "track0003.wav"]
    for record in records:
        assert_complete(record)
    assert all(r.sections is None for r in catalogue.tracks(sections=False))


def test_interrupted_put_leaves_nothing_and_the_catalogue_usable(catalogue: Catalogue) -> None:
    """Ctrl-C between the track row and its sections rolls the whole track back."""

    class Interrupting:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __getattr__(self, name: str) -> Any:
            return getattr(self.db, name)

        def executemany(self, sql: str, rows: Any) -> Any:
            raise KeyboardInterrupt

    catalogue.put_track(numbered_record(1))
    real = catalogue._db
    catalogue._db = Interrupting(real)  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        catalogue.put_track(numbered_record(2))
    catalogue._db = real
    assert not real.in_transaction
    assert [r.path.name for r in catalogue.tracks()] == ["track0001.wav"]
    catalogue.put_track(numbered_record(2))
    assert len(catalogue.tracks()) == 2


# --- state, failures, replacement ----------------------------------------------------------


def test_state_of_a_track_a_failure_and_an_unknown_file(catalogue: Catalogue) -> None:
    catalogue.put_track(numbered_record(7))
    catalogue.put_failure(Path("/music/bad.mp3"), size=42, mtime_ns=99, reason="cannot decode")
    assert catalogue.state(Path("/music/track0007.wav")) == (1007, 1_700_000_000_000_000_007)
    assert catalogue.state(Path("/music/bad.mp3")) == (42, 99)
    assert catalogue.state(Path("/music/other.wav")) is None
    assert catalogue.state(Path("/music/sub/../track0007.wav")) is not None  # resolved
    assert catalogue.analysed_by(Path("/music/track0007.wav")) == (MODEL, None)
    assert catalogue.analysed_by(Path("/music/bad.mp3")) is None


def test_a_track_replaces_a_failure_and_a_failure_replaces_a_track(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    record = numbered_record(4)
    catalogue.put_failure(record.path, size=1, mtime_ns=2, reason="decoder crashed")
    catalogue.put_failure(record.path, size=3, mtime_ns=4, reason="still broken")  # updated
    assert [(f.path, f.reason) for f in catalogue.failures()] == [(record.path, "still broken")]
    assert catalogue.state(record.path) == (3, 4)

    track_id = catalogue.put_track(record)
    assert catalogue.failures() == []
    assert catalogue.state(record.path) == (record.size, record.mtime_ns)

    catalogue.put_failure(record.path, size=5, mtime_ns=6, reason="now truncated")
    assert catalogue.find(record.path) is None and catalogue.track(track_id) is None
    assert catalogue.state(record.path) == (5, 6)
    failure = catalogue.failures()[0]
    assert failure.reason == "now truncated" and abs(failure.at - time.time()) < 60
    with sqlite3.connect(tmp_path / "library.sqlite") as raw:  # the sections went too
        assert raw.execute("SELECT count(*) FROM sections").fetchone()[0] == 0


def test_ids_are_not_reused(catalogue: Catalogue) -> None:
    first = catalogue.put_track(numbered_record(1))
    second = catalogue.put_track(numbered_record(2))
    catalogue.remove([Path("/music/track0002.wav")])
    third = catalogue.put_track(numbered_record(3))
    assert first < second < third


def test_move_keeps_the_analysis_and_the_id(catalogue: Catalogue) -> None:
    track_id = catalogue.put_track(numbered_record(1))
    catalogue.put_failure(Path("/music/bad.mp3"), size=1, mtime_ns=2, reason="broken")
    catalogue.put_failure(Path("/new/track0001.wav"), size=1, mtime_ns=2, reason="stale")
    assert catalogue.move(Path("/music/track0001.wav"), Path("/new/track0001.wav"))
    assert catalogue.move(Path("/music/bad.mp3"), Path("/new/bad.mp3"))
    assert not catalogue.move(Path("/music/none.wav"), Path("/new/none.wav"))
    moved = catalogue.track(track_id)
    assert moved is not None and moved.path == Path("/new/track0001.wav")
    assert_complete(moved)
    assert catalogue.known_paths() == {Path("/new/track0001.wav"), Path("/new/bad.mp3")}


# --- removing, paths under folders ---------------------------------------------------------


def test_remove_takes_tracks_and_failures(catalogue: Catalogue, tmp_path: Path) -> None:
    for number in range(3):
        catalogue.put_track(numbered_record(number))
    catalogue.put_failure(Path("/music/bad.mp3"), size=1, mtime_ns=2, reason="broken")
    gone = [Path("/music/track0000.wav"), Path("/music/bad.mp3"), Path("/music/unknown.wav")]
    assert catalogue.remove(gone) == 2
    assert catalogue.known_paths() == {Path("/music/track0001.wav"), Path("/music/track0002.wav")}
    assert catalogue.remove([]) == 0
    with sqlite3.connect(tmp_path / "library.sqlite") as raw:  # sections cascade
        assert raw.execute("SELECT count(*) FROM sections").fetchone()[0] == 4 + 5


def test_remove_under_does_not_take_a_folder_with_a_longer_name(catalogue: Catalogue) -> None:
    catalogue.put_track(numbered_record(1, folder="/m/a"))
    catalogue.put_track(numbered_record(2, folder="/m/a/deep/er"))
    catalogue.put_failure(Path("/m/a/bad.mp3"), size=1, mtime_ns=2, reason="broken")
    catalogue.put_track(numbered_record(3, folder="/m/ab"))  # "/m/a" + "b": not inside
    catalogue.put_track(numbered_record(4, folder="/m/a b"))  # ' ' sorts before '/'
    catalogue.put_track(numbered_record(5, folder="/m/a0"))  # '0' sorts right after '/'
    catalogue.put_track(numbered_record(6, folder="/m"))
    outside = {
        Path("/m/ab/track0003.wav"),
        Path("/m/a b/track0004.wav"),
        Path("/m/a0/track0005.wav"),
        Path("/m/track0006.wav"),
    }
    assert catalogue.known_paths([Path("/m/a")]) == {
        Path("/m/a/track0001.wav"),
        Path("/m/a/deep/er/track0002.wav"),
        Path("/m/a/bad.mp3"),
    }
    assert catalogue.remove_under(Path("/m/a/")) == 3
    assert catalogue.known_paths() == outside
    assert catalogue.remove_under(Path("/m/a")) == 0
    assert catalogue.remove_under(Path("/m/track0006.wav")) == 1  # a file: itself
    assert catalogue.known_paths([Path("/m/ab"), Path("/m/a0")]) == {
        Path("/m/ab/track0003.wav"),
        Path("/m/a0/track0005.wav"),
    }
    assert catalogue.known_paths([]) == set()
    assert catalogue.remove_under(Path("/")) == 3
    assert catalogue.known_paths() == set()


def test_paths_are_resolved_through_symbolic_links(catalogue: Catalogue, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    record = numbered_record(1, folder=str(tmp_path / "link"))
    catalogue.put_track(record)
    assert catalogue.known_paths() == {real / "track0001.wav"}
    assert catalogue.find(real / "track0001.wav") is not None
    assert catalogue.remove_under(tmp_path / "link") == 1


# --- statistics ----------------------------------------------------------------------------


def test_stats_count_tracks_genres_tags_and_models(catalogue: Catalogue) -> None:
    for number in range(6):  # top labels: blues classical jazz rock blues classical
        catalogue.put_track(numbered_record(number))
    untagged = numbered_record(6)
    untagged.genre_tag, untagged.model_sha256 = None, "b" * 64
    catalogue.put_track(untagged)  # top label jazz
    catalogue.put_failure(Path("/music/bad.mp3"), size=1, mtime_ns=2, reason="broken")
    stats = catalogue.stats()
    assert (stats.tracks, stats.failures) == (7, 1)
    assert stats.total_seconds == sum(numbered_record(n).duration for n in range(7))
    assert stats.by_genre == {"blues": 2, "classical": 2, "jazz": 2, "rock": 1}
    assert list(stats.by_genre) == ["blues", "classical", "jazz", "rock"]  # by count, name
    assert stats.by_genre_tag == {"blues": 2, "classical": 2, "jazz": 2}
    assert stats.models == {MODEL: 6, "b" * 64: 1}
    empty = Catalogue(catalogue.path.with_name("empty.sqlite"))
    with empty:
        assert empty.stats().tracks == 0 and empty.stats().total_seconds == 0.0


def test_a_track_with_no_music_is_recorded_as_such_and_counted_apart(
    catalogue: Catalogue,
) -> None:
    """All-zero mixture and embedding, no key, tempo or sections: "no music", not a genre."""
    catalogue.put_track(numbered_record(0))
    silent = numbered_record(1, sections=0)
    silent.probabilities = np.zeros(len(LABELS), dtype=np.float32)
    silent.embedding = np.zeros(8, dtype=np.float32)
    silent.key = silent.tempo = None
    assert numbered_record(0).has_music and not silent.has_music
    track_id = catalogue.put_track(silent)
    found = catalogue.track(track_id)
    assert found is not None and not found.has_music
    assert (found.key, found.tempo, found.sections) == (None, None, [])
    assert catalogue.stats().by_genre == {"blues": 1, NO_MUSIC: 1}


# --- opening -------------------------------------------------------------------------------


def test_default_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_catalogue_path() == tmp_path / "data" / "streamer" / "library.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".local" / "share" / "streamer" / "library.sqlite"
    assert default_catalogue_path() == expected


def test_a_new_catalogue_is_created_with_its_folders_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "library.sqlite"
    with Catalogue(path) as catalogue:
        catalogue.put_track(numbered_record(1))
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with Catalogue(path) as again:  # and opened again, as it is
        assert len(again.tracks()) == 1


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my favourite tracks\n" * 50)
    with pytest.raises(StreamerError) as error:
        Catalogue(path)
    message = str(error.value)
    assert message.startswith(f"{path}: not a streamer catalogue (")
    assert message.endswith("index again into a new file with --db")
    assert "\n" not in message
    assert path.read_text() == "my favourite tracks\n" * 50
    with pytest.raises(StreamerError, match="not a streamer catalogue"):
        Catalogue(path, readonly=True)


def test_another_programs_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE bookmarks (url TEXT)")
    raw.close()
    with pytest.raises(StreamerError, match=r"not a streamer catalogue .*another program"):
        Catalogue(path)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched
    raw.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite"
    Catalogue(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    for readonly in (False, True):
        with pytest.raises(StreamerError, match=rf"schema version {SCHEMA_VERSION + 1}, newer "):
            Catalogue(path, readonly=readonly)


def test_readonly_needs_an_existing_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "missing.sqlite"
    with pytest.raises(StreamerError, match=r"no catalogue here; run `streamer index DIR --db "):
        Catalogue(path, readonly=True)
    assert not path.exists()
    path.touch()  # an empty file, as a run killed before its first commit may leave
    with pytest.raises(StreamerError, match="no catalogue here"):
        Catalogue(path, readonly=True)
    with Catalogue(path) as created:  # but writing into it starts a catalogue
        assert created.stats().tracks == 0


def test_readonly_reads_and_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "odd name ? # %.sqlite"  # characters with a meaning in URIs
    with Catalogue(path) as writer:
        writer.put_track(numbered_record(1))
    with Catalogue(path, readonly=True) as reader:
        assert [r.path.name for r in reader.tracks()] == ["track0001.wav"]
        with pytest.raises(ValueError, match="read-only"):
            reader.put_track(numbered_record(2))
        with pytest.raises(ValueError, match="read-only"):
            reader.remove_under(Path("/"))
        assert reader.stats().tracks == 1


# --- processes: durability and concurrent reading ------------------------------------------

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from test_catalogue import numbered_record
from streamer.library.catalogue import Catalogue

path, stall_at, stall = sys.argv[2], int(sys.argv[3]), sys.argv[4]
catalogue = Catalogue(path)
committed = 0
section_statements = 0

def trace(sql):
    # Stop inside the transaction of track `stall_at`, after its row and a section.
    global section_statements
    if committed == stall_at and "INTO sections" in sql:
        section_statements += 1
        if section_statements == 2:
            print("inside", flush=True)
            if stall == "sleep":
                time.sleep(60)
            else:
                sys.stdin.readline()

catalogue._db.set_trace_callback(trace)
for number in range(10_000):
    catalogue.put_track(numbered_record(number, sections=None if stall != "none" else 40))
    committed += 1
    print("committed", number, flush=True)
"""


def start_writer(path: Path, *, stall_at: int = -1, stall: str = "none") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(TESTS), str(path), str(stall_at), stall],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def read_until(child: subprocess.Popen[str], prefix: str) -> list[str]:
    assert child.stdout is not None
    lines = []
    while not (line := child.stdout.readline()).startswith(prefix):
        assert line, f"the writer ended before {prefix!r} (exit status {child.wait()})"
        lines.append(line)
    return lines


def kill(child: subprocess.Popen[str]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL


def test_a_killed_writer_keeps_every_finished_track_and_no_half_one(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite"
    child = start_writer(path, stall_at=5, stall="sleep")
    committed = read_until(child, "inside")  # killed with track 5 half written
    kill(child)
    assert len(committed) == 5
    assert (tmp_path / "library.sqlite-wal").exists()  # the next open recovers from it

    with Catalogue(path) as catalogue:
        records = catalogue.tracks()
        assert [r.path.name for r in records] == [f"track{n:04d}.wav" for n in range(5)]
        for record in records:
            assert_complete(record)
        assert catalogue.find(Path("/music/track0005.wav")) is None
        with sqlite3.connect(path) as raw:  # no orphan sections either
            orphans = raw.execute(
                "SELECT count(*) FROM sections WHERE track_id NOT IN (SELECT id FROM tracks)"
            ).fetchone()[0]
        raw.close()
        assert orphans == 0
        # and the next run goes on
        for number in (5, 6, 2):
            catalogue.put_track(numbered_record(number))
        records = catalogue.tracks()
        assert len(records) == 7 == len({r.path for r in records})
        for record in records:
            assert_complete(record)


@pytest.mark.parametrize("delay", [0.0, 0.002, 0.02])
def test_a_writer_killed_at_any_moment_leaves_a_consistent_catalogue(
    tmp_path: Path, delay: float
) -> None:
    path = tmp_path / "library.sqlite"
    child = start_writer(path)
    read_until(child, "committed 3")
    time.sleep(delay)
    kill(child)
    with Catalogue(path) as catalogue:
        records = catalogue.tracks()
        assert len(records) >= 4
        assert [r.path.name for r in records] == [f"track{n:04d}.wav" for n in range(len(records))]
        for record in records:
            assert record.sections is not None and len(record.sections) == 40
        catalogue.put_track(numbered_record(len(records), sections=40))


def test_a_reader_reads_while_a_writer_is_in_a_transaction(tmp_path: Path) -> None:
    path = tmp_path / "library.sqlite"
    child = start_writer(path, stall_at=3, stall="stdin")
    try:
        read_until(child, "inside")  # the writer holds an open write transaction
        started = time.monotonic()
        with Catalogue(path, readonly=True) as reader:  # opened during the write
            assert [r.path.name for r in reader.tracks()] == [f"track{n:04d}.wav" for n in range(3)]
            assert reader.find(Path("/music/track0003.wav")) is None
            assert [r.embedding.shape for r in reader.tracks()] == [(8,)] * 3
            assert reader.stats().tracks == 3
            assert time.monotonic() - started < 5  # no waiting for the writer's lock

            assert child.stdin is not None
            child.stdin.write("\n")  # let the writer commit track 3
            child.stdin.flush()
            read_until(child, "committed 3")
            found = reader.find(Path("/music/track0003.wav"))  # the same connection sees it
            assert found is not None
            assert_complete(found)
    finally:
        kill(child)
