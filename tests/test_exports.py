"""Exports and the plot of a tagged set: every format parses back to exactly what was
tagged, CUE sheets obey their limits, record files are read as written."""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from streamer.errors import StreamerError
from streamer.live.engine import SegmentRecord
from streamer.offline.exports import (
    CSV_COLUMNS,
    FORMATS,
    MAX_CUE_TRACKS,
    Timeline,
    TrackName,
    export,
    record_sessions,
    timeline_from_record,
)
from streamer.offline.plot import (
    DPI,
    HEIGHT_INCHES,
    STRIP_HEIGHT_INCHES,
    WIDTH_INCHES,
    plot_timeline,
)
from streamer.outlets import protocol
from streamer.outlets.palette import SILENCE_COLOR, genre_colors
from streamer.tracking import Segment, SmoothingConfig

LABELS = ["house", "jazz", "techno", "disco"]
MODEL = {"name": "genre.onnx", "sha256": "ab" * 32}


def segments_of(stretches: list[tuple[float, str | None]], *, end: float) -> list[Segment]:
    """Contiguous segments from ``(start, genre)``; genre None is silence. A music
    segment's mixture is its genre and another."""
    bounds = [start for start, _ in stretches] + [end]
    return [
        Segment(
            index=i,
            start=start,
            end=bounds[i + 1],
            genre=genre,
            state="silence" if genre is None else "music",
            confidence=0.5 + i / 100,
            mixture={} if genre is None else {genre: 0.5 + i / 100, "other": 0.25},
        )
        for i, (start, genre) in enumerate(stretches)
    ]


def timeline_of(
    segments: list[Segment],
    *,
    source: Path,
    duration: float | None = None,
    hop: float | None = 0.5,
    seed: int = 0,
) -> Timeline:
    """A timeline with random per-hop probabilities every `hop` seconds (none if None)."""
    duration = segments[-1].end if duration is None else duration
    times = np.arange(3.0, duration, hop) if hop else np.zeros(0)
    probabilities = np.random.default_rng(seed).dirichlet(np.ones(len(LABELS)), len(times))
    return Timeline(
        source=str(source),
        labels=list(LABELS),
        duration=duration,
        segments=segments,
        hop_seconds=hop,
        times=times,
        probabilities=probabilities.reshape(len(times), len(LABELS)),
        model=dict(MODEL) if hop else {},
    )


# A two-hour set: the first segment opens at the first hop (3 s in), starts that are
# float-noisy (59.9999), exact ties between CUE frames (125.02 s = 9376.5 frames) and
# past an hour, a silence, and the same genre before and after it.
SET_STRETCHES: list[tuple[float, str | None]] = [
    (3.0, "house"),
    (59.9999, "techno"),
    (125.02, None),
    (127.5, "techno"),
    (3599.987, "jazz"),
    (3723.5, "house"),
    (7205.5, "disco"),
]
SET_END = 7300.25


@pytest.fixture
def dj_set(tmp_path: Path) -> Timeline:
    source = tmp_path / "music" / "set.flac"
    source.parent.mkdir()
    return timeline_of(segments_of(SET_STRETCHES, end=SET_END), source=source)


def half_up_frames(seconds: float) -> int:
    """The nearest CUE frame to `seconds` as written in decimal, halves up: exact."""
    return math.floor(Fraction(repr(seconds)) * 75 + Fraction(1, 2))


def parse_cue(text: str) -> dict:
    """The fields of a CUE sheet this project writes; fails on any line it does not know."""
    sheet: dict = {"rem": {}, "tracks": []}
    for line in text.splitlines():
        words = line.strip()
        if match := re.fullmatch(r'REM (\w+) "?(.*?)"?', words):
            sheet["rem"][match[1]] = match[2]
        elif match := re.fullmatch(r'FILE "(.+)" (WAVE|MP3|AIFF)', words):
            sheet["file"] = (match[1], match[2])
        elif match := re.fullmatch(r"TRACK (\d\d) AUDIO", words):
            sheet["tracks"].append({"number": int(match[1])})
        elif match := re.fullmatch(r'(TITLE|PERFORMER) "(.*)"', words):
            target = sheet["tracks"][-1] if sheet["tracks"] else sheet
            target[match[1].lower()] = match[2]
        elif match := re.fullmatch(r"INDEX 01 (\d{2,}):([0-5]\d):(\d\d)", words):
            minutes, seconds, frames = (int(part) for part in match.groups())
            assert frames < 75
            sheet["tracks"][-1]["frame"] = (minutes * 60 + seconds) * 75 + frames
        else:
            raise AssertionError(f"unexpected CUE line {line!r}")
    return sheet


