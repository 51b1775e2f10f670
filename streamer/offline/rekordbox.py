"""rekordbox XML: the library as a rekordbox collection, and a tagged set as one track.

rekordbox (File > Import > rekordbox xml, or the "rekordbox xml" view of its preferences)
and the tools that read its format (Lexicon, Mixxx's importers, pyrekordbox) take a
``DJ_PLAYLISTS`` document: a ``PRODUCT``, a ``COLLECTION`` of ``TRACK`` elements and a
``PLAYLISTS`` tree (here only its empty ``ROOT``, which readers require). Pioneer's "xml
format list" names the attributes written here:

- ``Location``: a file URI as rekordbox writes it, ``file://localhost`` followed by the
  absolute path, percent-encoded as UTF-8 (``file://localhost/Users/dj/My%20Set.mp3``;
  ``file://localhost/C:/...`` on Windows); the essential attribute: rekordbox finds the
  audio by it.
- ``Name``, ``Artist``, ``Album`` from the file's tags (``Name`` falls back to the file
  name without its suffix); ``Genre``: the model's top genre over the track's music,
  spelled as music players list genres ("Classical", "Hip-Hop": `genre_text`), as
  ``streamer library write-tags`` writes it into the files, so the two never disagree.
- ``AverageBpm`` (two decimals) and ``Tonality`` in rekordbox's classic notation (``Am``,
  ``F#m``, ``Db``; the spellings of the Camelot chart: ``Dbm``, not ``C#m``), from
  streamer's estimates; left out when unknown.
- ``TotalTime``: whole seconds (rounded); ``Kind`` (``MP3 File``, ``WAV File``, ...; left out
  for formats rekordbox does not play), ``Size`` in bytes and ``SampleRate`` in Hz where
  known; ``DateAdded`` (``yyyy-mm-dd``) when the library indexed the file.
- ``Comments``: the genre mixture, so that a DJ sees how sure the genre is
  (``streamer: House 72%, Techno 21%``).

A set (`set_document`, the ``rekordbox-xml`` export of `streamer tag`) is the recording as
one ``TRACK`` with a memory cue (``POSITION_MARK Type="0" Num="-1"``, ``Start`` in seconds
to the millisecond) at the start of each of its tracks, named as the CUE sheet names
them: the recognised library track ("Artist - Title") or the genre (spelled as the
``Genre``, "House"), or the state ("silence", "not-music"). There are at
most `MAX_MEMORY_CUES`, as in a CUE sheet: a set with more segments has them merged as
`streamer.offline.exports.cue_tracks` merges them (the shortest go first, long tracks keep
their exact starts). The first cue is at 0. The whole tracklist is kept on purpose: a
player that shows fewer memory points per track (older CDJs are said to keep ten; no
source was found here) shows the first ones, while a cap of ten would merge the tracks of
every set longer than ten tracks.

Characters XML 1.0 cannot hold (control characters, undecodable bytes of a file name) are
left out of the text attributes; the ``Location`` percent-encodes every byte of the path.
"""

from __future__ import annotations

import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from streamer import __version__
from streamer.analysis.describe import camelot
from streamer.files import write_output
from streamer.offline.exports import MAX_CUE_TRACKS, Timeline, audio_path, cue_tracks

if TYPE_CHECKING:
    from streamer.library.catalogue import TrackRecord

MAX_MEMORY_CUES = MAX_CUE_TRACKS
"""Memory cues of a set: as many as a CUE sheet's tracks."""
MIXTURE_IN_COMMENTS = 3  # genres named in a track's Comments, largest share first
KINDS = {
    ".mp3": "MP3 File",
    ".wav": "WAV File",
    ".aif": "AIFF File",
    ".aiff": "AIFF File",
    ".flac": "FLAC File",
    ".m4a": "M4A File",
    ".mp4": "M4A File",
    ".aac": "AAC File",
}
"""``Kind`` by file suffix: the formats rekordbox plays."""
TONALITY = {
    "1A": "Abm", "2A": "Ebm", "3A": "Bbm", "4A": "Fm", "5A": "Cm", "6A": "Gm",
    "7A": "Dm", "8A": "Am", "9A": "Em", "10A": "Bm", "11A": "F#m", "12A": "Dbm",
    "1B": "B", "2B": "F#", "3B": "Db", "4B": "Ab", "5B": "Eb", "6B": "Bb",
    "7B": "F", "8B": "C", "9B": "G", "10B": "D", "11B": "A", "12B": "E",
}  # fmt: skip
"""rekordbox's classic key names by Camelot code."""
_SPELLINGS = {"hiphop": "Hip-Hop", "rnb": "R&B", "edm": "EDM", "dnb": "Drum & Bass"}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def location(path: Path) -> str:
    """The ``Location`` URI of a file, as rekordbox writes it.

    >>> location(Path("/music/Björk & co/01 Jóga.flac"))
    'file://localhost/music/Bj%C3%B6rk%20%26%20co/01%20J%C3%B3ga.flac'
    """
    return "file://localhost" + Path(path).absolute().as_uri().removeprefix("file://")


def genre_text(label: str) -> str:
    """A model's genre label as DJ software lists genres: ``"hiphop"`` -> ``"Hip-Hop"``,
    ``"rock"`` -> ``"Rock"``; a label with capitals already is kept as it is. The same text
    in rekordbox's ``Genre`` and in the files' own tags (`streamer.library.tags`)."""
    if label.lower() in _SPELLINGS:
        return _SPELLINGS[label.lower()]
    return label if label != label.lower() else label.title()


