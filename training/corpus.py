"""Generate a deterministic, GTZAN-style synthetic genre corpus.

Real genre corpora cannot be downloaded here, so the shipped model learns from music we make:
genre-typical MMA grooves (``training.grooves``) playing genre-typical progressions
(``training.progressions``), and classical scores from music21's corpus, rendered through
several General MIDI soundfonts with randomised tempo, key, groove variant, instrumentation
and mix. Every clip is a pure function of (seed, genre, clip index), so the same arguments
give byte-identical files whatever the worker count, and a subset of genres gives the same
clips as the full run.

By default the corpus holds the ten GTZAN genres, the shipped model's labels. An eleventh,
``electronic`` (house, techno, trance, electronica, drum and bass, voiced only with synthesizers),
is rendered when asked for (``genres=GENRES``, ``--genres all`` or a list naming it); it comes
last in ``GENRES``, so adding it changes none of the ten genres' clips.

Output: ``OUT/<genre>/<genre>.<index>.wav`` (mono) and ``OUT/manifest.csv``.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import math
import os
import re
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import soundfile as sf
from tinysoundfont.midi import Event

from training import mma
from training.grooves import (
    ACCOMPANIMENTS,
    DRUM_KITS,
    ENSEMBLES,
    GENRES,
    GTZAN_GENRES,
    SWAP_CLASSES,
    SYNTH_GENRES,
    Family,
    MmaFamily,
    ScoreFamily,
    families,
    synth_class,
)
from training.progressions import PROGRESSIONS, chart, is_minor, key_name
from training.render import DRUM_CHANNEL, Mix, SoundFontBank, channel_programs, duration, load_midi
from training.scores import ScoreError, cached_score, default_cache_dir

SOUNDFONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",  # fluid-soundfont-gm
    "/usr/share/sounds/sf3/MuseScore_General.sf3",  # musescore-general-soundfont-small
    "/usr/share/sounds/sf3/FluidR3Mono_GM.sf3",  # fluidr3mono-gm-soundfont
    "/usr/share/sounds/sf2/sf_GMbank.sf2",  # csound-soundfont: a different sample set
    "/usr/share/sounds/sf2/OPL-3_FM_128M.sf2",  # opl3-soundfont: FM synthesis, far timbres
    "/usr/share/sounds/sf2/TimGM6mb.sf2",  # timgm6mb-soundfont
)
MANIFEST_COLUMNS: tuple[str, ...] = (
    "path", "label", "group", "groove", "library", "soundfont", "tempo", "key",
    "progression", "accomp", "drum_kit", "seconds", "rms_dbfs", "seed", "index", "attempt",
    "held_out",
)  # fmt: skip
T = TypeVar("T")
SUBTYPES = {"pcm16": "PCM_16", "float32": "FLOAT"}

SWAP_PROBABILITY = 0.35  # chance that a program is swapped for another of its timbre class
MIN_RMS_DBFS = -50.0  # a render quieter than this, before normalisation, failed
MAX_SILENT_FRACTION = 0.2  # share of near-silent seconds a clip may have (an early stop)


class ClipFailure(Exception):
    """One attempt at a clip produced no usable audio; the next attempt redraws it."""


@dataclass(frozen=True)
class ClipJob:
    """Everything a worker needs for one clip; cheap to pickle."""

    genre: str
    index: int
    seed: int
    soundfonts: tuple[Path, ...]
    clip_seconds: float
    sample_rate: int
    out_dir: Path
    subtype: str
    cache_dir: Path
    groups: frozenset[str] | None
    max_attempts: int
    held_out: frozenset[str] = frozenset()  # families rendered only with `held_out_font`
    held_out_font: Path | None = None


@dataclass
class ClipOutcome:
    genre: str
    index: int
    row: dict[str, object] | None  # manifest row, None when every attempt failed
    failures: list[str] = field(default_factory=list)  # "family: reason" per failed attempt


@dataclass
class CorpusSummary:
    """What a run produced, for the CLI's report and for callers' checks."""

    out_dir: Path
    manifest: Path
    clips: int
    skipped: int  # clips with no successful attempt
    failed_attempts: int
    audio_seconds: float
    wall_seconds: float
    per_genre: dict[str, int]
    failures: Counter[str]  # family -> failed attempts

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio generated per second of wall time."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds else 0.0


def installed_soundfonts() -> tuple[Path, ...]:
    """The Debian GM soundfonts present on this machine, in a fixed order."""
    return tuple(Path(p) for p in SOUNDFONT_CANDIDATES if Path(p).is_file())


def genre_families(genre: str, groups: Collection[str] | None = None) -> tuple[Family, ...]:
    """A genre's families, optionally restricted to the named groups (case-insensitive)."""
    found = families(genre)
    if groups is not None:
        wanted = {g.lower() for g in groups}
        found = tuple(f for f in found if f.name.lower() in wanted)
    return found