def cue_of(timeline: Timeline, tmp_path: Path) -> dict:
    (path,) = export(timeline, ["cue"], out_dir=tmp_path / "cue")
    raw = path.read_bytes()
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    return parse_cue(raw.decode("utf-8"))


def test_every_format_is_written_and_parses_back(dj_set: Timeline, tmp_path: Path) -> None:
    out = tmp_path / "exports"
    paths = export(dj_set, list(FORMATS), out_dir=out)
    assert [p.name for p in paths] == [
        "set.json", "set.csv", "set.cue", "set.labels.txt", "set.tracklist.txt",
        "set.rekordbox.xml",
    ]  # fmt: skip
    assert all(p.parent == out for p in paths)
    json_path, csv_path, cue_path, labels_path, tracklist_path, _ = paths  # xml: test_rekordbox
    segments = dj_set.segments

    document = json.loads(json_path.read_text(encoding="utf-8"))
    assert document["source"] == dj_set.source
    assert document["duration"] == SET_END
    assert document["labels"] == LABELS and document["model"] == MODEL
    assert document["hop_seconds"] == 0.5
    assert document["segments"] == [
        {
            "index": s.index,
            "start": round(s.start, 3),
            "end": round(s.end, 3),
            "genre": s.genre,
            "state": s.state,
            "confidence": round(s.confidence, 4),
            "mixture": s.mixture,
            "track": None,
        }
        for s in segments
    ]
    assert document["segments"][1]["start"] == 60.0  # 59.9999 to the millisecond
    hops = document["hops"]
    assert len(hops["times"]) == len(dj_set.times) == 14_595
    assert hops["times"] == np.round(dj_set.times, 3).tolist()
    assert hops["probabilities"] == np.round(dj_set.probabilities, 4).tolist()
    assert np.abs(np.array(hops["probabilities"]) - dj_set.probabilities).max() <= 5e-5 + 1e-12

    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row["index"] for row in rows] == [str(s.index) for s in segments]
    assert [row["start"] for row in rows] == [
        "3.000", "60.000", "125.020", "127.500", "3599.987", "3723.500", "7205.500",
    ]  # fmt: skip
    assert [row["end"] for row in rows][-1] == "7300.250"
    assert rows[0]["duration"] == "57.000"  # of the rounded times: 60.000 - 3.000
    assert [row["genre"] for row in rows] == [s.genre or "" for s in segments]
    assert rows[2]["genre"] == "" and rows[2]["state"] == "silence"
    assert [row["confidence"] for row in rows] == [f"{s.confidence:.4f}" for s in segments]
    assert [row["start_clock"] for row in rows] == [
        "0:00:03.000", "0:01:00.000", "0:02:05.020", "0:02:07.500",
        "0:59:59.987", "1:02:03.500", "2:00:05.500",
    ]  # fmt: skip
    assert {row["title"] for row in rows} == {row["artist"] for row in rows} == {""}

    sheet = parse_cue(cue_path.read_text(encoding="utf-8"))
    assert sheet["rem"]["GENERATOR"].startswith("streamer ")
    assert sheet["rem"]["MODEL"] == "genre.onnx"
    assert sheet["rem"]["MODEL_SHA256"] == MODEL["sha256"]
    assert sheet["performer"] == "streamer" and sheet["title"] == "set"
    assert sheet["file"] == ("../music/set.flac", "WAVE")  # from the --out folder
    tracks = sheet["tracks"]
    assert [t["number"] for t in tracks] == list(range(1, len(segments) + 1))
    assert [t["title"] for t in tracks] == [s.genre or "silence" for s in segments]
    assert all(t["performer"] == "streamer" for t in tracks)
    assert tracks[0]["frame"] == 0  # the first track starts the file
    assert [t["frame"] for t in tracks[1:]] == [half_up_frames(s.start) for s in segments[1:]]
    assert [t["frame"] for t in tracks[1:]] == [
        4500,  # 59.9999 s is nearer 01:00:00 than 00:59:74
        9377,  # 125.02 s is 9376.5 frames: the tie goes up
        9563,  # 127.5 s is 9562.5 frames
        269999,  # 59:59:74
        279263,
        540413,  # 120:05:38, minutes past 99
    ]

    label_lines = [line.split("\t") for line in labels_path.read_text().splitlines()]
    assert label_lines == [
        [f"{s.start:.6f}", f"{s.end:.6f}", s.genre or "silence"] for s in segments
    ]
    assert label_lines[1][0] == "59.999900"

    # silence left out, techno before and after it one line, the first line at 0:00
    assert tracklist_path.read_text().splitlines() == [
        "0:00 house",
        "0:59 techno",  # whole seconds, rounded down
        "59:59 jazz",
        "1:02:03 house",
        "2:00:05 disco",
    ]


