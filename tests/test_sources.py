"""Audio sources: files decoded in blocks, and real capture through a PortAudio device."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pulse
import pytest
import soundfile
from conftest import dominant_frequency, write_sine

from streamer.capture.device import DeviceSource, find_input_device
from streamer.capture.file import FileSource, read_audio
from streamer.errors import StreamerError

RATE = 22050


def drain(source: FileSource) -> np.ndarray:
    chunks = []
    with source:
        while (chunk := source.read(timeout=1.0)) is not None:
            chunks.append(chunk)
    return np.concatenate(chunks)


def test_file_source_delivers_the_whole_file_resampled(sine_44k: Path) -> None:
    streamed = drain(FileSource(sine_44k, sample_rate=RATE, block_seconds=0.037))
    whole = read_audio(sine_44k, sample_rate=RATE)
    assert abs(streamed.size - 3 * RATE) <= 2
    assert whole.size == 3 * RATE
    n = min(streamed.size, whole.size)
    np.testing.assert_allclose(streamed[1000 : n - 1000], whole[1000 : n - 1000], atol=1e-3)
    assert dominant_frequency(streamed, RATE) == pytest.approx(440, abs=1)


def test_file_source_downmixes_stereo(tmp_path: Path) -> None:
    t = np.arange(RATE) / RATE
    left, right = np.sin(2 * np.pi * 300 * t), np.zeros_like(t)
    path = tmp_path / "stereo.flac"
    soundfile.write(path, np.stack([left, right], axis=1) * 0.8, RATE)
    y = drain(FileSource(path, sample_rate=RATE))
    assert np.sqrt(np.mean(y**2)) == pytest.approx(0.4 / np.sqrt(2), rel=0.01)


def test_paced_file_source_follows_the_clock(tmp_path: Path) -> None:
    path = write_sine(tmp_path / "one.wav", freq=220, seconds=1.0, rate=RATE)
    started = time.monotonic()
    y = drain(FileSource(path, sample_rate=RATE, realtime=True, block_seconds=0.05))
    elapsed = time.monotonic() - started
    assert y.size == RATE
    assert elapsed >= 0.9, "a paced file must not run ahead of real time"
    fast_started = time.monotonic()
    drain(FileSource(path, sample_rate=RATE))
    assert time.monotonic() - fast_started < elapsed / 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.wav", None, "no such file"),
        ("empty.wav", b"", "the file is empty"),
        ("text.wav", b"this is not audio, just text\n" * 20, "not a readable audio file"),
        ("notes.txt", b"hello", "not a readable audio file"),
    ],
)
def test_unreadable_files_give_one_line_errors(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    for open_it in (
        lambda: read_audio(path, sample_rate=RATE),
        lambda: FileSource(path, sample_rate=RATE),
    ):
        with pytest.raises(StreamerError, match=message) as error:
            open_it()
        assert "\n" not in str(error.value)
        assert str(path) in str(error.value)


def test_real_capture_through_pulseaudio_at_another_rate(
    pulse_device: dict[str, str], sine_44k: Path
) -> None:
    """paplay a 44.1 kHz sine into the null sink; capture its monitor at 48 kHz; get 22.05 kHz."""
    source = DeviceSource(sample_rate=RATE, device="pulse", device_rate=48000)
    assert source.device_rate != soundfile.info(sine_44k).samplerate != RATE
    chunks = []
    with source:
        player = pulse.play(sine_44k, pulse_device)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and player.poll() is None:
            chunks.append(source.read(timeout=0.1))
        player.wait(timeout=10)
    y = np.concatenate(chunks)
    loud = y[np.abs(y) > 0.05]
    assert loud.size > 2 * RATE, "the sine did not come back through the device"
    start = int(np.argmax(np.abs(y) > 0.05)) + RATE // 4
    steady = y[start : start + 2 * RATE]
    assert dominant_frequency(steady, RATE) == pytest.approx(440, abs=1)
    assert np.sqrt(np.mean(steady**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    assert source.overflow_samples == 0
    assert source.overflow_events == 0


def test_capture_holds_samples_back_until_a_hop_is_there(
    pulse_device: dict[str, str], sine_44k: Path
) -> None:
    """With `min_samples`, the reader wakes once per hop and no sample is lost between reads."""
    hop = RATE // 2
    source = DeviceSource(sample_rate=RATE, device="pulse")
    chunks = []
    with source:
        player = pulse.play(sine_44k, pulse_device)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and player.poll() is None:
            chunk = source.read(timeout=0.1, min_samples=hop)
            if chunk.size:
                chunks.append(chunk)
        player.wait(timeout=10)
    # The first read may fall short by the resampler's start-up delay (unknown to soxr
    # before its first input); the reader then asks again for the rest.
    assert min(c.size for c in chunks[1:]) >= hop
    y = np.concatenate(chunks)
    start = int(np.argmax(np.abs(y) > 0.05)) + RATE // 4
    steady = y[start : start + 2 * RATE]  # spans several reads
    assert steady.size == 2 * RATE, "the sine did not come back through the device"
    # A sample lost or repeated at a read's edge would jump the phase: the 440 Hz sine
    # fitted by least squares would leave a large residual.
    t = np.arange(steady.size) / RATE
    basis = np.stack([np.sin(2 * np.pi * 440 * t), np.cos(2 * np.pi * 440 * t)], axis=1)
    fit, *_ = np.linalg.lstsq(basis, steady, rcond=None)
    residual = steady - basis @ fit
    assert np.sqrt(np.mean(residual**2)) < 0.01 * np.sqrt(np.mean(steady**2))


def test_captured_samples_know_when_they_came_in(
    pulse_device: dict[str, str], sine_44k: Path
) -> None:
    """The live latency counts from a sample's arrival through the callback."""
    source = DeviceSource(sample_rate=RATE, device="pulse")
    with source:
        player = pulse.play(sine_44k, pulse_device)
        clock, deadline = 0, time.monotonic() + 5
        while clock < RATE // 2 and time.monotonic() < deadline:  # the first may be empty
            clock += source.read(timeout=0.5, min_samples=RATE // 2).size
        time.sleep(0.6)  # callbacks go on meanwhile, into the ring
        block = source.read(timeout=0)
        read_at = time.monotonic()
        player.wait(timeout=10)
    oldest, newest = source.arrived_at(clock), source.arrived_at(clock + block.size - 1)
    assert block.size > RATE // 4 and oldest is not None and newest is not None
    assert read_at - oldest > 0.3, "the block's first samples waited in the ring"
    assert newest - oldest > 0.2, "its last came in later, while the reader slept"
    assert source.arrived_at(clock - 1) is None and source.arrived_at(clock + block.size) is None


def test_device_choice_errors(pulse_device: dict[str, str]) -> None:
    assert find_input_device("PULSE").name == "pulse"  # exact name, any case
    assert find_input_device(None).is_default
    with pytest.raises(StreamerError, match="no input device matches 'no-such-mic'"):
        find_input_device("no-such-mic")
    with pytest.raises(StreamerError, match="matches several input devices"):
        find_input_device("u")  # in both "pulse" and "default"
    with pytest.raises(StreamerError, match="not an input device"):
        find_input_device(999)


def test_refused_sample_rate_is_a_clear_error(pulse_device: dict[str, str]) -> None:
    with pytest.raises(StreamerError, match=r"refuses .* at 1 Hz") as error:
        DeviceSource(sample_rate=RATE, device="pulse", device_rate=1)
    assert "omit --device-rate" in str(error.value)


def write_float_with_nonfinite(path: Path, *, rate: int, channels: int = 1) -> int:
    """Two seconds of a 440 Hz sine as float32 with NaN and +-Inf in the middle second;
    returns how many samples (values, all channels) are not finite."""
    t = np.arange(2 * rate) / rate
    y = np.repeat((0.5 * np.sin(2 * np.pi * 440 * t))[:, None], channels, axis=1)
    y = y.astype(np.float32)
    y[rate : rate + 100, 0] = np.nan
    y[rate + 300, -1] = np.inf
    y[rate + 400, 0] = -np.inf
    soundfile.write(path, y, rate, subtype="FLOAT")
    return int(np.count_nonzero(~np.isfinite(y)))


def test_file_source_analyses_invalid_samples_as_zeros_and_counts_them(tmp_path: Path) -> None:
    """NaN and Inf become 0 before the resampler, which would smear them: all else intact."""
    path = tmp_path / "nan.wav"
    bad = write_float_with_nonfinite(path, rate=44100, channels=2)
    source = FileSource(path, sample_rate=RATE, block_seconds=0.25)
    assert source.invalid_samples == 0
    y = drain(source)
    assert np.isfinite(y).all()
    assert source.invalid_samples == bad == 102
    assert y.size == 2 * RATE
    first = y[: RATE - 100]  # the first second, far from the damage, is the sine
    assert dominant_frequency(first, RATE) == pytest.approx(440, abs=1)
    assert np.sqrt(np.mean(first[1000:] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_capture_replaces_invalid_samples_on_the_readers_thread(
    pulse_device: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NaN and Inf played through a float32 null sink reach PortAudio as they are (the
    default s16 sink would clip them); `read` hands out zeros for them and counts them."""
    module = pulse._control(
        pulse_device, "load-module", "module-null-sink", "sink_name=streamer_float",
        "format=float32le", "rate=44100", "channels=1",
    ).strip()  # fmt: skip
    try:
        monkeypatch.setenv("PULSE_SOURCE", "streamer_float.monitor")  # what "pulse" captures
        path = tmp_path / "nan.wav"
        bad = write_float_with_nonfinite(path, rate=44100)
        source = DeviceSource(sample_rate=RATE, device="pulse", device_rate=44100)
        chunks = []
        with source:
            player = subprocess.Popen(
                ["paplay", "--device=streamer_float", str(path)], env={**os.environ, **pulse_device}
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (player.poll() is None or len(chunks) < 40):
                chunks.append(source.read(timeout=0.1))
            player.wait(timeout=10)
        y = np.concatenate(chunks)
        assert np.abs(y).max() > 0.4, "the sine did not come back through the device"
        assert np.isfinite(y).all()
        assert source.invalid_samples == bad  # one channel captured as two, downmixed
    finally:
        pulse._control(pulse_device, "unload-module", module)
