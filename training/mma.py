"""Thin wrapper around MMA (Musical MIDI Accompaniment): find grooves, write charts, get MIDI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from training.grooves import Accompaniment, MmaFamily

# Intros, endings, fills and breaks are not grooves to loop; pflib marks fills "1FA" and
# endings "1E".
_NOT_A_LOOP = re.compile(r"intro|end|fill|break|metronome|\dF[A-D]$|\dE$", re.IGNORECASE)
_DEFGROOVE = re.compile(r"^\s*DefGroove\s+(\S+)", re.MULTILINE | re.IGNORECASE)


class MmaError(RuntimeError):
    """MMA is missing or rejected a chart."""


def mma_home() -> Path:
    """MMA's share folder (``MMA_HOME`` or Debian's ``/usr/share/mma``)."""
    home = Path(os.environ.get("MMA_HOME", "/usr/share/mma"))
    if not (home / "lib" / "stdlib").is_dir():
        raise MmaError(
            f"MMA's groove library is not in {home}/lib; install it with "
            "`apt-get install mma` or point MMA_HOME at its share folder"
        )
    return home


def mma_executable() -> str:
    exe = shutil.which("mma")
    if exe is None:
        raise MmaError("the `mma` command is not on PATH; install it with `apt-get install mma`")
    return exe


@cache
def groove_variants(family: MmaFamily) -> tuple[str, ...]:
    """The loopable grooves of a family, read from its library file.

    A Zoom pattern is its own family, so only the exact name counts there; elsewhere every
    groove whose name starts with the base name (Swing1, SwingWalkSus...) is a variant.
    """
    text = (mma_home() / "lib" / f"{family.library}.mma").read_text(errors="replace")
    base = family.base.lower()
    names = [n for n in _DEFGROOVE.findall(text) if not _NOT_A_LOOP.search(n)]
    if family.drums_only:
        return tuple(n for n in names if n.lower() == base)
    return tuple(dict.fromkeys(n for n in names if n.lower().startswith(base)))


def accompaniment_tracks(accompaniment: Accompaniment, programs: Sequence[int]) -> list[str]:
    """MMA track definitions for an accompaniment, one GM program per part."""
    lines: list[str] = []
    for i, (part, program) in enumerate(zip(accompaniment.parts, programs, strict=True)):
        lines += [
            f"Begin {part.track}-Add{i}",
            f"  Voice {program}",
            f"  Octave {part.octave}",
            f"  Sequence {part.sequence}",
            f"  Volume {part.volume}",
        ]
        if part.track == "Chord":
            lines.append("  Voicing Mode=Optimal")
        lines.append("End")
    return lines


def chart_text(
    *,
    library: str,
    groove: str,
    tempo: int,
    seed: int,
    bars: Sequence[str],
    extra_tracks: Sequence[str] = (),
) -> str:
    """A complete MMA song: seeded (MMA randomises timing and velocity), one groove, chords."""
    header = [f"RndSeed {seed}", f"Tempo {tempo}", f"Use {library}", f"Groove {groove}"]
    return "\n".join([*header, *extra_tracks, *bars, ""])


def render_midi(text: str, *, timeout: float = 60.0) -> bytes:
    """Run MMA on a chart and return the Standard MIDI File it writes."""
    with tempfile.TemporaryDirectory(prefix="streamer-mma-") as tmp:
        song, midi = Path(tmp) / "song.mma", Path(tmp) / "song.mid"
        song.write_text(text)
        # A fixed hash seed keeps MMA's own set/dict iteration order, hence its MIDI, stable.
        env = {**os.environ, "PYTHONHASHSEED": "0", "MMA_HOME": str(mma_home())}
        proc = subprocess.run(
            [mma_executable(), "-f", str(midi), str(song)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=tmp,
            check=False,
        )
        if not midi.is_file():
            output = proc.stdout + proc.stderr
            at = output.find("Error")
            message = " ".join(output[at:].split())[:300] if at >= 0 else ""
            raise MmaError(message or f"mma exited with {proc.returncode}")
        return midi.read_bytes()
