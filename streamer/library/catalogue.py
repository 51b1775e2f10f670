"""The library catalogue: every analysed track of a music library, in one SQLite file.

`streamer index DIR...` writes it; `streamer recommend`, `streamer library` and the live
engine (`streamer listen --library`) read it, possibly while an index run is writing.

Why SQLite, and how it is used
------------------------------
* One file, standard library only, and crash safety for free: the journal is WAL, and
  every track is written in a transaction of its own (its row *and* its sections), so an
  index run stopped at any point (Ctrl-C, SIGKILL, power loss) keeps every finished track
  and never half of one. ``synchronous=FULL`` costs one fsync per track, nothing next to
  the seconds that analysing a track takes, and keeps the last tracks across power loss.
* WAL lets readers work while the writer writes: a reader sees the catalogue as it was at
  the last commit. Each method that reads several statements reads them in one read
  transaction, so it never sees a track without its sections. ``Catalogue(path,
  readonly=True)`` opens the file with ``mode=ro`` and never writes it.
* ``PRAGMA application_id`` marks the file as a streamer catalogue and ``PRAGMA
  user_version`` is the schema version; any other SQLite file, a file that is not SQLite,
  or a newer schema is refused with a one-line `StreamerError` (and left untouched: the
  journal mode is only switched to WAL once the file is known to be ours).

Schema (version 3)
------------------
``tracks``
    ``id INTEGER PRIMARY KEY AUTOINCREMENT`` (ids are never reused, so an id a reader
    holds names that track or none, never another one; re-indexing a path keeps its id),
    ``path TEXT UNIQUE NOT NULL`` (absolute, resolved), ``size``, ``mtime_ns`` (INTEGER,
    what the file was when analysed), ``duration REAL`` (seconds), ``title``, ``artist``,
    ``album``, ``genre_tag`` (TEXT from the file's tags, may be NULL), ``model_sha256 TEXT``
    (the ONNX file that analysed it), ``labels TEXT`` (JSON list: the model's labels in
    order), ``probabilities BLOB`` (mean genre distribution of the music hops),
    ``embedding BLOB`` (their mean CNN embedding), ``descriptors TEXT`` (JSON object),
    ``descriptor_vector BLOB``, ``key TEXT`` and ``tempo REAL`` (may be NULL), ``indexed_at
    REAL`` (Unix time). A track with no music (every hop below the silence threshold) has
    all-zero ``probabilities`` and ``embedding``, no sections, and NULL ``key`` and
    ``tempo``: no genre at all, which no real mixture can be (it sums to 1), so catalogues
    written before such tracks were recorded read the same.
    Version 2 added what musicnn's taggers (`streamer.analysis.tagger`) hear:
    ``taggers_sha256 TEXT`` (the sha256 of the taggers' ONNX files, joined, in order),
    ``tag_labels TEXT`` (JSON list, ``"msd/rock"``, ...), ``tags BLOB`` (the mean tag
    probabilities over the track's music) and ``tag_embedding BLOB`` (the mean, then the
    max, over the same patches, of the taggers' joined embeddings). All four are NULL in a
    row analysed without the taggers (every row of a version 1 file).
``sections``
    ``track_id INTEGER REFERENCES tracks ON DELETE CASCADE``, ``start REAL`` (seconds),
    ``embedding BLOB``; primary key ``(track_id, start)``, which also indexes the cascade.
    The mean embedding of each section (e.g. 30 s) of a track, for recognising a track
    from any part of it.
``failures``
    ``path TEXT UNIQUE NOT NULL``, ``size``, ``mtime_ns`` (INTEGER), ``reason TEXT``,
    ``at REAL``: files that could not be analysed, so that an unchanged failing file is
    not retried on every run, and `streamer library stats` can list them.
``written_tags`` (version 3)
    ``track_id INTEGER REFERENCES tracks ON DELETE CASCADE``, ``field TEXT`` (``genre``,
    ``bpm``, ``key``), ``original TEXT`` (JSON: the file's own tag before streamer first
    wrote this field, in the form `streamer.library.tags` reads it; NULL: the file had
    none), ``written TEXT`` (JSON: what streamer wrote last; NULL between keeping the
    original and the file being saved), ``at REAL``; primary key ``(track_id, field)``.
    What `streamer library write-tags --undo` puts back. A second write keeps the first
    original. Forgetting a track (`library remove`) forgets its originals too.

Schema changes: opening an older file for writing migrates it in place, in one
transaction (``ALTER TABLE tracks ADD COLUMN`` for each new column, NULL in the old rows,
and ``CREATE TABLE`` for each new table; then ``user_version`` is the current one).
From version 1, `streamer index` then analyses the old rows again, once, since their
taggers differ (`Catalogue.analysed_by`). Opened read only, an older file is read as it
is: the new fields None, no written tags.

A path is in at most one of ``tracks`` and ``failures``. Vectors are raw little-endian
float32 (``np.asarray(x, '<f4').tobytes()``). Foreign keys are on for every connection.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamer.errors import StreamerError
from streamer.files import default_catalogue_path

__all__ = [
    "NO_MUSIC",
    "SCHEMA_VERSION",
    "Catalogue",
    "CatalogueStats",
    "Failure",
    "TrackRecord",
    "WrittenTag",
    "default_catalogue_path",
    "has_music",
]

SCHEMA_VERSION = 3
APPLICATION_ID = int.from_bytes(b"Strm", "big")  # PRAGMA application_id: "this is ours"
BUSY_SECONDS = 30.0  # how long a write waits for another writer (a second `streamer index`)
NO_MUSIC = "no music"  # what `CatalogueStats.by_genre` counts the silent tracks as


def has_music(probabilities: np.ndarray) -> bool:
    """Whether a track's stored genre mixture is one: all zero means no music hop."""
    return bool(np.any(np.asarray(probabilities) > 0))


