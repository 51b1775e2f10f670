"""Not-music: generated speech, noise, tones and crowds, and the detector fitted on them.

A hop is not music when nothing in it is a genre: talk between tracks or on the radio,
noise, a test tone or a sweep, applause, the murmur of a room. The genre CNN gives every
patch a genre anyway (a sine is "classical" at 99.99 %), so a small detector reads what
the CNN already computed for each hop (`streamer.analysis.hops.Hop`: the 64-d embedding
and the genre probabilities) and says whether it is music; the runtime side is
`streamer.analysis.notmusic`.

Material is generated, never downloaded: speech from the ``espeak-ng`` executable (Debian
package ``espeak-ng``) in many voices, languages, rates and pitches, through the room
chain of `training.augment`; coloured noises; tones, chords of sines and sweeps;
applause and crowds; room tone. Music examples are synthetic corpus clips, clean and
through the room, and speech over a music bed, which is still music.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal
import soundfile
import soxr

from streamer.analysis.hops import Hop, HopAnalyzer
from streamer.analysis.model import GenreModel
from streamer.analysis.notmusic import (
    NOT_MUSIC_VERSION,
    THRESHOLD,
    NotMusicDetector,
    detector_features,
)
from streamer.errors import StreamerError
from streamer.files import write_atomically
from training.augment import (
    _rms,
    _unit_rms,
    add_noise,
    babble,
    colored_noise,
    evaluation_room,
    random_room,
)

_TEXT = (
    "the night is long and the city never sleeps we are going home after the show "
    "welcome back to the programme here is the news at the top of the hour traffic is "
    "slow on the ring road the weather stays dry with a light wind from the west thank "
    "you all for coming tonight please give it up for our next guest tickets are still "
    "available at the door the bar closes in ten minutes this one goes out to everyone "
    "who called in stay tuned after the break we will be right back the train to the "
    "airport leaves from platform four mind the gap between the train and the platform"
)
_WORDS = tuple(_TEXT.split())


def speech_text(rng: np.random.Generator, *, words: tuple[int, int] = (6, 16)) -> str:
    """A random sentence of `words` (low, high) words, sometimes with a number in it.

    Numbers make espeak-ng say real words of each voice's own language, whatever the
    language of the word list; the English words are read with that language's phonetics,
    which is still speech and all a detector needs.
    """
    count = int(rng.integers(words[0], words[1] + 1))
    chosen = [str(word) for word in rng.choice(_WORDS, size=count)]
    if rng.random() < 0.5:
        chosen.insert(int(rng.integers(0, count)), str(int(rng.integers(2, 10_000))))
    return " ".join(chosen) + rng.choice([".", "?", "!", ","]).item()


SPEECH_TEXTS = tuple(speech_text(np.random.default_rng(seed)) for seed in range(32))
"""A fixed set of sentences for callers that want speech without drawing their own."""


def speak(text: str, *, voice: str, rate_wpm: int, pitch: int, sample_rate: int) -> np.ndarray:
    """`text` spoken by espeak-ng as float32 mono at `sample_rate`.

    Parameters
    ----------
    text : str
        What to say.
    voice : str
        An espeak-ng voice: a language, optionally with a variant (``"en-us"``, ``"de+f3"``).
    rate_wpm : int
        Words per minute (espeak-ng's ``-s``; 80 to 450).
    pitch : int
        Base pitch, 0 to 99 (espeak-ng's ``-p``).
    sample_rate : int
        Output rate in Hz; espeak-ng's own rate (22050 Hz) is resampled with soxr.
    """
    executable = shutil.which("espeak-ng")
    if executable is None:
        raise StreamerError("espeak-ng is not installed: apt-get install espeak-ng")
    command = [executable, "-v", voice, "-s", str(rate_wpm), "-p", str(pitch), "--stdout", text]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise StreamerError(f"espeak-ng failed for voice {voice!r}: {(reason or ['no audio'])[0]}")
    # espeak-ng streams its WAV with placeholder sizes in the header; libsndfile reads to EOF.
    audio, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


# --- Voices ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Voices:
    """The espeak-ng languages and voice variants one side of the split speaks with."""

    languages: tuple[str, ...]
    variants: tuple[str, ...]


TRAINING_VOICES = Voices(
    languages=(
        "en-us", "en-gb", "de", "fr-fr", "es", "it", "nl", "pl", "ru", "pt-br", "sv", "cs",
        "tr", "hi", "cmn", "ja", "ar", "fi", "hu", "el", "he", "id",
    ),
    variants=(
        "", "m1", "m2", "m3", "m4", "f1", "f2", "f3", "klatt", "klatt2", "whisper", "Alicia",
        "Andy", "adam", "belinda", "benjamin", "david", "ed", "linda", "max", "pablo", "steph",
    ),
)  # fmt: skip
HELD_OUT_VOICES = Voices(
    languages=("en-gb-scotland", "da", "pt", "ro", "uk", "ko", "vi", "sw", "ta", "ca", "bg", "fa"),
    variants=("m5", "m6", "m7", "f4", "f5", "klatt3", "whisperf", "croak", "grandpa", "Annie"),
)  # fmt: skip
"""Languages and variants no training clip uses: the test side's speakers are new."""


def random_speaker(rng: np.random.Generator, voices: Voices) -> dict[str, Any]:
    """`speak`'s voice, rate and pitch, drawn from `voices`."""
    language = str(rng.choice(voices.languages))
    variant = str(rng.choice(voices.variants))
    return {
        "voice": f"{language}+{variant}" if variant else language,
        "rate_wpm": int(rng.integers(110, 300)),
        "pitch": int(rng.integers(10, 90)),
    }


# --- Not-music generators: (n, *, rng, sample_rate, voices) -> unit-RMS signal ---------


def talk(n: int, *, rng: np.random.Generator, sample_rate: int, voices: Voices) -> np.ndarray:
    """Sentences with short pauses, by one speaker or two taking turns (a radio, a host)."""
    speakers = [random_speaker(rng, voices) for _ in range(1 if rng.random() < 0.7 else 2)]
    pieces: list[np.ndarray] = []
    total = 0
    while total < n:
        speaker = speakers[len(pieces) // 2 % len(speakers)]
        said = speak(speech_text(rng), sample_rate=sample_rate, **speaker)
        pause = np.zeros(int(rng.uniform(0.1, 0.8) * sample_rate), dtype=np.float32)
        pieces += [said, pause]
        total += said.size + pause.size
    start = int(rng.integers(0, max(1, total - n)))
    return _unit_rms(np.concatenate(pieces)[start : start + n])


def noise(n: int, *, rng: np.random.Generator, sample_rate: int, voices: Voices) -> np.ndarray:
    """Coloured noise, sometimes band-limited and slowly swelling (wind, rain, traffic)."""
    x = colored_noise(n, color=rng.choice(["white", "pink", "brown"]).item(), rng=rng)
    if rng.random() < 0.5:
        low = float(np.exp(rng.uniform(np.log(40.0), np.log(2000.0))))
        high = min(low * float(np.exp(rng.uniform(np.log(2.0), np.log(50.0)))), sample_rate * 0.45)
        sos = scipy.signal.butter(2, [low, high], "bandpass", fs=sample_rate, output="sos")
        x = scipy.signal.sosfilt(sos, x)
    if rng.random() < 0.4:
        t = np.arange(n) / sample_rate
        swell = 1.0 + rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t)
        x = x * swell
    return _unit_rms(x)


def tones(n: int, *, rng: np.random.Generator, sample_rate: int, voices: Voices) -> np.ndarray:
    """A sine, a chord of sines, a sweep, or a beeping test tone."""
    t = np.arange(n) / sample_rate
    kind = rng.choice(["sine", "chord", "sweep", "beeps"]).item()
    if kind == "sweep":
        low, high = 20.0 * float(rng.uniform(1, 5)), float(rng.uniform(4000, 0.45 * sample_rate))
        period = float(rng.uniform(1.0, 10.0))  # a sweep repeats every `period` seconds
        phase = (t % period) / period
        if rng.random() < 0.5:  # logarithmic: the instantaneous frequency is low * k**phase
            k = high / low
            x = np.sin(2 * np.pi * low * period * (k**phase - 1) / np.log(k))
        else:
            x = np.sin(2 * np.pi * period * (low * phase + (high - low) * phase**2 / 2))
        return _unit_rms(x)
    count = 1 if kind != "chord" else int(rng.integers(2, 6))
    freqs = np.exp(rng.uniform(np.log(60.0), np.log(6000.0), size=count))
    x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs)
    if kind == "beeps":
        on = float(rng.uniform(0.1, 1.0))
        x = x * ((t % (on + float(rng.uniform(0.1, 1.0)))) < on)
    return _unit_rms(np.asarray(x))


def crowd(n: int, *, rng: np.random.Generator, sample_rate: int, voices: Voices) -> np.ndarray:
    """Applause (many clappers' short filtered noise bursts), murmur, or both."""
    parts = []
    if rng.random() < 0.7:
        parts.append(applause(n, rng=rng, sample_rate=sample_rate))
    if not parts or rng.random() < 0.5:
        murmur = babble(n, sample_rate=sample_rate, voices=int(rng.integers(4, 16)), rng=rng)
        if rng.random() < 0.5:  # real voices talking at once, far from the microphone
            murmur = murmur + sum(
                talk(n, rng=rng, sample_rate=sample_rate, voices=voices) * rng.uniform(0.3, 1)
                for _ in range(int(rng.integers(2, 5)))
            )
        parts.append(_unit_rms(murmur) * rng.uniform(0.3, 1.0))
    return _unit_rms(sum(parts))


def applause(n: int, *, rng: np.random.Generator, sample_rate: int, bands: int = 6) -> np.ndarray:
    """Clappers, each with its own rate, each clap a decaying noise burst; clappers share
    `bands` filters (the cost of a filter per clapper buys nothing audible)."""
    x = np.zeros(n)
    clap_length = int(0.03 * sample_rate)
    centres = np.exp(rng.uniform(np.log(600.0), np.log(4000.0), size=bands))
    trains = np.zeros((bands, n))
    for _ in range(int(rng.integers(5, 60))):
        period = rng.uniform(0.12, 0.4)  # seconds between one clapper's claps, with jitter
        times = np.cumsum(rng.uniform(0.7, 1.3, size=int(n / sample_rate / period) + 2) * period)
        starts = (times[times * sample_rate < n - clap_length] * sample_rate).astype(int)
        trains[rng.integers(bands), starts] += rng.uniform(0.3, 1.0, size=starts.size)
    for centre, claps in zip(centres, trains, strict=True):
        decay = np.exp(-np.arange(clap_length) / (rng.uniform(0.002, 0.008) * sample_rate))
        sos = scipy.signal.butter(
            2, [centre / 1.6, min(centre * 1.6, 0.45 * sample_rate)], "bandpass",
            fs=sample_rate, output="sos",
        )  # fmt: skip
        burst = scipy.signal.oaconvolve(claps, decay * rng.standard_normal(clap_length))[:n]
        x += scipy.signal.sosfilt(sos, burst)
    return _unit_rms(x)


def room_tone(n: int, *, rng: np.random.Generator, sample_rate: int, voices: Voices) -> np.ndarray:
    """An empty room: dark noise (ventilation, electronics), sometimes a mains hum."""
    x = colored_noise(n, color=rng.choice(["pink", "brown"]).item(), rng=rng)
    if rng.random() < 0.4:
        t = np.arange(n) / sample_rate
        mains = float(rng.choice([50.0, 60.0]))
        hum = sum(np.sin(2 * np.pi * k * mains * t) / k for k in range(1, 6))
        x = x + _unit_rms(np.asarray(hum)) * rng.uniform(0.1, 0.7)
    return _unit_rms(x)


NOT_MUSIC: dict[str, tuple[Callable[..., np.ndarray], tuple[float, float]]] = {
    "speech": (talk, (-35.0, -12.0)),
    "noise": (noise, (-40.0, -10.0)),
    "tones": (tones, (-35.0, -6.0)),
    "crowd": (crowd, (-35.0, -10.0)),
    "room_tone": (room_tone, (-46.0, -36.0)),
}
"""Each kind of not-music: its generator and the range of its RMS level in dBFS. Room tone
stays above the chain's silence threshold (-50 dBFS), where it would be silence instead."""


def at_level(x: np.ndarray, *, dbfs: float) -> np.ndarray:
    """`x` scaled to an RMS of `dbfs`, scaled down further if its peak would pass 1."""
    y = _unit_rms(np.asarray(x, dtype=np.float64)) * 10 ** (dbfs / 20)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return (y / peak if peak > 1 else y).astype(np.float32)


def not_music_clip(
    kind: str, *, seconds: float, sample_rate: int, rng: np.random.Generator, voices: Voices,
    room: bool,
) -> np.ndarray:  # fmt: skip
    """One clip of `kind`, through `random_room` when `room`, at a random level."""
    generate, levels = NOT_MUSIC[kind]
    n = round(seconds * sample_rate)
    x = generate(n, rng=rng, sample_rate=sample_rate, voices=voices)
    if room:
        x = random_room(x, sample_rate=sample_rate, rng=rng)
    return at_level(x, dbfs=rng.uniform(*levels))


def speech_over_bed(
    music: np.ndarray, *, sample_rate: int, rng: np.random.Generator, voices: Voices,
    speech_db: tuple[float, float] = (-6.0, 6.0),
) -> np.ndarray:  # fmt: skip
    """A DJ or a host talking over music, the speech `speech_db` dB above the bed's RMS:
    still music, and the detector must say so."""
    speech = talk(music.size, rng=rng, sample_rate=sample_rate, voices=voices)
    over = float(rng.uniform(*speech_db))
    mixed = add_noise(np.asarray(music, dtype=np.float64), speech, snr_db=-over)
    level = 20 * np.log10(max(_rms(np.asarray(music, dtype=np.float64)), 1e-9))
    return at_level(mixed, dbfs=min(level + max(over, 0.0), -6.0))


# --- Material and features --------------------------------------------------------------

GENERATOR_VERSION = 1
"""Part of every cache key: bump it when a generator changes what it makes."""
CLIP_SECONDS = 8.0
MUSIC_CLIP_SECONDS = 10.0
TRAINING_HOP_SECONDS = 2.0
TEST_HOP_SECONDS = 1.0
REAL_HOP_SECONDS = 0.5
"""Hops of generated material are computed sparser than the chain's 0.5 s: a hop's patch,
and so its embedding and probabilities, do not depend on the hop length, and neighbouring
3 s patches half a second apart are near copies. Real music is measured at every hop."""
HELD_OUT_SEED = 2026
HELD_OUT_FONT = "TimGM6mb.sf2"
"""The seed and soundfont of the synthetic held-out music (`training.corpus`'s held-out
split, as the genre model's test side has it): training music uses neither its families
nor its soundfont."""


@dataclass
class Part:
    """The hops of one kind of material on one side: what the CNN computed, and a label."""

    name: str
    not_music: bool
    embeddings: np.ndarray
    probabilities: np.ndarray
    modulation: np.ndarray
    levels: np.ndarray
    clips: np.ndarray  # the clip of each hop, for splits that keep a clip on one side

    @property
    def inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the detector reads of each hop (`NotMusicDetector.probabilities`)."""
        return self.embeddings, self.probabilities, self.modulation

    def save(self, path: Path) -> None:
        """Write to a temporary name, then rename: an interrupted run leaves no half file."""
        partial = path.with_name(path.name + ".partial.npz")
        np.savez(
            partial, embeddings=self.embeddings, probabilities=self.probabilities,
            modulation=self.modulation, levels=self.levels, clips=self.clips,
            not_music=self.not_music,
        )  # fmt: skip
        partial.replace(path)

    @classmethod
    def load(cls, path: Path, *, name: str) -> Part:
        with np.load(path) as data:
            return cls(
                name, bool(data["not_music"]), data["embeddings"], data["probabilities"],
                data["modulation"], data["levels"], data["clips"],
            )  # fmt: skip


def hops_of(
    clips: Iterable[np.ndarray], analyzer: HopAnalyzer, *, name: str, not_music: bool
) -> Part:
    """Every hop of every clip, exactly as streamer's chain computes them."""
    hops: list[Hop] = []
    owners: list[int] = []
    for index, audio in enumerate(clips):
        analyzer.reset()
        pushed = analyzer.push(audio)
        hops += pushed
        owners += [index] * len(pushed)

    def column(field: str) -> np.ndarray:
        return np.asarray([getattr(hop, field) for hop in hops], dtype=np.float32)

    return Part(
        name, not_music, column("embedding"), column("probabilities"), column("modulation"),
        column("level_dbfs"), np.asarray(owners, dtype=np.int32),
    )  # fmt: skip


def render_music(
    out: Path, *, seed: int, clips_per_genre: int, seconds: float, held_out: bool
) -> list[Path]:
    """Synthetic corpus clips (`training.corpus`): the training side uses no family and no
    soundfont of the held-out split of seed `HELD_OUT_SEED`; `held_out` renders that split's
    families with its soundfont instead. Rendered once into `out`, then reused."""
    from training import corpus

    manifest = out / "manifest.csv"
    if not manifest.is_file():
        held = {
            genre: corpus.held_out_families(genre, seed=HELD_OUT_SEED, fraction=0.2)
            for genre in corpus.GTZAN_GENRES
        }
        groups = frozenset(
            family.name
            for genre in corpus.GTZAN_GENRES
            for family in corpus.genre_families(genre)
            if (family.name in held[genre]) == held_out
        )
        fonts = [
            font for font in corpus.installed_soundfonts()
            if (font.name == HELD_OUT_FONT) == held_out
        ]  # fmt: skip
        corpus.generate_corpus(
            out, clips_per_genre=clips_per_genre, clip_seconds=seconds, soundfonts=fonts,
            seed=seed, workers=1, groups=groups, progress=False,
        )  # fmt: skip
    with manifest.open() as handle:
        return [out / row["path"] for row in csv.DictReader(handle)]


ClipSource = Callable[[], Iterable[np.ndarray]]


@dataclass(frozen=True)
class Material:
    """One part to compute: its name, its label, a fresh iterator over its clips, and the
    hop length to analyse them at."""

    name: str
    not_music: bool
    clips: ClipSource
    hop_seconds: float = TEST_HOP_SECONDS


def material_plan(
    work: Path, *, sample_rate: int, seconds: float, seed: int,
    heldout: Path | None = None, realset: Path | None = None,
) -> dict[str, list[Material]]:  # fmt: skip
    """What to generate for each side, ``{"train": [...], "test": [...]}``.

    `seconds` of each not-music kind on the training side (clean or through `random_room`),
    an eighth of it on the test side with `HELD_OUT_VOICES` and another seed, each test clip
    clean and through the evaluation room. Training music: three times as many seconds of
    corpus clips, clean, half of them through `random_room` and the other half with speech
    over them. Test music: the `heldout` manifest's clips (else the held-out split rendered
    here), clean, every fourth through the evaluation room and every eighth with a held-out
    speaker over it;
    `realset` adds every clip of the real development set, at the chain's own hop (0.5 s).
    """
    rate = sample_rate
    train: list[Material] = []
    test: list[Material] = []
    for index, kind in enumerate(NOT_MUSIC):

        def generated(kind: str = kind, index: int = index) -> Iterator[np.ndarray]:
            rng = np.random.default_rng([seed, index, 0])
            for _ in range(max(1, round(seconds / CLIP_SECONDS))):
                yield not_music_clip(
                    kind, seconds=CLIP_SECONDS, sample_rate=rate, rng=rng,
                    voices=TRAINING_VOICES, room=bool(rng.random() < 0.7),
                )  # fmt: skip

        def held_out(kind: str = kind, index: int = index) -> Iterator[np.ndarray]:
            rng = np.random.default_rng([seed + 1, index, 1])
            for _ in range(max(1, round(seconds / 8 / CLIP_SECONDS))):
                yield not_music_clip(
                    kind, seconds=CLIP_SECONDS, sample_rate=rate, rng=rng,
                    voices=HELD_OUT_VOICES, room=False,
                )  # fmt: skip

        train.append(Material(kind, True, generated, TRAINING_HOP_SECONDS))
        test.append(Material(kind, True, held_out))
        test.append(Material(f"{kind}_room", True, _through_room(held_out, rate)))

    per_genre = max(1, round(3 * seconds / MUSIC_CLIP_SECONDS / 10))
    music = render_music(
        work / f"music-s{seed}", seed=seed, clips_per_genre=per_genre,
        seconds=MUSIC_CLIP_SECONDS, held_out=False,
    )  # fmt: skip
    train += [
        Material("music", False, lambda: _read(music, rate), TRAINING_HOP_SECONDS),
        Material(
            "music_room", False, lambda: _random_rooms(_read(music[::2], rate), rate, seed),
            TRAINING_HOP_SECONDS,
        ),
        Material("speech_over_music", False, lambda: _random_rooms(
            _talk_over(_read(music[1::2], rate), rate, seed=seed, voices=TRAINING_VOICES),
            rate, seed, probability=0.5,
        ), TRAINING_HOP_SECONDS),
    ]  # fmt: skip
    if heldout is None:
        heldout = work / f"music-held-out-s{HELD_OUT_SEED}" / "manifest.csv"
        render_music(
            heldout.parent, seed=HELD_OUT_SEED, clips_per_genre=max(1, per_genre // 2),
            seconds=MUSIC_CLIP_SECONDS, held_out=True,
        )  # fmt: skip
    with heldout.open() as handle:
        held = [heldout.parent / row["path"] for row in csv.DictReader(handle)]
    test += [
        Material("music", False, lambda: _read(held, rate)),
        Material("music_room", False, _through_room(lambda: _read(held[::4], rate), rate)),
        Material("speech_over_music", False, lambda: _talk_over(
            _read(held[2::8], rate), rate, seed=seed + 1, voices=HELD_OUT_VOICES,
        )),
    ]  # fmt: skip
    if realset is not None:
        real = sorted((realset / "clips").glob("*.wav"))
        test.append(Material("real_music", False, lambda: _read(real, rate), REAL_HOP_SECONDS))
    return {"train": train, "test": test}


def _read(paths: Sequence[Path], rate: int) -> Iterator[np.ndarray]:
    from streamer.capture.file import read_audio

    return (read_audio(path, sample_rate=rate) for path in paths)


def _through_room(clips: ClipSource, rate: int) -> ClipSource:
    """The evaluation room over each clip, at the clip's own level."""

    def roomed() -> Iterator[np.ndarray]:
        for clip in clips():
            level = 20 * np.log10(max(_rms(clip.astype(np.float64)), 1e-9))
            yield at_level(evaluation_room(clip, sample_rate=rate), dbfs=level)

    return roomed


def _random_rooms(
    clips: Iterable[np.ndarray], rate: int, seed: int, *, probability: float = 1.0
) -> Iterator[np.ndarray]:
    rng = np.random.default_rng([seed, 100])
    for clip in clips:
        yield random_room(clip, sample_rate=rate, rng=rng) if rng.random() < probability else clip


def _talk_over(
    clips: Iterable[np.ndarray], rate: int, *, seed: int, voices: Voices
) -> Iterator[np.ndarray]:
    rng = np.random.default_rng([seed, 200])
    for clip in clips:
        yield speech_over_bed(clip, sample_rate=rate, rng=rng, voices=voices)


def build_material(
    work: Path, *, model: GenreModel, plan: dict[str, list[Material]], key: str,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, dict[str, Part]]:  # fmt: skip
    """Every part's hops, cached as ``work/features/SIDE-NAME-KEY-HOP.npz``."""
    parts: dict[str, dict[str, Part]] = {}
    for side, materials in plan.items():
        parts[side] = {}
        for material in materials:
            hop = material.hop_seconds
            path = work / "features" / f"{side}-{material.name}-{key}-h{hop:g}.npz"
            if path.is_file():
                part = Part.load(path, name=material.name)
            else:
                progress(f"{side} {material.name}")
                analyzer = HopAnalyzer(model, hop_seconds=hop)
                part = hops_of(
                    material.clips(), analyzer, name=material.name, not_music=material.not_music
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                part.save(path)
            parts[side][material.name] = part
    return parts


# --- Fitting and measuring ------------------------------------------------------------

SILENCE_DBFS = -50.0
MUSIC_LOSS = 0.05
"""The share of left-out training music hops the fitted detector may call not-music, per
hop, before the chain's vote and minimum runs (which keep a stray hop from making a
not-music segment). Measured (MLP of 32), real music's out-of-fold loss and held-out
speech called not-music: 1 %: 0.9 % and 46 %; 2 %: 1.4 % and 81 %; 5 % (the natural
point: no shift): 3.3 % and 97 %. At the chain's level (bench/bench_segments.py, after
the vote and minimum runs), 5 % gives no genre to 48 % of the hops of talk between the
held-out mixes' tracks, against 21 % at 2 %, and puts 0.8 % of the real excerpts' time in
not-music segments."""
"""Hops quieter than this are silence to the chain whatever the detector says: they are
left out of fitting, and count as "no genre" when measuring."""


def _inputs(parts: Iterable[Part]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and weights of the audible hops: each part weighs the same within
    its class, and the two classes weigh the same."""
    chosen = list(parts)
    classes = {flag: sum(p.not_music == flag for p in chosen) for flag in (True, False)}
    xs, ys, ws = [], [], []
    for part in chosen:
        audible = part.levels >= SILENCE_DBFS
        count = int(audible.sum())
        xs.append(detector_features(*(column[audible] for column in part.inputs)))
        ys.append(np.full(count, part.not_music))
        ws.append(np.full(count, 1.0 / (max(count, 1) * classes[part.not_music])))
    weights = np.concatenate(ws)
    return np.concatenate(xs), np.concatenate(ys), weights * len(weights) / weights.sum()


def fit_detector(
    parts: Iterable[Part], *, genre_model_sha256: str, hidden: Sequence[int] = (), seed: int = 0,
    music_loss: float | None = MUSIC_LOSS,
) -> NotMusicDetector:  # fmt: skip
    """Standardise the features, then a logistic regression (`hidden` empty) or a ReLU MLP
    with `hidden` units per layer; both become a `NotMusicDetector`'s layers.

    With `music_loss`, the operating point is moved toward music: a first fit leaves every
    fifth clip of each part out, and the last bias is lowered until at most `music_loss` of
    those clips' music hops are called not-music (never raised). Losing music costs more
    than letting some talk through: the detector is then refitted on everything and
    shifted by that amount.
    """
    chosen = list(parts)
    shift = 0.0
    if music_loss is not None:
        fitted = [replace_part(p, p.clips % 5 != 0) for p in chosen]
        left_out = [replace_part(p, p.clips % 5 == 0) for p in chosen if not p.not_music]
        first = _fit(fitted, genre_model_sha256, hidden=hidden, seed=seed)
        logits = np.concatenate([
            first.logits(*p.inputs)[p.levels >= SILENCE_DBFS]
            for p in left_out
        ])  # fmt: skip
        shift = min(0.0, -float(np.quantile(logits, 1 - music_loss)))
    detector = _fit(chosen, genre_model_sha256, hidden=hidden, seed=seed)
    weights, bias = detector.layers[-1]
    return replace(detector, layers=(*detector.layers[:-1], (weights, bias + shift)))


def replace_part(part: Part, keep: np.ndarray) -> Part:
    """The hops of `part` where `keep` is true."""
    return Part(
        part.name, part.not_music, part.embeddings[keep], part.probabilities[keep],
        part.modulation[keep], part.levels[keep], part.clips[keep],
    )  # fmt: skip


def _fit(
    parts: Sequence[Part], genre_model_sha256: str, *, hidden: Sequence[int], seed: int
) -> NotMusicDetector:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    x, y, weights = _inputs(parts)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    z = (x - mean) / scale
    layers: list[tuple[np.ndarray, np.ndarray]]
    if hidden:
        mlp = MLPClassifier(
            hidden_layer_sizes=tuple(hidden), alpha=1e-3, max_iter=300, early_stopping=True,
            random_state=seed,
        )  # fmt: skip
        mlp.fit(z, y, sample_weight=weights)
        layers = [
            (np.asarray(w), np.asarray(b)) for w, b in zip(mlp.coefs_, mlp.intercepts_, strict=True)
        ]
    else:
        logistic = LogisticRegression(C=0.1, max_iter=5000)
        logistic.fit(z, y, sample_weight=weights)
        layers = [(logistic.coef_.T.copy(), logistic.intercept_.copy())]
    return NotMusicDetector(genre_model_sha256, mean, scale, tuple(layers))


def measure(detector: NotMusicDetector, parts: Mapping[str, Part]) -> dict[str, dict[str, Any]]:
    """Per part: its hops, and the share of them with no genre (silent or not music; for
    music, the share lost to not-music)."""
    figures: dict[str, dict[str, Any]] = {}
    for name, part in parts.items():
        audible = part.levels >= SILENCE_DBFS
        called = detector.probabilities(*part.inputs) >= THRESHOLD
        if part.not_music:
            share = float(np.mean(called | ~audible)) if len(called) else 0.0
            figures[name] = {"hops": len(called), "no_genre": round(share, 4)}
        else:
            share = float(np.mean(called & audible)) if len(called) else 0.0
            clips = len(set(part.clips[called & audible].tolist()))
            figures[name] = {
                "hops": len(called), "lost_to_not_music": round(share, 4),
                "clips_with_a_lost_hop": clips, "clips": len(set(part.clips.tolist())),
            }  # fmt: skip
        figures[name]["silent_hops"] = int((~audible).sum())
    return figures


REAL_FOLDS = 5


def real_track_folds(realset: Path, real: Part, *, folds: int, seed: int) -> np.ndarray:
    """The fold of each hop of `real` (hops of ``realset/clips/*.wav`` in name order), by
    track: a track is a clip's ``track`` without its `` @NN%`` suffix (manifest.csv)."""
    with (realset / "manifest.csv").open() as handle:
        track_of = {
            Path(row["file"]).name: re.sub(r" @\d+%$", "", row["track"])
            for row in csv.DictReader(handle)
        }
    clips = [track_of[path.name] for path in sorted((realset / "clips").glob("*.wav"))]
    tracks = sorted(set(clips))
    order = np.random.default_rng(seed).permutation(len(tracks))
    fold_of = {tracks[i]: rank % folds for rank, i in enumerate(order)}
    return np.array([fold_of[clips[clip]] for clip in real.clips], dtype=int)


def run_not_music(
    out: Path, *, seconds: float, seed: int, work: Path, model: Path,
    heldout: Path | None = None, realset: Path | None = None, hidden: Sequence[int] = (),
    music_loss: float = MUSIC_LOSS, progress: Callable[[str], None] = lambda _: None,
) -> tuple[Path, dict[str, Any]]:  # fmt: skip
    """Generate (or reuse) the material, fit the detector, measure it, and write
    ``out/not-music.json`` with its provenance and figures."""
    genre = GenreModel(model)
    plan = material_plan(
        work, sample_rate=genre.spec.sample_rate, seconds=seconds, seed=seed,
        heldout=heldout, realset=realset,
    )  # fmt: skip
    # The detector's input version too: a cache of older hops lacks what it now reads.
    key = f"v{GENERATOR_VERSION}-f{NOT_MUSIC_VERSION}-{genre.info.sha256[:12]}-s{seed}-t{seconds:g}"
    parts = build_material(work, model=genre, plan=plan, key=key, progress=progress)
    training = list(parts["train"].values())
    metrics: dict[str, Any] = {}
    if realset is not None:
        # Real recordings are music the corpus is not: they train the detector too, and
        # their figure is out of fold, every excerpt of a track on the same side.
        real = parts["test"].pop("real_music")
        folds = real_track_folds(realset, real, folds=REAL_FOLDS, seed=seed)
        lost = np.zeros(len(real.levels), dtype=bool)
        for fold in range(REAL_FOLDS):
            inside = folds == fold
            fold_detector = fit_detector(
                [*training, replace_part(real, ~inside)], genre_model_sha256=genre.info.sha256,
                hidden=hidden, seed=seed, music_loss=music_loss,
            )  # fmt: skip
            held = replace_part(real, inside)
            lost[inside] = (fold_detector.probabilities(*held.inputs) >= THRESHOLD) & (
                held.levels >= SILENCE_DBFS
            )
        training.append(real)
        metrics["real_music_out_of_fold"] = {
            "hops": len(lost), "lost_to_not_music": round(float(lost.mean()), 4),
            "clips_with_a_lost_hop": len(set(real.clips[lost].tolist())),
            "clips": len(set(real.clips.tolist())), "folds": REAL_FOLDS,
            "silent_hops": int((real.levels < SILENCE_DBFS).sum()),
        }  # fmt: skip
    detector = fit_detector(
        training, genre_model_sha256=genre.info.sha256, hidden=hidden, seed=seed,
        music_loss=music_loss,
    )  # fmt: skip
    metrics.update({side: measure(detector, side_parts) for side, side_parts in parts.items()})
    provenance = {
        "genre_model": genre.path.name,
        "detector": f"MLP {list(hidden)} (ReLU)" if hidden else "logistic regression",
        "material": {
            "seconds_per_kind": seconds, "seed": seed, "clip_seconds": CLIP_SECONDS,
            "generator_version": GENERATOR_VERSION,
            "hop_seconds": {
                "train": TRAINING_HOP_SECONDS, "test": TEST_HOP_SECONDS, "real": REAL_HOP_SECONDS,
            },
            "training_voices": asdict(TRAINING_VOICES),
            "held_out_voices": asdict(HELD_OUT_VOICES),
            "heldout_music": str(heldout) if heldout else f"rendered, seed {HELD_OUT_SEED}",
            "music_loss": music_loss,
            "realset": str(realset) if realset else None,
        },
        "metrics": metrics,
    }  # fmt: skip
    detector = replace(detector, provenance=provenance)
    path = out / "not-music.json"
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(path, (json.dumps(detector.to_dict(), indent=1) + "\n").encode())
    return path, metrics
