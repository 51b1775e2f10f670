"""DJ-style mixes with known answers: the tracks, the changes, the speech, the silence.

A segmenter is judged on whether a recorded set's segments are its tracks, so it needs sets
whose tracklist is known to the sample. Two kinds are built here:

- Synthetic mixes: N tracks, each a long rendering (minutes, not a tiled clip) of one family
  of the synthetic corpus (`training.corpus`, MMA charts sized to the duration, classical
  scores looped), joined by equal-power crossfades of 5 to 15 s. Several genres, and runs of
  one genre (a change of track without a change of genre). Some mixes put speech
  (`training.notmusic.speak`), a test tone or a few seconds of silence between two tracks,
  or a DJ talking over the start of a track (still music). The train side uses the
  training families of each genre; the test side only the held-out ones
  (`corpus.held_out_families`, rendered with the held-out soundfont) and other voices;
  the validation side only the families the shipped decision was calibrated on (the CNN's
  fit kept them for validation: ``"families"`` in ``models/fusion.json``), for fitting what
  is shown on music the CNN did not train on (`streamer-train calibrate-shown`).
- Real mixes: excerpts of the real development set (30 s each; a track is a clip's name
  without its `` @NN%`` suffix), several excerpts of one track in a row making one longer
  track (joined by a short crossfade that is not a change), tracks joined by 5 to 15 s
  crossfades.

Each mix is written as ``NAME.wav`` (mono, PCM 16) and ``NAME.json``, the truth:
``tracks`` [{start, end, genre, source, ...}] (where each track's audio starts and ends),
``segments`` [{start, end, state, genre}] (the ideal segmentation: music, not-music or
silence, boundaries at crossfade midpoints), ``changes`` (the interior boundaries of
``segments``, in seconds), ``speech``, ``talkover``, ``tones`` and ``silence``
[{start, end}]. Everything is a pure function of the seed and the mix's index.

Run: ``python -m training.mixes OUT --side train --mixes 12`` (or ``--realset DIR``).
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import json
import math
import re
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from training import corpus
from training.grooves import GTZAN_GENRES
from training.notmusic import speak, speech_text

SAMPLE_RATE = 22050
HELD_OUT_SEED = 2026  # the seed the shipped model's held-out families were drawn with
HELD_OUT_FRACTION = 0.2
SOUNDFONT = Path("/usr/share/sounds/sf3/default-GM.sf3")
HELD_OUT_SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
VOICES = {
    "train": ("en", "en-us", "de", "fr", "es", "en+f3", "de+m3", "fr+f2"),
    "test": ("it", "nl", "pt", "pl", "sv", "en-gb-x-rp+f4", "it+m5", "nl+f1"),
}
VOICES["validation"] = VOICES["train"]  # other grooves than train, the same voices
SIDE_SEEDS = {"train": 17, "test": 1017, "validation": 2029}
BREAK_FADE = 0.5  # seconds of equal-power overlap around a break (speech, tone, silence)
EXCERPT_FADE = 2.0  # seconds between two excerpts of one real track: a join, not a change
REAL_SUFFIX = re.compile(r"\s*@\d+%\s*$")


@dataclass
class Piece:
    """One stretch of a mix: a track or a break, laid after the previous one with
    `overlap` seconds of equal-power crossfade."""

    audio: np.ndarray
    state: str  # "music" | "not-music" | "silence"
    kind: str  # "track", "speech", "tone" or "silence"
    overlap: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    talkover: tuple[float, float] | None = None  # speech over this track, seconds into it


def equal_power(length: int) -> tuple[np.ndarray, np.ndarray]:
    """Fade-out and fade-in gains of an equal-power crossfade over `length` samples."""
    phase = (np.arange(length, dtype=np.float64) + 0.5) / max(length, 1) * (math.pi / 2)
    return np.cos(phase), np.sin(phase)


def assemble(pieces: Sequence[Piece], *, sample_rate: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Lay `pieces` end to end with their crossfades; return the audio and its truth. A
    crossfade is at most as long as either of its two pieces."""
    starts: list[int] = []
    end = previous = 0  # previous: the length of the piece before
    for piece in pieces:
        overlap = min(round(piece.overlap * sample_rate), previous, len(piece.audio))
        starts.append(end - overlap)
        end = starts[-1] + len(piece.audio)
        previous = len(piece.audio)
    out = np.zeros(end, dtype=np.float64)
    for i, (piece, start) in enumerate(zip(pieces, starts, strict=True)):
        audio = piece.audio.astype(np.float64)
        fade_in = starts[i - 1] + len(pieces[i - 1].audio) - start if i else 0
        fade_out = start + len(audio) - starts[i + 1] if i + 1 < len(pieces) else 0
        if fade_in:
            audio[:fade_in] *= equal_power(fade_in)[1]
        if fade_out:
            audio[len(audio) - fade_out :] *= equal_power(fade_out)[0]
        out[start : start + len(audio)] += audio
    return out.astype(np.float32), truth(pieces, starts, sample_rate=sample_rate, samples=end)


