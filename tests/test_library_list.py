"""`streamer library list`: filters, sorting, the table, JSON and M3U8; and the playlist
of `streamer recommend --playlist`; and `library export --format rekordbox-xml`.

Six generated clips are indexed with the shipped models by the real `streamer index`;
their tempos and keys are then set in the catalogue to known values (the estimators are
measured elsewhere: here the filters are under test).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import mutagen.flac
import numpy as np
import pytest
import soundfile
from conftest import TRAIN_RATE, render_genre
from test_write_tags import streamer

from streamer.library.catalogue import Catalogue

TRACKS = {  # file: (tempo, key, title, artist)
    "one.flac": (124.0, "A minor", "Night Drive Through The Very Long Tunnel Of Sound", "Kay"),
    "two.flac": (62.0, "C major", None, None),
    "three.flac": (128.4, "E minor", "Sunrise", "Bee"),
    "four.flac": (90.0, "B major", None, None),
    "five.flac": (140.0, "D minor", None, None),
    "six.flac": (None, None, None, None),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("browse")
    folder, db = work / "music", work / "library.sqlite"
    folder.mkdir()
    rng = np.random.default_rng(6)
    for index, (name, (_, _, title, artist)) in enumerate(TRACKS.items()):
        genre = ("tones", "noise", "clicks")[index % 3]
        soundfile.write(folder / name, render_genre(genre, rng, seconds=4.0), TRAIN_RATE)
        if title:
            tags = mutagen.flac.FLAC(folder / name)
            tags.update({"title": title, "artist": artist or ""})
            tags.save()
    done = streamer("index", str(folder), "--db", str(db), "--workers", "1")
    assert done.returncode == 0, done.stderr
    raw = sqlite3.connect(db)
    with raw:
        for name, (tempo, key, _, _) in TRACKS.items():
            raw.execute(
                "UPDATE tracks SET tempo = ?, key = ? WHERE path = ?",
                (tempo, key, str((folder / name).resolve())),
            )
    raw.close()
    return {"folder": folder, "db": db}


def listed(library: dict[str, Path], *args: str) -> list[str]:
    """The file names `library list --format json` gives, in its order."""
    done = streamer("library", "list", "--format", "json", "--db", str(library["db"]), *args)
    assert done.returncode == 0, done.stderr
    return [Path(track["path"]).name for track in json.loads(done.stdout)]


def test_filters_by_bpm_with_half_and_double_time_key_neighbours_and_text(
    library: dict[str, Path],
) -> None:
    assert set(listed(library, "--bpm", "120-128.5")) == {"one.flac", "two.flac", "three.flac"}
    assert set(listed(library, "--bpm", "60-64")) == {"one.flac", "two.flac"}  # 124 halved
    neighbours = {"one.flac", "two.flac", "three.flac", "five.flac"}  # 8A, 8B, 9A, 7A
    for key in ("8A", "Am", "1m", "A minor"):
        assert set(listed(library, "--key", key)) == neighbours, key
    assert set(listed(library, "--key", "8A", "--bpm", "120-130")) == {
        "one.flac",
        "two.flac",
        "three.flac",
    }
    assert listed(library, "--text", "NIGHT") == ["one.flac"]
    assert listed(library, "--text", "bee") == ["three.flac"]
    assert listed(library, "--text", "four") == ["four.flac"]  # the file name of untagged
    with Catalogue(library["db"], readonly=True) as catalogue:
        tracks = catalogue.tracks(sections=False)
    genre = {t.path.name: t.labels[int(np.argmax(t.probabilities))] for t in tracks}
    wanted = genre["one.flac"]
    assert set(listed(library, "--genre", wanted.upper())) == {
        name for name, label in genre.items() if label == wanted
    }


def test_sorts_put_unknown_values_last(library: dict[str, Path]) -> None:
    by_bpm = ["two.flac", "four.flac", "one.flac", "three.flac", "five.flac", "six.flac"]
    assert listed(library, "--sort", "bpm") == by_bpm
    assert listed(library, "--sort", "bpm", "--reverse") == [*by_bpm[-2::-1], "six.flac"]
    # Camelot order: 1B (B major), 7A (D minor), 8A (A minor), 8B (C major), 9A (E minor)
    by_key = ["four.flac", "five.flac", "one.flac", "two.flac", "three.flac", "six.flac"]
    assert listed(library, "--sort", "key") == by_key
    assert listed(library, "--sort", "added") == sorted(TRACKS)  # indexed in order of path
    assert listed(library, "--sort", "artist", "--limit", "2") == ["three.flac", "one.flac"]


def test_the_table_fits_80_columns_and_its_ids_work_with_recommend(
    library: dict[str, Path],
) -> None:
    db = str(library["db"])
    done = streamer("library", "list", "--db", db, "--sort", "bpm")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.rstrip("\n").splitlines()
    assert len(lines) == 1 + len(TRACKS) and max(len(line) for line in lines) <= 80, lines
    assert lines[0].split() == ["id", "track", "genre", "BPM", "key", "time"]
    assert lines[1].split()[1:2] + lines[1].split()[-4:] == ["two.flac", "62", "8B", "C", "0:04"]
    assert lines[-1].split()[1] == "six.flac" and len(lines[-1].split()) == 4  # no BPM, key
    night = next(line for line in lines if "Kay - Night" in line)
    assert "…" in night and "8A Am" in night and "0:04" in night  # cut, not wrapped
    track_id = night.split()[0]
    done = streamer("recommend", track_id, "--db", db, "-k", "2")
    assert done.returncode == 0, done.stderr
    assert f"library track {track_id}" in done.stdout


def test_m3u8_playlists_from_list_and_recommend(library: dict[str, Path], tmp_path: Path) -> None:
    db = str(library["db"])
    playlist = tmp_path / "lists" / "night.m3u8"
    playlist.parent.mkdir()
    done = streamer("library", "list", "--db", db, "--key", "8A", "--sort", "bpm",
                    "--format", "m3u8", "--output", str(playlist))  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = playlist.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U"
    entries = list(zip(lines[1::2], lines[2::2], strict=True))
    names = [Path(path).name for _, path in entries]
    assert names == ["two.flac", "one.flac", "three.flac", "five.flac"]
    assert all(not Path(path).is_absolute() for _, path in entries)
    assert all((playlist.parent / path).resolve().is_file() for _, path in entries)
    assert entries[1][0].startswith("#EXTINF:4,Kay - Night Drive")

    recommended = tmp_path / "like-one.m3u8"
    one = library["folder"] / "one.flac"
    done = streamer("recommend", str(one), "--db", db, "-k", "3", "--playlist", str(recommended))
    assert done.returncode == 0, done.stderr
    names = [line for line in recommended.read_text().splitlines() if not line.startswith("#")]
    shown = [name for name in sorted(TRACKS) if name in done.stdout]
    assert sorted(Path(name).name for name in names) == shown and len(shown) == 3
    assert "one.flac" not in shown


def test_wrong_options_are_one_line_errors(library: dict[str, Path]) -> None:
    db = str(library["db"])
    for args, message in (
        (["--genre", "polka"], "not a genre of this library: choose from"),
        (["--format", "m3u8"], "a playlist needs --output"),
        (["--key", "H minor"], "give a key such as 8A"),
        (["--bpm", "fast"], "give a BPM range such as 118-128"),
    ):
        done = streamer("library", "list", "--db", db, *args)
        assert done.returncode == 2, (args, done.stderr)
        error = done.stderr.strip().splitlines()[-1]  # argparse shows the usage above it
        assert error.startswith("streamer") and message in error, done.stderr


def test_export_writes_a_rekordbox_collection_pyrekordbox_reads(
    library: dict[str, Path], tmp_path: Path
) -> None:
    pyrekordbox = pytest.importorskip("pyrekordbox")
    output = tmp_path / "collection.xml"
    done = streamer("library", "export", "--format", "rekordbox-xml", "--output", str(output),
                    "--db", str(library["db"]))  # fmt: skip
    assert done.returncode == 0, done.stderr
    xml = pyrekordbox.RekordboxXml(str(output))
    tracks = {Path(t["Location"]).name: t for t in xml.get_tracks()}
    assert set(tracks) == set(TRACKS)
    assert tracks["one.flac"]["Name"].startswith("Night Drive")
    assert float(tracks["one.flac"]["AverageBpm"]) == pytest.approx(124.0)
    assert tracks["one.flac"]["Tonality"] == "Am"
