"""Track descriptors: block and section boundaries change nothing, and the numbers mean what
they say (key, Camelot, tempo, centroid)."""

from __future__ import annotations

import json
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.analysis.describe import (
    HOP_LENGTH,
    N_FFT,
    PITCH_CLASSES,
    SECTION_SECONDS,
    TEMPO_CHUNK,
    TEMPO_PRIOR_BPM,
    DescriptorAccumulator,
    Descriptors,
    _global_tempo,
    _mean_tempogram,
    camelot,
    describe,
    estimate_key,
    keys_compatible,
)
from streamer.capture.file import FileSource

SR = 22050
ARRAYS = ("mfcc_mean", "mfcc_std", "contrast_mean", "chroma_mean")


def music(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise, a chord and clicks at 125 BPM: timbre, pitch and onsets, float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = 0.05 * rng.standard_normal(n)
    for f in (220.0, 277.2, 329.6):
        y += 0.1 * np.sin(2 * np.pi * f * t)
    y[(np.arange(n) % round(0.48 * SR)) < 200] += 0.5
    return y.astype(np.float32)


def tone(midi: int, seconds: float) -> np.ndarray:
    """A harmonic tone (four partials) with short fades, like a plucked note."""
    f = 440.0 * 2 ** ((midi - 69) / 12)
    t = np.arange(int(seconds * SR)) / SR
    y = sum(0.6 ** (h - 1) * np.sin(2 * np.pi * h * f * t) for h in (1, 2, 3, 4))
    return y * np.minimum(1, np.minimum(t / 0.01, (seconds - t) / 0.05))


def chord(notes: tuple[int, ...], seconds: float) -> np.ndarray:
    return sum(tone(n, seconds) for n in notes) / len(notes)


def clicks(bpm: float, seconds: float = 30.0) -> np.ndarray:
    """Short decaying noise bursts (10 ms) every beat."""
    y = np.zeros(int(seconds * SR), dtype=np.float32)
    burst = np.random.default_rng(1).standard_normal(220) * np.exp(-np.arange(220) / 40)
    for start in np.arange(0.0, seconds - 0.05, 60.0 / bpm):
        i = round(start * SR)
        y[i : i + 220] += 0.5 * burst.astype(np.float32)
    return y


def pushed(y: np.ndarray, sizes: list[int], **kwargs: float) -> Descriptors:
    """Push `y` in blocks cycling through `sizes`."""
    accumulator = DescriptorAccumulator(**kwargs)
    position, i = 0, 0
    while position < y.size:
        accumulator.push(y[position : position + sizes[i % len(sizes)]])
        position += sizes[i % len(sizes)]
        i += 1
    assert accumulator.seconds == pytest.approx(y.size / SR)
    return accumulator.result()


def assert_close(a: Descriptors, b: Descriptors, rtol: float = 1e-6) -> None:
    for name in ARRAYS:
        scale = np.abs(getattr(b, name)).max()
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=rtol * scale)
    assert a.centroid_hz == pytest.approx(b.centroid_hz, rel=rtol)
    assert a.key == b.key
    assert a.key_strength == pytest.approx(b.key_strength, rel=rtol, abs=rtol)
    # The same lag; the sub-lag refinement sees the float32 rounding of the STFT, which
    # depends on how the buffer is laid out (about 1e-10 relative).
    assert a.tempo_bpm == pytest.approx(b.tempo_bpm, rel=rtol)


MUSIC = music(7.0)
ONE_PUSH = pushed(MUSIC, [MUSIC.size], section_seconds=2.0)


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 40000), min_size=1, max_size=6))
def test_block_sizes_change_nothing(sizes: list[int]) -> None:
    # Sections of 2 s, so the 7 s signal crosses section edges inside blocks.
    assert pushed(MUSIC, sizes, section_seconds=2.0) == ONE_PUSH


def test_block_sizes_change_nothing_at_the_default_section() -> None:
    y = music(SECTION_SECONDS * 2 + 5.3, seed=3)
    rng = np.random.default_rng(7)
    sizes = [int(s) for s in rng.integers(1, 3 * SR, size=20)]
    assert pushed(y, sizes) == describe(y)