def held_out_families(
    genre: str, *, seed: int, fraction: float, groups: Collection[str] | None = None
) -> frozenset[str]:
    """Families of `genre` kept for testing: a seeded draw of `fraction` of them, at least
    three (whole grooves pass or fail together, so fewer would make the figure a coin toss),
    always leaving at least one for training."""
    names = [f.name for f in genre_families(genre, groups)]
    if fraction <= 0 or len(names) < 2:
        return frozenset()
    count = min(max(3, round(fraction * len(names))), len(names) - 1)
    order = _rng(seed, GENRES.index(genre), 7919).permutation(len(names))
    return frozenset(names[i] for i in order[:count])


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def _balanced(items: Sequence[T], job: ClipJob, stream: int) -> T:
    """Cycle through ``items`` in a fresh shuffle each round, so every one gets its share."""
    rounds, pos = divmod(job.index, len(items))
    order = _rng(job.seed, GENRES.index(job.genre), rounds, stream).permutation(len(items))
    return items[order[pos]]


def _mix_levels(rng: np.random.Generator) -> dict[int, float]:
    """Per-channel gains in dB: a different balance of the same band in every clip."""
    gains = rng.uniform(-8.0, 3.0, size=16)
    gains[DRUM_CHANNEL] = rng.uniform(-6.0, 2.0)
    return {ch: float(g) for ch, g in enumerate(gains)}


def _program_swaps(rng: np.random.Generator, used: Iterable[int]) -> dict[int, int]:
    swaps = {}
    for program in sorted(set(used)):
        group = next((c for c in SWAP_CLASSES if program in c), None)
        if group is not None and rng.random() < SWAP_PROBABILITY:
            swaps[program] = int(rng.choice(group))
    return swaps


def _synth_voices(rng: np.random.Generator, used: Iterable[int]) -> dict[int, int]:
    """Program changes that leave only synthesizers: a program outside its synth class is
    replaced by one of it, one inside is swapped within it as often as ``_program_swaps``
    swaps, so electronic clips never play a groove's piano or guitar."""
    voices = {}
    for program in sorted(set(used)):
        synths = synth_class(program)
        if program not in synths or rng.random() < SWAP_PROBABILITY:
            voices[program] = int(rng.choice(synths))
    return voices


def _mma_clip(
    family: MmaFamily, job: ClipJob, rng: np.random.Generator
) -> tuple[list[Event], Mix, dict[str, object]]:
    variants = mma.groove_variants(family)
    if not variants:
        raise ClipFailure("no loopable groove in the installed MMA library")
    groove = str(rng.choice(variants))
    lo, hi = family.tempo_range
    tempo = int(rng.integers(lo, hi + 1))
    progression = str(rng.choice(PROGRESSIONS[job.genre]))
    tonic = int(rng.integers(12))
    bar_seconds = 60.0 * family.beats / tempo
    bars = math.ceil(job.clip_seconds / bar_seconds) + 2
    extra, accomp = [], ""
    if family.drums_only:
        accompaniment = ACCOMPANIMENTS[job.genre][int(rng.integers(len(ACCOMPANIMENTS[job.genre])))]
        programs = [int(rng.choice(part.programs)) for part in accompaniment.parts]
        extra, accomp = mma.accompaniment_tracks(accompaniment, programs), accompaniment.name
    text = mma.chart_text(
        library=family.library,
        groove=groove,
        tempo=tempo,
        seed=int(rng.integers(2**31)),
        bars=chart(progression, tonic, bars=bars, beats=family.beats),
        extra_tracks=extra,
    )
    try:
        events = load_midi(mma.render_midi(text))
    except mma.MmaError as exc:
        raise ClipFailure(f"{groove}: {exc}") from None
    used = [p for programs in channel_programs(events).values() for p in programs]
    swaps = _synth_voices if job.genre in SYNTH_GENRES else _program_swaps
    mix = Mix(
        programs=swaps(rng, used),
        gains_db=_mix_levels(rng),
        drum_kit=int(rng.choice(DRUM_KITS[job.genre])),
        drop_drums=family.strip_drums,
        offset=float(rng.uniform(0.0, bar_seconds)),
    )
    info = {
        "groove": groove,
        "library": family.library,
        "tempo": tempo,
        "key": key_name(tonic, minor=is_minor(progression)),
        "progression": progression,
        "accomp": accomp,
        "drum_kit": mix.drum_kit if not family.strip_drums else "",
    }
    return events, mix, info


