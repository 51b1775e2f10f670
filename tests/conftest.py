"""Shared fixtures: generated audio files and a real PulseAudio input device."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).parent))

import pulse


def write_sine(
    path: Path, *, freq: float, seconds: float, rate: int, amplitude: float = 0.5
) -> Path:
    """Write a mono 16-bit sine wave file and return its path."""
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, amplitude * np.sin(2 * np.pi * freq * t), rate, subtype="PCM_16")
    return path


def dominant_frequency(y: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / rate)[np.argmax(spectrum)])


@pytest.fixture(scope="session")
def sine_44k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three seconds of a 440 Hz sine at amplitude 0.5, 44.1 kHz."""
    folder = tmp_path_factory.mktemp("audio")
    return write_sine(folder / "sine440.wav", freq=440.0, seconds=3.0, rate=44100)


@pytest.fixture(scope="session")
def pulse_device() -> Iterator[dict[str, str]]:
    """A private PulseAudio daemon whose null-sink monitor is the default input.

    The variables are exported to this process too, and PortAudio is re-initialised so
    that it enumerates the daemon's devices even if sounddevice was imported before.
    """
    with pulse.null_sink_daemon() as env:
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        if "sounddevice" in sys.modules:
            sd = sys.modules["sounddevice"]
            sd._terminate()
            sd._initialize()
        try:
            yield env
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
