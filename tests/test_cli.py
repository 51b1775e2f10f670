"""The `streamer` command as a user runs it: real processes, real devices, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamer import protocol
from streamer.model import GenreModel

STREAMER = [sys.executable, "-m", "streamer"]
NO_PULSE = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        STREAMER + args, env=env or NO_PULSE, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("streamer: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_teaches_with_examples() -> None:
    result = run(["--help"])
    assert result.returncode == 0
    assert "streamer devices" in result.stdout and "streamer listen --file" in result.stdout
    assert "--device" in run(["listen", "--help"]).stdout
    assert "ws://" in run(["watch", "--help"]).stdout


def test_devices_lists_the_pulse_input(pulse_device: dict[str, str]) -> None:
    result = run(["devices"], env={**NO_PULSE, **pulse_device})
    assert result.returncode == 0, result.stderr
    assert "pulse" in result.stdout and "ALSA" in result.stdout and "Hz" in result.stdout


def test_no_sound_server_means_no_device(small_model: Path) -> None:
    assert_one_line_error(run(["devices"]), "no audio input device found", "--file")
    result = run(["listen", "--no-view", "--model", str(small_model)])
    assert_one_line_error(result, "no audio input device found")


def test_missing_portaudio_names_the_package() -> None:
    # PortAudio cannot be uninstalled inside a test; hide it from ctypes the way a machine
    # without libportaudio2 does, so sounddevice raises its real "not found" error.
    code = (
        "import ctypes.util as u; find = u.find_library; "
        "u.find_library = lambda name: None if 'portaudio' in name else find(name); "
        "from streamer.cli import main; raise SystemExit(main(['devices']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=NO_PULSE
    )
    assert_one_line_error(result, "PortAudio", "apt-get install libportaudio2")


def test_listen_to_a_device_that_matches_nothing(
    pulse_device: dict[str, str], small_model: Path
) -> None:
    result = run(
        ["listen", "--model", str(small_model), "--device", "no-such-mic"],
        env={**NO_PULSE, **pulse_device},
    )
    assert_one_line_error(result, "no-such-mic", "streamer devices")


def test_listen_to_a_non_audio_file(tmp_path: Path, small_model: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("not audio\n")
    result = run(["listen", "--model", str(small_model), "--file", str(path)])
    assert_one_line_error(result, str(path), "wav, flac")


def messages(result: subprocess.CompletedProcess) -> list[dict]:
    """The JSON lines of a headless run, each checked against its protocol schema."""
    parsed = [json.loads(line) for line in result.stdout.splitlines()]
    for message in parsed:
        protocol.validate(message)
    return parsed


def test_listen_to_a_file_headless(sine_44k: Path, small_model: Path) -> None:
    result = run(
        ["listen", "--model", str(small_model), "--file", str(sine_44k), "--fast", "--no-view",
         "--port", "0"]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sent = messages(result)
    assert sent[0]["type"] == "hello" and sent[0]["labels"] == ["a", "b", "c"]
    updates = [m for m in sent if m["type"] == "update"]
    spec = GenreModel(small_model).spec
    first = ((spec.patch_frames - 1) * spec.hop_length + spec.n_fft // 2) / spec.sample_rate
    expected = [first + 0.5 * k for k in range(4)]
    assert [u["time"] for u in updates] == pytest.approx(expected, abs=1e-3)  # ms in messages
    assert all(u["level_dbfs"] == pytest.approx(-9.0, abs=0.2) for u in updates)
    assert all(u["state"] == "music" for u in updates)
    segments = [m for m in sent if m["type"] == "segment"]
    assert segments and segments[-1]["end"] == pytest.approx(3.0, abs=0.01)
    assert sent[-1]["type"] == "status" and sent[-1]["overflow_samples"] == 0


def test_listen_to_the_real_device_headless(
    pulse_device: dict[str, str], small_model: Path, tmp_path: Path
) -> None:
    record = tmp_path / "session.jsonl"
    result = run(
        ["listen", "--model", str(small_model), "--no-view", "--duration", "2", "--port", "0",
         "--record", str(record)],
        env={**NO_PULSE, **pulse_device},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    updates = [m for m in messages(result) if m["type"] == "update"]
    assert len(updates) == 2  # hops at 1.02 s and 1.52 s of the 2 s heard
    assert all(u["state"] == "silence" and u["top"] is None for u in updates)  # nothing plays
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r["state"] for r in recorded] == ["silence"] and recorded[0]["genre"] is None


def test_listen_without_its_model_metadata(tmp_path: Path, sine_44k: Path) -> None:
    model = tmp_path / "genre.onnx"
    model.write_bytes(b"not a model")
    result = run(["listen", "--model", str(model), "--file", str(sine_44k)])
    assert_one_line_error(result, "genre.json is missing")


def test_runtime_does_not_import_tensorflow() -> None:
    code = (
        "import sys, streamer.cli, streamer.sources, streamer.features, streamer.ringbuffer; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"