@pytest.mark.parametrize(
    "start", [59.9999, 60.0, 0.02, 125.02, 3599.987, 3599.9999, 7205.5, 37 / 75, 6000.006]
)
def test_cue_index_is_the_nearest_frame_halves_up(start: float, tmp_path: Path) -> None:
    segments = segments_of([(3.0, "jazz"), (start, "house")], end=start + 10)
    segments[0] = Segment(0, 0.0, start, "jazz", "music", 0.9)
    tracks = cue_of(timeline_of(segments, source=tmp_path / "a.wav", hop=None), tmp_path)["tracks"]
    assert [t["frame"] for t in tracks] == [0, half_up_frames(start)]


def test_cue_file_type_follows_the_audio_file(tmp_path: Path) -> None:
    segments = segments_of([(3.0, "jazz")], end=10.0)
    for name, expected in [
        ("a.mp3", ("a.mp3", "MP3")),
        ("b.AIFF", ("b.AIFF", "AIFF")),
        ("c.ogg", ("c.ogg", "WAVE")),
        ("d.jsonl", ("d.wav", "WAVE")),  # a record file: no audio of its own
    ]:
        timeline = timeline_of(segments, source=tmp_path / name, hop=None)
        (path,) = export(timeline, ["cue"])
        assert parse_cue(path.read_text(encoding="utf-8"))["file"] == expected


@pytest.mark.parametrize(
    ("name", "out"),
    [
        ("two  spaces 'q' Über.wav", None),
        ("two  spaces 'q' Über.wav", "exports"),
        (" tab\tand trailing .flac", "deeper/still"),
        ("set.flac", "../elsewhere"),
    ],
)
def test_a_cue_sheet_names_its_audio_exactly_for_another_parser(
    name: str, out: str | None, tmp_path: Path
) -> None:
    """libcue (through pylibcue), which players and splitters use, reads the FILE line;
    the file it names, taken relative to the sheet's folder, is the audio itself."""
    import pylibcue

    audio = tmp_path / "music" / name
    audio.parent.mkdir()
    audio.write_bytes(b"the audio")
    timeline = timeline_of(segments_of([(3.0, "jazz"), (9.0, None)], end=20.0), source=audio)
    (sheet,) = export(timeline, ["cue"], out_dir=None if out is None else audio.parent / out)
    cd = pylibcue.Cd.from_str(sheet.read_text(encoding="utf-8"))
    assert len(cd) == 2 and cd[1].start == (0, 9, 0)
    named = sheet.parent / cd[0].filename
    assert named.read_bytes() == b"the audio" and named.resolve() == audio.resolve()


@pytest.mark.parametrize("name", ['Set "Live".mp3', "line\nbreak.wav"])
def test_a_name_cue_cannot_quote_is_refused_in_one_line(name: str, tmp_path: Path) -> None:
    timeline = timeline_of(segments_of([(3.0, "jazz")], end=10.0), source=tmp_path / name)
    with pytest.raises(StreamerError, match="cannot name this file") as caught:
        export(timeline, ["json", "cue"])
    assert "leave cue out of --format" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / f"{Path(name).stem}.json").exists()


