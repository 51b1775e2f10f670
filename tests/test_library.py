"""The music library: `streamer index` into a real SQLite catalogue, incremental re-index,
interruption, recommendations by similarity, and their live delivery over the websocket.

The library is made of generated clips of the three synthetic "genres" the tiny test
model was trained on (conftest), plus bad files of every kind.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mutagen.flac
import numpy as np
import pytest
import soundfile
from conftest import TRAIN_RATE, render_genre
from listening import start_listen
from test_catalogue import downgrade_to_version_1
from websockets.sync.client import connect

from streamer.analysis.describe import camelot
from streamer.cli import main
from streamer.library.catalogue import Catalogue
from streamer.library.recommend import (
    PLAYING_MARGIN,
    Basis,
    Filters,
    Library,
    LibraryTrack,
    Session,
    percent,
)
from streamer.outlets import protocol

GENRES = ("clicks", "noise", "tones")
PER_GENRE = 6
PRECISION_AT_5 = 0.8  # stated threshold: same-genre share of the 5 nearest tracks
BAD = {
    "corrupt.wav": "not a readable audio file",
    "text.mp3": "not a readable audio file",
    "empty.flac": "empty",
    "short.wav": "too short",
    "song.m4a": "unsupported format",
}


def make_library(folder: Path, *, seed: int = 11) -> Path:
    """6 clips per genre (4 s, the first one of each tagged) and one bad file of each kind."""
    rng = np.random.default_rng(seed)
    for genre in GENRES:
        (folder / genre).mkdir(parents=True)
        for index in range(PER_GENRE):
            path = folder / genre / f"{genre}-{index}.flac"
            soundfile.write(path, render_genre(genre, rng, seconds=4.0), TRAIN_RATE)
            if index == 0:
                tags = mutagen.flac.FLAC(path)
                tags.update({"title": f"First {genre}", "artist": "Test Band", "genre": genre})
                tags.save()
    bad = folder / "bad"
    bad.mkdir()
    (bad / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(40)))
    (bad / "text.mp3").write_text("a text file named .mp3\n")
    (bad / "empty.flac").write_bytes(b"")
    soundfile.write(bad / "short.wav", np.zeros(TRAIN_RATE // 4), TRAIN_RATE)
    (bad / "song.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    (bad / "cover.jpg").write_bytes(b"\xff\xd8\xff")  # not music: ignored, not a failure
    return folder


def index(folder: Path, db: Path, model: Path, *extra: str) -> int:
    return main(["index", str(folder), "--db", str(db), "--model", str(model), *extra])


@pytest.fixture(scope="module")
def indexed(trained: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("library")
    folder, db = make_library(work / "music"), work / "library.sqlite"
    assert index(folder, db, trained["onnx"]) == 0
    return {"folder": folder, "db": db, "model": trained["onnx"]}


def test_index_keeps_every_good_file_and_lists_every_bad_one(indexed: dict[str, Path]) -> None:
    with Catalogue(indexed["db"], readonly=True) as catalogue:
        tracks = catalogue.tracks()
        failures = {f.path.name: f.reason for f in catalogue.failures()}
        stats = catalogue.stats()
    good = sorted(p for genre in GENRES for p in (indexed["folder"] / genre).iterdir())
    assert sorted(Path(t.path) for t in tracks) == good
    assert set(failures) == set(BAD)
    for name, reason in BAD.items():
        assert reason in failures[name], failures[name]
    assert stats.tracks == len(good) and stats.failures == len(BAD)
    for track in tracks:
        assert track.duration == pytest.approx(4.0, abs=0.01)
        assert track.sections and track.embedding.shape == track.sections[0][1].shape
        assert track.key and 30 <= track.tempo <= 300
    tagged = [t for t in tracks if t.title]
    assert sorted(t.title for t in tagged) == [f"First {g}" for g in GENRES]
    assert {t.genre_tag for t in tagged} == set(GENRES)
    # the model's view of each clip: the genre it was rendered as, for all but a few
    right = sum(t.labels[int(np.argmax(t.probabilities))] in Path(t.path).name for t in tracks)
    assert right >= 0.8 * len(tracks)


def test_reindex_decodes_only_what_changed(
    indexed: dict[str, Path], tmp_path: Path, trained: dict[str, Path]
) -> None:
    folder, db = tmp_path / "music", tmp_path / "library.sqlite"
    shutil.copytree(indexed["folder"], folder)
    assert index(folder, db, trained["onnx"]) == 0
    with Catalogue(db, readonly=True) as catalogue:
        before = {Path(t.path): t.indexed_at for t in catalogue.tracks()}
    touched = folder / "tones" / "tones-1.flac"
    deleted = folder / "noise" / "noise-2.flac"
    moved = folder / "clicks" / "clicks-3.flac"
    renamed_to = folder / "bad" / "clicks-3.flac"
    os.utime(touched, ns=(time.time_ns(), time.time_ns()))
    deleted.unlink()
    os.replace(moved, renamed_to)  # same name, size and time: a move, not a new file
    assert index(folder, db, trained["onnx"]) == 0
    with Catalogue(db, readonly=True) as catalogue:
        after = {Path(t.path): t.indexed_at for t in catalogue.tracks()}
    assert deleted not in after and moved not in after
    assert after[renamed_to] == before[moved]  # moved without decoding
    changed = {path for path in after if path != renamed_to and after[path] != before[path]}
    assert changed == {touched}


def test_an_interrupted_index_keeps_finished_tracks_and_goes_on(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    folder = make_library(tmp_path / "music", seed=12)
    shutil.rmtree(folder / "bad")
    db = tmp_path / "library.sqlite"
    command = [sys.executable, "-m", "streamer", "index", str(folder), "--db", str(db),
               "--model", str(trained["onnx"]), "--workers", "1"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    finished = 0
    while finished < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        if db.exists():
            with Catalogue(db, readonly=True) as catalogue:
                finished = catalogue.stats().tracks
    assert 3 <= finished < 3 * PER_GENRE, "too fast or too slow to interrupt"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130, process.stderr.read()
    with Catalogue(db, readonly=True) as catalogue:
        kept = {Path(t.path): t.indexed_at for t in catalogue.tracks()}
    assert len(kept) >= finished
    assert index(folder, db, trained["onnx"]) == 0
    with Catalogue(db, readonly=True) as catalogue:
        tracks = catalogue.tracks()
    paths = [Path(t.path) for t in tracks]
    assert len(paths) == len(set(paths)) == 3 * PER_GENRE
    assert all(t.indexed_at == kept[Path(t.path)] for t in tracks if Path(t.path) in kept)


def test_a_catalogue_indexed_before_the_taggers_is_analysed_again_once(
    indexed: dict[str, Path], tmp_path: Path
) -> None:
    db = tmp_path / "old.sqlite"
    shutil.copy(indexed["db"], db)
    downgrade_to_version_1(db)
    with Catalogue(db, readonly=True) as catalogue:
        before = {Path(t.path): t.indexed_at for t in catalogue.tracks()}
        assert all(t.tags is None for t in catalogue.tracks())
    assert index(indexed["folder"], db, indexed["model"]) == 0
    with Catalogue(db, readonly=True) as catalogue:
        after = {Path(t.path): t for t in catalogue.tracks()}
    assert set(after) == set(before)
    assert all(after[p].indexed_at > before[p] and after[p].tags is not None for p in after)
    assert index(indexed["folder"], db, indexed["model"]) == 0  # now unchanged
    with Catalogue(db, readonly=True) as catalogue:
        again = {Path(t.path): t.indexed_at for t in catalogue.tracks()}
    assert again == {path: track.indexed_at for path, track in after.items()}


def test_recommendations_rank_the_same_genre_first(indexed: dict[str, Path]) -> None:
    library = Library.open(indexed["db"])
    precisions = []
    for track in library.tracks.values():
        genre = track.path.parent.name
        found = library.recommend(
            library.vector(track.id), k=5, basis=Basis(genre=track.genre), exclude={track.id}
        )
        precisions.append(np.mean([r.track.path.parent.name == genre for r in found]))
        assert found[0].similarity >= found[-1].similarity
    assert np.mean(precisions) >= PRECISION_AT_5, precisions


def own_lead(library: Library, track: LibraryTrack) -> float:
    """How clearly a track's own audio picks it out: its best section score over the next
    track's."""
    scores = np.sort(library.section_scores(library.records[track.id].embedding))
    return float(scores[-1] - scores[-2])


