"""rekordbox XML (`streamer.offline.rekordbox`), read back by pyrekordbox: a parser nobody
here wrote, the one DJ tools in Python use for rekordbox's collections."""

from __future__ import annotations

import dataclasses
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pyrekordbox.rbxml import RekordboxXml

from streamer.errors import StreamerError
from streamer.library.catalogue import Catalogue, TrackRecord
from streamer.offline.exports import Timeline, TrackName, export
from streamer.offline.rekordbox import MAX_MEMORY_CUES, write_collection
from streamer.segments import Segment

LABELS = ["house", "jazz", "hiphop"]


def record(path: Path, **fields: object) -> TrackRecord:
    """A catalogue record of `path` (its real size), tagged and described unless told."""
    values: dict = dict(
        path=path, size=path.stat().st_size, mtime_ns=path.stat().st_mtime_ns,
        duration=187.6, model_sha256="ab" * 32, labels=list(LABELS),
        probabilities=np.array([0.2, 0.7, 0.1], dtype=np.float32),
        embedding=np.ones(8, dtype=np.float32), descriptors={},
        descriptor_vector=np.zeros(5, dtype=np.float32), title="Jóga", artist="Björk",
        album="Homogenic", key="F# minor", tempo=121.456, indexed_at=1_712_345_999.0,
        sections=[(0.0, np.ones(8, dtype=np.float32))],
    )  # fmt: skip
    values.update(fields)
    return TrackRecord(**values)


def location_path(track: object) -> Path:
    """The path a rekordbox ``Location`` names, decoded by pyrekordbox (which drops the
    leading ``/`` of a POSIX path with ``file://localhost/``)."""
    return Path("/", track["Location"])  # type: ignore[index]


def test_the_library_round_trips_as_a_rekordbox_collection(tmp_path: Path) -> None:
    """Names, artists, albums, genres, BPM, keys, durations and the files themselves come
    back from pyrekordbox as the catalogue (a real SQLite file) holds them; an untagged
    file is named by its file name, a silent one has no genre, key or tempo."""
    music = tmp_path / "Ünïcode & spaces" / "50% #1 (it's).flac"
    music.parent.mkdir()
    music.write_bytes(b"x" * 1234)
    untagged = tmp_path / "untagged track.mp3"
    untagged.write_bytes(b"y" * 99)
    silent = tmp_path / "silence.ogg"
    silent.write_bytes(b"z")
    with Catalogue(tmp_path / "library.sqlite") as catalogue:
        catalogue.put_track(record(music))
        catalogue.put_track(record(untagged, title=None, artist=None, album=None,
                                   key="C major", tempo=98.0))  # fmt: skip
        catalogue.put_track(record(silent, probabilities=np.zeros(3, dtype=np.float32), key=None,
                                   tempo=None, sections=[]))  # fmt: skip
        tracks = catalogue.tracks()
    xml_path = tmp_path / "out" / "rekordbox.xml"
    xml_path.parent.mkdir()
    write_collection(tracks, path=xml_path)

    xml = RekordboxXml(xml_path)
    assert xml.num_tracks == 3
    found = {location_path(track): track for track in xml.get_tracks()}
    assert set(found) == {music, untagged, silent}
    joga = found[music]
    assert (joga["Name"], joga["Artist"], joga["Album"]) == ("Jóga", "Björk", "Homogenic")
    assert joga["Genre"] == "Jazz"  # as `library write-tags` writes it (`genre_text`)
    assert joga["Comments"] == "streamer: Jazz 70%, House 20%, Hip-Hop 10%"
    assert joga["AverageBpm"] == 121.46 and joga["Tonality"] == "F#m"
    assert joga["TotalTime"] == 188 and joga["Kind"] == "FLAC File" and joga["Size"] == 1234
    assert joga["DateAdded"] == time.strftime("%Y-%m-%d", time.localtime(1_712_345_999.0))
    raw = joga._element.get("Location")  # as rekordbox writes it: percent-encoded UTF-8
    assert raw.startswith("file://localhost/") and " " not in raw and "#" not in raw
    assert urllib.parse.unquote(raw.removeprefix("file://localhost")) == str(music)
    plain = found[untagged]
    assert plain["Name"] == "untagged track" and plain["Tonality"] == "C"
    assert plain["Kind"] == "MP3 File" and plain["AverageBpm"] == 98.0
    assert plain.get("Artist") is None and plain.get("Album") is None
    quiet = found[silent]
    assert [
        quiet.get(name) for name in ("Genre", "Tonality", "AverageBpm", "Comments", "Kind")
    ] == [None] * 5
    assert len({track["TrackID"] for track in xml.get_tracks()}) == 3