_M21_KEY = re.compile(r"^([A-Ga-g])([#-]*)\s+(major|minor)$")
_PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def _transposed_key(music21_key: str, semitones: int) -> str:
    """music21's "B- major" moved by ``semitones``, spelled like the MMA keys."""
    match = _M21_KEY.match(music21_key.strip())
    if match is None:
        return ""
    letter, accidentals, mode = match.groups()
    tonic = _PITCH_CLASS[letter.lower()] + accidentals.count("#") - accidentals.count("-")
    return key_name(tonic + semitones, minor=mode == "minor")


def _voices_by_register(events: Sequence[Event], ensemble: Sequence[int]) -> dict[int, int]:
    """Give the highest-sounding part the ensemble's first instrument, and so on down."""
    pitches: dict[int, list[int]] = {}
    for ev in events:
        key = getattr(ev.action, "key", None)
        if key is not None and getattr(ev.action, "velocity", 0) > 0:
            pitches.setdefault(ev.channel, []).append(key)
    ranked = sorted(pitches, key=lambda ch: -float(np.mean(pitches[ch])))
    return {ch: ensemble[min(i, len(ensemble) - 1)] for i, ch in enumerate(ranked)}


def _score_clip(
    family: ScoreFamily, job: ClipJob, rng: np.random.Generator
) -> tuple[list[Event], Mix, dict[str, object]]:
    work = str(rng.choice(family.works))
    try:
        score = cached_score(work, job.cache_dir)
    except ScoreError as exc:
        raise ClipFailure(str(exc)) from None
    events = load_midi(score.midi)
    factor = float(rng.uniform(0.8, 1.25))
    transpose = int(rng.integers(-5, 7))
    names = sorted(ENSEMBLES)
    ensemble = names[int(rng.integers(len(names)))] if rng.random() < 0.8 else ""
    length = duration(events) / factor
    offset = float(rng.uniform(0.0, max(0.0, length - job.clip_seconds)))
    mix = Mix(
        voices=_voices_by_register(events, ENSEMBLES[ensemble]) if ensemble else {},
        gains_db=_mix_levels(rng),
        drop_drums=True,
        transpose=transpose,
        time_scale=1.0 / factor,
        offset=offset,
        loop=length - offset < job.clip_seconds,
    )
    info = {
        "groove": work,
        "library": "music21",
        "tempo": round(score.tempo * factor),
        "key": _transposed_key(score.key, transpose),
        "progression": "",
        "accomp": ensemble or "as-written",
        "drum_kit": "",
    }
    return events, mix, info