def test_filters_and_feedback_shape_a_session(indexed: dict[str, Path]) -> None:
    """Each list is the best fits for now: the track playing, skipped and played ones are
    left out, the others shown before come again (no rotation to worse ones)."""
    library = Library.open(indexed["db"])
    lead = functools.partial(own_lead, library)
    # Two clips of a generated genre can be near twins (cosine 0.99): the one whose own
    # audio stands out most, so that it is recognised as playing (`PLAYING_MARGIN`).
    own = max(library.tracks.values(), key=lead)
    record = library.records[own.id]
    other = next(genre for genre in GENRES if genre != own.genre)
    filtered = Session(library, k=3, filters=Filters(genres=frozenset({other})))
    found, _ = filtered.recommend(record.embedding, record.probabilities)
    assert found and all(r.track.genre == other for r in found)

    session = Session(library, k=3)
    found, playing = session.recommend(record.embedding, record.probabilities)
    assert playing is not None and playing[0].id == own.id, lead(own)  # its own audio
    assert own.id not in {r.track.id for r in found}
    skipped = found[0].track.id  # the best fit: back in every list unless the skip counts
    session.feedback(skipped, "skip")
    again, _ = session.recommend(record.embedding, record.probabilities)
    shown = [r.track.id for r in again]
    assert skipped not in shown and own.id not in shown
    assert shown[:2] == [r.track.id for r in found[1:]]  # the rest, moved up
    played = shown[0]
    session.feedback(played, "played")
    later = [r.track.id for r in (session.recommend(record.embedding, record.probabilities)[0])]
    assert not {skipped, played, own.id} & set(later)
    assert shown[1:] == later[:2]  # shown before and still the best fits: offered again
    with pytest.raises(ValueError, match="no track"):
        session.feedback(10_000, "like")