def test_cue_of_more_than_99_segments_merges_the_shortest_into_the_one_before(
    tmp_path: Path,
) -> None:
    """130 segments cycling through three genres, 31 of them short (none next to
    another): each short one joins the one before it, exactly 99 tracks are left, and
    every other start is kept to the frame."""
    genres = ["house", "jazz", "techno"]
    short = set(range(3, 127, 4))  # 31 positions, never adjacent
    assert len(short) == 31
    stretches, start = [], 3.0
    for i in range(130):
        stretches.append((round(start, 3), genres[i % 3]))
        start += 5.0 + i / 7 if i in short else 60.0 + i / 3
    segments = segments_of(stretches, end=start)
    tracks = cue_of(timeline_of(segments, source=tmp_path / "long.wav", hop=None), tmp_path)[
        "tracks"
    ]
    kept = [s for s in segments if s.index not in short]
    assert len(tracks) == MAX_CUE_TRACKS == len(kept)
    assert [t["number"] for t in tracks] == list(range(1, 100))
    assert [t["title"] for t in tracks] == [s.genre for s in kept]
    assert [t["frame"] for t in tracks] == [0] + [half_up_frames(s.start) for s in kept[1:]]


def test_cue_merging_joins_neighbours_of_one_genre_and_the_first_into_the_next(
    tmp_path: Path,
) -> None:
    """A blip between two tracks of one genre makes them one track; the shortest being
    the first, the second starts at 0; a track under a frame goes whatever the count."""
    stretches = [
        (3.0, "disco"),  # 4 s from 0: the second shortest, and first
        (4.0, "house"),
        (104.0, "jazz"),
        (203.0, "techno"),  # 1 s, the shortest, between two jazz segments
        (204.0, "jazz"),
    ] + [(304.0 + 100 * i, ["house", "jazz"][i % 2]) for i in range(97)]
    segments = segments_of(stretches, end=10_004.0)
    assert len(segments) == 102
    tracks = cue_of(timeline_of(segments, source=tmp_path / "m.wav", hop=None), tmp_path)["tracks"]
    titles = [t["title"] for t in tracks]
    assert len(tracks) == MAX_CUE_TRACKS  # 102 - techno - the jazz after it - disco
    assert titles[:3] == ["house", "jazz", "house"]
    assert [t["frame"] for t in tracks[:3]] == [0, 104 * 75, 304 * 75]
    assert all(a["frame"] < b["frame"] for a, b in itertools.pairwise(tracks))
    assert all(a["title"] != b["title"] for a, b in itertools.pairwise(tracks))

    # segments of one genre in a row (a hand-made record) are one track
    twice = segments_of([(0.0, "house"), (10.0, "house"), (20.0, "jazz")], end=30.0)
    tracks = cue_of(timeline_of(twice, source=tmp_path / "h.wav", hop=None), tmp_path)["tracks"]
    assert [(t["title"], t["frame"]) for t in tracks] == [("house", 0), ("jazz", 1500)]

    # two starts within one frame (a segment of 5 ms) cannot both be tracks
    tiny = segments_of([(0.0, "house"), (10.0, "jazz"), (10.005, "techno")], end=20.0)
    tracks = cue_of(timeline_of(tiny, source=tmp_path / "t.wav", hop=None), tmp_path)["tracks"]
    assert [(t["title"], t["frame"]) for t in tracks] == [("house", 0), ("techno", 750)]