_WRITTEN_TAGS = """CREATE TABLE written_tags (
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    original TEXT,
    written TEXT,
    at REAL NOT NULL,
    PRIMARY KEY (track_id, field)
)"""
_SCHEMA = f"""
CREATE TABLE tracks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT UNIQUE NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    duration REAL NOT NULL,
    title TEXT,
    artist TEXT,
    album TEXT,
    genre_tag TEXT,
    model_sha256 TEXT NOT NULL,
    labels TEXT NOT NULL,
    probabilities BLOB NOT NULL,
    embedding BLOB NOT NULL,
    descriptors TEXT NOT NULL,
    descriptor_vector BLOB NOT NULL,
    "key" TEXT,
    tempo REAL,
    indexed_at REAL NOT NULL,
    taggers_sha256 TEXT,
    tag_labels TEXT,
    tags BLOB,
    tag_embedding BLOB
);
CREATE TABLE sections (
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    start REAL NOT NULL,
    embedding BLOB NOT NULL,
    PRIMARY KEY (track_id, start)
);
CREATE TABLE failures (
    path TEXT UNIQUE NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
{_WRITTEN_TAGS};
"""

# The columns of `tracks` after `id`, in the order of `_track_values`.
_COLUMNS = (
    "path", "size", "mtime_ns", "duration", "title", "artist", "album", "genre_tag",
    "model_sha256", "labels", "probabilities", "embedding", "descriptors",
    "descriptor_vector", "key", "tempo", "indexed_at",
    "taggers_sha256", "tag_labels", "tags", "tag_embedding",
)  # fmt: skip
_NAMES = ", ".join(f'"{name}"' for name in _COLUMNS)
_ADDED = {2: ("taggers_sha256 TEXT", "tag_labels TEXT", "tags BLOB", "tag_embedding BLOB")}
"""The columns each schema version added to ``tracks``: what migrating to it adds."""
_CREATED = {3: (_WRITTEN_TAGS,)}
"""The tables each schema version added: what migrating to it creates."""