def test_near_twins_of_the_track_playing_are_not_recommended(indexed: dict[str, Path]) -> None:
    """When another track scores within `PLAYING_MARGIN` of the one playing, neither is
    recognised, and neither may be offered: the track playing must not be recommended to
    itself."""
    library = Library.open(indexed["db"])
    lead = functools.partial(own_lead, library)
    twin = min(library.tracks.values(), key=lead)
    assert lead(twin) < PLAYING_MARGIN, "the test library has no near twins"
    record = library.records[twin.id]
    session = Session(library, k=len(library))
    for _ in range(3):
        found, playing = session.recommend(record.embedding, record.probabilities)
        assert playing is None
        assert twin.id not in {r.track.id for r in found}
        assert len(session.maybe) >= 2 and twin.id in session.maybe


def test_like_pulls_the_next_recommendations_towards_the_liked_track(
    indexed: dict[str, Path],
) -> None:
    library = Library.open(indexed["db"])
    tones = next(t for t in library.tracks.values() if t.genre == "tones")
    liked = next(t.id for t in library.tracks.values() if t.genre == "clicks")
    record = library.records[tones.id]
    plain = Session(library, k=len(library))
    liking = Session(library, k=len(library))
    liking.feedback(liked, "like")

    def similarities(session: Session) -> dict[int, float]:
        found, _ = session.recommend(record.embedding, record.probabilities)
        return {r.track.id: r.similarity for r in found}

    plain_found, liking_found = similarities(plain), similarities(liking)
    gain = {i: liking_found[i] - plain_found[i] for i in plain_found}
    assert gain[liked] > 0.05
    # The query turned towards the liked track: it gains more than any track of another
    # genre (those gain little or lose). Ranks are no test: how many tracks it passes
    # depends on the tiny model's embedding geometry, which varies between runs.
    others = [i for i in gain if library.tracks[i].genre != "clicks"]
    assert gain[liked] > max(gain[i] for i in others)