def test_cue_of_a_flickering_two_hour_set_has_at_most_99_exact_tracks(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    lengths = rng.exponential(8.0, 1500) + 0.5
    starts = np.concatenate([[3.0], 3.0 + np.cumsum(lengths[:-1])])
    genres, last = [], None
    for _ in starts:
        genre = rng.choice([g for g in LABELS if g != last])
        genres.append(str(genre))
        last = genre
    segments = segments_of(
        [(round(float(s), 3), g) for s, g in zip(starts, genres, strict=True)],
        end=float(starts[-1] + lengths[-1]),
    )
    tracks = cue_of(timeline_of(segments, source=tmp_path / "f.wav", hop=None), tmp_path)["tracks"]
    frames = [t["frame"] for t in tracks]
    assert 1 < len(tracks) <= MAX_CUE_TRACKS
    assert frames[0] == 0 and frames == sorted(set(frames))
    starts_by_frame = {half_up_frames(s.start): s for s in segments}
    for track in tracks[1:]:  # each boundary is a segment's start, to the frame
        assert starts_by_frame[track["frame"]].genre == track["title"]


@pytest.mark.parametrize(
    ("stretches", "expected"),
    [
        # a genre lasting under a second gives way to the next
        (
            [(3.0, "house"), (100.2, "techno"), (100.7, "jazz"), (200.0, "house")],
            ["0:00 house", "1:40 jazz", "3:20 house"],
        ),
        # ... and then its neighbours of one genre are one line
        ([(3.0, "house"), (100.2, "techno"), (100.7, "house")], ["0:00 house"]),
        # a set that opens in silence starts when the music does
        ([(3.0, None), (20.5, "jazz"), (3600.0, "house")], ["0:20 jazz", "1:00:00 house"]),
    ],
)
def test_tracklist_lines(
    stretches: list[tuple[float, str | None]], expected: list[str], tmp_path: Path
) -> None:
    timeline = timeline_of(segments_of(stretches, end=4000.0), source=tmp_path / "a.wav")
    (path,) = export(timeline, ["tracklist"])
    assert path.read_text(encoding="utf-8").splitlines() == expected


def test_exports_go_beside_the_source_or_into_a_new_folder(tmp_path: Path) -> None:
    source = tmp_path / "gig" / "night.wav"
    source.parent.mkdir()
    timeline = timeline_of(segments_of([(3.0, "jazz")], end=30.0), source=source)
    beside = export(timeline, ["csv", "tracklist", "csv"])
    assert beside == [source.parent / "night.csv", source.parent / "night.tracklist.txt"]
    assert all(path.is_file() for path in beside)
    out = tmp_path / "new" / "deeper"
    assert export(timeline, ["cue"], out_dir=out) == [out / "night.cue"]
    assert (out / "night.cue").is_file()
    assert sorted(p.name for p in source.parent.iterdir()) == [
        "night.csv", "night.tracklist.txt",
    ]  # fmt: skip


def test_unknown_format_lists_the_known_ones_and_writes_nothing(tmp_path: Path) -> None:
    timeline = timeline_of(segments_of([(3.0, "jazz")], end=30.0), source=tmp_path / "a.wav")
    with pytest.raises(StreamerError) as caught:
        export(timeline, ["json", "xml"], out_dir=tmp_path / "out")
    message = str(caught.value)
    assert "'xml'" in message and "\n" not in message
    for name in FORMATS:
        assert name in message
    assert not (tmp_path / "out").exists()


def test_an_export_never_replaces_its_source(tmp_path: Path) -> None:
    record = tmp_path / "set.json"
    record.write_text("precious")
    timeline = timeline_of(segments_of([(3.0, "jazz")], end=30.0), source=record, hop=None)
    with pytest.raises(StreamerError, match="would replace"):
        export(timeline, ["csv", "json"])
    assert record.read_text() == "precious" and not (tmp_path / "set.csv").exists()


def test_a_cue_sheet_needs_a_segment(tmp_path: Path) -> None:
    timeline = Timeline(
        source=str(tmp_path / "short.wav"), labels=LABELS, duration=1.0, segments=[],
        hop_seconds=0.5, times=np.zeros(0), probabilities=np.zeros((0, len(LABELS))), model={},
    )  # fmt: skip
    with pytest.raises(StreamerError, match="no segments"):
        export(timeline, ["json", "cue"])
    assert not (tmp_path / "short.json").exists()
    (path,) = export(timeline, ["tracklist"])
    assert path.read_text() == ""


# record files


def record_of(path: Path, segments: list[Segment]) -> Path:
    """A record as `streamer listen --record` writes it: updates are not recorded, but a
    reader must skip other message types anyway."""
    record = SegmentRecord(path)
    record.write({"type": "status", "time": 0.0})
    for segment in segments:
        record.write({"type": "update", "time": segment.start})
        record.write(protocol.segment_message(**segment.to_dict()))
    record.close()
    return path


def test_a_record_file_round_trips(dj_set: Timeline, tmp_path: Path) -> None:
    path = record_of(tmp_path / "live.jsonl", dj_set.segments)
    timeline = timeline_from_record(path)
    assert timeline.source == str(path)
    assert timeline.segments == [
        Segment(s.index, round(s.start, 3), round(s.end, 3), s.genre, s.state,
                round(s.confidence, 4), s.mixture)
        for s in dj_set.segments
    ]  # fmt: skip
    assert timeline.labels == ["disco", "house", "jazz", "techno"]  # seen, sorted
    assert timeline.duration == SET_END
    assert timeline.hop_seconds is None and timeline.model == {}
    assert timeline.times.shape == (0,) and timeline.probabilities.shape == (0, 4)
    assert timeline_from_record(path, labels=LABELS).labels == LABELS

    json_path, cue_path = export(timeline, ["json", "cue"])
    assert json.loads(json_path.read_text())["hops"] == {
        "times": [], "probabilities": [], "level_dbfs": None, "silent": None,
    }  # fmt: skip
    sheet = parse_cue(cue_path.read_text())
    assert sheet["file"] == ("live.wav", "WAVE")
    assert [t["frame"] for t in sheet["tracks"]][-1] == 540413


def test_a_record_cut_short_by_a_crash_loses_only_its_last_line(
    dj_set: Timeline, tmp_path: Path
) -> None:
    path = record_of(tmp_path / "crash.jsonl", dj_set.segments[:3])
    with path.open("a", encoding="utf-8") as stream:
        stream.write('{"type":"segment","index":3,"start":127.5,"end":35')  # no newline
    timeline = timeline_from_record(path)
    assert len(timeline.segments) == 3 and timeline.duration == 127.5

    with path.open("ab") as stream:  # a crash can leave zeros where the line should be
        stream.write(b"\x00" * 20)
    assert len(timeline_from_record(path).segments) == 3


def test_a_bad_line_in_a_record_is_named(dj_set: Timeline, tmp_path: Path) -> None:
    path = record_of(tmp_path / "bad.jsonl", dj_set.segments[:3])
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(3, "this is not json\n")
    path.write_text("".join(lines))
    with pytest.raises(StreamerError, match=r"bad\.jsonl line 4: not JSON") as caught:
        timeline_from_record(path)
    assert "\n" not in str(caught.value)

    # a complete last line (it has its newline) is not a crash: it is reported too
    path.write_text("".join(lines[:3] + lines[4:]) + '{"type":"segment","index":9}\n')
    with pytest.raises(StreamerError, match=r'line 8: a segment message without "start"'):
        timeline_from_record(path)

    bad_state = protocol.segment_message(**dj_set.segments[0].to_dict()) | {"state": "loud"}
    path.write_text(json.dumps(bad_state) + "\n")
    with pytest.raises(StreamerError, match=r"line 1: segment state 'loud'"):
        timeline_from_record(path)


def test_an_empty_record_or_one_without_segments_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(StreamerError, match=r"empty\.jsonl is empty"):
        timeline_from_record(empty)
    statuses = tmp_path / "statuses.jsonl"
    statuses.write_text('{"type":"status","time":1.0}\n')
    with pytest.raises(StreamerError, match="no segment messages"):
        timeline_from_record(statuses)
    with pytest.raises(StreamerError, match="cannot read"):
        timeline_from_record(tmp_path / "missing.jsonl")


def test_a_record_of_two_sessions_gives_one_timeline_each(dj_set: Timeline, tmp_path: Path) -> None:
    path = record_of(tmp_path / "two.jsonl", dj_set.segments[:2])
    record_of(path, dj_set.segments[:3])  # --record appends
    first, second = record_sessions(path)
    assert (
        first.segments
        == timeline_from_record(record_of(tmp_path / "a.jsonl", dj_set.segments[:2])).segments
    )
    assert len(second.segments) == 3 and second.duration == 127.5
    assert (first.source, second.source) == (
        str(tmp_path / "two-1.jsonl"),
        str(tmp_path / "two-2.jsonl"),
    )
    with pytest.raises(StreamerError, match=r"holds 2 sessions .*--session N"):
        timeline_from_record(path)

    # within one session, a segment that overlaps the one before is a broken line
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + lines[2] + lines[2].replace('"index":0', '"index":1'))
    with pytest.raises(StreamerError, match=r"line 3: a segment starting at 3.0 s, before"):
        record_sessions(path)