def truth(
    pieces: Sequence[Piece], starts: Sequence[int], *, sample_rate: int, samples: int
) -> dict[str, Any]:
    """What a perfect segmenter would say about pieces laid at `starts` (samples)."""
    spans = [
        (s / sample_rate, (s + len(p.audio)) / sample_rate)
        for p, s in zip(pieces, starts, strict=True)
    ]
    # A boundary sits at the midpoint of each overlap; two adjacent pieces of one state and
    # genre are still two segments when they are two tracks (a change without a change of
    # genre), so segments follow the pieces.
    bounds = [0.0]
    for (_, prev_end), (start, _) in itertools.pairwise(spans):
        bounds.append((start + prev_end) / 2)
    bounds.append(samples / sample_rate)
    segments = [
        {"start": bounds[i], "end": bounds[i + 1], "state": p.state, "genre": p.info.get("genre")}
        for i, p in enumerate(pieces)
    ]
    tracks = [
        {"start": a, "end": b, **p.info}
        for p, (a, b) in zip(pieces, spans, strict=True)
        if p.kind == "track"
    ]

    def stretches(kind: str) -> list[dict[str, float]]:
        return [
            {"start": a, "end": b}
            for p, (a, b) in zip(pieces, spans, strict=True)
            if p.kind == kind
        ]

    talkover = [
        {"start": a + p.talkover[0], "end": a + p.talkover[1]}
        for p, (a, _) in zip(pieces, spans, strict=True)
        if p.talkover is not None
    ]
    return {
        "sample_rate": sample_rate,
        "duration": samples / sample_rate,
        "tracks": tracks,
        "segments": segments,
        "changes": bounds[1:-1],
        "speech": stretches("speech"),
        "tones": stretches("tone"),
        "silence": stretches("silence"),
        "talkover": talkover,
    }


def level(audio: np.ndarray, dbfs: float) -> np.ndarray:
    """`audio` scaled to an RMS of `dbfs`."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return (audio * (10 ** (dbfs / 20) / rms)).astype(np.float32) if rms > 0 else audio


def tone(rng: np.random.Generator, *, seconds: float, sample_rate: int) -> np.ndarray:
    """A test tone: a steady sine or a logarithmic sweep, at -20 dBFS RMS."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    if rng.random() < 0.5:
        phase = 2 * math.pi * float(rng.uniform(200.0, 2000.0)) * t
    else:
        f0, f1 = float(rng.uniform(50.0, 300.0)), float(rng.uniform(2000.0, 8000.0))
        k = math.log(f1 / f0) / seconds
        phase = 2 * math.pi * f0 * (np.exp(k * t) - 1) / k
    return level(np.sin(phase).astype(np.float32), -20.0)


def speech(
    rng: np.random.Generator, *, voices: Sequence[str], seconds: float, sample_rate: int
) -> np.ndarray:
    """At least `seconds` of espeak-ng sentences in one voice (a DJ or a radio host)."""
    voice = str(rng.choice(voices))
    rate, pitch = int(rng.integers(130, 210)), int(rng.integers(25, 75))
    parts: list[np.ndarray] = []
    while sum(len(p) for p in parts) < seconds * sample_rate:
        said = speak(
            speech_text(rng), voice=voice, rate_wpm=rate, pitch=pitch, sample_rate=sample_rate
        )
        parts += [said, np.zeros(round(float(rng.uniform(0.2, 0.6)) * sample_rate), np.float32)]
    return level(np.concatenate(parts[:-1]), float(rng.uniform(-24.0, -16.0)))


@dataclass(frozen=True)
class TrackRequest:
    genre: str
    family: str
    seconds: float
    index: int  # the corpus clip index: the track's seed within the side's seed


