"""A folder of broken and odd audio files through `streamer tag`, `streamer listen --file`
and `streamer recommend`, as a new user would throw at them: never a traceback, never a
hang, one line that says what is wrong, and a batch tags every file that can be tagged.

Run with ``-s`` to see each input with each command's exit status and last line of stderr.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile

RATE = 22050
COMMAND_TIMEOUT = 180
REFUSED = {
    "empty.wav": "the file is empty",
    "text.wav": "not a readable audio file",
    "random.mp3": "mp3 decoder: no audio frames found",
    "one-sample.wav": "too short",
    "quarter-second.wav": "too short",
    "huge-header.wav": "too short",  # 2 s of samples behind a header that claims 4 GB
    "folder.wav": "a folder",
}
"""Inputs no command can analyse, and what every command must say of them."""


def tone(seconds: float, rate: int = RATE, channels: int = 1) -> np.ndarray:
    """A chord with a beat, so the model and the tempo estimator have something to hear."""
    t = np.arange(round(seconds * rate)) / rate
    y = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 6
    y = y * (0.6 + 0.4 * (np.sin(2 * np.pi * 2 * t) > 0))
    return np.repeat(y[:, None], channels, axis=1) if channels > 1 else y


def make_broken_folder(folder: Path) -> dict[str, Path]:
    """The inputs of issue #14's list, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def add(name: str) -> Path:
        files[name] = folder / name
        return files[name]

    add("empty.wav").write_bytes(b"")
    add("text.wav").write_text("this is a text file named .wav\n")
    add("random.mp3").write_bytes(np.random.default_rng(1).bytes(50_000))
    good = folder / ".good.wav"  # a source for the truncated copy, not an input
    soundfile.write(good, tone(10.0), RATE, subtype="PCM_16")
    add("truncated.wav").write_bytes(good.read_bytes()[: 44 + 2 * RATE * 4])  # 4 of 10 s
    good.unlink()
    soundfile.write(add("one-sample.wav"), np.zeros(1), RATE)
    soundfile.write(add("quarter-second.wav"), tone(0.25), RATE)
    nan = tone(10.0).astype(np.float32)
    nan[1000:1100], nan[50_000:50_010], nan[90_000] = np.nan, np.inf, -np.inf
    soundfile.write(add("nan-inf.wav"), nan, RATE, subtype="FLOAT")
    huge = tone(10.0).astype(np.float32)
    huge[20_000:20_100] = 1e30
    soundfile.write(add("huge-floats.wav"), huge, RATE, subtype="FLOAT")
    soundfile.write(add("8ch-96k.wav"), tone(8.0, 96_000, 8), 96_000, subtype="PCM_24")
    soundfile.write(add("8k.wav"), tone(10.0, 8000), 8000, subtype="PCM_16")
    soundfile.write(add("silence.wav"), np.zeros(10 * RATE), RATE, subtype="PCM_16")
    soundfile.write(add("clipped.wav"), np.clip(8 * tone(10.0), -1, 1), RATE, subtype="PCM_16")
    soundfile.write(add("dc-offset.wav"), 0.5 + 0.3 * tone(10.0), RATE, subtype="PCM_16")
    samples = (0.3 * tone(2.0) * 32767).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, RATE, 2 * RATE, 2, 16)
    add("huge-header.wav").write_bytes(header + b"data" + struct.pack("<I", 0xFFFFFF00) + samples)
    add("folder.wav").mkdir()
    return files


def streamer(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamer", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
    )  # fmt: skip


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("broken")
    return folder, make_broken_folder(folder / "inputs")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalogue of three good tracks, indexed with the shipped model."""
    folder = tmp_path_factory.mktemp("library")
    for index in range(3):
        soundfile.write(folder / f"good{index}.wav", tone(8.0 + 2 * index), RATE)
    db = folder / "library.sqlite"
    done = streamer("index", folder, "--db", db, cwd=folder)
    assert done.returncode == 0, done.stderr
    return db


def test_no_input_ends_in_a_traceback_a_hang_or_a_wrapped_error(
    broken: tuple[Path, dict[str, Path]], library: Path
) -> None:
    folder, files = broken
    out = folder / "tagged"
    listen = ("--fast", "--no-view", "--port", "0")
    commands = {
        "tag": lambda path: ("tag", path, "--format", "json", "--out", out),
        "listen --file": lambda path: ("listen", "--file", path, *listen),
        "recommend": lambda path: ("recommend", path, "--db", library),
    }
    jobs = [(name, command, path) for name, path in files.items() for command in commands]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda job: streamer(*commands[job[1]](job[2]), cwd=folder), jobs))
    print("\n| input | " + " | ".join(commands) + " |\n|---|---|---|---|")
    table: dict[str, list[str]] = {}
    problems = []
    for (name, command, _), done in zip(jobs, results, strict=True):
        line = last_line(done.stderr) or last_line(done.stdout)[:60]
        table.setdefault(name, []).append(f"{done.returncode}: {line}")
        errors = [e for e in done.stderr.splitlines() if e.startswith("streamer: error: ")]
        if "Traceback" in done.stderr or done.returncode not in (0, 1, 2):
            problems.append((name, command, done.returncode, done.stderr))
        elif done.returncode and not any(name in e for e in errors):
            problems.append((name, command, "no one-line error naming the file", done.stderr))
        elif name in REFUSED and not any(REFUSED[name] in e for e in errors):
            problems.append((name, command, f"not refused with {REFUSED[name]!r}", done.stderr))
    for name, cells in table.items():
        print(f"| {name} | " + " | ".join(cells) + " |")
    assert not problems

    # each taggable file tags the same in one batch with all the others
    taggable = sorted(
        name
        for (name, command, _), done in zip(jobs, results, strict=True)
        if command == "tag" and done.returncode == 0
    )
    assert {
        "nan-inf.wav",
        "huge-floats.wav",
        "8ch-96k.wav",
        "8k.wav",
        "silence.wav",
        "clipped.wav",
    } <= set(taggable)
    batch = folder / "batch"
    done = streamer("tag", *files.values(), "--format", "json", "--out", batch, cwd=folder)
    assert "Traceback" not in done.stderr
    assert done.returncode == 1
    assert {p.stem for p in batch.glob("*.json")} == {Path(name).stem for name in taggable}
    for name in taggable:
        stem = Path(name).stem
        alone = json.loads((out / f"{stem}.json").read_text())
        together = json.loads((batch / f"{stem}.json").read_text())
        assert together["segments"] == alone["segments"]
    assert "failed" in last_line(done.stderr)
