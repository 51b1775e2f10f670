"""Live recommendations a DJ can act on: `streamer listen --library` plays a library track
(``--file``), never recommends it, shows it steadily as "now playing", keeps the best fits
rather than rotating to worse ones, and leaves an M3U8 of the session at the end.

The library is real (`streamer index` into SQLite) and made of generated tracks of the
tiny test model's three "genres" (conftest), three of each, every one of its own pitch,
pulse or burst rate, so that each track sounds like itself and like its genre.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import m3u8
import numpy as np
import pytest
import soundfile
from conftest import TRAIN_RATE, render_genre
from listening import NO_PULSE

from streamer.cli import main
from streamer.library.catalogue import Catalogue
from streamer.outlets import protocol

SECONDS = 36.0  # three lists (one every 10 s of music, the first at 10 s), played in real time


@pytest.fixture(scope="module")
def library(trained: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("live-library")
    folder, db = work / "music", work / "library.sqlite"
    folder.mkdir()
    rng = np.random.default_rng(18)
    for genre in ("tones", "noise", "clicks"):
        for index in range(3):
            path = folder / f"{genre}-{index}.flac"
            soundfile.write(path, render_genre(genre, rng, SECONDS), TRAIN_RATE)
    assert main(["index", str(folder), "--db", str(db), "--model", str(trained["onnx"])]) == 0
    with Catalogue(db, readonly=True) as catalogue:
        ids = {Path(t.path).name: t.id for t in catalogue.tracks()}
    return {"folder": folder, "db": db, "model": trained["onnx"], "ids": ids}


def listen(library: dict[str, Any], played: Path, *extra: str) -> list[dict[str, Any]]:
    """`streamer listen --file played --library --no-view`: its recommendation lists. The
    file is paced like a line-in (``--fast`` would end before the recommender's lists)."""
    done = subprocess.run(
        [sys.executable, "-m", "streamer", "listen", "--model", str(library["model"]),
         "--file", str(played), "--no-view", "--port", "0", "--library",
         "--db", str(library["db"]), "-k", "3", *extra],
        capture_output=True, text=True, timeout=300, env=NO_PULSE,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    for message in messages:
        protocol.validate(message)
    return [m for m in messages if m["type"] == "recommendations"]


def test_the_library_track_playing_is_never_recommended_and_steadily_now_playing(
    library: dict[str, Any], tmp_path: Path
) -> None:
    name = "tones-1.flac"
    playlist = tmp_path / "session.m3u8"
    lists = listen(library, library["folder"] / name, "--playlist", str(playlist))
    own = library["ids"][name]
    assert len(lists) == 3, lists
    timeline = [(m["time"], (m["now_playing"] or {}).get("id"), [t["id"] for t in m["tracks"]])
                for m in lists]  # fmt: skip
    assert all(own not in tracks for _, _, tracks in timeline), timeline
    assert all(playing == own for _, playing, _ in timeline), timeline  # from the first list on
    for message in lists:  # one scale, percent, on the list and on "now playing" alike
        similarities = [t["similarity"] for t in message["tracks"]]
        assert all(0 <= s <= 100 for s in similarities)
        assert similarities == sorted(similarities, reverse=True)
        assert message["tracks"][0]["reasons"][0] == f"sounds {similarities[0]:.0f}% alike"
        assert 50 <= message["now_playing"]["similarity"] <= 100
    # the best fits for now, not a rotation: the same audio keeps the same best fit
    assert len({tracks[0] for _, _, tracks in timeline}) == 1, timeline
    # the session's playlist: the track played, then the last list, best first
    parsed = m3u8.loads(playlist.read_text(encoding="utf-8"), uri=str(playlist))
    names = [Path(s.absolute_uri).name for s in parsed.segments]
    by_id = {track_id: file for file, track_id in library["ids"].items()}
    assert names == [name] + [by_id[i] for i in timeline[-1][2]]
    assert parsed.segments[0].duration == pytest.approx(SECONDS, abs=1)


def test_a_playlist_without_the_library_is_refused_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamer", "listen", "--playlist", str(tmp_path / "x.m3u8"),
         "--no-view", "--port", "0"],
        capture_output=True, text=True, timeout=120, env=NO_PULSE,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "streamer: error: --playlist lists library tracks: add --library"
    ]
