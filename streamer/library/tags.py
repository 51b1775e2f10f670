"""Genre, BPM and key written into the audio files' own tags (and taken back), for DJ software.

rekordbox, Serato, Traktor, Mixxx and Engine DJ read these from the file itself; each
container has its own fields:

* ID3 (MP3, and the ID3 chunk of WAV and AIFF): ``TCON``, ``TBPM``, ``TKEY``;
* Vorbis comments (FLAC, Ogg Vorbis, Opus): ``GENRE``, ``BPM``, ``INITIALKEY``;
* MP4 atoms (M4A): ``©gen``, ``tmpo``, ``----:com.apple.iTunes:initialkey`` (freeform).
  The catalogue holds no M4A track yet (libsndfile decodes neither AAC nor ALAC, so
  `streamer index` lists them as unsupported): `write-tags` reaches them when it does.

What is written
---------------
* Genre: the catalogue's top genre label, capitalised as music players list genres
  ("Rock", "Hip-Hop", "Electronic"; `genre_text`): DJ software shows the text verbatim.
* BPM: the tempo rounded to a whole number (half up), the same in every container: ID3
  defines TBPM as an integer string and MP4's ``tmpo`` is an integer, and the estimate is
  not finer than a beat per minute anyway (`bpm_text`).
* Key, in one of `KEY_FORMATS` (`key_text`): ``camelot`` ("8A", "8B": Mixed In Key's wheel,
  what rekordbox and Serato users sort by), ``open-key`` ("1m", "1d": Traktor's Open Key,
  C major is 1d and A minor 1m) or ``standard`` ("Am", "C", "F#m", "Bb": the ID3 TKEY form,
  at most three characters, ``m`` for minor, in rekordbox's spellings, those of its XML's
  ``Tonality``: Db, Eb, F#, Ab, Bb).

Lossless
--------
mutagen rewrites only the tag block (an ID3 header, a FLAC metadata block, the Ogg
comment packet, MP4's ``moov``): the audio frames are moved at most, never re-encoded. ID3
is read without conversion and saved in its own version (2.3 for a file that had none: what
every DJ program reads), so frames other than the three are left as they were.

Undo
----
Before a field is first written, the file's own value (`TagFile.get`: the frame or
comments as they are, None when absent) is kept in the catalogue (`Catalogue.
keep_original_tags`); `TagFile.restore` puts it back exactly, an absent one by removing
what streamer wrote (and an ID3 tag left empty as a whole, so that a file that had none
has none again). A value someone else changed after streamer wrote it is not overwritten
by an undo.
"""

from __future__ import annotations

import base64
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from streamer.analysis.describe import camelot
from streamer.errors import StreamerError
from streamer.library.catalogue import Catalogue, TrackRecord
from streamer.library.indexer import file_state, read_tags
from streamer.offline.rekordbox import TONALITY, genre_text