def test_export_writes_each_session_of_a_record_or_the_one_chosen(
    dj_set: Timeline, tmp_path: Path
) -> None:
    """`streamer export --out DIR` of a record of two sessions: -1 and -2 exports, each
    CUE sheet naming its session's recording relative to DIR, as a CUE parser reads it."""
    import pylibcue

    (tmp_path / "gig").mkdir()
    record = record_of(tmp_path / "gig" / "live.jsonl", dj_set.segments[:2])
    record_of(record, dj_set.segments[:3])
    out = tmp_path / "out"

    def streamer_export(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streamer", "export", str(record), "--out", str(out),
             "--format", "cue,csv", *options],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    done = streamer_export()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        str(out / name) for name in ("live-1.cue", "live-1.csv", "live-2.cue", "live-2.csv")
    ]
    for number, tracks in ((1, 2), (2, 3)):
        cd = pylibcue.Cd.from_str((out / f"live-{number}.cue").read_text(encoding="utf-8"))
        assert len(cd) == tracks
        assert (out / cd[0].filename).resolve() == tmp_path / "gig" / f"live-{number}.wav"
    for path in out.iterdir():
        path.unlink()
    done = streamer_export("--session", "2")
    assert done.returncode == 0 and sorted(p.name for p in out.iterdir()) == [
        "live-2.csv", "live-2.cue",
    ]  # fmt: skip
    done = streamer_export("--session", "3")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("choose --session 1 to 2")