def test_recommend_command_explains_its_choices(
    indexed: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # whole paths on one line
    clip = indexed["folder"] / "noise" / "noise-0.flac"
    common = ["--db", str(indexed["db"]), "--model", str(indexed["model"])]
    assert main(["recommend", str(clip), "-k", "3", *common]) == 0
    out = capsys.readouterr().out
    assert "noise" in out and "BPM" in out and "sounds" not in out  # reasons, not the score
    assert main(["library", "stats", "--db", str(indexed["db"])]) == 0
    out = capsys.readouterr().out
    assert f"{3 * PER_GENRE} tracks" in out and "song.m4a" in out


def test_recommend_prints_the_query_tempo_and_key_and_matches_in_percent(
    indexed: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the list, the query's own BPM and key (standard and Camelot, as the list
    shows keys); each match in percent, as the terminal view and the overlay show it."""
    monkeypatch.setenv("COLUMNS", "250")
    library = Library.open(indexed["db"])
    query = next(t for t in library.tracks.values() if t.tempo and t.key)
    common = ["--db", str(indexed["db"]), "--model", str(indexed["model"]), "-k", "4"]
    assert main(["recommend", str(query.id), *common]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"like {query.name} (library track {query.id}): {query.tempo:.0f} BPM, "
        f"{query.key} ({camelot(query.key)})"
    )
    header = next(line for line in lines if "match" in line)
    columns = [cell.strip() for cell in re.split("[┃│]", header)]
    rows = [
        dict(zip(columns, (cell.strip() for cell in line.split("│")), strict=True))
        for line in lines
        if re.match(r"│ +\d+ │", line)
    ]
    basis = Basis(
        genre=query.genre, tempo=query.tempo, key=query.key, descriptors=query.descriptors
    )
    expected = library.recommend(library.vector(query.id), k=4, basis=basis, exclude={query.id})
    assert [(int(row["id"]), row["match"]) for row in rows] == [
        (r.track.id, f"{percent(r.similarity):.0f} %") for r in expected
    ]
    assert all(0 <= int(row["match"].removesuffix(" %")) <= 100 for row in rows)


def test_recommend_explains_with_the_descriptors_both_tracks_share(
    indexed: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """musicnn hears the generated noise as electronic and fast (mean tags about 0.55 and
    0.5, above `SHARED_DESCRIPTOR`), the tones as slow: the reasons say what is shared."""
    monkeypatch.setenv("COLUMNS", "300")  # the reasons on one line
    outside = tmp_path / "more-noise.flac"
    soundfile.write(outside, render_genre("noise", np.random.default_rng(5), 4.0), TRAIN_RATE)
    common = ["--db", str(indexed["db"]), "--model", str(indexed["model"]), "-k", "3"]
    for query in (indexed["folder"] / "noise" / "noise-1.flac", outside):  # a track, a file
        assert main(["recommend", str(query), *common]) == 0
        out = capsys.readouterr().out
        assert "also electronic, fast" in out, out
    assert main(["recommend", str(indexed["folder"] / "tones" / "tones-1.flac"), *common]) == 0
    assert "also slow" in capsys.readouterr().out


def test_library_remove_forgets_a_folder(indexed: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "copy.sqlite"
    shutil.copy(indexed["db"], db)
    assert main(["library", "remove", str(indexed["folder"] / "noise"), "--db", str(db)]) == 0
    with Catalogue(db, readonly=True) as catalogue:
        assert {Path(t.path).parent.name for t in catalogue.tracks()} == {"clicks", "tones"}


def test_a_bad_catalogue_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "notes.sqlite"
    db.write_text("not a database\n")
    assert main(["library", "stats", "--db", str(db)]) != 0
    error = capsys.readouterr().err.strip()
    assert "not a streamer catalogue" in error and len(error.splitlines()) == 1


def test_live_recommendations_follow_the_audio_and_the_feedback(
    indexed: dict[str, Path], tmp_path: Path
) -> None:
    rng = np.random.default_rng(21)
    playing = tmp_path / "tones-live.wav"
    soundfile.write(playing, render_genre("tones", rng, seconds=30.0), TRAIN_RATE)
    process, url = start_listen(
        indexed["model"],
        {},
        "--file",
        str(playing),
        "--library",
        "--db",
        str(indexed["db"]),
        "-k",
        "3",
    )
    lists = []
    try:
        with connect(url) as client:
            protocol.validate(json.loads(client.recv(timeout=10)))
            while not lists:
                message = json.loads(client.recv(timeout=20))
                if message["type"] == "recommendations":
                    lists.append(message)
            skipped = lists[0]["tracks"][0]["id"]
            client.send(json.dumps({"type": "feedback", "track": skipped, "action": "skip"}))
            client.send(json.dumps({"type": "feedback", "track": skipped, "action": "love"}))
            errors = []
            while len(lists) < 3:
                message = json.loads(client.recv(timeout=20))
                protocol.validate(message)
                if message["type"] == "recommendations":
                    lists.append(message)
                elif message["type"] == "error":
                    errors.append(message["message"])
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0, process.stderr.read()
    for message in lists:
        protocol.validate(message)
        assert len(message["tracks"]) == 3
        assert message["basis"]["genre"] == "tones"
    assert lists[1]["time"] == lists[0]["time"]  # the answer to the feedback, at once
    assert all(skipped not in {t["id"] for t in m["tracks"]} for m in lists[1:])
    assert errors and "action" in errors[0]


def write_nonfinite(path: Path, rng: np.random.Generator) -> int:
    """Four seconds of "tones" as float32 with NaN and +-Inf in it; returns their count."""
    y = render_genre("tones", rng, seconds=4.0).astype(np.float32)
    y[TRAIN_RATE : TRAIN_RATE + 10] = np.nan
    y[2 * TRAIN_RATE] = np.inf
    y[3 * TRAIN_RATE] = -np.inf
    soundfile.write(path, y, TRAIN_RATE, subtype="FLOAT")
    return 12


def half_silent(rng: np.random.Generator) -> np.ndarray:
    """Six seconds of "tones", then six of a room's noise floor (about -80 dBFS)."""
    floor = 1e-4 * rng.standard_normal(6 * TRAIN_RATE)
    return np.concatenate([render_genre("tones", rng, seconds=6.0), floor])


def test_the_mixture_and_embedding_are_the_means_over_music_hops_only(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    from streamer.analysis.hops import HopAnalyzer
    from streamer.analysis.model import GenreModel
    from streamer.analysis.tagger import TagAnalyzer
    from streamer.library.indexer import analyse_file, load_taggers
    from streamer.tracking import SmoothingConfig

    path = tmp_path / "half.wav"
    soundfile.write(path, half_silent(np.random.default_rng(3)), TRAIN_RATE)
    model = GenreModel(trained["onnx"])
    analyzer = HopAnalyzer(model, hop_seconds=model.spec.patch_seconds)
    hops = analyzer.push(soundfile.read(path, dtype="float32")[0])
    music = [hop for hop in hops if not SmoothingConfig().quiet(hop.level_dbfs)]
    assert 0 < len(music) < len(hops)
    taggers = load_taggers()
    record = analyse_file(path, model, taggers=taggers)
    expected = np.mean([hop.probabilities for hop in music], axis=0)
    np.testing.assert_allclose(record.probabilities, expected, rtol=1e-5, atol=1e-6)
    everything = np.mean([hop.probabilities for hop in hops], axis=0)
    assert np.abs(everything - expected).max() > 0.01  # silence would have shifted it
    np.testing.assert_allclose(
        record.embedding, np.mean([hop.embedding for hop in music], axis=0), rtol=1e-5, atol=1e-6
    )
    assert record.has_music and record.key is not None and record.tempo is not None
    # musicnn's view, from the same decode: its tags and pooled embedding over the tag
    # patches of the music (the first ones), not over the silence after it
    tag_hops = TagAnalyzer(taggers, input_rate=TRAIN_RATE).push(soundfile.read(path)[0])
    assert record.tags is not None and record.tag_embedding is not None
    assert record.tag_labels == [f"{t.name}/{label}" for t in taggers for label in t.labels]
    music_patches = [
        k
        for k in range(1, len(tag_hops))
        if np.allclose(record.tags, np.mean([h.tags for h in tag_hops[:k]], axis=0), atol=1e-5)
    ]
    assert len(music_patches) == 1, music_patches
    heard = np.array([h.embedding for h in tag_hops[: music_patches[0]]])
    pooled = np.concatenate([heard.mean(axis=0), heard.max(axis=0)])
    np.testing.assert_allclose(record.tag_embedding, pooled, rtol=1e-5, atol=1e-5)


def test_silence_is_no_music_in_the_library_and_is_never_recommended(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    """Real `streamer index` (numpy warnings as errors, down into the workers), then
    `recommend` and `library stats`: a silent file is "no music", with no key or tempo, is
    never offered, and cannot be a query; a half-silent one is described by its music;
    NaN samples are analysed as zeros."""
    rng = np.random.default_rng(8)
    folder, db = tmp_path / "music", tmp_path / "library.sqlite"
    folder.mkdir()
    for genre in GENRES:
        soundfile.write(folder / f"{genre}.flac", render_genre(genre, rng, 4.0), TRAIN_RATE)
    soundfile.write(folder / "half.wav", half_silent(rng), TRAIN_RATE)
    soundfile.write(folder / "silent.wav", 1e-4 * rng.standard_normal(8 * TRAIN_RATE), TRAIN_RATE)
    write_nonfinite(folder / "nan.wav", rng)
    outside = tmp_path / "query-nan.wav"
    write_nonfinite(outside, rng)
    env = {**os.environ, "PYTHONWARNINGS": "error::RuntimeWarning"}

    def streamer(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "streamer", *args, "--db", str(db)],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr
        return done

    done = streamer("index", str(folder), "--model", str(trained["onnx"]))
    assert done.returncode == 0 and "6 analysed" in done.stdout + done.stderr
    with Catalogue(db, readonly=True) as catalogue:
        tracks = {record.path.name: record for record in catalogue.tracks()}
    silent, half = tracks["silent.wav"], tracks["half.wav"]
    assert not silent.has_music
    assert (silent.key, silent.tempo, silent.sections) == (None, None, [])
    assert not silent.embedding.any()
    assert all(tracks[name].has_music for name in tracks if name != "silent.wav")
    assert half.key is not None and half.tempo is not None
    assert [start for start, _ in half.sections] == [0.0]  # its music only
    assert np.isfinite(tracks["nan.wav"].embedding).all()

    for query in (str(folder / "half.wav"), str(outside)):
        done = streamer("recommend", query, "--model", str(trained["onnx"]), "-k", "10")
        assert done.returncode == 0, done.stderr
        assert "silent" not in done.stdout and "same genre" in done.stdout
    done = streamer("recommend", str(folder / "silent.wav"))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"streamer: error: {folder / 'silent.wav'}: no music in it (silent throughout): "
        "give another"
    ]
    done = streamer("library", "stats")
    assert done.returncode == 0
    assert re.search(r"no music\s*│\s*1\s*│", done.stdout), done.stdout


def test_live_now_is_described_by_its_music_hops_only(indexed: dict[str, Path]) -> None:
    """The quiet hops of a pause inside a track add nothing to the live query."""
    from streamer.analysis.hops import Hop
    from streamer.chain import TrackedHop
    from streamer.live.recommend import LiveRecommender
    from streamer.tracking import TrackerUpdate

    library = Library.open(indexed["db"])
    recommender = LiveRecommender(
        Session(library), sample_rate=TRAIN_RATE, hop_seconds=0.5, embedding_seconds=5.0
    )  # 8 s of audio: a list once 5 s are heard
    music, pause = np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.1, 0.8])
    embedding = np.zeros(library.embedding_size, dtype=np.float32)
    for index, (probabilities, level) in enumerate([(music, -20.0), (pause, -80.0)] * 3):
        if index == 5:  # enough audio heard now: this hop takes the snapshot
            recommender.audio(render_genre("tones", np.random.default_rng(2), 8.0))
        time_ = 8.0 + 0.5 * index
        update = TrackerUpdate(
            time=time_, probabilities=probabilities, top="tones", confidence=0.9, state="music",
            segment_start=3.0,
        )  # fmt: skip
        hop = Hop(index, time_, probabilities, embedding, level, np.zeros(67))
        recommender.hop(TrackedHop(hop, update, probabilities))
    recommender._jobs.get_nowait()()  # run the recommender's one job here
    assert recommender._last is not None
    np.testing.assert_allclose(recommender._last.probabilities, music, rtol=1e-6)
    assert len(recommender.ready()) == 1


