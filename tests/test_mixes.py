"""The mix builder (`training.mixes`): the truth it writes is the audio it writes.

Short tracks (seconds, not minutes) rendered by the real corpus code (MMA, TimGM6mb),
real espeak-ng speech, and a real set laid out on disk like the development set.
"""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import dominant_frequency, write_sine

from training import corpus
from training.grooves import GTZAN_GENRES
from training.mixes import (
    BREAK_FADE,
    EXCERPT_FADE,
    HELD_OUT_FRACTION,
    HELD_OUT_SEED,
    Piece,
    assemble,
    load_truth,
    real_mixes,
    side_families,
    synthetic_mix,
    write_mix,
)
from training.notmusic import speak

RATE = 8000
SHORT = {"seconds": (8.0, 10.0), "long_seconds": (8.0, 10.0), "genres": ("rock", "jazz", "blues")}


def rms_dbfs(audio: np.ndarray) -> float:
    return 20 * math.log10(float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) + 1e-12)


def samples(seconds: float) -> int:
    return round(seconds * RATE)


def test_pieces_lie_where_the_truth_says_with_equal_power_crossfades() -> None:
    """A track, real speech, a track crossfaded into a third: away from the overlaps each
    stretch of the mix is its piece exactly; in a crossfade the two gains keep the power
    (cos^2 + sin^2 = 1) and are equal at the change the truth gives."""
    rng = np.random.default_rng(0)
    said = speak("stay tuned after the break", voice="en", rate_wpm=170, pitch=50,
                 sample_rate=RATE)  # fmt: skip
    a, b, c = (rng.uniform(-0.5, 0.5, n * RATE).astype(np.float32) for n in (20, 30, 25))

    def pieces(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> list[Piece]:
        return [
            Piece(a, "music", "track", info={"genre": "rock", "source": "a"}),
            Piece(said, "not-music", "speech", overlap=BREAK_FADE),
            Piece(b, "music", "track", overlap=BREAK_FADE, info={"genre": "jazz", "source": "b"}),
            Piece(c, "music", "track", overlap=8.0, info={"genre": "jazz", "source": "c"}),
        ]

    audio, known = assemble(pieces(a, b, c), sample_rate=RATE)
    fade = samples(BREAK_FADE)
    total = len(a) + len(said) + len(b) + len(c) - 2 * fade - 8 * RATE
    assert len(audio) == total and known["duration"] == total / RATE
    (speech,) = known["speech"]
    s0, s1 = samples(speech["start"]), samples(speech["end"])
    assert (s0, s1) == (len(a) - fade, len(a) - fade + len(said))
    np.testing.assert_allclose(audio[s0 + fade : s1 - fade], said[fade:-fade], atol=1e-6)
    tracks = known["tracks"]
    assert [t["source"] for t in tracks] == ["a", "b", "c"] and tracks[0]["start"] == 0
    b0, c0 = samples(tracks[1]["start"]), samples(tracks[2]["start"])
    assert b0 == s1 - fade and c0 == b0 + len(b) - 8 * RATE
    np.testing.assert_allclose(audio[: len(a) - fade], a[:-fade], atol=1e-6)
    np.testing.assert_allclose(audio[b0 + fade : c0], b[fade : c0 - b0], atol=1e-6)
    np.testing.assert_allclose(audio[b0 + len(b) :], c[8 * RATE :], atol=1e-6)
    # The b -> c gains, read back from mixes of ones and zeros.
    span = slice(c0, b0 + len(b))
    one_b, one_c = np.ones_like(b), np.ones_like(c)
    gain_b = assemble(pieces(a, one_b, 0 * one_c), sample_rate=RATE)[0][span].astype(float)
    gain_c = assemble(pieces(a, 0 * one_b, one_c), sample_rate=RATE)[0][span].astype(float)
    np.testing.assert_allclose(gain_b**2 + gain_c**2, 1.0, atol=1e-5)
    assert gain_b[0] > 0.99 and gain_c[-1] > 0.99
    change = known["changes"][2]
    assert change == pytest.approx((c0 + b0 + len(b)) / 2 / RATE, abs=1e-3)
    middle = samples(change) - c0
    assert gain_b[middle] == pytest.approx(gain_c[middle], abs=1e-3)
    assert [s["state"] for s in known["segments"]] == ["music", "not-music", "music", "music"]
    assert known["changes"] == [s["start"] for s in known["segments"][1:]]


def test_a_crossfade_longer_than_a_piece_is_cut_to_that_piece() -> None:
    """A 2 s piece between two long ones, faded in over 5 s and out over 5 s: each fade
    stops at the short piece's length, so the pieces stay in order and the audio is whole."""
    ones = [np.ones(n * RATE, np.float32) for n in (6, 2, 6)]
    pieces = [
        Piece(ones[0], "music", "track", info={"genre": "rock", "source": "a"}),
        Piece(ones[1], "music", "track", overlap=5.0, info={"genre": "jazz", "source": "b"}),
        Piece(ones[2], "music", "track", overlap=5.0, info={"genre": "rock", "source": "c"}),
    ]
    audio, known = assemble(pieces, sample_rate=RATE)
    starts = [t["start"] for t in known["tracks"]]
    assert starts == [0.0, 4.0, 4.0] and len(audio) == 10 * RATE
    assert known["changes"] == sorted(known["changes"])
    np.testing.assert_allclose(audio[: 4 * RATE], 1.0, atol=1e-6)


def test_a_synthetic_mix_holds_its_tracks_speech_and_silence_where_its_truth_says() -> None:
    """Four short corpus tracks: a 5-15 s crossfade, speech, then silence between them."""
    audio, known = synthetic_mix(
        side="train", seed=5, index=0, tracks=4, breaks=("crossfade", "speech", "silence"),
        break_seconds=(4.0, 5.0), sample_rate=RATE, **SHORT,
    )  # fmt: skip
    assert known["duration"] == len(audio) / RATE and known["sample_rate"] == RATE
    tracks, (speech,), (silence,) = known["tracks"], known["speech"], known["silence"]
    assert len(tracks) == 4
    for track in tracks:
        assert track["family"] in side_families(track["genre"], side="train")
        assert 8.0 <= track["end"] - track["start"] <= 10.0 + 1e-3
    first, second, third, fourth = tracks
    assert 5.0 <= first["end"] - second["start"] <= 15.0  # the crossfade
    assert speech["start"] == pytest.approx(second["end"] - BREAK_FADE, abs=1e-3)
    assert third["start"] == pytest.approx(speech["end"] - BREAK_FADE, abs=1e-3)
    assert silence["start"] == pytest.approx(third["end"] - BREAK_FADE, abs=1e-3)
    assert fourth["start"] == pytest.approx(silence["end"] - BREAK_FADE, abs=1e-3)
    assert fourth["end"] == pytest.approx(known["duration"], abs=1e-3)
    fade = BREAK_FADE + 0.01
    inside = audio[samples(silence["start"] + fade) : samples(silence["end"] - fade)]
    assert inside.size > 3 * RATE and not inside.any()
    said = audio[samples(speech["start"] + fade) : samples(speech["end"] - fade)]
    assert -26.0 < rms_dbfs(said) < -14.0  # the level speech is drawn at, -24 to -16 dBFS
    for track in tracks:  # music throughout each track, not a render that stopped
        music = audio[samples(track["start"] + 1) : samples(track["end"] - 1)]
        seconds = music[: music.size // RATE * RATE].reshape(-1, RATE)
        assert min(rms_dbfs(s) for s in seconds) > -45.0
    segments = known["segments"]
    assert segments[0]["start"] == 0 and segments[-1]["end"] == known["duration"]
    assert all(x["end"] == y["start"] for x, y in itertools.pairwise(segments))
    assert [s["state"] for s in segments] == [
        "music", "music", "not-music", "music", "silence", "music",
    ]  # fmt: skip
    assert known["changes"][0] == pytest.approx((first["end"] + second["start"]) / 2, abs=1e-3)


def test_a_mix_is_a_function_of_its_seed_and_index() -> None:
    """The same arguments give the same samples and truth (speech and talk-over included);
    another seed gives another mix."""
    args = {"side": "train", "index": 1, "tracks": 2, "flavour": "talk", "sample_rate": RATE}
    first = synthetic_mix(seed=9, breaks=("speech",), **args, **SHORT)
    again = synthetic_mix(seed=9, breaks=("speech",), **args, **SHORT)
    other = synthetic_mix(seed=10, breaks=("speech",), **args, **SHORT)
    assert first[1] == again[1] and first[0].tobytes() == again[0].tobytes()
    assert first[1]["speech"] and other[1] != first[1]


def test_cut_mixes_hold_the_crossfaded_mixes_tracks_with_one_time_per_change() -> None:
    """``fades=(0, 0)``: the same tracks (families, lengths, renderings) as with crossfades,
    laid end to end, so each change is one instant: where one track ends and the next
    starts."""
    args = {"side": "train", "seed": 5, "index": 0, "tracks": 3, "sample_rate": RATE}
    _, faded = synthetic_mix(breaks=("crossfade", "crossfade"), fades=(2.0, 3.0), **args, **SHORT)
    audio, cut = synthetic_mix(breaks=("crossfade", "crossfade"), fades=(0.0, 0.0), **args, **SHORT)
    keys = ("genre", "source", "tempo")
    assert [[t[k] for k in keys] for t in cut["tracks"]] == [
        [t[k] for k in keys] for t in faded["tracks"]
    ]
    for before, after in itertools.pairwise(cut["tracks"]):
        assert after["start"] == before["end"]
    assert cut["changes"] == [t["start"] for t in cut["tracks"][1:]]
    lengths = [t["end"] - t["start"] for t in faded["tracks"]]
    assert len(audio) / RATE == pytest.approx(sum(lengths), abs=1e-3)
    assert faded["duration"] < cut["duration"] - 2 * 2.0


def test_the_test_side_draws_only_held_out_families_in_other_voices() -> None:
    """Train and test split each genre's families as the shipped model's held-out split
    does; a test-side track is a held-out family rendered with the held-out soundfont."""
    for genre in GTZAN_GENRES:
        held = corpus.held_out_families(genre, seed=HELD_OUT_SEED, fraction=HELD_OUT_FRACTION)
        train, test = side_families(genre, side="train"), side_families(genre, side="test")
        assert set(test) == held and not set(train) & held
        assert set(train) | held == {f.name for f in corpus.genre_families(genre)}
    _, known = synthetic_mix(side="test", seed=3, index=0, tracks=2, sample_rate=RATE, **SHORT)
    for track in known["tracks"]:
        assert track["held_out"] and track["family"] in side_families(track["genre"], side="test")
        assert "TimGM6mb.sf2" in track["source"]


def test_the_validation_side_draws_the_calibrations_families_of_every_genre() -> None:
    """The families the shipped decision was calibrated on (none the CNN trained on, none
    held out), some for every genre, so a validation mix can hold any of them."""
    import json

    from training.mixes import VALIDATION_FAMILIES

    families = set(json.loads(VALIDATION_FAMILIES.read_text())["calibration"]["families"])
    for genre in GTZAN_GENRES:
        held = corpus.held_out_families(genre, seed=HELD_OUT_SEED, fraction=HELD_OUT_FRACTION)
        validation = side_families(genre, side="validation")
        assert validation and set(validation) <= families and not set(validation) & held


def test_real_mixes_join_excerpts_of_a_track_and_crossfade_tracks(tmp_path: Path) -> None:
    """A real set on disk (sines for tracks): every track once, its excerpts in a row as
    one track, each track's audio its own."""
    tones = {"A": 300.0, "B": 500.0, "C": 700.0}
    rows = []
    (tmp_path / "clips").mkdir()
    for name, excerpts in (("A", 3), ("B", 2), ("C", 1)):
        for k in range(excerpts):
            clip = f"clips/{name}{k}.wav"
            write_sine(tmp_path / clip, freq=tones[name], seconds=20.0, rate=RATE)
            rows.append({"file": clip, "expected": name.lower(), "track": f"{name} @{25 * k}%"})
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "expected", "track"])
        writer.writeheader()
        writer.writerows(rows)
    mixes = real_mixes(tmp_path, seed=1, tracks_per_mix=(2, 2))
    assert [len(known["tracks"]) for _, known in mixes] == [2, 1]
    seen = [t["source"] for _, known in mixes for t in known["tracks"]]
    assert sorted(seen) == ["A", "B", "C"]
    for audio, known in mixes:
        assert known["duration"] == len(audio) / RATE
        for track in known["tracks"]:
            n = len(track["excerpts"])
            assert track["excerpts"] == [f"clips/{track['source']}{k}.wav" for k in range(n)]
            assert track["genre"] == track["source"].lower()
            length = track["end"] - track["start"]
            assert length == pytest.approx(n * 20.0 - (n - 1) * EXCERPT_FADE, abs=1e-3)
            middle = audio[samples(track["start"] + 7.5) : samples(track["end"] - 7.5)]
            assert dominant_frequency(middle, RATE) == pytest.approx(tones[track["source"]], abs=1)
        if len(known["tracks"]) == 2:
            first, second = known["tracks"]
            assert 5.0 <= first["end"] - second["start"] <= 15.0
            assert known["changes"] == [
                pytest.approx((first["end"] + second["start"]) / 2, abs=1e-3)
            ]


def test_a_written_mix_reads_back_as_its_truth_and_samples(tmp_path: Path) -> None:
    audio, known = synthetic_mix(side="train", seed=4, index=2, tracks=2, sample_rate=RATE, **SHORT)
    wav = write_mix(tmp_path, "mix", audio, known)
    back, rate = sf.read(wav, dtype="float32")
    assert rate == RATE and len(back) == len(audio)
    np.testing.assert_allclose(back, audio, atol=1 / 2**14)
    assert load_truth(wav) == {"audio": "mix.wav", **known}
