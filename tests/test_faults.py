"""Faults of a live session: the input device goes away in the middle of it.

`streamer listen` captures the PulseAudio null sink's monitor; `pulse.unplugged` takes
the input away from it as an unplugged device does (its docstring says why unloading the
sink is not enough). The session must tell its clients, keep its segments, and then either
resume when the device is back (``--on-device-loss wait``, the default) or exit with
status 3 and the record flushed (``--on-device-loss exit``).
"""

from __future__ import annotations

import itertools
import json
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pulse
import pytest
import soundfile
from listening import receive_until, start_listen
from rich.console import Console
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from streamer.capture import device
from streamer.capture.device import DeviceSource
from streamer.live.session import EXIT_INPUT_LOST
from streamer.outlets import protocol
from streamer.outlets.view import GenreView
from streamer.segments import SegmentConfig


def is_update(message: dict) -> bool:
    return message["type"] == "update"


def is_music(message: dict) -> bool:
    """An update of audio played into the sink, once the tracker decided its genre."""
    return is_update(message) and message["level_dbfs"] > -40 and message["top"] is not None


def is_segment(state: str):
    return lambda message: message["type"] == "segment" and message["state"] == state


def is_input(state: str):
    return lambda message: message["type"] == "status" and message["input"] == state


@pytest.fixture
def players() -> Iterator[list[subprocess.Popen]]:
    """Players started by a test, stopped after it: none may play into the next test."""
    started: list[subprocess.Popen] = []
    yield started
    for player in started:
        player.kill()
        player.wait(timeout=10)


# over the segmenter's minimum runs: the silence before the song and the song are segments
SILENCE_SECONDS = SegmentConfig().min_silence_seconds + 1.0
MUSIC_SECONDS = SegmentConfig().min_music_seconds + 1.0


def play_until_music(
    client: Any, env: dict[str, str], song: Path, players: list[subprocess.Popen]
) -> list[dict]:
    """Wait for `SILENCE_SECONDS` of the stream (at once after the first update later on),
    start playing `song`, return once `MUSIC_SECONDS` of it have been heard."""
    received = receive_until(client, lambda m: is_update(m) and m["time"] >= SILENCE_SECONDS)
    players.append(pulse.play(song, env))
    received += receive_until(client, is_music)
    since = received[-1]["time"]
    return received + receive_until(
        client, lambda m: is_music(m) and m["time"] >= since + MUSIC_SECONDS
    )


