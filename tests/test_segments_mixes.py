"""Issue 17's tests on generated sets: `streamer tag` of a DJ mix whose tracklist is known.

The mixes come from `training.mixes` (long corpus renderings joined by equal-power
crossfades, espeak-ng speech and a test tone between tracks) and go through the real
`streamer tag` command with its defaults (the shipped CNN, musicnn's taggers, the fused
decision); the CUE sheet is read back by libcue (pylibcue), a parser nobody here wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from training.mixes import synthetic_mix, write_mix

TOLERANCE = 10.0  # seconds between a CUE track's start and the true change
EDGE = 2.0  # seconds at each end of a break left to the patch (3 s) and the segmenter


def streamer_tag(wav: Path, formats: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamer", "tag", str(wav), "--format", formats,
         "--out", str(wav.parent)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def covered(segments: list[dict[str, Any]], start: float, end: float, *, music: bool) -> float:
    """The share of [start, end) that segments with (music) or without a genre cover."""
    inside = sum(
        max(0.0, min(end, s["end"]) - max(start, s["start"]))
        for s in segments
        if (s["genre"] is not None) == music
    )
    return inside / (end - start)


@pytest.fixture(scope="module")
def four_tracks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Four tracks of about two minutes, four genres, 5-15 s crossfades."""
    audio, known = synthetic_mix(
        side="train", seed=2017, index=0, tracks=4, flavour="plain", same_genre=0.0,
        seconds=(110.0, 130.0), long_seconds=(110.0, 130.0),
    )  # fmt: skip
    return write_mix(tmp_path_factory.mktemp("mix"), "four", audio, known), known


def test_the_cue_sheet_of_a_four_track_mix_has_its_four_tracks_at_the_right_times(
    four_tracks: tuple[Path, dict[str, Any]],
) -> None:
    """A DJ splits a set at its CUE tracks: one per track, each starting within 10 s of
    the crossfade's midpoint (the first at 0)."""
    import pylibcue

    wav, known = four_tracks
    assert len(known["tracks"]) == 4 and len(known["changes"]) == 3
    streamer_tag(wav, "cue")
    cd = pylibcue.Cd.from_str(wav.with_suffix(".cue").read_text(encoding="utf-8"))
    starts = [minutes * 60 + seconds + frames / 75 for minutes, seconds, frames in
              (cd[i].start for i in range(len(cd)))]  # fmt: skip
    assert len(starts) == 4, f"CUE tracks at {starts}, true changes at {known['changes']}"
    for start, true in zip(starts, [0.0, *known["changes"]], strict=True):
        assert abs(start - true) <= TOLERANCE, (starts, known["changes"])


@pytest.fixture(scope="module")
def talk_and_tone(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict[str, Any]]:
    """Three tracks, talk between the first two and a test tone between the next two,
    tagged; its segments and its truth."""
    audio, known = synthetic_mix(
        side="test", seed=2017, index=1, tracks=3, flavour="plain", breaks=("speech", "tone"),
        break_seconds=(10.0, 12.0), seconds=(100.0, 120.0), long_seconds=(100.0, 120.0),
    )  # fmt: skip
    wav = write_mix(tmp_path_factory.mktemp("talk"), "talk", audio, known)
    streamer_tag(wav, "json")
    return json.loads(wav.with_suffix(".json").read_text())["segments"], known


def assert_no_genre(segments: list[dict], stretch: dict[str, float], name: str) -> None:
    share = covered(segments, stretch["start"] + EDGE, stretch["end"] - EDGE, music=False)
    assert share >= 0.95, f"{name} {stretch}: {share:.0%} without a genre; {segments}"


def test_a_tone_between_tracks_gets_no_genre_and_the_tracks_stay_music(
    talk_and_tone: tuple[list[dict], dict[str, Any]],
) -> None:
    """The segments over the tone carry no genre, and the tracks stay music (a detector
    that calls everything not-music fails)."""
    segments, known = talk_and_tone
    (tone,) = known["tones"]
    assert_no_genre(segments, tone, "tone")
    for track in known["tracks"]:
        share = covered(segments, track["start"] + TOLERANCE, track["end"] - TOLERANCE, music=True)
        assert share >= 0.9, f"track {track['start']:.0f}-{track['end']:.0f} s: {share:.0%} music"


def test_talk_between_tracks_gets_no_genre(
    talk_and_tone: tuple[list[dict], dict[str, Any]],
) -> None:
    """The segments over ten seconds of talk between two tracks carry no genre."""
    segments, known = talk_and_tone
    (speech,) = known["speech"]
    assert_no_genre(segments, speech, "speech")