@pytest.mark.parametrize("section_seconds", [1.0, 2.3, 1 + 100 / SR])
def test_section_length_changes_nothing(section_seconds: float) -> None:
    # The carried tail and the onset across the edge make sections one signal.
    assert_close(pushed(MUSIC, [MUSIC.size], section_seconds=section_seconds), describe(MUSIC))


def test_equals_librosa_on_the_whole_signal() -> None:
    """The means and spreads are those of librosa's frames of the whole signal."""
    y = MUSIC
    magnitude = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH, center=False))
    mel = librosa.feature.melspectrogram(S=magnitude**2, sr=SR, n_fft=N_FFT)
    logmel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    mfcc = librosa.feature.mfcc(S=logmel, n_mfcc=20)
    chroma = librosa.feature.chroma_stft(S=magnitude**2, sr=SR, tuning=0.0).mean(axis=1)
    onset = librosa.onset.onset_strength(S=logmel, sr=SR, center=False)
    got = pushed(y, [12345], section_seconds=1.5)
    assert logmel.shape[1] == 1 + (y.size - N_FFT) // HOP_LENGTH
    np.testing.assert_allclose(got.mfcc_mean, mfcc.mean(axis=1), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got.mfcc_std, mfcc.std(axis=1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        got.contrast_mean,
        librosa.feature.spectral_contrast(S=magnitude, sr=SR).mean(axis=1),
        rtol=1e-5,
    )
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=SR).mean()
    assert got.centroid_hz == pytest.approx(centroid, rel=1e-5)
    np.testing.assert_allclose(got.chroma_mean, chroma / chroma.sum(), rtol=1e-5)
    plain = float(librosa.feature.tempo(onset_envelope=onset, sr=SR)[0])
    assert got.tempo_bpm == pytest.approx(plain, rel=0.03)  # within one lag of librosa


def test_chunked_tempogram_is_librosas() -> None:
    rng = np.random.default_rng(5)
    onset = rng.random(2 * TEMPO_CHUNK + 777) * (np.arange(2 * TEMPO_CHUNK + 777) % 22 < 2)
    mean = _mean_tempogram(onset, sample_rate=SR)
    win = mean.shape[0]
    full = librosa.feature.tempogram(onset_envelope=onset, sr=SR, win_length=win)
    np.testing.assert_allclose(mean[:, 0], full.mean(axis=1), rtol=1e-9, atol=1e-12)
    assert (
        librosa.feature.tempo(tg=mean, sr=SR)[0]
        == librosa.feature.tempo(onset_envelope=onset, sr=SR)[0]
    )


def test_c_major_scale_and_chord() -> None:
    scale = [tone(n, 0.4) for n in (60, 62, 64, 65, 67, 69, 71, 72)]
    y = np.concatenate([*scale, chord((48, 60, 64, 67), 2.0)])
    d = describe((0.3 * y).astype(np.float32))
    assert d.key == "C major"
    assert d.key_strength > 0.6


def test_a_minor_triad() -> None:
    y = np.concatenate([chord((57, 60, 64), 2.0), chord((45, 57, 60, 64), 2.0)])
    d = describe((0.3 * y).astype(np.float32))
    assert d.key == "A minor"
    assert d.key_strength > 0.6


def test_estimate_key_finds_every_rotation() -> None:
    for tonic in range(12):
        for mode, third in (("major", 4), ("minor", 3)):
            chroma = np.full(12, 0.05)
            chroma[[tonic, (tonic + third) % 12, (tonic + 7) % 12]] = [1.0, 0.7, 0.8]
            key, strength = estimate_key(chroma)
            assert key == f"{PITCH_CLASSES[tonic]} {mode}"
            assert -1.0 <= strength <= 1.0
    assert estimate_key(np.ones(12)) == ("C major", 0.0)


def test_camelot_codes() -> None:
    keys = [f"{p} {m}" for p in PITCH_CLASSES for m in ("major", "minor")]
    codes = {camelot(k) for k in keys}
    assert codes == {f"{n}{letter}" for n in range(1, 13) for letter in "AB"}
    assert camelot("A minor") == "8A"
    assert camelot("C major") == "8B"
    assert camelot("F# minor") == "11A"
    assert camelot("E major") == "12B"
    assert camelot("Bb minor") == camelot("A# minor") == "3A"
    with pytest.raises(ValueError):
        camelot("H major")


