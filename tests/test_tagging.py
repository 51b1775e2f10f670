"""`streamer tag` and `streamer export`: a generated mix of three sections with crossfades
is segmented where the sections change, exactly as the live engine segments it, bad files
do not stop the others, and a two-hour file is tagged in bounded memory."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import TRAIN_RATE, render_genre
from listening import start_listen

from streamer.analysis.model import GenreModel
from streamer.chain import GenreChain
from streamer.cli import main
from streamer.offline.exports import timeline_from_record
from streamer.offline.tagging import tag_file
from streamer.segments import SegmentConfig

SECTIONS = ("tones", "noise", "clicks")
# Sections longer than the segmenter's novelty window (15 s) and peak (10 s), so that each
# change is one; a minimum track under them (the default 30 s would take none).
SECTION_SECONDS = 20.0
MIN_TRACK = ("--min-track", "10")
SEGMENTS = SegmentConfig(min_track_seconds=10)
CROSSFADE_SECONDS = 1.0
# A boundary is dated within the 1 s crossfade that follows it and one and a half hops
# (0.75 s) of the model's lag.
BOUNDARY_TOLERANCE = CROSSFADE_SECONDS + 0.75


def crossfaded_mix(seed: int = 3) -> np.ndarray:
    """The sections, each faded into the next over CROSSFADE_SECONDS (equal power)."""
    rng = np.random.default_rng(seed)
    fade = round(CROSSFADE_SECONDS * TRAIN_RATE)
    length = round(SECTION_SECONDS * TRAIN_RATE)
    parts = [render_genre(g, rng, SECTION_SECONDS + CROSSFADE_SECONDS) for g in SECTIONS]
    mix = np.zeros(length * len(SECTIONS) + fade)
    ramp = np.sin(np.linspace(0, np.pi / 2, fade)) ** 2
    for index, part in enumerate(parts):
        gain = np.ones(part.size)
        if index > 0:
            gain[:fade] = ramp
        if index < len(parts) - 1:
            gain[-fade:] = ramp[::-1]
        start = index * length
        mix[start : start + part.size] += np.sqrt(gain) * part
    return mix[: length * len(SECTIONS)]


@pytest.fixture(scope="module")
def mix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tag") / "mix.wav"
    soundfile.write(path, crossfaded_mix(), TRAIN_RATE)
    return path


def test_tag_finds_the_sections_of_a_crossfaded_mix(trained: dict[str, Path], mix: Path) -> None:
    timeline = tag_file(mix, chain=GenreChain(GenreModel(trained["onnx"]), segments=SEGMENTS))
    music = [s for s in timeline.segments if s.state == "music"]
    assert [s.genre for s in music] == list(SECTIONS)
    for segment, true_start in zip(music[1:], (SECTION_SECONDS, 2 * SECTION_SECONDS), strict=True):
        assert abs(segment.start - true_start) <= BOUNDARY_TOLERANCE, segment
    assert timeline.segments[-1].end == pytest.approx(len(SECTIONS) * SECTION_SECONDS)
    assert all(a.end == b.start for a, b in itertools.pairwise(timeline.segments))
    assert len(timeline.times) == len(timeline.probabilities) > 0


def test_live_engine_on_the_paced_file_gives_the_same_segments(
    trained: dict[str, Path], mix: Path, tmp_path: Path
) -> None:
    record = tmp_path / "live.jsonl"
    process, _ = start_listen(
        trained["onnx"], {}, "--file", str(mix), "--record", str(record), *MIN_TRACK
    )
    assert process.wait(timeout=90) == 0, process.stderr.read()
    live = timeline_from_record(record).segments
    chain = GenreChain(GenreModel(trained["onnx"]), segments=SEGMENTS)
    offline = tag_file(mix, chain=chain).segments
    assert len(offline) == len(SECTIONS)
    assert [(s.genre, s.state) for s in live] == [(s.genre, s.state) for s in offline]
    for a, b in zip(live, offline, strict=True):
        assert a.start == pytest.approx(b.start, abs=1e-3)  # the record keeps milliseconds
        assert a.end == pytest.approx(b.end, abs=1e-3)
        assert a.confidence == pytest.approx(b.confidence, abs=1e-3)


def test_tag_and_listen_on_the_same_file_give_the_same_hops_and_segments(
    trained: dict[str, Path], mix: Path, tmp_path: Path
) -> None:
    """The two commands, run as a user runs them: `streamer tag` (30 s blocks) and
    `streamer listen --file --fast` (0.1 s blocks, the live engine), on a file with a
    silence in it, agree hop for hop and segment for segment; live, each segment is sent
    the segmenter's lag after the hop that decided it, the last ones at the end."""
    audio, rate = soundfile.read(mix)
    rng = np.random.default_rng(4)
    path = tmp_path / "with-a-pause.wav"
    soundfile.write(
        path, np.concatenate([audio, np.zeros(3 * rate), render_genre("tones", rng, 5)]), rate
    )
    model = ["--model", str(trained["onnx"]), *MIN_TRACK]
    tag = [sys.executable, "-m", "streamer", "tag", str(path), *model, "--format", "json",
           "--out", str(tmp_path)]  # fmt: skip
    subprocess.run(tag, check=True, capture_output=True, timeout=120)
    listen = [sys.executable, "-m", "streamer", "listen", "--file", str(path), "--fast",
              "--no-view", "--port", "0", *model]  # fmt: skip
    done = subprocess.run(listen, check=True, capture_output=True, text=True, timeout=120)
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    tagged = json.loads((tmp_path / "with-a-pause.json").read_text())

    updates = [m for m in messages if m["type"] == "update"]
    assert [u["time"] for u in updates] == tagged["hops"]["times"]
    assert [u["level_dbfs"] for u in updates] == tagged["hops"]["level_dbfs"]
    live = [{k: v for k, v in m.items() if k != "type"} for m in messages if m["type"] == "segment"]
    # a tagged segment says which library track it is (none here: no --library), a live one
    # the stream's title (none from a file): fields the other has not
    assert all(segment.pop("track") is None for segment in tagged["segments"])
    assert all(segment.pop("title") is None for segment in live)
    assert live == tagged["segments"]
    assert {s["state"] for s in live} == {"music", "silence"}
    assert len(live) >= 4
    lag, half_window = SEGMENTS.lag_seconds, messages[0]["window_seconds"] / 2
    for position, message in enumerate(messages):
        if message["type"] == "segment":
            after = next((m["time"] for m in messages[position:] if m["type"] == "update"), None)
            if after is None:  # closed by the end of the file: it ended within the lag
                assert message["end"] > updates[-1]["time"] - lag - half_window
            else:  # a track change is dated half the window before the hop deciding it
                assert after - message["end"] in (
                    pytest.approx(lag, abs=1e-3),
                    pytest.approx(lag + half_window, abs=1e-3),
                ), message
    assert [m["type"] for m in messages if m["type"] != "status"][-1] == "segment"