def _check_and_level(audio: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Reject silent or truncated renders, then set a random loudness without clipping."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms == 0.0 or 20 * math.log10(rms) < MIN_RMS_DBFS:
        raise ClipFailure("silent render")
    seconds = audio[: len(audio) // sample_rate * sample_rate].reshape(-1, sample_rate)
    second_rms = np.sqrt(np.mean(np.square(seconds, dtype=np.float64), axis=1))
    if len(second_rms) and np.mean(second_rms < rms * 10 ** (-40 / 20)) > MAX_SILENT_FRACTION:
        raise ClipFailure("mostly silent render (music stopped early)")
    target = 10 ** (rng.uniform(-24.0, -16.0) / 20)
    audio = audio * (target / rms)
    peak = float(np.max(np.abs(audio)))
    if peak > 0.98:
        audio *= 0.98 / peak
    return audio.astype(np.float32)


_BANKS: dict[int, SoundFontBank] = {}  # one per worker process and sample rate


def render_clip(job: ClipJob) -> ClipOutcome:
    """Make one clip, redrawing it on failure; runs in a worker process."""
    bank = _BANKS.setdefault(job.sample_rate, SoundFontBank(job.sample_rate))
    fams = genre_families(job.genre, job.groups)
    outcome = ClipOutcome(job.genre, job.index, None)
    for attempt in range(job.max_attempts):
        rng = _rng(job.seed, GENRES.index(job.genre), job.index, attempt)
        # First attempt: balanced family and soundfont; retries draw freely.
        family = _balanced(fams, job, 1) if attempt == 0 else fams[int(rng.integers(len(fams)))]
        held_out = family.name in job.held_out
        soundfont = job.held_out_font if held_out else _balanced(job.soundfonts, job, 2)
        try:
            if isinstance(family, MmaFamily):
                events, mix, info = _mma_clip(family, job, rng)
            else:
                events, mix, info = _score_clip(family, job, rng)
            audio = bank.render(events, soundfont, seconds=job.clip_seconds, mix=mix)
            audio = _check_and_level(audio, rng, job.sample_rate)
        except ClipFailure as exc:
            outcome.failures.append(f"{family.name}: {exc}")
            continue
        rel = Path(job.genre) / f"{job.genre}.{job.index:05d}.wav"
        path = job.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio, job.sample_rate, subtype=job.subtype)
        rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
        outcome.row = {
            "path": rel.as_posix(),
            "label": job.genre,
            "group": family.name,
            "soundfont": soundfont.name,
            "held_out": int(held_out),
            "seconds": job.clip_seconds,
            "rms_dbfs": round(20 * math.log10(rms), 2),
            "seed": job.seed,
            "index": job.index,
            "attempt": attempt,
            **info,
        }
        break
    return outcome


class _Progress:
    """A rich progress bar (clips, rate, time left, failures), or nothing when disabled."""

    def __init__(self, total: int, clip_seconds: float, *, enabled: bool) -> None:
        self.clip_seconds = clip_seconds
        self.done = self.failed = 0
        self.started = time.monotonic()
        self.bar = None
        if enabled and total:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("[bold]corpus"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[failed]}"),
            )
            self.task = self.bar.add_task("corpus", total=total, rate="", failed="")

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, outcome: ClipOutcome) -> None:
        self.done += 1
        self.failed += len(outcome.failures)
        if self.bar is None:
            return
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        self.bar.update(
            self.task,
            advance=1,
            rate=f"{rate:.2f} clips/s ({rate * self.clip_seconds:.0f}x real time)",
            failed=f"[yellow]{self.failed} failed attempts" if self.failed else "",
        )


