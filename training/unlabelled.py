"""Unlabelled real music for distillation: recorded game soundtracks from Debian packages.

The student CNN (`training.distil`) learns what the fused decision hears in real
recordings, so it needs real audio, and no label: the teacher gives the targets. These
packages hold recorded (not MIDI, not tracker) music and none of them is a source of the
real development set (``../shared/realset/``), so the set stays unseen. `fetch_unlabelled`
downloads them with ``apt-get download`` (no install), unpacks them (``dpkg-deb``, and the
zip archives some games keep their music in) and cuts each track longer than an excerpt
into up to `MAX_EXCERPTS` excerpts of 30 s at evenly spaced positions, mono 22050 Hz WAV,
with a manifest of ``file, source, track``.
"""

from __future__ import annotations

import csv
import subprocess
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from streamer.errors import StreamerError

PACKAGES = (
    "drascula-music", "hyperrogue-music", "redeclipse-data", "singularity-music",
    "ufoai-music", "warzone2100-music", "wesnoth-1.16-music",
)  # fmt: skip
"""Debian 12 packages of recorded game music, none of them in the real development set."""
AUDIO_SUFFIXES = (".ogg", ".opus", ".flac", ".mp3")
ARCHIVE_SUFFIXES = (".pk3", ".zip")
MIN_BYTES = 100_000  # sound effects are smaller
MAX_EXCERPTS = 5
EXCERPT_SECONDS = 30.0
SAMPLE_RATE = 22050
SILENT_RMS = 1e-3


def fetch_unlabelled(
    out: Path,
    *,
    packages: Sequence[str] = PACKAGES,
    realset: Path | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[dict[str, str]]:
    """Download, unpack and cut `packages` into ``out/clips/`` and ``out/manifest.csv``;
    refuse a package that is a source of the real development set at `realset`."""
    if realset is not None:
        with (realset / "manifest.csv").open(newline="") as handle:
            sources = {row["source"] for row in csv.DictReader(handle)}
        if shared := sorted(set(packages) & sources):
            raise StreamerError(f"{', '.join(shared)}: in the real development set; leave out")
    debs, files = out / ".work" / "debs", out / ".work" / "files"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not any(debs.glob(f"{p}_*.deb"))]
    if missing:
        _run(["apt-get", "download", *missing], cwd=debs)
    for package in packages:
        deb = next(debs.glob(f"{package}_*.deb"))
        (files / package).mkdir(parents=True, exist_ok=True)
        _run(["dpkg-deb", "-x", str(deb), str(files / package)])
        for archive in sorted((files / package).rglob("*")):
            if archive.suffix.lower() in ARCHIVE_SUFFIXES:
                with zipfile.ZipFile(archive) as zipped:
                    zipped.extractall(archive.with_name(archive.name + ".d"))
    tracks = sorted(
        p for p in files.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES and p.stat().st_size > MIN_BYTES
    )  # fmt: skip
    (out / "clips").mkdir(exist_ok=True)
    rows = []
    for index, track in enumerate(tracks):
        where = track.relative_to(files)
        rows += cut_excerpts(track, out, name=f"{where.parts[0]}__{index}", track=str(where))
        progress(index + 1, len(tracks))
    with (out / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["file", "source", "track"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _run(command: list[str], *, cwd: Path | None = None) -> None:
    """Run a Debian tool; a one-line error with its own last line if it fails."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise StreamerError(f"{command[0]} {command[1]} failed ({last}): needs Debian and root")


def excerpt_starts(seconds: float) -> list[float]:
    """Where the excerpts of a track of `seconds` start: one per whole excerpt length, at
    most `MAX_EXCERPTS`, centred at evenly spaced positions.

    >>> excerpt_starts(29.0), excerpt_starts(90.0)
    ([], [7.5, 30.0, 52.5])
    """
    count = min(MAX_EXCERPTS, int(seconds // EXCERPT_SECONDS))
    centres = [(k + 1) / (count + 1) * seconds for k in range(count)]
    return [max(0.0, c - EXCERPT_SECONDS / 2) for c in centres]


def cut_excerpts(path: Path, out: Path, *, name: str, track: str) -> list[dict[str, str]]:
    """The excerpts of one track (`track`: its package, then its path in the package)
    written under ``out/clips/``; an unreadable or short track gives none, a silent
    excerpt is skipped."""
    import soundfile
    import soxr

    try:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError):
        return []
    starts = excerpt_starts(len(audio) / rate)
    mono = soxr.resample(audio.mean(axis=1), rate, SAMPLE_RATE) if starts else audio[:0, 0]
    rows = []
    for k, start in enumerate(starts):
        first = round(start * SAMPLE_RATE)
        piece = mono[first : first + round(EXCERPT_SECONDS * SAMPLE_RATE)]
        if np.sqrt(np.mean(piece**2)) < SILENT_RMS:
            continue
        file = f"clips/{name}__{k}.wav"
        soundfile.write(out / file, piece, SAMPLE_RATE, subtype="PCM_16")
        rows.append({"file": file, "source": track.split("/")[0], "track": track})
    return rows