def test_live_recommendations_hear_musicnn_too(indexed: dict[str, Path]) -> None:
    """The live query carries musicnn's view (embedding and tags) of the recent patches:
    noise heard live is explained by the descriptors it shares with the library's noise."""
    from streamer.analysis.hops import Hop
    from streamer.analysis.tagger import TagAnalyzer, TagModel, shipped_tagger_paths
    from streamer.chain import TrackedHop
    from streamer.live.recommend import LiveRecommender
    from streamer.tracking import TrackerUpdate

    library = Library.open(indexed["db"])
    audio = render_genre("noise", np.random.default_rng(9), 8.0)
    analyzer = TagAnalyzer([TagModel(p) for p in shipped_tagger_paths()], input_rate=TRAIN_RATE)
    tag_hops = analyzer.push(audio)
    assert len(tag_hops) == 2
    recommender = LiveRecommender(
        Session(library), sample_rate=TRAIN_RATE, hop_seconds=0.5, tag_labels=analyzer.labels,
        embedding_seconds=5.0,
    )  # fmt: skip
    recommender.audio(audio)
    noise = np.array([0.1, 0.8, 0.1])
    embedding = np.zeros(library.embedding_size, dtype=np.float32)
    for index, tags in enumerate(tag_hops):
        time_ = 8.0 + 0.5 * index
        update = TrackerUpdate(
            time=time_, probabilities=noise, top="noise", confidence=0.9, state="music",
            segment_start=3.0,
        )  # fmt: skip
        recommender.hop(
            TrackedHop(
                Hop(index, time_, noise, embedding, -20.0, np.zeros(67)), update, noise, tags
            )
        )
    recommender._jobs.get_nowait()()  # run the recommender's one job here
    assert recommender._last is not None and len(recommender._last.tag_hops) == 1
    (message,) = recommender.ready()
    reasons = " ".join(" ".join(t["reasons"]) for t in message["tracks"])
    assert "also electronic" in reasons, message["tracks"]