FIELDS = ("genre", "bpm", "key")
KEY_FORMATS = ("camelot", "open-key", "standard")
_FROM_STANDARD = {name.lower(): code for code, name in TONALITY.items()}
SUPPORTED = "MP3, FLAC, Ogg Vorbis, Opus, M4A, WAV or AIFF"
SUFFIXES = (".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".wav", ".aif", ".aiff")
"""The suffixes of the `SUPPORTED` formats: such a file that mutagen does not recognise is
damaged, not of another format."""


def bpm_text(tempo: float) -> str:
    """A tempo as a tag: whole beats per minute, halves rounded up (``127.5`` -> ``"128"``)."""
    return str(int(tempo + 0.5))


def key_text(key: str, *, notation: str) -> str:
    """A key (``"A minor"``, or a Camelot code) in one of `KEY_FORMATS`.

    Examples
    --------
    >>> [key_text("A minor", notation=n) for n in KEY_FORMATS]
    ['8A', '1m', 'Am']
    >>> [key_text("C# major", notation=n) for n in KEY_FORMATS]
    ['3B', '8d', 'Db']
    """
    code = camelot(key)
    if notation == "camelot":
        return code
    if notation == "open-key":
        number = (int(code[:-1]) - 8) % 12 + 1  # Camelot 8B (C major) is Open Key 1d
        return f"{number}{'m' if code[-1] == 'A' else 'd'}"
    if notation == "standard":
        return TONALITY[code]
    raise ValueError(f"unknown key notation {notation!r}: choose from {', '.join(KEY_FORMATS)}")


def camelot_of(text: str) -> str:
    """The Camelot code of a key in any notation a DJ types: ``"8A"``, ``"1m"`` (Open
    Key), ``"Am"``, ``"A minor"``; `ValueError` for anything else."""
    text = text.strip()
    open_key = re.fullmatch(r"(1[0-2]|[1-9])\s*([mdMD])", text)
    if open_key is not None:
        number = (int(open_key.group(1)) + 6) % 12 + 1
        return f"{number}{'A' if open_key.group(2).lower() == 'm' else 'B'}"
    if text.lower() in _FROM_STANDARD:
        return _FROM_STANDARD[text.lower()]
    sharp = re.fullmatch(r"([A-Ga-g][#b]?)(m?)", text)
    if sharp is not None:  # C#m, Gb: the other spelling of a standard name
        return camelot(f"{sharp.group(1)} {'minor' if sharp.group(2) else 'major'}")
    return camelot(text)


class TagFile(ABC):
    """The genre, BPM and key tags of one audio file, read and changed through mutagen.

    `get` returns a field as stored (a JSON-able form that `restore` puts back exactly,
    None when the file has none), `values` its text, `put` writes streamer's value, `save`
    writes the file. Open one with `open_tags`.
    """

    def __init__(self, path: Path, audio: Any) -> None:
        self.path = path
        self._audio = audio

    @abstractmethod
    def get(self, field: str) -> Any: ...

    @staticmethod
    @abstractmethod
    def values(stored: Any) -> list[str]:
        """The text of a stored field (what is shown, and compared)."""

    @abstractmethod
    def put(self, field: str, text: str) -> None: ...

    @abstractmethod
    def restore(self, field: str, stored: Any) -> None: ...

    def save(self) -> None:
        """Write the tags into the file; a failure is one line (`StreamerError`)."""
        import mutagen

        try:
            self._save()
        except (OSError, mutagen.MutagenError) as error:
            raise StreamerError(f"{self.path}: cannot write its tags ({_why(error)})") from None

    def _save(self) -> None:
        self._audio.save()


class _ID3File(TagFile):
    FRAMES: ClassVar[dict[str, str]] = {"genre": "TCON", "bpm": "TBPM", "key": "TKEY"}

    def __init__(self, path: Path, audio: Any) -> None:
        super().__init__(path, audio)
        if audio.tags is None:
            audio.add_tags()
            self._version = 3  # a new tag: v2.3, which every DJ program reads
        else:
            self._version = 4 if audio.tags.version >= (2, 4, 0) else 3
            if audio.tags.version < (2, 3, 0):
                audio.tags.update_to_v23()  # mutagen cannot write v2.2

    def get(self, field: str) -> Any:
        frame = self._audio.tags.get(self.FRAMES[field])
        if frame is None:
            return None
        return {"encoding": int(frame.encoding), "text": [str(text) for text in frame.text]}

    @staticmethod
    def values(stored: Any) -> list[str]:
        return [] if stored is None else list(stored["text"])

    def put(self, field: str, text: str) -> None:
        self._set(field, {"encoding": self._encoding(text), "text": [text]})

    def restore(self, field: str, stored: Any) -> None:
        if stored is None:
            self._audio.tags.delall(self.FRAMES[field])
        else:
            self._set(field, stored)

    def _set(self, field: str, stored: dict[str, Any]) -> None:
        from mutagen import id3

        frame_id = self.FRAMES[field]
        frame = getattr(id3, frame_id)(encoding=stored["encoding"], text=list(stored["text"]))
        self._audio.tags.setall(frame_id, [frame])

    def _encoding(self, text: str) -> int:
        """Latin-1 where it suffices (the widest support), else UTF-8 (v2.4) or UTF-16."""
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            return 3 if self._version == 4 else 1
        return 0

    def _save(self) -> None:
        if not self._audio.tags:  # all that was in it put back to absent: no empty tag left
            self._audio.delete()
        else:
            self._audio.save(v2_version=self._version)


class _VorbisFile(TagFile):
    NAMES: ClassVar[dict[str, str]] = {"genre": "GENRE", "bpm": "BPM", "key": "INITIALKEY"}

    def __init__(self, path: Path, audio: Any) -> None:
        super().__init__(path, audio)
        if audio.tags is None:
            audio.add_tags()  # a FLAC file without a comment block

    def get(self, field: str) -> Any:
        name = self.NAMES[field].lower()
        pairs = [[key, value] for key, value in self._audio.tags if key.lower() == name]
        return pairs or None  # each name's own spelling, each value: restored exactly

    @staticmethod
    def values(stored: Any) -> list[str]:
        return [] if stored is None else [value for _, value in stored]

    def put(self, field: str, text: str) -> None:
        self._audio.tags[self.NAMES[field]] = [text]  # replaces every spelling of the name

    def restore(self, field: str, stored: Any) -> None:
        name = self.NAMES[field]
        if name in self._audio.tags:
            del self._audio.tags[name]
        self._audio.tags.extend((key, value) for key, value in stored or ())


class _MP4File(TagFile):
    ATOMS: ClassVar[dict[str, str]] = {
        "genre": "\xa9gen",
        "bpm": "tmpo",
        "key": "----:com.apple.iTunes:initialkey",
    }

    def __init__(self, path: Path, audio: Any) -> None:
        super().__init__(path, audio)
        if audio.tags is None:
            audio.add_tags()

    def get(self, field: str) -> Any:
        values = self._audio.tags.get(self.ATOMS[field])
        if values is None:
            return None
        if field == "key":  # freeform: bytes and their data type
            return [
                {"data": base64.b64encode(bytes(v)).decode(), "format": int(v.dataformat)}
                for v in values
            ]
        return [int(v) if field == "bpm" else str(v) for v in values]

    @staticmethod
    def values(stored: Any) -> list[str]:
        if stored is None:
            return []
        return [
            base64.b64decode(v["data"]).decode("utf-8", "replace")
            if isinstance(v, dict)
            else str(v)
            for v in stored
        ]

    def put(self, field: str, text: str) -> None:
        if field == "key":
            self.restore(field, [{"data": base64.b64encode(text.encode()).decode(), "format": 1}])
        else:
            self.restore(field, [int(text)] if field == "bpm" else [text])

    def restore(self, field: str, stored: Any) -> None:
        from mutagen.mp4 import MP4FreeForm

        atom = self.ATOMS[field]
        if stored is None:
            self._audio.tags.pop(atom, None)
        elif field == "key":
            self._audio.tags[atom] = [
                MP4FreeForm(base64.b64decode(v["data"]), dataformat=v["format"])  # type: ignore[no-untyped-call]
                for v in stored
            ]
        else:
            self._audio.tags[atom] = list(stored)


def open_tags(path: Path) -> TagFile:
    """The tags of the audio file at `path`; a file that cannot hold them (unsupported
    format, damaged, unreadable) is one line (`StreamerError`)."""
    import mutagen
    from mutagen.aiff import AIFF
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE

    kinds: dict[type[Any], type[TagFile]] = {
        MP3: _ID3File, WAVE: _ID3File, AIFF: _ID3File, FLAC: _VorbisFile, OggVorbis: _VorbisFile,
        OggOpus: _VorbisFile, MP4: _MP4File,
    }  # fmt: skip
    try:
        found = mutagen.File(path, options=list(kinds))
        if found is None and path.suffix.lower() in SUFFIXES:
            raise StreamerError(
                f"{path}: cannot read its tags (not a readable {path.suffix} file: damaged?); "
                "skipped"
            )
        if found is None:
            raise StreamerError(
                f"{path}: not a format whose tags streamer writes: {SUPPORTED}; skipped"
            )
        kind = kinds[type(found)]
        if kind is _ID3File:  # again, with ID3 as the file has it (no conversion)
            found = type(found)(path, translate=False)
        return kind(path, found)
    except (OSError, mutagen.MutagenError) as error:
        raise StreamerError(f"{path}: cannot read its tags ({_why(error)}); skipped") from None


def _why(error: Exception) -> str:
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error)


