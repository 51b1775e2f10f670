"""Classical scores from music21's bundled corpus, exported once to MIDI and cached.

Parsing a score takes 1-20 s and a few never finish, so each export runs in a child process
under a timeout (``python -m training.scores WORK OUT.mid``). A work that fails is remembered
in the cache and not retried, so later runs stay fast and draw the same works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from streamer.files import user_cache_dir

EXPORT_TIMEOUT_S = 120.0


class ScoreError(RuntimeError):
    """A work could not be exported (failed earlier, timed out, or music21 is missing)."""


@dataclass(frozen=True)
class CachedScore:
    midi: bytes
    key: str  # e.g. "f# minor" as music21 analyses it
    tempo: float  # quarter notes per minute of the exported MIDI


def default_cache_dir() -> Path:
    return user_cache_dir() / "music21-midi"


def _slug(work: str) -> str:
    return work.replace("/", "__")


def _export(work: str, midi_path: Path) -> dict[str, object]:
    """Parse ``work`` and write its MIDI; runs in the child process."""
    from music21 import corpus, stream, tempo  # heavy: imported in the child only

    score = corpus.parse(work)
    if isinstance(score, stream.Opus):  # ABC files hold one voice per tune: play them together
        score = score.mergeScores()
    marks = score.flatten().getElementsByClass(tempo.MetronomeMark)
    qpm = marks[0].getQuarterBPM() if marks else None
    score.write("midi", fp=str(midi_path))
    return {"key": str(score.analyze("key")), "tempo": float(qpm or 120.0)}


def cached_score(work: str, cache_dir: Path, *, timeout: float = EXPORT_TIMEOUT_S) -> CachedScore:
    """The work's MIDI and metadata, exporting it first if this cache lacks it."""
    stem = str(cache_dir / _slug(work))  # not Path.with_suffix: "bwv1.6" has a dot of its own
    midi, meta, failed = (Path(stem + s) for s in (".mid", ".json", ".failed"))
    if failed.exists():
        raise ScoreError(f"{work}: {failed.read_text().strip()}")
    if not meta.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(f"{stem}.{os.getpid()}.tmp")
        cmd = [sys.executable, "-m", "training.scores", work, str(tmp)]
        root = str(Path(__file__).resolve().parents[1])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
        }
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
            )
        except subprocess.TimeoutExpired:
            failed.write_text(f"export timed out after {timeout:.0f} s\n")
            raise ScoreError(f"{work}: export timed out") from None
        if proc.returncode != 0 or not tmp.exists():
            if "No module named 'music21'" in proc.stderr:
                raise ScoreError("classical scores need music21: pip install music21")
            errors = [ln for ln in proc.stderr.splitlines() if "Error" in ln] or ["export failed"]
            failed.write_text(errors[-1].strip() + "\n")
            raise ScoreError(f"{work}: {failed.read_text().strip()}")
        # Rename the MIDI before writing the metadata: metadata present means MIDI complete.
        os.replace(tmp, midi)
        meta_tmp = Path(f"{stem}.{os.getpid()}.json.tmp")
        meta_tmp.write_text(proc.stdout.strip().splitlines()[-1])
        os.replace(meta_tmp, meta)
    info = json.loads(meta.read_text())
    return CachedScore(midi.read_bytes(), str(info["key"]), float(info["tempo"]))


if __name__ == "__main__":
    print(json.dumps(_export(sys.argv[1], Path(sys.argv[2]))))