@pytest.fixture(scope="module")
def long_song(two_genres: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`two_genres` three times over: still playing when the input is taken away, after
    the `MUSIC_SECONDS` a music segment needs."""
    song, rate = soundfile.read(two_genres)
    path = tmp_path_factory.mktemp("faults") / "long-song.wav"
    soundfile.write(path, np.concatenate([song] * 3), rate)
    return path


def recorded(path: Path) -> list[dict]:
    return [{**json.loads(line), "type": "segment"} for line in path.read_text().splitlines()]


def test_wait_mode_reports_the_loss_keeps_the_segments_and_resumes(
    pulse_device: dict[str, str],
    trained: dict[str, Path],
    long_song: Path,
    tmp_path: Path,
    players: list[subprocess.Popen],
) -> None:
    record = tmp_path / "set.jsonl"
    process, url = start_listen(trained["onnx"], pulse_device, "--record", str(record))
    try:
        with connect(url) as client:
            before = play_until_music(client, pulse_device, long_song, players)
            unplugged_at = time.monotonic()
            with pulse.unplugged(pulse_device):
                gap = receive_until(client, is_input("lost"))
                detection = time.monotonic() - unplugged_at
                # the open segment closes where the input went, as at a silence, and is
                # sent the segmenter's lag (26.5 s) later
                gap += receive_until(client, is_segment("music"), timeout=60)
            replugged_at = time.monotonic()
            back = receive_until(client, is_input("ok"))
            back += receive_until(client, lambda m: m["type"] == "update")
            reconnection = time.monotonic() - replugged_at
            back += play_until_music(client, pulse_device, long_song, players)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, process.stderr.read()
    print(f"loss reported {detection:.2f} s after the unplug, resumed {reconnection:.2f} s after")
    for message in before + gap + back:
        protocol.validate(message)
    lost = next(m for m in gap if is_input("lost")(m))
    ok = next(m for m in back if is_input("ok")(m))
    assert lost["input_losses"] == ok["input_losses"] == 1 and ok["input_lost_at"] is None
    hop = before[0]["hop_seconds"]
    heard = [m["time"] for m in before if is_music(m)]
    assert heard[-1] - hop <= lost["input_lost_at"] <= heard[-1] + 2 * hop
    closed = gap[-1]  # at the first quiet hop: the hop after the loss, or the one after it
    assert closed["state"] == "music"
    assert lost["input_lost_at"] <= closed["end"] <= lost["input_lost_at"] + 2 * hop
    # the stream clock ran on through the gap: updates of digital silence
    during = [
        m for m in gap + back if is_update(m) and lost["time"] + hop < m["time"] <= ok["time"]
    ]
    assert during and all(m["level_dbfs"] == -100.0 for m in during)
    resumed = [m for m in back if is_music(m)]
    assert resumed and resumed[0]["time"] > ok["time"]
    segments = recorded(record)
    assert closed in segments, "the segment open at the loss was not recorded"
    assert segments[0]["state"] == "silence"
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(segments))


def test_exit_mode_ends_the_session_with_the_record_flushed(
    pulse_device: dict[str, str],
    trained: dict[str, Path],
    long_song: Path,
    tmp_path: Path,
    players: list[subprocess.Popen],
) -> None:
    record = tmp_path / "set.jsonl"
    process, url = start_listen(
        trained["onnx"], pulse_device, "--record", str(record), "--on-device-loss", "exit"
    )
    try:
        with connect(url) as client:
            received = play_until_music(client, pulse_device, long_song, players)
            with pulse.unplugged(pulse_device):
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        received.append(json.loads(client.recv(timeout=30)))
                status = process.wait(timeout=30)
    finally:
        process.kill()
        process.wait(timeout=10)
    error = process.stderr.read()
    assert status == EXIT_INPUT_LOST, error
    assert "was lost at" in error and "recorded up to then" in error
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    for message in received:
        protocol.validate(message)
    lost = next(m for m in received if is_input("lost")(m))
    segments = [m for m in received if m["type"] == "segment"]
    assert recorded(record) == segments
    assert [s["state"] for s in segments] == ["silence", "music"]
    assert segments[-1]["end"] == lost["input_lost_at"]


def test_the_view_shows_a_lost_input_until_it_is_back() -> None:
    view = GenreView()
    status = {
        "time": 95.5, "overflow_samples": 0, "overflow_events": 0, "latency_ms": 20.0,
        "clients": 0, "dropped_messages": 0, "source": "test", "input_losses": 1,
    }  # fmt: skip
    console = Console(width=120, record=True, color_system=None)
    view.handle(protocol.status_message(**status, input_lost_at=95.5))
    console.print(view)
    assert "INPUT LOST at 1:35" in console.export_text()
    view.handle(protocol.status_message(**status))
    console.print(view)
    assert "INPUT LOST" not in console.export_text()


class FakeSounddevice:
    """Just enough of sounddevice for `DeviceSource`: one input, which can be unplugged."""

    PortAudioError = RuntimeError

    def __init__(self) -> None:
        self.plugged = True
        self.streams: list[SimpleNamespace] = []
        self.default = SimpleNamespace(device=(0, 0))

    def query_hostapis(self) -> list[dict]:
        return [{"name": "fake"}]

    def query_devices(self) -> list[dict]:
        mic = {"index": 0, "name": "mic", "hostapi": 0, "max_input_channels": 1}
        return [{**mic, "default_samplerate": 22050.0}] if self.plugged else []

    def check_input_settings(self, **settings: Any) -> None: ...

    def InputStream(self, *, callback: Any, **settings: Any) -> SimpleNamespace:
        stream = SimpleNamespace(callback=callback, active=False)
        stream.start = lambda: setattr(stream, "active", True)
        stream.stop = lambda: setattr(stream, "active", False)
        stream.close = lambda: None
        self.streams.append(stream)
        return stream

    def _terminate(self) -> None: ...

    def _initialize(self) -> None: ...

    def deliver(self, *, overflow: bool = False) -> None:
        """One callback of 1000 samples of 0.5 from the latest stream."""
        status = SimpleNamespace(input_overflow=overflow)
        self.streams[-1].callback(np.full((1000, 1), 0.5, np.float32), 1000, None, status)


def read_until(
    source: DeviceSource, lost: bool, timeout: float = 10.0, min_samples: int = 1
) -> list[np.ndarray]:
    chunks, deadline = [], time.monotonic() + timeout
    while source.input_lost != lost:
        assert time.monotonic() < deadline, f"input_lost did not become {lost}"
        chunks.append(source.read(timeout=0.05, min_samples=min_samples))
    return chunks


def test_a_silent_or_stopped_input_is_lost_filled_with_silence_and_reopened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sd = FakeSounddevice()
    monkeypatch.setattr(device, "import_sounddevice", lambda: sd)
    source = DeviceSource(sample_rate=22050, stall_seconds=0.3, retry_seconds=0.2)
    with source:
        sd.deliver(overflow=True)
        before = time.monotonic()
        assert source.read().size > 0  # resampler delay: fewer than 1000 samples
        after = time.monotonic()
        sd.plugged = False  # the stream stays active but delivers nothing: a stalled input
        read_until(source, lost=True)
        assert time.monotonic() - after >= 0.3
        gap = []
        for _ in range(5):
            start = time.monotonic()
            gap.append(source.read(timeout=0.05))
            # silence up to the read, counted from the last samples: the clock keeps time
            assert start - after <= sum(map(len, gap)) / 22050 <= time.monotonic() - before
        assert not np.any(np.concatenate(gap))
        sd.plugged = True
        while len(sd.streams) < 2:  # reopened within retry_seconds, lost until samples come
            source.read(timeout=0.05)
            assert source.input_lost
        sd.deliver()
        read_until(source, lost=False)
        sd.streams[-1].active = False  # PortAudio stopped the stream: a device error
        read_until(source, lost=True, timeout=0.5)
    assert source.overflow_events == 1, "overflows counted before a loss were forgotten"


@pytest.mark.parametrize("stopped", [True, False], ids=["stopped", "stalled"])
def test_an_input_that_dies_with_part_of_a_hop_unread_is_lost_and_the_part_kept(
    monkeypatch: pytest.MonkeyPatch, stopped: bool
) -> None:
    """The engine reads a hop at a time: samples short of one, left in the ring when the
    device goes, are no new samples and must not hide the loss (the session went silent:
    no update, no status, until the device was back)."""
    sd = FakeSounddevice()
    monkeypatch.setattr(device, "import_sounddevice", lambda: sd)
    source = DeviceSource(sample_rate=22050, stall_seconds=0.3, retry_seconds=10.0)
    with source:
        sd.deliver()  # 1000 samples of 0.5, less than the hop asked for
        sd.streams[-1].active = not stopped
        chunks = read_until(source, lost=True, timeout=1.0, min_samples=11025)
    heard = np.concatenate(chunks)
    assert np.count_nonzero(np.abs(heard - 0.5) < 0.01) >= 900, "the part was not handed out"


def test_samples_lost_to_a_full_ring_are_counted_and_keep_their_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sd = FakeSounddevice()
    monkeypatch.setattr(device, "import_sounddevice", lambda: sd)
    source = DeviceSource(sample_rate=22050, ring_seconds=0.1)  # 2205 samples
    with source:
        for _ in range(5):  # 5000 samples while the reader is busy elsewhere
            sd.deliver()
        first = source.read()
        for _ in range(2):
            sd.deliver()
        second = source.read()
    assert (source.overflow_samples, source.overflow_events) == (5000 - 2205, 3)
    assert first.size + second.size == 7000  # the device's clock: every sample has its place
    assert np.all(first[:2205] == 0.5) and not np.any(first[2205:])  # zeros where lost
    assert np.all(second == 0.5)


def test_a_segment_is_on_disk_before_any_sink_sees_it(
    trained: dict[str, Path], two_genres: Path, tmp_path: Path
) -> None:
    """Every sink (the server, the view, stdout) finds the segment it is handed already in
    the record file: a client can never see a segment that a crash would lose."""
    from streamer.analysis.model import GenreModel
    from streamer.capture.file import FileSource
    from streamer.chain import GenreChain
    from streamer.live.engine import Engine, SegmentRecord

    model = GenreModel(trained["onnx"])
    path = tmp_path / "set.jsonl"
    seen: list[dict] = []
    song, rate = soundfile.read(two_genres)  # twice with a pause between: three segments
    paused = tmp_path / "paused.wav"
    soundfile.write(paused, np.concatenate([song, np.zeros(2 * rate), song]), rate)

    def sink(message: dict) -> None:
        if message["type"] == "segment":
            on_disk = [json.loads(line) for line in path.read_text().splitlines()]
            assert on_disk[-1] == message, "a sink saw a segment before it was recorded"
            seen.append(message)

    record = SegmentRecord(path)
    engine = Engine(
        source=FileSource(paused, sample_rate=model.spec.sample_rate),
        chain=GenreChain(model, hop_seconds=0.5),
        sinks=[sink],
        record=record,
    )
    segments = engine.run(threading.Event())
    record.close()
    assert len(seen) == len(segments) >= 2 and engine.record_error is None


def listen_fast(model: Path, song: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamer", "listen", "--model", str(model), "--file", str(song),
         "--no-view", "--port", "0", "--fast", *extra],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_record_that_cannot_be_written_is_reported_at_once_and_at_the_end(
    trained: dict[str, Path], two_genres: Path
) -> None:
    done = listen_fast(trained["onnx"], two_genres, "--record", "/dev/full")
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    first = next(i for i, m in enumerate(messages) if m["type"] == "segment")
    statuses = [m for m in messages if m["type"] == "status"]
    error = "cannot write /dev/full (No space left on device): the segments from "
    assert messages[first - 1]["type"] == "status", "not said at once, before the segment"
    assert messages[first - 1]["record_error"].startswith(error)
    assert statuses[-1]["record_error"] == messages[first - 1]["record_error"]
    assert [m["record_error"] for m in statuses[: statuses.index(messages[first - 1])]] == [
        None
    ] * statuses.index(messages[first - 1])
    for message in messages:
        protocol.validate(message)
    assert done.returncode == 2, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"streamer: error: {error}") and "Traceback" not in done.stderr
    assert last.endswith("are not recorded; the session went on without them")


def test_a_closed_stdout_pipe_stops_the_session_in_one_line(
    trained: dict[str, Path], two_genres: Path
) -> None:
    """`streamer listen --no-view | head -1`: head reads the hello and goes; listen stops
    there, says so in one line and exits 2, without a traceback."""
    command = (
        f"{shlex.quote(sys.executable)} -m streamer listen --model "
        f"{shlex.quote(str(trained['onnx']))} --file {shlex.quote(str(two_genres))} "
        '--no-view --port 0 | head -1; echo "status ${PIPESTATUS[0]}" >&2'
    )
    started = time.monotonic()
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert json.loads(done.stdout)["type"] == "hello"
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, lines
    assert lines[-2:] == [
        "streamer: error: cannot write to stdout (Broken pipe): the session stopped there",
        "status 2",
    ]
    assert time.monotonic() - started < 8.0, "it went on playing the 8 s file"
