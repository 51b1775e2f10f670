"""`streamer listen` end to end: a real device, a real websocket client, real signals.

The PulseAudio null sink plays a file of two clearly different "genres" with a known
boundary; `streamer listen` captures it from the sink's monitor; a websocket client over
loopback follows the session. The model is the tiny CNN trained by the `trained` fixture.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pulse
import pytest
import soundfile
from conftest import BOUNDARY, TRAIN_RATE, render_genre, write_sine
from listening import receive_for, start_listen
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from streamer.outlets import protocol


def test_live_session_follows_a_change_of_genre(
    pulse_device: dict[str, str], trained: dict[str, Path], two_genres: Path, tmp_path: Path
) -> None:
    record = tmp_path / "set.jsonl"
    # The tiny model's window is 1 s, so the bound (window + 2 hops = 2 s) leaves the
    # smoother 2 hops after the window has mostly changed: one confirming hop, not the
    # default two (which fits the shipped model's 3 s window: a 4 s bound).
    process, url = start_listen(
        trained["onnx"], pulse_device, "--record", str(record), "--confirm-hops", "1"
    )
    try:
        with connect(url) as client:
            hello = json.loads(client.recv(timeout=10))
            protocol.validate(hello)
            assert hello["labels"] == ["clicks", "noise", "tones"]
            received = [json.loads(client.recv(timeout=10))]
            while received[-1]["type"] != "update":  # play once the analysis has started,
                received.append(json.loads(client.recv(timeout=10)))  # so the onset is seen
            player = pulse.play(two_genres, pulse_device)
            received += receive_for(client, 12.0)
            player.wait(timeout=10)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0, process.stderr.read()
    for message in received:
        protocol.validate(message)
    updates = [m for m in received if m["type"] == "update"]
    loud = [u for u in updates if u["level_dbfs"] > -40]
    assert loud, "the file did not come back through the device"
    # The file starts inside the hop before its first loud update; the share of that hop
    # it filled follows from the hop's level against the steady level after it.
    hop = hello["hop_seconds"]
    steady = float(np.median([u["level_dbfs"] for u in loud[1:4]]))
    filled = min(1.0, 10 ** ((loud[0]["level_dbfs"] - steady) / 10))
    onset = loud[0]["time"] - filled * hop
    tops = [(u["time"] - onset, u["top"]) for u in updates if u["time"] > onset]
    first_tones = next(t for t, top in tops if top == "tones")
    first_noise = next(t for t, top in tops if top == "noise")
    assert first_tones < BOUNDARY
    timeline = " ".join(f"{t:.2f}:{top}" for t, top in tops if abs(t - BOUNDARY) < 4)
    assert BOUNDARY < first_noise <= BOUNDARY + hello["window_seconds"] + 2 * hop + 0.05, timeline
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    # 8 s of music are one track to the segmenter (a change of track needs tens of
    # seconds of each): one music segment, closed at SIGINT, the two genres its mixture
    [music] = [r for r in recorded if r["state"] == "music"]
    assert set(music["mixture"]) >= {"tones", "noise"}, music
    assert all(r["start"] < r["end"] for r in recorded)


def test_sigterm_closes_the_segment_the_record_and_the_clients(
    pulse_device: dict[str, str], trained: dict[str, Path], two_genres: Path, tmp_path: Path
) -> None:
    record = tmp_path / "set.jsonl"
    process, url = start_listen(trained["onnx"], pulse_device, "--record", str(record))
    with connect(url) as client:
        client.recv(timeout=10)
        player = pulse.play(two_genres, pulse_device)
        receive_for(client, 3.0)
        process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                client.recv(timeout=10)
        player.wait(timeout=10)
    assert process.wait(timeout=20) == 0
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert recorded, "the open segment was not closed and written"
    assert recorded[-1]["end"] >= 2.5


def test_the_websockets_librarys_own_client_receives_valid_json(
    small_model: Path, sine_44k: Path
) -> None:
    process, url = start_listen(small_model, {}, "--file", str(sine_44k))
    client = subprocess.Popen(
        [sys.executable, "-m", "websockets", url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        time.sleep(3.0)  # the first update comes after one window of the paced file
        output, _ = client.communicate(input="", timeout=10)  # EOF on stdin ends the client
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    received = [json.loads(m) for m in re.findall(r"< (\{.*\})", output)]
    for message in received:
        protocol.validate(message)
    kinds = [m["type"] for m in received]
    assert kinds[0] == "hello" and "update" in kinds, output


@pytest.fixture(scope="module")
def four_changes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tones, noise, tones, noise, 4 s each with 2 s of silence after each, then 20 s of
    tones: segments close while the file plays, the first (it ends at 4 s) the
    segmenter's lag (26.5 s) later, the second 2 s after it, some 10 s before the end."""
    rng = np.random.default_rng(7)
    pause = np.zeros(2 * TRAIN_RATE)
    parts = [[render_genre(genre, rng, 4.0), pause] for genre in ["tones", "noise"] * 2]
    y = np.concatenate([*itertools.chain(*parts), render_genre("tones", rng, 20.0)])
    path = tmp_path_factory.mktemp("changes") / "four-changes.wav"
    soundfile.write(path, y, TRAIN_RATE)
    return path


def test_sigkill_the_moment_a_client_sees_a_segment_finds_it_in_the_record(
    trained: dict[str, Path], four_changes: Path, tmp_path: Path
) -> None:
    """No sleep between the segment reaching the client and the kill: the record is
    fsynced before the segment is published, so whatever a client saw is on disk."""
    record = tmp_path / "set.jsonl"
    process, url = start_listen(
        trained["onnx"], {}, "--file", str(four_changes), "--record", str(record),
        "--confirm-hops", "1",
    )  # fmt: skip
    segments: list[dict] = []
    try:
        with connect(url) as client:
            segments += json.loads(client.recv(timeout=30))["segments"]
            while len(segments) < 2:
                message = json.loads(client.recv(timeout=30))
                if message["type"] == "segment":
                    segments.append(message)
            process.kill()
    finally:
        process.kill()
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert recorded[: len(segments)] == segments


def test_a_file_shorter_than_the_window_is_refused_in_one_line(tmp_path: Path) -> None:
    short = write_sine(tmp_path / "short.wav", freq=440.0, seconds=2.0, rate=22050)
    done = subprocess.run(
        [sys.executable, "-m", "streamer", "listen", "--file", str(short), "--no-view",
         "--port", "0", "--fast"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"streamer: error: {short}: too short (2.0 s): the model needs 3.0 s of audio; "
        "give a longer file"
    ]


def test_a_busy_port_fails_before_anything_is_written(small_model: Path, sine_44k: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "streamer", "listen", "--model", str(small_model),
             "--file", str(sine_44k), "--no-view", "--port", str(port)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1].endswith("the port is in use (another streamer?); "
                                                 "choose another one with --port")  # fmt: skip