def tonality(key: str | None) -> str | None:
    """rekordbox's name of a key (``"A minor"`` -> ``"Am"``); None when unknown.

    >>> tonality("A minor"), tonality("C# minor"), tonality("F# major"), tonality(None)
    ('Am', 'Dbm', 'F#', None)
    """
    return None if key is None else TONALITY[camelot(key)]


def write_collection(tracks: Sequence[TrackRecord], *, path: Path) -> None:
    """Write the catalogue's `tracks` to `path` as a rekordbox collection (module notes).

    Raises `StreamerError` (one line) when `path` cannot be written; the file is written
    atomically, so an old collection is never left half replaced.
    """
    root, collection = _document()
    for number, record in enumerate(tracks, start=1):
        mixture = dict(
            zip(record.labels, np.asarray(record.probabilities, dtype=float), strict=True)
        )
        music = record.has_music
        _track(
            collection,
            track_id=record.id if record.id is not None else number,
            file=Path(record.path),
            name=record.title or Path(record.path).stem,
            artist=record.artist,
            album=record.album,
            genre=None if record.genre is None else genre_text(record.genre),
            bpm=record.tempo,
            key=record.key,
            seconds=record.duration,
            size=record.size,
            added=record.indexed_at,
            comments=_mixture_comment(mixture) if music else None,
        )
    _write(root, collection, path)


def set_document(timeline: Timeline) -> str:
    """A tagged set as a rekordbox collection of one track with a memory cue per track
    of the set (module notes)."""
    audio = audio_path(timeline)
    size = sample_rate = None
    try:
        size = audio.stat().st_size
        import soundfile

        sample_rate = soundfile.info(str(audio)).samplerate
    except (OSError, RuntimeError):
        pass  # a record's audio may be elsewhere, or in a format soundfile cannot open
    lasted: dict[str, float] = {}  # seconds of music of each genre
    for segment in timeline.segments:
        if segment.state == "music" and segment.genre is not None:
            lasted[segment.genre] = lasted.get(segment.genre, 0.0) + segment.end - segment.start
    root, collection = _document()
    track = _track(
        collection,
        track_id=1,
        file=audio,
        name=Path(timeline.source).stem,
        genre=genre_text(max(lasted, key=lasted.__getitem__)) if lasted else None,
        seconds=timeline.duration,
        size=size,
        sample_rate=sample_rate,
        comments=f"tagged by streamer {__version__}"
        + (f" with {timeline.model['name']}" if timeline.model.get("name") else ""),
    )
    genres = {
        segment.genre
        for segment in timeline.segments
        if segment.state == "music" and segment.index not in timeline.names
    }  # the cues named by a genre, not by a track or a state
    for millis, label in cue_tracks(timeline, limit=MAX_MEMORY_CUES, per_second=1000):
        genre = label.performer is None and label.title in genres
        ET.SubElement(
            track,
            "POSITION_MARK",
            Name=_text(genre_text(label.title) if genre else label.text),
            Type="0",
            Start=f"{millis / 1000:.3f}",
            Num="-1",
        )
    return _serialised(root, collection)


def _document() -> tuple[ET.Element, ET.Element]:
    root = ET.Element("DJ_PLAYLISTS", Version="1.0.0")
    ET.SubElement(root, "PRODUCT", Name="streamer", Version=__version__, Company="")
    collection = ET.SubElement(root, "COLLECTION", Entries="0")
    playlists = ET.SubElement(root, "PLAYLISTS")
    ET.SubElement(playlists, "NODE", Type="0", Name="ROOT", Count="0")
    return root, collection


def _track(
    collection: ET.Element,
    *,
    track_id: int,
    file: Path,
    name: str,
    seconds: float,
    artist: str | None = None,
    album: str | None = None,
    genre: str | None = None,
    bpm: float | None = None,
    key: str | None = None,
    size: int | None = None,
    sample_rate: int | None = None,
    added: float | None = None,
    comments: str | None = None,
) -> ET.Element:
    """One ``TRACK`` element; attributes whose value is unknown are left out."""
    attributes = {
        "TrackID": str(track_id),
        "Name": name,
        "Artist": artist,
        "Album": album,
        "Genre": genre,
        "Kind": KINDS.get(file.suffix.lower()),
        "Size": None if size is None else str(size),
        "TotalTime": str(round(seconds)),
        "AverageBpm": None if bpm is None or not math.isfinite(bpm) else f"{bpm:.2f}",
        "DateAdded": None if added is None else time.strftime("%Y-%m-%d", time.localtime(added)),
        "SampleRate": None if sample_rate is None else str(sample_rate),
        "Comments": comments,
        "Location": location(file),
        "Tonality": tonality(key),
    }
    return ET.SubElement(
        collection,
        "TRACK",
        {field: _text(value) for field, value in attributes.items() if value is not None},
    )


def _mixture_comment(mixture: dict[str, float]) -> str:
    top = sorted(mixture.items(), key=lambda item: -item[1])[:MIXTURE_IN_COMMENTS]
    shares = (f"{genre_text(genre)} {share:.0%}" for genre, share in top if share > 0)
    return "streamer: " + ", ".join(shares)


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _serialised(root: ET.Element, collection: ET.Element) -> str:
    collection.set("Entries", str(len(collection)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _write(root: ET.Element, collection: ET.Element, path: Path) -> None:
    write_output(
        Path(path), _serialised(root, collection).encode("utf-8"),
        advice="choose a file in a writable folder",
    )  # fmt: skip