def test_record_genres_outside_the_given_labels_are_refused(
    dj_set: Timeline, tmp_path: Path
) -> None:
    path = record_of(tmp_path / "other.jsonl", dj_set.segments)
    with pytest.raises(StreamerError, match="'disco', which is not one of the labels"):
        timeline_from_record(path, labels=["house", "jazz", "techno"])


# the plot


def png_shape(path: Path) -> tuple[int, ...]:
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path).shape


def test_plot_of_a_two_hour_set(dj_set: Timeline, tmp_path: Path) -> None:
    path = plot_timeline(dj_set, tmp_path / "plots" / "set.png")
    assert path == tmp_path / "plots" / "set.png"
    assert png_shape(path) == (round(HEIGHT_INCHES * DPI), round(WIDTH_INCHES * DPI), 4)


def test_plot_without_probabilities(dj_set: Timeline, tmp_path: Path) -> None:
    record = record_of(tmp_path / "live.jsonl", dj_set.segments)
    path = plot_timeline(
        timeline_from_record(record), tmp_path / "live.png", colors={"disco": "black"}
    )
    assert png_shape(path) == (round(STRIP_HEIGHT_INCHES * DPI), round(WIDTH_INCHES * DPI), 4)


def share_of(image: np.ndarray, color: str) -> float:
    """The share of an RGBA image's pixels that are `color` (``#rrggbb``)."""
    rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    return float((np.abs(image[..., :3] - rgb).max(axis=-1) < 0.02).mean())


def test_plot_draws_genres_in_their_label_colour(tmp_path: Path) -> None:
    """The strip of a one-genre set is that genre's colour: house, label 0, the palette's
    first, as on the terminal and the overlay."""
    timeline = timeline_of(segments_of([(0.0, "house")], end=600.0), source=tmp_path / "h.wav")
    import matplotlib.image

    image = matplotlib.image.imread(plot_timeline(timeline, tmp_path / "h.png"))
    assert share_of(image, genre_colors(LABELS)["house"]) > 0.02


def test_plot_probabilities_are_a_stack_with_silence_in_grey(tmp_path: Path) -> None:
    """House then jazz at 0.9, a silence between: the panel is filled with the two colours
    (lines would colour a few per cent of it) and the silence covers it in the strip's grey.
    """
    segments = segments_of([(0.0, "house"), (300.0, None), (330.0, "jazz")], end=600.0)
    timeline = timeline_of(segments, source=tmp_path / "s.wav")
    mostly = np.where(timeline.times[:, None] < 315.0, [0.9, 0.1, 0, 0], [0.1, 0.9, 0, 0])
    timeline = dataclasses.replace(timeline, probabilities=mostly)
    import matplotlib.image

    image = matplotlib.image.imread(plot_timeline(timeline, tmp_path / "s.png"))
    panel = image[round(0.3 * len(image)) : round(0.85 * len(image))]  # below the strip
    colors = genre_colors(LABELS)
    assert share_of(panel, colors["house"]) > 0.25
    assert share_of(panel, colors["jazz"]) > 0.25
    assert share_of(panel, SILENCE_COLOR) > 0.03  # 30 s of 600 across the panel