def test_with_the_shipped_models_a_track_gets_the_decisions_genres(tmp_path: Path) -> None:
    """The shipped CNN's library tracks are described by the decision `streamer tag` makes,
    over its genres (electronic too); another model's by that model alone."""
    from streamer.analysis.fusion import shipped_fusion
    from streamer.analysis.model import DEFAULT_MODEL, GenreModel
    from streamer.cli.options import model_labels
    from streamer.library.indexer import analyse_file, load_taggers

    path = tmp_path / "noise.flac"
    soundfile.write(path, render_genre("noise", np.random.default_rng(3), 9.0), TRAIN_RATE)
    model, taggers = GenreModel(), load_taggers()
    fusion = shipped_fusion(model.labels)
    assert fusion is not None
    decided = analyse_file(path, model, taggers=taggers, fusion=fusion)
    alone = analyse_file(path, model, taggers=taggers)
    assert decided.labels == list(fusion.labels) == [*model.labels, "electronic"]
    assert alone.labels == list(model.labels)
    assert decided.probabilities.sum() == pytest.approx(1.0)
    assert decided.probabilities[-1] > 0.1 > alone.probabilities.sum() - 1.0  # tags heard
    assert decided.taggers_sha256 != alone.taggers_sha256  # a new decision re-analyses
    assert model_labels(DEFAULT_MODEL) == fusion.labels  # so --genre electronic is valid


def test_new_key_and_tempo_estimators_re_analyse_the_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A catalogue's records say what analysed them: new descriptors (another
    `DESCRIPTOR_VERSION`) change that, so `index` decodes every track once more."""
    from streamer.library import indexer

    before = indexer.analysis_sha256(["a" * 64], None)
    assert indexer.analysis_sha256(["a" * 64], None) == before
    monkeypatch.setattr(indexer, "DESCRIPTOR_VERSION", indexer.DESCRIPTOR_VERSION + 1)
    assert indexer.analysis_sha256(["a" * 64], None) != before