def generate_corpus(
    out_dir: Path | str,
    *,
    genres: Sequence[str] = GTZAN_GENRES,
    clips_per_genre: int = 100,
    clip_seconds: float = 30.0,
    soundfonts: Sequence[Path | str] | None = None,
    seed: int = 0,
    workers: int | None = None,
    sample_rate: int = 22050,
    sample_format: str = "pcm16",
    groups: Collection[str] | None = None,
    cache_dir: Path | str | None = None,
    max_attempts: int = 4,
    held_out_font: Path | str | None = None,
    held_out_fraction: float = 0.2,
    progress: bool = True,
) -> CorpusSummary:
    """Render ``clips_per_genre`` clips for each genre into ``out_dir`` and write its manifest.

    ``genres`` defaults to the ten GTZAN genres; pass ``GENRES`` to add ``electronic``.
    ``soundfonts`` defaults to every installed Debian GM soundfont; ``groups`` restricts every
    genre to the named families (see ``--list``); ``cache_dir`` holds music21 exports.

    With ``held_out_font``, a seeded ``held_out_fraction`` of each genre's families (at least
    three) is rendered only with that soundfont, which no other clip uses: a test side of
    unseen grooves *and* an unseen timbre (column ``held_out``; train with
    ``streamer-train fit ... --test-only held_out=1``).
    """
    out = Path(out_dir)
    unknown = [g for g in genres if g not in GENRES]
    if unknown:
        raise ValueError(f"unknown genres {unknown}; choose from {', '.join(GENRES)}")
    fonts = tuple(Path(p) for p in soundfonts) if soundfonts else installed_soundfonts()
    missing = [str(p) for p in fonts if not p.is_file()]
    if not fonts or missing:
        raise FileNotFoundError(
            f"soundfonts not found: {missing or list(SOUNDFONT_CANDIDATES)}; install e.g. "
            "`apt-get install fluid-soundfont-gm timgm6mb-soundfont`"
        )
    held_font = Path(held_out_font) if held_out_font else None
    if held_font is not None:
        if not held_font.is_file():
            raise FileNotFoundError(f"held-out soundfont not found: {held_font}")
        fonts = tuple(f for f in fonts if f.name != held_font.name)
        if not fonts:
            raise ValueError("the held-out soundfont must not be the only soundfont")
    wanted = frozenset(groups) if groups is not None else None
    empty = [g for g in genres if not genre_families(g, wanted)]
    if empty:
        raise ValueError(f"no family of {empty} is among groups {sorted(wanted or [])}")
    scores = any(isinstance(f, ScoreFamily) for g in genres for f in genre_families(g, wanted))
    if scores and importlib.util.find_spec("music21") is None:
        raise ModuleNotFoundError(
            "classical clips use music21's scores: `pip install music21`, or leave them out "
            "with --groups / --genres"
        )
    jobs = [
        ClipJob(
            genre, index, seed, fonts, clip_seconds, sample_rate, out, SUBTYPES[sample_format],
            Path(cache_dir) if cache_dir else default_cache_dir(), wanted, max_attempts,
            held_out_families(genre, seed=seed, fraction=held_out_fraction, groups=wanted)
            if held_font else frozenset(),
            held_font,
        )
        for genre in genres
        for index in range(clips_per_genre)
    ]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    outcomes = []
    with _Progress(len(jobs), clip_seconds, enabled=progress) as bar:
        for outcome in _outcomes(jobs, workers=workers or os.cpu_count() or 1):
            outcomes.append(outcome)
            bar.advance(outcome)
    wall = time.monotonic() - started

    order = {g: i for i, g in enumerate(GENRES)}
    outcomes.sort(key=lambda o: (order[o.genre], o.index))
    rows = [o.row for o in outcomes if o.row is not None]
    manifest = out / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    failures = Counter(f.split(":")[0] for o in outcomes for f in o.failures)
    return CorpusSummary(
        out_dir=out,
        manifest=manifest,
        clips=len(rows),
        skipped=len(outcomes) - len(rows),
        failed_attempts=sum(failures.values()),
        audio_seconds=len(rows) * clip_seconds,
        wall_seconds=wall,
        per_genre=dict(Counter(str(r["label"]) for r in rows)),
        failures=failures,
    )


def _outcomes(jobs: Sequence[ClipJob], *, workers: int) -> Iterator[ClipOutcome]:
    """Clip outcomes as they finish: in-process for one worker, else from a process pool."""
    if workers <= 1:
        yield from map(render_clip, jobs)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        for future in as_completed([pool.submit(render_clip, job) for job in jobs]):
            yield future.result()


def describe_families(genres: Sequence[str] = GENRES) -> str:
    """The curated table as text: genre, family count, and each family's groups."""
    lines = []
    for genre in genres:
        fams = families(genre)
        lines.append(f"{genre} ({len(fams)} families)")
        lines += [f"  {f.name}" for f in fams]
    return "\n".join(lines)