def test_importing_the_exports_and_plot_does_not_load_matplotlib() -> None:
    code = (
        "import sys, streamer.offline.exports, streamer.offline.plot; "
        "print('matplotlib' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_json_says_which_hops_were_silent_next_to_the_raw_probabilities(tmp_path: Path) -> None:
    levels = np.array([-20.0, -49.96, -50.04, -80.0, -100.0, -12.34])
    timeline = timeline_of(segments_of([(3.0, "house")], end=6.0), source=tmp_path / "a.wav")
    timeline = dataclasses.replace(
        timeline, levels_dbfs=levels, silent=SmoothingConfig().quiet(levels), invalid_samples=7
    )
    (path,) = export(timeline, ["json"])
    document = json.loads(path.read_text())
    hops = document["hops"]
    assert hops["probabilities"] == np.round(timeline.probabilities, 4).tolist()  # raw
    assert hops["level_dbfs"] == [-20.0, -50.0, -50.0, -80.0, -100.0, -12.3]
    assert hops["silent"] == [False, False, True, True, True, False]  # below -50 dBFS
    assert document["invalid_samples"] == 7
    with pytest.raises(ValueError, match="levels_dbfs and silent of shape"):
        dataclasses.replace(timeline, silent=np.zeros(2, dtype=bool))


def test_recognised_library_tracks_name_their_segments_in_every_format(tmp_path: Path) -> None:
    """A DJ's tracklist names the tracks `tag --library` recognised (title and artist, read
    back from the CUE sheet by libcue), and the genre where none was; a track recognised in
    two neighbouring segments is one CUE track and one tracklist line."""
    import pylibcue

    segments = segments_of(
        [(3.0, "house"), (60.0, "jazz"), (130.0, "jazz"), (200.0, None), (203.0, "techno")],
        end=300.0,
    )
    joga = TrackName(id=7, title="Jóga", artist="Björk", path="/m/j.flac", similarity=0.991)
    untagged = TrackName(id=9, title="04 intro", artist=None, path="/m/04 intro.wav",
                         similarity=0.982)  # fmt: skip
    timeline = dataclasses.replace(
        timeline_of(segments, source=tmp_path / "set.flac"), names={1: joga, 2: joga, 4: untagged}
    )
    paths = export(timeline, ["json", "csv", "cue", "audacity", "tracklist"])
    document, rows, cue, labels, tracklist = (p.read_text(encoding="utf-8") for p in paths)

    tracks = [s["track"] for s in json.loads(document)["segments"]]
    joga_json, untagged_json = dataclasses.asdict(joga), dataclasses.asdict(untagged)
    assert tracks == [None, joga_json, joga_json, None, untagged_json]
    table = list(csv.DictReader(io.StringIO(rows)))
    assert [(r["title"], r["artist"]) for r in table] == [
        ("", ""), ("Jóga", "Björk"), ("Jóga", "Björk"), ("", ""), ("04 intro", ""),
    ]  # fmt: skip

    cd = pylibcue.Cd.from_str(cue)
    titles = [(cd[i].cdtext.title, cd[i].cdtext.performer) for i in range(len(cd))]
    assert titles == [
        ("house", "streamer"), ("Jóga", "Björk"), ("silence", "streamer"),
        ("04 intro", "streamer"),
    ]  # fmt: skip
    assert [cd[i].start for i in range(len(cd))] == [(0, 0, 0), (1, 0, 0), (3, 20, 0), (3, 23, 0)]
    assert [line.split("\t")[2] for line in labels.splitlines()] == [
        "house", "Björk - Jóga", "Björk - Jóga", "silence", "04 intro",
    ]  # fmt: skip
    assert tracklist.splitlines() == ["0:00 house", "1:00 Björk - Jóga", "3:23 04 intro"]