def render_track(
    request: TrackRequest, *, seed: int, held_out: bool, sample_rate: int, work: Path
) -> tuple[np.ndarray, dict[str, Any]] | None:
    """One long rendering of one corpus family; None when every attempt failed."""
    job = corpus.ClipJob(
        request.genre, request.index, seed, (SOUNDFONT,), request.seconds, sample_rate, work,
        corpus.SUBTYPES["float32"], corpus.default_cache_dir(), frozenset({request.family}), 4,
        frozenset({request.family}) if held_out else frozenset(),
        HELD_OUT_SOUNDFONT if held_out else None,
    )  # fmt: skip
    outcome = corpus.render_clip(job)
    if outcome.row is None:
        return None
    path = work / str(outcome.row["path"])
    audio, _ = sf.read(path, dtype="float32")
    path.unlink()
    row = outcome.row
    source = f"{row['group']}:{row['groove']} {row['soundfont']} seed {seed} #{request.index}"
    info = {"genre": request.genre, "source": source, "family": row["group"],
            "held_out": bool(held_out), "tempo": row["tempo"], "key": row["key"]}  # fmt: skip
    return audio, info


def side_families(genre: str, *, side: str) -> list[str]:
    """The families a side draws from: held-out ones for test, the others for train, the
    calibration's (`VALIDATION_FAMILIES`) for validation."""
    names = [f.name for f in corpus.genre_families(genre)]
    if side == "validation":
        return sorted(n for n in names if n in validation_families())
    held = corpus.held_out_families(genre, seed=HELD_OUT_SEED, fraction=HELD_OUT_FRACTION)
    return sorted(n for n in names if (n in held) == (side == "test"))


VALIDATION_FAMILIES = Path(__file__).resolve().parent.parent / "models" / "fusion.json"
"""The decision whose calibration families make the validation side."""


@functools.cache
def validation_families() -> frozenset[str]:
    """The groove families the shipped decision was calibrated on."""
    data = json.loads(VALIDATION_FAMILIES.read_text())
    return frozenset(data["calibration"]["families"])


FLAVOURS = ("plain", "talk", "plain", "radio")
"""Mix flavours in turn: crossfades only; speech between tracks (and a DJ over an intro);
speech, tones and silence between tracks."""


BREAKS = ("crossfade", "speech", "tone", "silence")
BREAK_SECONDS = {"speech": (4.0, 12.0), "tone": (3.0, 8.0), "silence": (1.5, 4.0)}
FADES = (5.0, 15.0)
"""Seconds of crossfade between two tracks in a row, as DJs mix."""


def synthetic_mix(
    *, side: str, seed: int, index: int, tracks: int | None = None,
    seconds: tuple[float, float] = (120.0, 170.0),
    long_seconds: tuple[float, float] = (240.0, 330.0),
    flavour: str | None = None, genres: Sequence[str] = GTZAN_GENRES,
    same_genre: float = 1 / 3, breaks: Sequence[str] | None = None,
    break_seconds: tuple[float, float] | None = None, fades: tuple[float, float] = FADES,
    sample_rate: int = SAMPLE_RATE,
) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
    """Mix number `index` of a side: its audio and truth.

    `tracks` (default 2 to 4, drawn), track lengths drawn from `seconds` (one in ten from
    `long_seconds`), `flavour` from `FLAVOURS` (default: by index). The next track keeps the
    genre with probability `same_genre` (another family, or another rendering of the same
    one). `breaks` (one of `BREAKS` per junction) replaces the flavour's draw of what comes
    between two tracks, `break_seconds` the lengths of `BREAK_SECONDS`; tests use them.
    Two tracks in a row are crossfaded over a length drawn from `fades` (``(0, 0)``: cut);
    the draws do not depend on it, so cut mixes hold the tracks of the crossfaded ones.
    """
    rng = np.random.default_rng([seed, index, 0x4D49])
    count = tracks if tracks is not None else int(rng.integers(2, 5))
    flavour = flavour or FLAVOURS[index % len(FLAVOURS)]
    if breaks is not None and len(breaks) != count - 1:
        raise ValueError(f"{count} tracks need {count - 1} breaks, not {len(breaks)}")
    voices = VOICES[side]
    pieces: list[Piece] = []
    genre = str(rng.choice(genres))
    with tempfile.TemporaryDirectory(prefix="mix-") as tmp:
        for position in range(count):
            if position:
                if rng.random() >= same_genre:
                    genre = str(rng.choice([g for g in genres if g != genre]))
                kind = _break_kind(rng, flavour) if breaks is None else breaks[position - 1]
                if kind != "crossfade":
                    span = break_seconds or BREAK_SECONDS[kind]
                    length = float(rng.uniform(*span))
                    pieces.append(_break(rng, kind, seconds=length, voices=voices,
                                         sample_rate=sample_rate))  # fmt: skip
            span = long_seconds if rng.random() < 0.1 else seconds
            length = float(rng.uniform(*span))
            rendered = None
            for attempt in range(8):  # a family that never renders: draw another
                family = str(rng.choice(side_families(genre, side=side)))
                request = TrackRequest(
                    genre, family, length, index * 1000 + position * 10 + attempt
                )
                rendered = render_track(
                    request, seed=seed, held_out=side == "test", sample_rate=sample_rate,
                    work=Path(tmp),
                )  # fmt: skip
                if rendered is not None:
                    break
            if rendered is None:
                raise RuntimeError(f"no family of {genre} rendered for mix {index}")
            audio, info = rendered
            after = pieces[-1].kind if pieces else None
            overlap = (
                0.0
                if after is None
                else float(rng.uniform(*fades))
                if after == "track"
                else BREAK_FADE
            )
            piece = Piece(audio, "music", "track", overlap=overlap, info=info)
            if flavour == "talk" and rng.random() < 0.4:
                piece = _talk_over(rng, piece, voices=voices, sample_rate=sample_rate)
            pieces.append(piece)
    audio, known = assemble(pieces, sample_rate=sample_rate)
    known.update(side=side, seed=seed, index=index, flavour=flavour)
    return audio, known