@dataclass(kw_only=True, eq=False)
class TrackRecord:
    """One analysed track, as `Catalogue.put_track` takes it and the readers return it.

    Vectors are 1-D float32 arrays (others are converted when stored). The tagger fields
    (``taggers_sha256``, ``tag_labels``, ``tags``, ``tag_embedding``) are all given or all
    None (a track analysed without the taggers, or read from a version 1 catalogue).
    ``sections`` holds ``(start seconds, embedding)`` pairs in order of start; it is None
    in a record read without its sections, which `Catalogue.put_track` refuses (it would
    drop them).
    ``id`` is the catalogue's id, None in a record not yet stored. ``eq=False``: records
    compare by identity, as numpy arrays have no single truth value.
    """

    path: Path
    size: int
    mtime_ns: int
    duration: float
    model_sha256: str
    labels: list[str]
    probabilities: np.ndarray
    embedding: np.ndarray
    descriptors: dict[str, Any]
    descriptor_vector: np.ndarray
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genre_tag: str | None = None
    key: str | None = None
    tempo: float | None = None
    indexed_at: float = field(default_factory=time.time)
    taggers_sha256: str | None = None
    tag_labels: list[str] | None = None
    tags: np.ndarray | None = None
    tag_embedding: np.ndarray | None = None
    sections: list[tuple[float, np.ndarray]] | None = field(default_factory=list)
    id: int | None = None

    @property
    def has_music(self) -> bool:
        """False for a track with no music hop: its genre mixture is all zero (see the
        schema in the module notes)."""
        return has_music(self.probabilities)

    @property
    def genre(self) -> str | None:
        """The top genre of the track's mixture; None for a track with no music."""
        return self.labels[int(np.argmax(self.probabilities))] if self.has_music else None


@dataclass(frozen=True)
class WrittenTag:
    """One field streamer wrote into a file: the file's own value before (None: it had
    none) and what streamer wrote (None: not known to be saved), in the JSON forms of
    `streamer.library.tags`."""

    original: Any
    written: Any


@dataclass(frozen=True)
class Failure:
    """A file that could not be analysed, and why."""

    path: Path
    reason: str
    at: float


@dataclass(frozen=True)
class CatalogueStats:
    """Counts for `streamer library stats`; each dict is ordered by count, largest first.

    ``by_genre`` counts the model's top label of each track, and under `NO_MUSIC` the
    tracks with no music (silent throughout); ``by_genre_tag`` the genre
    tags of the files (untagged files are not counted); ``models`` the tracks of each
    model file (by sha256): more than one means some tracks need indexing again.
    """

    tracks: int
    failures: int
    total_seconds: float
    by_genre: dict[str, int]
    by_genre_tag: dict[str, int]
    models: dict[str, int]