def parse_cue(text: str) -> list[tuple[str, int]]:
    """(TITLE, INDEX 01 in frames of 1/75 s) per TRACK."""
    tracks: list[tuple[str, int]] = []
    title = ""
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["TITLE"]:
            title = line.split('"')[1]
        elif words[:2] == ["INDEX", "01"]:
            minutes, seconds, frames = (int(part) for part in words[2].split(":"))
            tracks.append((title, (minutes * 60 + seconds) * 75 + frames))
    return tracks


def test_tag_command_writes_every_format_and_a_plot_and_survives_bad_files(
    trained: dict[str, Path], mix: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(40)))
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_text("not audio\n")
    out = tmp_path / "out"
    code = main(["tag", str(corrupt), str(mix), str(empty), str(text), "--model",
                 str(trained["onnx"]), "--format", "json,csv", "--format", "cue,audacity,tracklist",
                 "--plot", "--out", str(out), *MIN_TRACK])  # fmt: skip
    errors = capsys.readouterr().err
    assert code == 1
    for bad in (corrupt, empty, text):
        assert str(bad) in errors
    written = sorted(p.name for p in out.iterdir())
    suffixes = ("json", "csv", "cue", "labels.txt", "tracklist.txt", "png")
    assert written == sorted(f"mix.{suffix}" for suffix in suffixes)
    assert (out / "mix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tagged = json.loads((out / "mix.json").read_text())
    segments = tagged["segments"]
    assert [s["genre"] for s in segments if s["state"] == "music"] == list(SECTIONS)
    cue = parse_cue((out / "mix.cue").read_text())
    # one track per segment; the first starts the file, the others exactly where theirs do
    assert [title for title, _ in cue] == [s["genre"] or "silence" for s in segments]
    assert [frames for _, frames in cue] == [0] + [int(s["start"] * 75 + 0.5) for s in segments[1:]]


def test_export_turns_a_record_into_the_same_formats(
    trained: dict[str, Path], mix: Path, tmp_path: Path
) -> None:
    record = tmp_path / "set.jsonl"
    segments = [
        {"type": "segment", "index": i, "start": 30.0 * i, "end": 30.0 * (i + 1),
         "genre": g, "state": "music", "confidence": 0.8}
        for i, g in enumerate(("tones", "noise", "tones"))
    ]  # fmt: skip
    record.write_text("".join(json.dumps(s) + "\n" for s in segments))
    assert main(["export", str(record), "--format", "cue", "--out", str(tmp_path / "x")]) == 0
    cue = parse_cue((tmp_path / "x" / "set.cue").read_text())
    assert cue == [("tones", 0), ("noise", 30 * 75), ("tones", 60 * 75)]


PEAK_RSS_GROWTH_MB = 30.0
"""Stated bound: tagging two hours takes at most this much more memory than two minutes."""


def write_long_file(path: Path, seconds: float) -> None:
    """Minutes of alternating sections, written block by block (never held whole)."""
    rng = np.random.default_rng(9)
    with soundfile.SoundFile(path, "w", TRAIN_RATE, 1, subtype="PCM_16") as sound:
        for index in range(round(seconds / 60)):
            sound.write(0.5 * render_genre(SECTIONS[index % 3], rng, 60.0))


def peak_rss_mb(*args: str) -> float:
    """Peak RSS of `streamer ARGS` in a fresh process: VmHWM, which (unlike ru_maxrss, kept
    across exec from the forking pytest process) counts this program's memory only."""
    code = (
        "import re, sys; from streamer.cli import main; main(sys.argv[1:]); "
        "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1])"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=True, timeout=600)  # fmt: skip
    return int(done.stdout.split()[-1]) / 1024


def test_two_hours_are_tagged_in_bounded_memory(trained: dict[str, Path], tmp_path: Path) -> None:
    short, long = tmp_path / "two-minutes.wav", tmp_path / "two-hours.wav"
    write_long_file(short, 120)
    write_long_file(long, 7200)
    options = ["--model", str(trained["onnx"]), "--format", "json,cue", "--out", str(tmp_path)]
    baseline = peak_rss_mb("tag", str(short), *options)
    peak = peak_rss_mb("tag", str(long), *options)
    print(f"peak RSS: 2 min {baseline:.0f} MB, 2 h {peak:.0f} MB")
    assert peak - baseline < PEAK_RSS_GROWTH_MB
    tagged = json.loads((tmp_path / "two-hours.json").read_text())
    assert tagged["duration"] == pytest.approx(7200)
    assert len(tagged["hops"]["times"]) > 14_000


def test_sigint_during_tagging_is_a_clean_stop(trained: dict[str, Path], tmp_path: Path) -> None:
    long = tmp_path / "ten-minutes.wav"
    write_long_file(long, 600)
    command = [sys.executable, "-m", "streamer", "tag", str(long), "--model", str(trained["onnx"])]
    # --progress: a bar although stderr is a pipe, so that its first line says tagging began
    process = subprocess.Popen([*command, "--progress"], stderr=subprocess.PIPE, text=True)
    process.stderr.readline()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 130  # the shell's code for a stop by Ctrl-C
    assert "Traceback" not in process.stderr.read()
    assert not (tmp_path / "ten-minutes.json").exists()  # nothing half-written


def test_nan_inf_and_absurd_samples_are_analysed_as_silence_and_said_once(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    """`tag` warns in one line and counts them in its JSON; `listen --file` counts them in
    its status messages. Neither stops: the smoother takes whatever the model makes of it."""
    rng = np.random.default_rng(6)
    audio = render_genre("tones", rng, 8.0).astype(np.float32)
    audio[TRAIN_RATE : TRAIN_RATE + 10] = np.nan
    audio[3 * TRAIN_RATE] = np.inf
    audio[5 * TRAIN_RATE] = -np.inf
    audio[6 * TRAIN_RATE : 6 * TRAIN_RATE + 2] = 3e30, -1001.0  # no audio: would overflow
    path = tmp_path / "broken float.wav"
    soundfile.write(path, audio, TRAIN_RATE, subtype="FLOAT")
    model = ["--model", str(trained["onnx"])]
    tag = [sys.executable, "-m", "streamer", "tag", str(path), *model, "--format", "json",
           "--out", str(tmp_path)]  # fmt: skip
    done = subprocess.run(tag, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if "warning" in line] == [
        f"streamer: warning: {path}: 14 samples were NaN, infinite or beyond ±1000 and were "
        "analysed as silence"
    ]
    tagged = json.loads((tmp_path / "broken float.json").read_text())
    assert tagged["invalid_samples"] == 14
    assert [s["state"] for s in tagged["segments"]] == ["music"]
    listen = [sys.executable, "-m", "streamer", "listen", "--file", str(path), "--fast",
              "--no-view", "--port", "0", *model]  # fmt: skip
    done = subprocess.run(listen, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    statuses = [m for m in map(json.loads, done.stdout.splitlines()) if m["type"] == "status"]
    assert statuses[-1]["invalid_samples"] == 14


def test_the_json_marks_the_silent_hops_beside_the_raw_probabilities(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    audio = np.concatenate(
        [render_genre("tones", rng, 4.0), np.zeros(4 * TRAIN_RATE), render_genre("noise", rng, 4.0)]
    )
    path = tmp_path / "pause.wav"
    soundfile.write(path, audio, TRAIN_RATE)
    assert main(["tag", str(path), "--model", str(trained["onnx"]), "--format", "json"]) == 0
    hops = json.loads(path.with_suffix(".json").read_text())["hops"]
    assert len(hops["level_dbfs"]) == len(hops["silent"]) == len(hops["times"])
    assert hops["silent"] == [level < -50 for level in hops["level_dbfs"]]
    assert 0 < sum(hops["silent"]) < len(hops["silent"])
    timeline = tag_file(path, chain=GenreChain(GenreModel(trained["onnx"])))
    raw = np.round(timeline.probabilities.astype(np.float64), 4)  # the model's own output
    assert hops["probabilities"] == raw.tolist()


# --- a set's tracklist named from the library (issue 18, item 6) -------------------------

LIBRARY_TRACKS = (  # genre, title and artist (None: an untagged WAV, named by its file)
    ("rock", "Stone Road", "The Pebbles"),
    ("jazz", "Blue Hour", "Ana Lívia"),
    ("reggae", "Island Time", "Kofi & the Tide"),
    ("country", None, None),
)
LIBRARY_CROSSFADES = (8.0, 12.0, 6.0)  # seconds, equal power
NAMED_TOLERANCE = 5.0
"""Seconds between a CUE track's start and the true change (the crossfade's midpoint);
measured: 1.0, 0.5 and 0.5 s."""


@pytest.fixture(scope="module")
def named_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """Four corpus renderings of 48 s, indexed into a new library by the real `streamer
    index`, then mixed with crossfades and tagged by `streamer tag --library` (about a
    minute on 2 cores, mostly the shipped taggers); the mix's truth and the exports' folder."""
    import mutagen.flac

    from training import mixes

    root = tmp_path_factory.mktemp("named")
    crate = root / "crate"
    crate.mkdir()
    pieces = []
    for number, (genre, title, artist) in enumerate(LIBRARY_TRACKS):
        family = mixes.side_families(genre, side="train")[0]
        rendered = mixes.render_track(
            mixes.TrackRequest(genre, family, 48.0, number), seed=18, held_out=False,
            sample_rate=mixes.SAMPLE_RATE, work=root,
        )  # fmt: skip
        assert rendered is not None, f"no rendering of {genre}"
        audio, _ = rendered
        path = crate / (f"{number} {genre}.flac" if title else f"{number} {genre} demo.wav")
        soundfile.write(path, audio, mixes.SAMPLE_RATE)
        if title:
            tags = mutagen.flac.FLAC(path)
            tags["title"], tags["artist"] = title, artist
            tags.save()
        overlap = LIBRARY_CROSSFADES[number - 1] if number else 0.0
        pieces.append(
            mixes.Piece(audio, "music", "track", overlap=overlap, info={"path": str(path)})
        )
    mix = mixes.write_mix(root, "set", *mixes.assemble(pieces, sample_rate=mixes.SAMPLE_RATE))
    db = root / "library.sqlite"
    for command in (
        ["index", str(crate), "--db", str(db), "--workers", "1"],
        ["tag", str(mix), "--library", str(db), "--format", "json,cue,tracklist,rekordbox-xml",
         "--out", str(root / "out")],
    ):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "streamer", *command],
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr
    return mixes.load_truth(mix), root / "out"


def test_a_set_of_library_tracks_is_named_track_by_track(
    named_set: tuple[dict, Path],
) -> None:
    """Every track of a crossfaded set of indexed tracks is named from the library in the
    CUE sheet (read by libcue), the tracklist, the rekordbox memory cues (read by
    pyrekordbox) and the JSON, each starting within `NAMED_TOLERANCE` of its change."""
    import pylibcue
    from pyrekordbox.rbxml import RekordboxXml

    known, out = named_set
    names = [(title or f"{n} {genre} demo", artist) for n, (genre, title, artist)
             in enumerate(LIBRARY_TRACKS)]  # fmt: skip
    true_starts = [0.0, *known["changes"]]
    assert len(true_starts) == len(LIBRARY_TRACKS)

    cd = pylibcue.Cd.from_str((out / "set.cue").read_text(encoding="utf-8"))
    sheet = [(cd[i].cdtext.title, cd[i].cdtext.performer) for i in range(len(cd))]
    assert sheet == [(title, artist or "streamer") for title, artist in names]
    starts = [m * 60 + s + f / 75 for m, s, f in (cd[i].start for i in range(len(cd)))]
    assert np.abs(np.subtract(starts, true_starts)).max() <= NAMED_TOLERANCE, (starts, true_starts)

    lines = (out / "set.tracklist.txt").read_text(encoding="utf-8").splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        f"{artist} - {title}" if artist else title for title, artist in names
    ]

    (track,) = RekordboxXml(out / "set.rekordbox.xml").get_tracks()
    assert [mark["Name"] for mark in track.marks] == [line.split(" ", 1)[1] for line in lines]
    assert np.abs(np.subtract([m["Start"] for m in track.marks], true_starts)).max() <= (
        NAMED_TOLERANCE
    )

    segments = json.loads((out / "set.json").read_text())["segments"]
    music = [s for s in segments if s["state"] == "music"]
    paths = [piece["path"] for piece in known["tracks"]]
    assert [s["track"]["path"] for s in music] == [str(Path(p).resolve()) for p in paths]
    assert min(s["track"]["similarity"] for s in music) >= 0.97