def _break_kind(rng: np.random.Generator, flavour: str) -> str:
    """What a flavour puts between two tracks: one of `BREAKS`."""
    if flavour == "plain" or (flavour == "talk" and rng.random() < 0.4):
        return "crossfade"
    return (
        "speech" if flavour == "talk" else str(rng.choice(["speech", "speech", "tone", "silence"]))
    )


def _break(
    rng: np.random.Generator, kind: str, *, seconds: float, voices: Sequence[str],
    sample_rate: int,
) -> Piece:  # fmt: skip
    """Speech, a tone or silence between two tracks, `seconds` long (speech: at least)."""
    if kind == "speech":
        audio = speech(rng, voices=voices, seconds=seconds, sample_rate=sample_rate)
        return Piece(audio, "not-music", "speech", overlap=BREAK_FADE)
    if kind == "tone":
        audio = tone(rng, seconds=seconds, sample_rate=sample_rate)
        return Piece(audio, "not-music", "tone", overlap=BREAK_FADE)
    if kind == "silence":
        silent = np.zeros(round(seconds * sample_rate), np.float32)
        return Piece(silent, "silence", "silence", overlap=BREAK_FADE)
    raise ValueError(f"unknown break {kind!r}: one of {', '.join(BREAKS)}")


def _talk_over(
    rng: np.random.Generator, piece: Piece, *, voices: Sequence[str], sample_rate: int
) -> Piece:
    """A DJ talking over the track's intro, 6 to 12 dB under the music: still music."""
    voice = speech(
        rng, voices=voices, seconds=float(rng.uniform(4.0, 10.0)), sample_rate=sample_rate
    )
    start = round(float(rng.uniform(1.0, 6.0)) * sample_rate)
    voice = voice[: max(0, len(piece.audio) - start)]
    music_rms = float(np.sqrt(np.mean(np.square(piece.audio, dtype=np.float64))))
    gain = (
        music_rms
        * 10 ** (float(rng.uniform(-12.0, -6.0)) / 20)
        / max(float(np.sqrt(np.mean(np.square(voice, dtype=np.float64)))), 1e-9)
    )
    audio = piece.audio.copy()
    audio[start : start + len(voice)] += voice * gain
    piece.audio = audio
    piece.talkover = (start / sample_rate, (start + len(voice)) / sample_rate)
    return piece