# --- a catalogue track's file ---------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One field of one file: its text now, and what it becomes."""

    field: str
    old: list[str]
    new: list[str]


def wanted_tags(record: TrackRecord, *, fields: Iterable[str], notation: str) -> dict[str, str]:
    """What streamer writes for `fields` of a track; a track with no music has nothing."""
    wanted = {}
    for field in fields:
        if field == "genre" and record.genre is not None:
            wanted[field] = genre_text(record.genre)
        elif field == "bpm" and record.tempo is not None:
            wanted[field] = bpm_text(record.tempo)
        elif field == "key" and record.key is not None:
            wanted[field] = key_text(record.key, notation=notation)
    return wanted


def write_tags(
    catalogue: Catalogue,
    record: TrackRecord,
    *,
    fields: Iterable[str],
    notation: str = "camelot",
    dry_run: bool = False,
) -> list[Change]:
    """Write the catalogue's values of `fields` into the track's file (the fields that
    differ; the originals kept first); with `dry_run`, only say what would change.
    `StreamerError` for a file that cannot be read or written."""
    assert record.id is not None  # read from the catalogue
    wanted = wanted_tags(record, fields=fields, notation=notation)
    state = file_state(record.path)
    tags = open_tags(record.path)
    olds = {field: tags.get(field) for field in wanted}
    changes = [
        Change(field, tags.values(olds[field]), [text])
        for field, text in wanted.items()
        if tags.values(olds[field]) != [text]
    ]
    if dry_run or not changes:
        return changes
    catalogue.keep_original_tags(
        record.id, {change.field: olds[change.field] for change in changes}
    )
    for change in changes:
        tags.put(change.field, change.new[0])
    try:
        tags.save()
    except StreamerError:
        catalogue.forget_unsaved_tags(record.id)  # nothing was written: nothing to undo
        raise
    _saved(catalogue, record, state, {change.field: tags.get(change.field) for change in changes})
    return changes