@pytest.mark.parametrize(
    ("key", "name"),
    [("A minor", "Am"), ("C# minor", "Dbm"), ("G# minor", "Abm"), ("D# minor", "Ebm"),
     ("A# minor", "Bbm"), ("F# major", "F#"), ("C# major", "Db"), ("G# major", "Ab"),
     ("A# major", "Bb"), ("D# major", "Eb"), ("B major", "B"), ("E minor", "Em")],
)  # fmt: skip
def test_keys_use_rekordbox_spellings(key: str, name: str, tmp_path: Path) -> None:
    """rekordbox's classic notation spells a key as the Camelot chart does."""
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"a")
    write_collection([record(audio, key=key)], path=tmp_path / "c.xml")
    (track,) = RekordboxXml(tmp_path / "c.xml").get_tracks()
    assert track["Tonality"] == name


def test_a_collection_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"a")
    with pytest.raises(StreamerError, match="cannot write") as caught:
        write_collection([record(audio)], path=tmp_path / "no" / "c.xml")
    assert "\n" not in str(caught.value)


def set_timeline(audio: Path, stretches: list[tuple[float, str | None]], end: float) -> Timeline:
    bounds = [start for start, _ in stretches] + [end]
    segments = [
        Segment(index=i, start=start, end=bounds[i + 1], genre=genre,
                state="silence" if genre is None else "music", confidence=0.8,
                mixture={} if genre is None else {genre: 0.8})
        for i, (start, genre) in enumerate(stretches)
    ]  # fmt: skip
    return Timeline(
        source=str(audio), labels=list(LABELS), duration=end, segments=segments,
        hop_seconds=0.5, times=np.zeros(0), probabilities=np.zeros((0, 3)),
        model={"name": "genre.onnx", "sha256": "ab" * 32},
    )  # fmt: skip


def test_a_tagged_set_is_one_track_with_a_memory_cue_per_track(tmp_path: Path) -> None:
    """The recording comes back as one track with its file, length and a memory cue at
    each track, named by the recognised library track or the genre."""
    audio = tmp_path / "my sets" / "Friday ☃.flac"
    audio.parent.mkdir()
    sf.write(audio, np.zeros(44100 * 2, dtype=np.float32), 44100)
    timeline = set_timeline(
        audio, [(3.0, "house"), (61.25, "jazz"), (130.0, None), (133.5, "house")], 1805.4
    )
    joga = TrackName(id=3, title="Jóga", artist="Björk", path="/m/j.flac", similarity=0.99)
    timeline = dataclasses.replace(timeline, names={1: joga})
    (path,) = export(timeline, ["rekordbox-xml"], out_dir=tmp_path / "out")
    assert path.name == "Friday ☃.rekordbox.xml"

    (track,) = RekordboxXml(path).get_tracks()
    assert location_path(track) == audio
    assert track["Name"] == "Friday ☃" and track["TotalTime"] == 1805
    assert track["Genre"] == "House"  # the most music: 3-61.25 and 133.5-1805.4
    assert track["Kind"] == "FLAC File" and track["Size"] == audio.stat().st_size
    assert track["SampleRate"] == 44100.0
    marks = [(mark["Name"], mark["Start"], mark["Type"], mark["Num"]) for mark in track.marks]
    assert marks == [
        ("House", 0.0, "cue", -1),
        ("Björk - Jóga", 61.25, "cue", -1),
        ("silence", 130.0, "cue", -1),
        ("House", 133.5, "cue", -1),
    ]


def test_a_set_of_many_tracks_keeps_at_most_the_cues_of_a_cue_sheet(tmp_path: Path) -> None:
    """Past `MAX_MEMORY_CUES` tracks, the shortest merge into the ones before them: 99
    long tracks with two blips between each pair keep exactly their 99 starts."""
    audio = tmp_path / "long.wav"
    sf.write(audio, np.zeros(100, dtype=np.float32), 8000)
    stretches: list[tuple[float, str | None]] = []
    for number in range(MAX_MEMORY_CUES):
        start = 3.0 + 160.5 * number
        stretches.append((start, "house" if number % 2 else "jazz"))
        if number < MAX_MEMORY_CUES - 1:
            stretches += [(start + 150.0, "hiphop"), (start + 155.25, "disco")]
    timeline = set_timeline(audio, stretches, 3.0 + 160.5 * MAX_MEMORY_CUES)
    (path,) = export(timeline, ["rekordbox-xml"])
    (track,) = RekordboxXml(path).get_tracks()
    assert [(mark["Name"], mark["Start"]) for mark in track.marks] == [
        ("House" if number % 2 else "Jazz", round(160.5 * number + 3.0, 3) if number else 0.0)
        for number in range(MAX_MEMORY_CUES)
    ]


def test_names_xml_cannot_hold_are_cleaned_and_the_document_parses(tmp_path: Path) -> None:
    audio = tmp_path / "set.wav"
    sf.write(audio, np.zeros(100, dtype=np.float32), 8000)
    timeline = set_timeline(audio, [(3.0, "jazz"), (40.0, "house")], 80.0)
    odd = TrackName(id=1, title='bell\x07 <&> "q"', artist="A\x00B", path="/x", similarity=1.0)
    (path,) = export(dataclasses.replace(timeline, names={1: odd}), ["rekordbox-xml"])
    (track,) = RekordboxXml(path).get_tracks()
    assert [mark["Name"] for mark in track.marks] == ["Jazz", 'AB - bell <&> "q"']