def test_keys_compatible() -> None:
    assert keys_compatible("8A", "8B")
    assert keys_compatible("8A", "9A")
    assert keys_compatible("12A", "1A")
    assert keys_compatible("A minor", "C major")
    assert keys_compatible("A minor", "A minor")
    assert not keys_compatible("8A", "10A")
    assert not keys_compatible("8A", "9B")
    assert not keys_compatible("A minor", "A major")


@pytest.mark.parametrize("bpm", [120.0, 90.0])
def test_click_track_tempo(bpm: float) -> None:
    assert describe(clicks(bpm)).tempo_bpm == pytest.approx(bpm, rel=0.02)


def test_no_periodicity_is_the_prior_centre() -> None:
    """A flat envelope (a steady tone's) scores every lag 0: the prior alone decides, and
    the fastest allowed pulse does not win by being first."""
    assert _global_tempo(np.zeros(2000), sample_rate=SR) == TEMPO_PRIOR_BPM


def arpeggio(root: int, third: int, seconds: float) -> np.ndarray:
    """A triad broken into root, third, fifth and octave, twice, over its root in the bass."""
    notes = [60 + root % 12 + step for step in (0, third, 7, 12)] * 2
    y = np.concatenate([tone(note, seconds / 8) for note in notes])
    return y + 0.7 * tone(36 + root % 12, seconds)[: y.size]


@pytest.mark.parametrize("tonic", range(12))
def test_two_five_one_is_in_the_key_of_one(tonic: int) -> None:
    """ii-V-I-I arpeggiated, in every key: the key of I. The Krumhansl-Kessler profiles
    (the old estimator, and librosa's usual recipe) called every one of them wrong."""
    y = np.concatenate(
        [arpeggio(tonic + root, third, 1.6) for root, third in ((2, 3), (7, 4), (0, 4), (0, 4))]
    )
    assert describe((0.3 * y).astype(np.float32)).key == f"{PITCH_CLASSES[tonic]} major"


def rock_beat(bpm: float, seconds: float = 30.0) -> np.ndarray:
    """Kick on 1, 3 and the "and" of 3, snare on 2 and 4, closed hi-hat on the eighths."""
    rng = np.random.default_rng(4)
    t = np.arange(2000) / SR
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-t * SR / 400)
    snare = rng.standard_normal(1500) * np.exp(-np.arange(1500) / 300)
    hat = rng.standard_normal(300) * np.exp(-np.arange(300) / 30)
    hits = [(0.0, kick, 1.0), (2.0, kick, 1.0), (2.5, kick, 0.7), (1.0, snare, 0.9)]
    hits += [(3.0, snare, 0.9)] + [(i / 2, hat, 0.4) for i in range(8)]
    y = np.zeros(int(seconds * SR))
    beat = 60.0 / bpm
    for bar in range(int(seconds / (4 * beat))):
        for position, sound, gain in hits:
            start = round((4 * bar + position) * beat * SR)
            y[start : start + sound.size] += gain * sound[: y.size - start]
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


@pytest.mark.parametrize("bpm", [70.0, 140.0, 170.0])
def test_a_rock_beat_is_counted_in_beats(bpm: float) -> None:
    """The beat is the pulse with structure above and below it. The best single lag of the
    tempogram (librosa's tempo, the old estimator) counted this beat in eighths at 70 BPM
    (140) and in dotted quarters at 140 and 170 (93 and 113 BPM)."""
    assert describe(rock_beat(bpm)).tempo_bpm == pytest.approx(bpm, rel=0.02)


def test_sine_centroid() -> None:
    t = np.arange(5 * SR) / SR
    d = describe((0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32))
    assert d.centroid_hz == pytest.approx(1000.0, rel=0.15)


def test_bright_noise_has_higher_centroid() -> None:
    noise = np.random.default_rng(2).standard_normal(5 * SR)
    sos = scipy.signal.butter(4, 1000.0, fs=SR, output="sos")
    dark = scipy.signal.sosfilt(sos, noise)
    bright = describe((0.1 * noise).astype(np.float32)).centroid_hz
    assert bright > 2 * describe((0.1 * dark).astype(np.float32)).centroid_hz