_EPILOG = """\
examples:
  # the training corpus: 100 clips of 30 s per genre, every installed soundfont
  python -m training.corpus corpus --clips-per-genre 100

  # a quick look: 3 genres, 4 clips of 10 s each, one soundfont, no pool
  python -m training.corpus /tmp/peek --genres blues,jazz,metal --clips-per-genre 4 \\
      --seconds 10 --soundfont /usr/share/sounds/sf2/TimGM6mb.sf2 --workers 1

  # only some groove families (names as printed by --list), e.g. to audition them
  python -m training.corpus /tmp/swing --genres jazz --groups stdlib/Swing,casio/Swing

  # the eleventh genre, electronic (synthesizers only), beside the default ten
  python -m training.corpus corpus11 --genres all --clips-per-genre 100

  # the curated genre -> groove-family table, electronic included
  python -m training.corpus --list

Every clip is a pure function of --seed, its genre and its index: rerunning with the same
arguments rewrites byte-identical files whatever --workers is, and a subset of --genres
gives the same clips as the full run. Without --genres the corpus holds the ten GTZAN genres
(the shipped model's labels); `electronic` (house, techno, trance, electronica, drum and bass,
voiced with synth basses, leads, pads and effects) is made only when --genres names it or says
`all`, so the default recipe, and every clip of the ten, stays as it was. The manifest records
each clip's tempo and key. The manifest's `group` column is the groove family
(or music21/<composer>): hold out whole groups to measure generalisation to unseen grooves,
and the `soundfont` column to measure it across timbres.

Needs: Debian packages mma and GM soundfonts (fluid-soundfont-gm,
musescore-general-soundfont-small, fluidr3mono-gm-soundfont, csound-soundfont,
opl3-soundfont, timgm6mb-soundfont; those installed are used); Python
packages tinysoundfont and, for classical scores, music21 (exports are cached in
--cache-dir).
"""


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _genre_list(text: str) -> list[str]:
    """``--genres``: a comma-separated list, or ``all`` for every genre, electronic included."""
    return list(GENRES) if text.strip().lower() == "all" else _comma_list(text)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the corpus options to ``parser`` (e.g. a ``training`` CLI subparser) or a new one."""
    if parser is None:
        parser = argparse.ArgumentParser(prog="python -m training.corpus")
    parser.description = (
        "Generate a synthetic, GTZAN-style genre corpus: MMA grooves and music21 scores "
        "rendered through General MIDI soundfonts, written as OUT/<genre>/<clip>.wav plus "
        "OUT/manifest.csv."
    )
    parser.epilog = _EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("out", nargs="?", type=Path, help="output folder (created if missing)")
    parser.add_argument(
        "--genres",
        type=_genre_list,
        default=None,
        help=f"comma-separated genres from {', '.join(GENRES)}, or `all` (default: the ten "
        "GTZAN genres, without electronic; --list shows all)",
    )
    parser.add_argument(
        "--clips-per-genre", type=int, default=100, metavar="N", help="default: %(default)s"
    )
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="clip length in seconds (default: %(default)s)"
    )
    parser.add_argument(
        "--soundfont",
        action="append",
        type=Path,
        dest="soundfonts",
        metavar="SF2",
        help="soundfont to use; repeat for several (default: every installed Debian GM font)",
    )
    parser.add_argument("--seed", type=int, default=0, help="master seed (default: %(default)s)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes; 1 runs in-process (default: %(default)s, the CPU count)",
    )
    parser.add_argument(
        "--sample-rate", type=int, default=22050, help="output rate in Hz (default: %(default)s)"
    )
    parser.add_argument(
        "--format",
        choices=sorted(SUBTYPES),
        default="pcm16",
        dest="sample_format",
        help="WAV sample format (default: %(default)s)",
    )
    parser.add_argument(
        "--groups",
        type=_comma_list,
        metavar="FAMILIES",
        help="restrict every genre to these groove families (see --list)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"music21 MIDI export cache (default: {default_cache_dir()})",
    )
    parser.add_argument(
        "--held-out-soundfont",
        type=Path,
        metavar="SF2",
        help="render a held-out share of each genre's families only with this soundfont, "
        "which no other clip uses (the test side: unseen grooves and an unseen timbre)",
    )
    parser.add_argument(
        "--held-out-fraction",
        type=float,
        default=0.2,
        help="share of each genre's families held out, at least 3 (default: %(default)s)",
    )
    parser.add_argument(
        "--list", action="store_true", help="print the genre -> groove-family table and exit"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    """Execute parsed arguments; separate from ``main`` so a parent CLI can dispatch here."""
    if args.list:
        print(describe_families(args.genres or GENRES))
        return 0
    if args.out is None:
        print("error: give an output folder (or --list)")
        return 2
    summary = generate_corpus(
        args.out,
        genres=args.genres or GTZAN_GENRES,
        clips_per_genre=args.clips_per_genre,
        clip_seconds=args.seconds,
        soundfonts=args.soundfonts,
        seed=args.seed,
        workers=args.workers,
        sample_rate=args.sample_rate,
        sample_format=args.sample_format,
        groups=args.groups,
        cache_dir=args.cache_dir,
        held_out_font=args.held_out_soundfont,
        held_out_fraction=args.held_out_fraction,
        progress=not args.no_progress,
    )
    print(
        f"{summary.clips} clips ({summary.audio_seconds / 60:.1f} min of audio) in "
        f"{summary.wall_seconds:.1f} s, {summary.realtime_factor:.0f}x real time; "
        f"manifest: {summary.manifest}"
    )
    if summary.failed_attempts:
        worst = ", ".join(f"{name} {n}" for name, n in summary.failures.most_common(5))
        print(f"{summary.failed_attempts} failed attempts (redrawn), e.g. {worst}")
    if summary.skipped:
        print(f"{summary.skipped} clips skipped after every attempt failed")
    return 0 if summary.clips else 1


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