class Catalogue:
    """A catalogue file, open for reading and writing or read only; a context manager.

    Paths given to any method are made absolute and resolved (symbolic links followed),
    as the stored ones are, so the same file always has the same key.

    Parameters
    ----------
    path : str or Path
        The SQLite file. Opened for writing, it is created with its parent folders if
        missing; read only, it must exist.
    readonly : bool
        Open with ``mode=ro``: never writes, works while another process writes. The
        writing methods raise `ValueError`.

    Raises
    ------
    StreamerError
        The file is not a streamer catalogue (not SQLite, another program's database, a
        newer schema), cannot be created, or (read only) does not exist.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()  # one connection, usable from any thread in turn
        self._db = self._open()
        present = {row[1] for row in self._db.execute("PRAGMA table_info(tracks)")}
        self._read_as = {
            name: f'"{name}"' if name in present else f'NULL AS "{name}"' for name in _COLUMNS
        }
        """Each of `_COLUMNS` as a SELECT reads it: NULL for those a read-only older file
        lacks."""
        self._select = ", ".join(self._read_as.values())
        self._has_written_tags = bool(
            self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'written_tags'"
            ).fetchone()
        )
        """False only in an older file opened read only (see the module notes)."""

    # --- opening ------------------------------------------------------------------------

    def _not_ours(self, reason: str) -> StreamerError:
        return StreamerError(
            f"{self.path}: not a streamer catalogue ({reason}); "
            "index again into a new file with --db"
        )

    def _missing(self) -> StreamerError:
        return StreamerError(
            f"{self.path}: no catalogue here; run `streamer index DIR --db {self.path}` first"
        )

    def _open(self) -> sqlite3.Connection:
        if self.readonly:
            if not self.path.is_file():
                raise self._missing()
            target, uri = self.path.resolve().as_uri() + "?mode=ro", True
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StreamerError(
                    f"{self.path}: cannot create its folder ({error.strerror}); "
                    "give --db a path you can write"
                ) from None
            target, uri = str(self.path), False
        try:
            db = sqlite3.connect(
                target,
                uri=uri,
                timeout=BUSY_SECONDS,
                isolation_level=None,  # transactions are explicit (BEGIN ... COMMIT)
                check_same_thread=False,  # guarded by self._lock instead
            )
        except sqlite3.Error as error:
            raise StreamerError(f"{self.path}: cannot open the catalogue ({error})") from None
        try:
            self._prepare(db)
        except BaseException as error:
            db.close()
            if isinstance(error, sqlite3.OperationalError):
                raise StreamerError(f"{self.path}: cannot open the catalogue ({error})") from None
            if isinstance(error, sqlite3.DatabaseError):  # "file is not a database", ...
                raise self._not_ours(str(error)) from None
            raise
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Check the file is ours (creating the schema in a new one), then set it up."""
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        if self._is_new(db):
            if self.readonly:
                raise self._missing()
        else:
            self._check(db)
        if self.readonly:
            return
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StreamerError(
                f"{self.path}: SQLite cannot use its WAL journal on this file system "
                f"(journal mode {mode}); give --db a path on a local disk"
            )
        db.execute("PRAGMA synchronous = FULL")
        db.execute("BEGIN IMMEDIATE")  # two processes creating it at once: one wins
        try:
            if self._is_new(db):
                for statement in _SCHEMA.split(";"):  # not executescript: it would COMMIT
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            else:
                self._check(db)
                self._migrate(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    @staticmethod
    def _is_new(db: sqlite3.Connection) -> bool:
        """An empty SQLite file (or none yet): nothing in it, no marks."""
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        objects = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        return bool(application_id == 0 and version == 0 and objects == 0)

    def _check(self, db: sqlite3.Connection) -> None:
        if db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            raise self._not_ours("a SQLite database of another program")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise self._not_ours(
                f"schema version {version}, newer than the {SCHEMA_VERSION} this streamer reads"
            )
        if version < 1:
            raise self._not_ours(f"unknown schema version {version}")

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Bring a checked older schema up to `SCHEMA_VERSION`, inside the caller's
        transaction (see the module notes)."""
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for column in _ADDED.get(target, ()):
                db.execute(f"ALTER TABLE tracks ADD COLUMN {column}")
            for table in _CREATED.get(target, ()):
                db.execute(table)
            db.execute(f"PRAGMA user_version = {target}")

    # --- transactions -------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or none of it (even on Ctrl-C)."""
        if self.readonly:
            raise ValueError(f"{self.path}: the catalogue is open read-only")
        db = self._db
        with self._lock:
            try:
                db.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as error:
                raise self._write_error(error) from None

    def _write_error(self, error: sqlite3.OperationalError) -> Exception:
        """The user-fixable write failures as `StreamerError`; anything else unchanged."""
        message = str(error)
        if "locked" in message or "busy" in message:
            return StreamerError(
                f"{self.path}: the catalogue is busy (another process has been writing it "
                f"for {BUSY_SECONDS:.0f} s); try again when it has finished"
            )
        if "full" in message or "I/O error" in message or "readonly" in message:
            return StreamerError(f"{self.path}: cannot write the catalogue ({message})")
        return error

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: its statements all see the same commit (nested: the
        enclosing one)."""
        db = self._db
        with self._lock:
            if db.in_transaction:
                yield db
                return
            db.execute("BEGIN")
            try:
                yield db
            finally:
                if db.in_transaction:
                    db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- writing ------------------------------------------------------------------------

    def put_track(self, record: TrackRecord) -> int:
        """Store `record` in one transaction and return its track id.

        A track already at the same path is replaced, keeping its id, with its sections;
        a failure recorded for the path is removed.

        Raises
        ------
        ValueError
            The record is inconsistent (vectors not 1-D, probabilities not one per label,
            sections not loaded or with repeated starts, duration not finite).
        """
        if record.sections is None:
            raise ValueError(f"{record.path}: record read without its sections; read it whole")
        values = _track_values(record)
        path = values[0]
        sections = [(float(start), _blob(_vector(e, "section"))) for start, e in record.sections]
        if len({start for start, _ in sections}) != len(sections):
            raise ValueError(f"{record.path}: two sections start at the same time")
        with self._write() as db:
            db.execute("DELETE FROM failures WHERE path = ?", (path,))
            row = db.execute("SELECT id FROM tracks WHERE path = ?", (path,)).fetchone()
            if row is None:
                marks = ", ".join("?" * len(_COLUMNS))
                cursor = db.execute(f"INSERT INTO tracks ({_NAMES}) VALUES ({marks})", values)
                assert cursor.lastrowid is not None  # set by every INSERT
                track_id = cursor.lastrowid
            else:
                track_id = int(row[0])
                assignments = ", ".join(f'"{name}" = ?' for name in _COLUMNS)
                db.execute(f"UPDATE tracks SET {assignments} WHERE id = ?", (*values, track_id))
                db.execute("DELETE FROM sections WHERE track_id = ?", (track_id,))
            db.executemany(
                "INSERT INTO sections (track_id, start, embedding) VALUES (?, ?, ?)",
                [(track_id, start, blob) for start, blob in sections],
            )
        return track_id

    def put_failure(self, path: Path, *, size: int, mtime_ns: int, reason: str) -> None:
        """Record that the file at `path` (as it was: `size`, `mtime_ns`) could not be
        analysed; a track recorded for the path is removed, as it no longer describes it."""
        key = _key(path)
        with self._write() as db:
            db.execute("DELETE FROM tracks WHERE path = ?", (key,))
            db.execute(
                "INSERT INTO failures (path, size, mtime_ns, reason, at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (path) DO UPDATE SET size = excluded.size,"
                " mtime_ns = excluded.mtime_ns, reason = excluded.reason, at = excluded.at",
                (key, int(size), int(mtime_ns), str(reason), time.time()),
            )

    def move(self, old: Path, new: Path) -> bool:
        """Give the track or failure at `old` the path `new` (a file moved or renamed),
        keeping its analysis and id; whatever was recorded at `new` is replaced. Returns
        whether anything was recorded at `old`."""
        old_key, new_key = _key(old), _key(new)
        if old_key == new_key:
            return self.state(old) is not None
        with self._write() as db:
            moved = 0
            for table in ("tracks", "failures"):
                if db.execute(f"SELECT 1 FROM {table} WHERE path = ?", (old_key,)).fetchone():
                    db.execute("DELETE FROM tracks WHERE path = ?", (new_key,))
                    db.execute("DELETE FROM failures WHERE path = ?", (new_key,))
                    cursor = db.execute(
                        f"UPDATE {table} SET path = ? WHERE path = ?", (new_key, old_key)
                    )
                    moved += cursor.rowcount
        return moved > 0

    def remove(self, paths: Iterable[Path]) -> int:
        """Remove the tracks (with their sections) and failures at `paths`, in one
        transaction; returns how many entries were removed."""
        keys = [(_key(path),) for path in paths]
        removed = 0
        with self._write() as db:
            for table in ("tracks", "failures"):
                for key in keys:
                    removed += db.execute(f"DELETE FROM {table} WHERE path = ?", key).rowcount
        return removed

    def remove_under(self, folder: Path) -> int:
        """Remove everything at `folder` or inside it (``/m/a`` holds ``/m/a/x.wav``, not
        ``/m/ab/x.wav``), in one transaction; returns how many entries were removed."""
        where, parameters = _under(folder)
        removed = 0
        with self._write() as db:
            for table in ("tracks", "failures"):
                removed += db.execute(f"DELETE FROM {table} WHERE {where}", parameters).rowcount
        return removed

    def keep_original_tags(self, track_id: int, originals: dict[str, Any]) -> None:
        """Keep the file's own tags (`originals`: field -> its JSON form, None for
        absent) before streamer writes over them; a field kept before keeps its first
        original, so an undo goes back to the file as it was before any write."""
        with self._write() as db:
            db.executemany(
                "INSERT INTO written_tags (track_id, field, original, written, at)"
                " VALUES (?, ?, ?, NULL, ?) ON CONFLICT (track_id, field) DO NOTHING",
                [
                    (int(track_id), field, _json_or_null(value), time.time())
                    for field, value in originals.items()
                ],
            )

    def tags_saved(
        self,
        track_id: int,
        *,
        written: dict[str, Any],
        state: tuple[int, int] | None,
        tags: dict[str, str],
    ) -> None:
        """Record, in one transaction, that streamer saved the track's tags: per field
        what was `written` (None: the original was put back, and is forgotten) and, with
        `state`, the file's new ``(size, mtime_ns)`` (so that `streamer index` sees it
        unchanged: its audio is) with its title, artist, album and genre `tags` as the
        file now has them. Without `state` (the file had changed before streamer wrote
        it), the track keeps its old state, and the next index analyses it again."""
        with self._write() as db:
            if state is not None:
                db.execute(
                    "UPDATE tracks SET size = ?, mtime_ns = ?, title = ?, artist = ?,"
                    " album = ?, genre_tag = ? WHERE id = ?",
                    (int(state[0]), int(state[1]), tags.get("title"), tags.get("artist"),
                     tags.get("album"), tags.get("genre"), int(track_id)),
                )  # fmt: skip
            for field, value in written.items():
                if value is None:
                    db.execute(
                        "DELETE FROM written_tags WHERE track_id = ? AND field = ?",
                        (int(track_id), field),
                    )
                else:
                    db.execute(
                        "UPDATE written_tags SET written = ?, at = ?"
                        " WHERE track_id = ? AND field = ?",
                        (json.dumps(value), time.time(), int(track_id), field),
                    )

    def forget_written_tags(self, track_id: int, fields: Iterable[str]) -> None:
        """Forget what was kept of these fields (the file's tag was changed by someone
        else since streamer wrote it: that value stands)."""
        with self._write() as db:
            db.executemany(
                "DELETE FROM written_tags WHERE track_id = ? AND field = ?",
                [(int(track_id), field) for field in fields],
            )

    def forget_unsaved_tags(self, track_id: int) -> None:
        """Forget the originals kept for a write that did not happen (the file could not
        be saved): those whose written value is still unknown."""
        with self._write() as db:
            db.execute(
                "DELETE FROM written_tags WHERE track_id = ? AND written IS NULL", (int(track_id),)
            )

    # --- reading ------------------------------------------------------------------------

    def written_tags(self, track_id: int) -> dict[str, WrittenTag]:
        """The fields streamer wrote into the track's file, with the originals kept."""
        if not self._has_written_tags:
            return {}
        with self._read() as db:
            rows = db.execute(
                "SELECT field, original, written FROM written_tags WHERE track_id = ?"
                " ORDER BY field",
                (int(track_id),),
            ).fetchall()
        return {
            str(row[0]): WrittenTag(
                original=None if row[1] is None else json.loads(row[1]),
                written=None if row[2] is None else json.loads(row[2]),
            )
            for row in rows
        }

    def state(self, path: Path) -> tuple[int, int] | None:
        """``(size, mtime_ns)`` of the file at `path` when it was recorded, as a track or
        as a failure; None if the catalogue does not know it. Unchanged means skip it."""
        key = _key(path)
        with self._read() as db:
            for table in ("tracks", "failures"):
                row = db.execute(
                    f"SELECT size, mtime_ns FROM {table} WHERE path = ?", (key,)
                ).fetchone()
                if row is not None:
                    return int(row[0]), int(row[1])
        return None

    def analysed_by(self, path: Path) -> tuple[str, str | None] | None:
        """The sha256 of the model and of the taggers (None: analysed without them) that
        analysed the track at `path`; None if there is no track there (unknown, or a
        failure)."""
        with self._read() as db:
            row = db.execute(
                f"SELECT model_sha256, {self._read_as['taggers_sha256']} FROM tracks"
                " WHERE path = ?",
                (_key(path),),
            ).fetchone()
        return None if row is None else (str(row[0]), row[1])

    def known_paths(self, under: Iterable[Path] | None = None) -> set[Path]:
        """The paths of all tracks and failures; with `under`, only those at or inside
        these folders (to find the files of a scanned folder that are gone)."""
        clauses = [_under(folder) for folder in under] if under is not None else [("1", [])]
        if not clauses:
            return set()
        where = " OR ".join(f"({clause})" for clause, _ in clauses)
        parameters = [value for _, values in clauses for value in values]
        found: set[Path] = set()
        with self._read() as db:
            for table in ("tracks", "failures"):
                rows = db.execute(f"SELECT path FROM {table} WHERE {where}", parameters)
                found.update(Path(row[0]) for row in rows)
        return found

    def track(self, track_id: int) -> TrackRecord | None:
        """The track with this id, with its sections; None if there is none."""
        return self._one("id", int(track_id))

    def find(self, path: Path) -> TrackRecord | None:
        """The track at `path`, with its sections; None if there is none."""
        return self._one("path", _key(path))

    def _one(self, column: str, value: object) -> TrackRecord | None:
        with self._read() as db:
            row = db.execute(
                f"SELECT id, {self._select} FROM tracks WHERE {column} = ?", (value,)
            ).fetchone()
            if row is None:
                return None
            record = _record(row)
            record.sections = self.sections(int(row["id"]))
        return record

    def sections(self, track_id: int) -> list[tuple[float, np.ndarray]]:
        """The ``(start, embedding)`` sections of a track in order of start (empty for
        an unknown id)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT start, embedding FROM sections WHERE track_id = ? ORDER BY start",
                (int(track_id),),
            ).fetchall()
        return [(float(row[0]), _array(row[1])) for row in rows]

    def tracks(self, *, sections: bool = True) -> list[TrackRecord]:
        """All tracks, ordered by id, read in one transaction.

        With ``sections=False`` their ``sections`` are None (not read): less memory and
        time for callers that only need the track vectors. Loading them costs one query
        for all tracks, not one per track.
        """
        with self._read() as db:
            records = [
                _record(row)
                for row in db.execute(f"SELECT id, {self._select} FROM tracks ORDER BY id")
            ]
            if not sections:
                for record in records:
                    record.sections = None
                return records
            by_id: dict[int, list[tuple[float, np.ndarray]]] = {}
            rows = db.execute(
                "SELECT track_id, start, embedding FROM sections ORDER BY track_id, start"
            )
            for track_id, start, blob in rows:
                by_id.setdefault(track_id, []).append((float(start), _array(blob)))
        for record in records:
            record.sections = by_id.get(record.id or 0, [])  # ids start at 1
        return records

    def failures(self) -> list[Failure]:
        """The files that could not be analysed, ordered by path."""
        with self._read() as db:
            rows = db.execute("SELECT path, reason, at FROM failures ORDER BY path").fetchall()
        return [Failure(Path(row[0]), str(row[1]), float(row[2])) for row in rows]

    def track_count(self) -> int:
        with self._read() as db:
            return int(db.execute("SELECT count(*) FROM tracks").fetchone()[0])

    def stats(self) -> CatalogueStats:
        """Counts of tracks, failures, audio time, genres and models (one snapshot)."""
        with self._read() as db:
            tracks, seconds = db.execute(
                "SELECT count(*), coalesce(sum(duration), 0.0) FROM tracks"
            ).fetchone()
            failures = db.execute("SELECT count(*) FROM failures").fetchone()[0]
            tags = db.execute(
                "SELECT genre_tag, count(*) FROM tracks WHERE genre_tag IS NOT NULL"
                " GROUP BY genre_tag"
            ).fetchall()
            models = db.execute(
                "SELECT model_sha256, count(*) FROM tracks GROUP BY model_sha256"
            ).fetchall()
            genres: Counter[str] = Counter()
            for labels, blob in db.execute("SELECT labels, probabilities FROM tracks"):
                mixture = _array(blob)
                top = json.loads(labels)[int(np.argmax(mixture))]
                genres[top if has_music(mixture) else NO_MUSIC] += 1
        return CatalogueStats(
            tracks=int(tracks),
            failures=int(failures),
            total_seconds=float(seconds),
            by_genre=_by_count(genres.items()),
            by_genre_tag=_by_count((row[0], row[1]) for row in tags),
            models=_by_count((row[0], row[1]) for row in models),
        )


# --- encoding -------------------------------------------------------------------------------


def _key(path: str | Path) -> str:
    """The stored form of a path: absolute, resolved, and text SQLite can hold."""
    key = str(Path(path).resolve())
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 in a file name (surrogate escapes)
        shown = key.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
        raise StreamerError(
            f"{shown}: the file name is not valid UTF-8, which the catalogue cannot store; "
            "rename the file"
        ) from None
    return key


def _under(folder: Path) -> tuple[str, list[str]]:
    """A WHERE clause for paths at `folder` or inside it.

    A range on the path, not LIKE: it uses the path's index, needs no escaping of ``%``
    and ``_``, and ``/m/a/`` up to (excluding) ``/m/a0`` (``0`` follows the separator)
    holds exactly the paths that start with ``/m/a/`` (so not ``/m/ab/x.wav``).
    """
    key = _key(folder)
    prefix = key if key.endswith(os.sep) else key + os.sep
    upper = prefix[:-1] + chr(ord(os.sep) + 1)
    return "path = ? OR (path >= ? AND path < ?)", [key, prefix, upper]


def _vector(values: Any, name: str) -> np.ndarray:
    vector = np.asarray(values, dtype="<f4")
    if vector.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector, not of shape {vector.shape}")
    return vector


def _blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def _array(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)  # a writable native copy


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays in descriptors become plain JSON numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in descriptors")


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _optional_float(value: float | None) -> float | None:
    """None for None and NaN (SQLite would store NaN as NULL anyway)."""
    if value is None or math.isnan(value):
        return None
    return float(value)


def _track_values(record: TrackRecord) -> tuple[Any, ...]:
    """The `_COLUMNS` values of `record`, checked and encoded."""
    labels = [str(label) for label in record.labels]
    probabilities = _vector(record.probabilities, "probabilities")
    if probabilities.size != len(labels) or not labels:
        raise ValueError(
            f"{record.path}: {probabilities.size} probabilities for {len(labels)} labels"
        )
    duration = float(record.duration)
    if not math.isfinite(duration):
        raise ValueError(f"{record.path}: duration {duration} is not finite")
    return (
        _key(record.path),
        int(record.size),
        int(record.mtime_ns),
        duration,
        record.title,
        record.artist,
        record.album,
        record.genre_tag,
        str(record.model_sha256),
        json.dumps(labels),
        _blob(probabilities),
        _blob(_vector(record.embedding, "embedding")),
        json.dumps(record.descriptors, default=_json_default),
        _blob(_vector(record.descriptor_vector, "descriptor_vector")),
        record.key,
        _optional_float(record.tempo),
        float(record.indexed_at),
        *_tagger_values(record),
    )


def _tagger_values(record: TrackRecord) -> tuple[Any, ...]:
    """The tagger columns of `record`: all four, or four NULLs."""
    given = (record.taggers_sha256, record.tag_labels, record.tags, record.tag_embedding)
    if all(value is None for value in given):
        return (None,) * 4
    if (
        record.taggers_sha256 is None
        or record.tag_labels is None
        or record.tags is None
        or record.tag_embedding is None
    ):
        raise ValueError(f"{record.path}: the tagger fields come all together or not at all")
    labels = [str(label) for label in record.tag_labels]
    tags = _vector(record.tags, "tags")

    if tags.size != len(labels) or not labels:
        raise ValueError(f"{record.path}: {tags.size} tags for {len(labels)} tag labels")
    return (
        str(record.taggers_sha256),
        json.dumps(labels),
        _blob(tags),
        _blob(_vector(record.tag_embedding, "tag_embedding")),
    )


def _record(row: sqlite3.Row) -> TrackRecord:
    """A record from a ``SELECT id, <_COLUMNS>`` row; its sections are for the caller."""
    return TrackRecord(
        id=int(row["id"]),
        path=Path(row["path"]),
        size=int(row["size"]),
        mtime_ns=int(row["mtime_ns"]),
        duration=float(row["duration"]),
        title=row["title"],
        artist=row["artist"],
        album=row["album"],
        genre_tag=row["genre_tag"],
        model_sha256=row["model_sha256"],
        labels=list(json.loads(row["labels"])),
        probabilities=_array(row["probabilities"]),
        embedding=_array(row["embedding"]),
        descriptors=json.loads(row["descriptors"]),
        descriptor_vector=_array(row["descriptor_vector"]),
        key=row["key"],
        tempo=None if row["tempo"] is None else float(row["tempo"]),
        indexed_at=float(row["indexed_at"]),
        taggers_sha256=row["taggers_sha256"],
        tag_labels=None if row["tag_labels"] is None else list(json.loads(row["tag_labels"])),
        tags=None if row["tags"] is None else _array(row["tags"]),
        tag_embedding=None if row["tag_embedding"] is None else _array(row["tag_embedding"]),
        sections=None,
    )


def _by_count(counts: Iterable[tuple[str, int]]) -> dict[str, int]:
    return dict(sorted(((str(k), int(n)) for k, n in counts), key=lambda item: (-item[1], item[0])))