def test_silence_is_finite() -> None:
    d = describe(np.zeros(3 * SR, dtype=np.float32))
    assert np.isfinite(d.vector()).all()
    assert all(np.isfinite(getattr(d, name)).all() for name in ARRAYS)
    np.testing.assert_allclose(d.chroma_mean, np.full(12, 1 / 12))
    assert (d.key, d.key_strength, d.tempo_bpm, d.camelot) == (None, 0.0, None, None)


def test_too_little_audio() -> None:
    accumulator = DescriptorAccumulator()
    with pytest.raises(ValueError, match="no audio"):
        accumulator.result()
    accumulator.push(np.zeros(SR // 2, dtype=np.float32))
    with pytest.raises(ValueError, match="too little audio"):
        accumulator.result()
    accumulator.push(np.zeros(SR // 2 + 1, dtype=np.float32))
    assert np.isfinite(accumulator.result().vector()).all()


def test_result_does_not_end_the_stream() -> None:
    accumulator = DescriptorAccumulator(section_seconds=2.0)
    accumulator.push(MUSIC[: 3 * SR])
    accumulator.result()
    accumulator.push(MUSIC[3 * SR :])
    assert accumulator.result() == ONE_PUSH


def test_dict_round_trip() -> None:
    data = json.loads(json.dumps(ONE_PUSH.to_dict()))
    assert Descriptors.from_dict(data) == ONE_PUSH
    with pytest.raises(ValueError, match="unknown"):
        Descriptors.from_dict({**data, "extra": 1})
    with pytest.raises(ValueError, match="20 values"):
        Descriptors.from_dict({**data, "mfcc_mean": [0.0]})


def test_vector_layout() -> None:
    d = ONE_PUSH
    v = d.vector()
    assert v.dtype == np.float32
    assert v.shape == (Descriptors.VECTOR_SIZE,) == (61,)
    np.testing.assert_array_equal(v[0:20], d.mfcc_mean.astype(np.float32))
    np.testing.assert_array_equal(v[20:40], d.mfcc_std.astype(np.float32))
    np.testing.assert_array_equal(v[40:47], d.contrast_mean.astype(np.float32))
    assert v[47] == pytest.approx(np.log(d.centroid_hz))
    np.testing.assert_array_equal(v[48:60], d.chroma_mean.astype(np.float32))
    assert v[60] == pytest.approx(np.log2(d.tempo_bpm))


def test_quiet_frames_pull_neither_key_nor_tempo() -> None:
    """A hum in another key and a click track at another tempo, below the live tracker's
    silence threshold (-50 dBFS), change nothing: only the loud music is described."""
    loud = np.concatenate([chord((60, 64, 67), 3.0), chord((48, 60, 64, 67), 3.0)])
    loud = np.concatenate([0.3 * loud + clicks(120, 6.0), 0.3 * loud + clicks(120, 6.0)])
    alone = describe(loud.astype(np.float32))
    assert (alone.key, round(alone.tempo_bpm / 10)) == ("C major", 12)
    hum = 0.002 * chord((54, 58, 61), 24.0)  # F# major, about -60 dBFS
    quiet_clicks = 0.02 * clicks(80, 24.0)  # each burst stays below -50 dBFS
    d = describe(np.concatenate([loud, hum + quiet_clicks]).astype(np.float32))
    assert d.key == alone.key
    assert d.tempo_bpm == pytest.approx(alone.tempo_bpm, rel=0.03)


def test_an_input_that_was_all_nan_is_described_as_silence(tmp_path: Path) -> None:
    """The file source turns NaN into zeros; librosa then sees silence: finite, no key, no
    tempo (it raised ParameterError on NaN)."""
    path = tmp_path / "nan.wav"
    soundfile.write(path, np.full(3 * SR, np.nan, dtype=np.float32), SR, subtype="FLOAT")
    accumulator = DescriptorAccumulator(sample_rate=SR)
    with FileSource(path, sample_rate=SR) as source:
        while (block := source.read()) is not None:
            accumulator.push(block)
    d = accumulator.result()
    assert np.isfinite(d.vector()).all()
    assert (d.key, d.tempo_bpm) == (None, None)
