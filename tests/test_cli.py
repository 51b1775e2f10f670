"""The `streamer` command as a user runs it: real processes, real devices, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamer.features import FeatureSpec

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


def test_devices_lists_the_pulse_input(pulse_device: dict[str, str]) -> None:
    result = run(["devices"], env={**NO_PULSE, **pulse_device})
    assert result.returncode == 0, result.stderr
    assert "pulse" in result.stdout and "ALSA" in result.stdout and "Hz" in result.stdout


def test_no_sound_server_means_no_device() -> None:
    assert_one_line_error(run(["devices"]), "no audio input device found", "--file")
    assert_one_line_error(run(["listen", "--no-view"]), "no audio input device found")


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


def test_listen_to_a_device_that_matches_nothing(pulse_device: dict[str, str]) -> None:
    result = run(["listen", "--device", "no-such-mic"], env={**NO_PULSE, **pulse_device})
    assert_one_line_error(result, "no-such-mic", "streamer devices")


def test_listen_to_a_non_audio_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("not audio\n")
    assert_one_line_error(run(["listen", "--file", str(path)]), str(path), "wav, flac")


def test_listen_to_a_file_headless(sine_44k: Path) -> None:
    result = run(["listen", "--file", str(sine_44k), "--fast", "--no-view"])
    assert result.returncode == 0, result.stderr
    updates = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(updates) == 6  # 3 s of audio, one update per 0.5 s
    assert [u["time"] for u in updates] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    n, spec = 3 * 22050, FeatureSpec()
    assert updates[-1]["frames"] == (n + spec.n_fft // 2 - spec.n_fft) // spec.hop_length + 1
    assert all(u["level_dbfs"] == pytest.approx(-9.0, abs=0.2) for u in updates)
    assert "no genre model is shipped yet" in result.stderr


def test_listen_to_the_real_device_headless(pulse_device: dict[str, str]) -> None:
    result = run(["listen", "--no-view", "--duration", "1.5"], env={**NO_PULSE, **pulse_device})
    assert result.returncode == 0, result.stderr
    updates = [json.loads(line) for line in result.stdout.splitlines()]
    assert [u["time"] for u in updates] == pytest.approx([0.5, 1.0, 1.5], abs=0.06)
    assert all(u["level_dbfs"] < -90 for u in updates)  # nothing plays: silence
    assert all(u["overflow_samples"] == 0 for u in updates)


def test_runtime_does_not_import_tensorflow() -> None:
    code = (
        "import sys, streamer.cli, streamer.sources, streamer.features, streamer.ringbuffer; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"