def undo_tags(
    catalogue: Catalogue,
    record: TrackRecord,
    *,
    fields: Iterable[str],
    dry_run: bool = False,
) -> tuple[list[Change], list[Change]]:
    """Put back the original tags of `fields` that streamer wrote into the track's file.

    Returns the changes made (with `dry_run`: that would be made) and the fields left as
    they are because their value is neither streamer's nor the original (changed by
    another program since: that value stands, and the original is forgotten).
    """
    assert record.id is not None  # read from the catalogue
    written_tags = catalogue.written_tags(record.id)
    kept = {
        field: written_tags[field] for field in FIELDS if field in fields and field in written_tags
    }
    if not kept:
        return [], []
    state = file_state(record.path)
    tags = open_tags(record.path)
    changes, foreign = [], []
    for field, written in kept.items():
        now, original = tags.values(tags.get(field)), tags.values(written.original)
        change = Change(field, now, original)
        if written.written is not None and now not in (tags.values(written.written), original):
            foreign.append(change)
        else:
            changes.append(change)
    if dry_run:
        return changes, foreign
    if foreign:
        catalogue.forget_written_tags(record.id, [change.field for change in foreign])
    if changes:
        for change in changes:
            tags.restore(change.field, kept[change.field].original)
        tags.save()
        _saved(catalogue, record, state, dict.fromkeys(change.field for change in changes))
    return changes, foreign


def _saved(
    catalogue: Catalogue, record: TrackRecord, state: tuple[int, int], written: dict[str, Any]
) -> None:
    """Tell the catalogue the file was saved. Its new size and time are recorded (so the
    next index does not decode it again) only if the file was as indexed before streamer
    wrote it: a file changed otherwise is analysed again, as it should be."""
    assert record.id is not None
    unchanged = state == (record.size, record.mtime_ns)
    catalogue.tags_saved(
        record.id,
        written=written,
        state=file_state(record.path) if unchanged else None,
        tags=read_tags(record.path) if unchanged else {},
    )