def real_tracks(realset: Path) -> dict[str, list[dict[str, str]]]:
    """The real set's excerpts grouped by track (in the manifest's order: 25 %, 50 %...)."""
    with open(realset / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    grouped: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        grouped.setdefault(REAL_SUFFIX.sub("", row["track"]), []).append(row)
    return grouped


def real_mixes(
    realset: Path, *, seed: int, tracks_per_mix: tuple[int, int] = (4, 6)
) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """Every track of the real set once, shuffled into mixes of `tracks_per_mix` tracks."""
    grouped = real_tracks(realset)
    rng = np.random.default_rng([seed, 0x5245])
    names = [sorted(grouped)[i] for i in rng.permutation(len(grouped))]
    mixes = []
    while names:
        take = min(len(names), int(rng.integers(tracks_per_mix[0], tracks_per_mix[1] + 1)))
        chosen, names = names[:take], names[take:]
        pieces = []
        for name in chosen:
            rows = grouped[name][: int(rng.integers(1, len(grouped[name]) + 1))]
            excerpts = []
            for i, row in enumerate(rows):
                audio, rate = sf.read(realset / row["file"], dtype="float32")
                excerpts.append(
                    Piece(audio, "music", "excerpt", overlap=EXCERPT_FADE if i else 0.0)
                )
            joined, _ = assemble(excerpts, sample_rate=rate)
            info = {"genre": rows[0]["expected"], "source": name,
                    "excerpts": [row["file"] for row in rows]}  # fmt: skip
            overlap = float(rng.uniform(5.0, 15.0)) if pieces else 0.0
            pieces.append(Piece(joined, "music", "track", overlap=overlap, info=info))
        audio, known = assemble(pieces, sample_rate=rate)
        known.update(side="real", seed=seed, index=len(mixes))
        mixes.append((audio, known))
    return mixes


def write_mix(out_dir: Path, name: str, audio: np.ndarray, known: dict[str, Any]) -> Path:
    """`NAME.wav` and `NAME.json` in `out_dir`; returns the WAV's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wav = out_dir / f"{name}.wav"
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    sf.write(wav, audio * (0.98 / peak) if peak > 0.98 else audio, known["sample_rate"],
             subtype="PCM_16")  # fmt: skip
    (out_dir / f"{name}.json").write_text(json.dumps({"audio": wav.name, **known}, indent=1))
    return wav


def load_truth(wav: Path) -> dict[str, Any]:
    """The truth written next to a mix's WAV."""
    return json.loads(wav.with_suffix(".json").read_text())  # type: ignore[no-any-return]


def mix_files(folder: Path) -> list[Path]:
    """The mixes of a folder: each ``NAME.wav`` with its ``NAME.json`` beside it."""
    return sorted(p for p in folder.glob("*.wav") if p.with_suffix(".json").is_file())


def playing(truth: dict[str, Any], times: np.ndarray) -> list[frozenset[str]]:
    """The genres of the music playing at each of `times` by a mix's truth (its ideal
    segments: a crossfade changes at its midpoint): one for a generated track, those a real
    excerpt expects (``jazz|classical``; ``other`` for none of ours), none in speech, tones
    and silence."""
    genres: list[frozenset[str]] = [frozenset()] * len(times)
    for segment in truth["segments"]:
        if segment["state"] == "music":
            inside = (times >= segment["start"]) & (times < segment["end"])
            for i in np.flatnonzero(inside):
                genres[i] = frozenset(segment["genre"].split("|"))
    return genres


def judged(genres: frozenset[str], labels: Collection[str]) -> bool:
    """Whether a genre shown while `genres` play (`playing`) is judged: over speech, tones
    and silence (any genre is wrong there) and over music of one of `labels`, but not
    over a real track of none of them (``other``, or a genre the chain does not know)."""
    return not genres or not genres.isdisjoint(labels)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.mixes", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out", type=Path, help="folder for NAME.wav and NAME.json")
    parser.add_argument("--side", choices=("train", "test", "validation"), default="train",
                        help="families: the CNN's training ones, the held-out ones, or the "
                        "calibration's (default train)")  # fmt: skip
    parser.add_argument("--mixes", type=int, default=12, help="synthetic mixes (default 12)")
    parser.add_argument("--seed", type=int, default=None,
                        help="default: 17 (train), 1017 (test), 2029 (validation)")  # fmt: skip
    parser.add_argument("--realset", type=Path, help="build real mixes from this real set instead")
    parser.add_argument("--fades", type=float, nargs=2, default=FADES, metavar=("MIN", "MAX"),
                        help="seconds of crossfade between two tracks (default 5 15; 0 0: cuts, "
                        "the same tracks, where a change has one time)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.realset is not None:
        for audio, known in real_mixes(args.realset, seed=args.seed or 17):
            write_mix(args.out, f"real-{known['index']:02d}", audio, known)
            print(known["index"], len(known["tracks"]), f"{known['duration']:.0f} s", flush=True)
        return 0
    seed = SIDE_SEEDS[args.side] if args.seed is None else args.seed
    for index in range(args.mixes):
        audio, known = synthetic_mix(
            side=args.side, seed=seed, index=index, fades=tuple(args.fades)
        )
        write_mix(args.out, f"{args.side}-{index:02d}", audio, known)
        genres = " ".join(t["genre"] for t in known["tracks"])
        print(index, known["flavour"], f"{known['duration']:.0f} s", genres, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
