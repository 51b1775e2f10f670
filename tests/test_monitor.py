"""Internet streams end to end: `streamer listen --url` on a local Icecast-style server
that goes away and comes back, and `streamer monitor` with streams that work, fail and
stall, followed by a real websocket client."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pulse
import pytest
from icyserver import IcyServer, encode, make_music
from listening import NO_PULSE, receive_for, receive_until
from websockets.sync.client import connect

from streamer.errors import StreamerError
from streamer.live.monitor import read_stream_list
from streamer.outlets import protocol

SECONDS = 12.0  # of music in the served file, looped
TITLES = [(0.0, "First Band - Opening"), (6.0, "Second Band - Later")]


@pytest.fixture(scope="module")
def mp3() -> bytes:
    return encode(make_music(SECONDS, seed=4), rate=44100, encoding="mp3")


def start(
    command: str, *arguments: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """`streamer COMMAND --no-view --port 0 ...`; return it and its websocket URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "streamer", command, "--no-view", "--port", "0", *arguments],
        env={**NO_PULSE, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    line = process.stderr.readline()
    assert "websocket on ws://" in line, line + process.stderr.read()
    return process, line.split("websocket on ")[1].strip()


def lines_of(process: subprocess.Popen) -> list[dict]:
    """Every message the process printed, once it has ended."""
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


def read_record(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_listen_url_titles_a_stream_and_survives_the_server_going_away(
    mp3: bytes, tmp_path: Path
) -> None:
    record = tmp_path / "radio.jsonl"
    with IcyServer(mp3, duration=SECONDS, titles=TITLES, name="Test FM") as server:
        process, url = start(
            "listen", "--url", f"{server.url}/live", "--record", str(record),
            "--duration", "24", "--min-track", "4",
        )  # fmt: skip
        with connect(url) as client:
            hello = json.loads(client.recv(timeout=10))
            assert hello["streams"] is None
            before = receive_until(client, lambda m: m["type"] == "update" and m["time"] >= 8)
            server.stop()  # the station goes away for 3 s
            down_at = time.monotonic()
            during = receive_until(client, lambda m: m["type"] == "status" and m["input"] == "lost")
            time.sleep(max(0.0, 3.0 - (time.monotonic() - down_at)))
            server.start()
            after = receive_until(
                client, lambda m: m["type"] == "status" and m["input"] == "ok", timeout=20
            )
            after += receive_for(client, 30)
    messages = lines_of(process)
    for message in messages:
        protocol.validate(message)
    assert all("Test FM" in m["source"] for m in messages if m["type"] == "status")
    updates = [m for m in before if m["type"] == "update"]
    early = [u["title"] for u in updates if 1 < u["time"] < 5]
    late = [u["title"] for u in updates if 7.5 < u["time"] < 8.5]
    assert set(early) == {"First Band - Opening"}, early
    assert set(late) == {"Second Band - Later"}, late
    lost = next(m for m in during if m["type"] == "status" and m["input"] == "lost")
    assert lost["input_problem"], lost
    assert 8 <= lost["input_lost_at"] <= 10, lost
    # the clock kept wall time through the gap, and music came back after it
    back = next(m for m in after if m["type"] == "status" and m["input"] == "ok")
    resumed = [m for m in after if m["type"] == "update" and m["time"] > back["time"]]
    assert resumed, "no audio after the server came back"
    assert back["time"] >= lost["input_lost_at"] + 2.5
    assert max(u["level_dbfs"] for u in resumed) > -30
    segments = read_record(record)
    states = [s["state"] for s in segments]
    # the gap is a silence between two stretches of the stream's sound (which the shipped
    # detector hears as not-music: generated notes are no music it knows)
    assert states[0] != "silence" and states[-1] != "silence" and "silence" in states, states
    assert segments[0]["start"] < 3.1 and segments[-1]["end"] == pytest.approx(24, abs=0.6)
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(segments))
    assert segments[0]["title"] in {t for _, t in TITLES}


def test_monitor_runs_each_stream_on_its_own_and_serves_them_by_name(
    mp3: bytes, tmp_path: Path
) -> None:
    other_titles = [(0.0, "Other Station - Song")]
    streams = tmp_path / "stations.txt"
    records = tmp_path / "records"
    with (
        IcyServer(mp3, duration=SECONDS, titles=TITLES) as first,
        IcyServer(mp3, duration=SECONDS, titles=other_titles) as second,
    ):
        streams.write_text(
            "# name after the URL\n"
            f"{first.url}/live  Jazz One\n"
            f"{second.url}/live Two\n"
            f"{first.url}/missing  Gone\n"
            f"{first.url}/stall Stuck\n"
        )
        process, url = start(
            "monitor", str(streams), "--records", str(records), "--no-tagger",
            "--duration", "14", "--min-track", "4",
        )  # fmt: skip
        with connect(url) as everything, connect(url) as one:
            hello = json.loads(one.recv(timeout=10))
            protocol.validate(hello)
            assert [s["name"] for s in hello["streams"]] == ["Jazz One", "Two", "Gone", "Stuck"]
            one.send(json.dumps({"type": "subscribe", "streams": ["Nope"]}))
            refused = receive_until(one, lambda m: m["type"] == "error")
            assert "Nope" in refused[-1]["message"]
            one.send(json.dumps({"type": "subscribe", "streams": ["Two"]}))
            heard: list[dict] = []
            reader = threading.Thread(target=lambda: heard.extend(receive_for(everything, 25)))
            reader.start()
            mine = receive_for(one, 25)
            reader.join()
    messages = lines_of(process)
    for message in messages + heard + mine:
        protocol.validate(message)
    # after the subscribe took effect, the second client hears stream Two only
    named = [m.get("stream") for m in mine if "stream" in m]
    assert named and set(named[3:]) == {"Two"}, set(named)
    by_stream: dict[str, list[dict]] = {}
    for message in messages:
        if "stream" in message:
            by_stream.setdefault(message["stream"], []).append(message)
    assert set(by_stream) == {"Jazz One", "Two", "Gone", "Stuck"}
    assert {m["stream"] for m in heard if "stream" in m} == set(by_stream)
    for name, title in (("Jazz One", "First Band - Opening"), ("Two", "Other Station - Song")):
        updates = [m for m in by_stream[name] if m["type"] == "update"]
        assert updates[-1]["time"] == pytest.approx(14, abs=0.6)  # kept up with real time
        assert title in {u["title"] for u in updates}
        assert max(u["level_dbfs"] for u in updates) > -30
        statuses = [m for m in by_stream[name] if m["type"] == "status"]
        assert all(s["input"] == "ok" for s in statuses), statuses
    for name, problem in (("Gone", "404"), ("Stuck", "")):
        statuses = [m for m in by_stream[name] if m["type"] == "status"]
        assert statuses[-1]["input"] == "lost", statuses[-1]
        assert problem in statuses[-1]["input_problem"]
        updates = [m for m in by_stream[name] if m["type"] == "update"]
        assert updates and all(u["state"] == "silence" for u in updates[4:])
    # every stream has its record, written as its segments closed
    for name, file in (("Jazz One", "Jazz_One"), ("Two", "Two"), ("Gone", "Gone")):
        segments = [
            json.loads(line) for line in (records / f"{file}.jsonl").read_text().splitlines()
        ]
        sent = [m for m in by_stream[name] if m["type"] == "segment"]
        assert [s["start"] for s in segments] == [s["start"] for s in sent] != []


def test_a_streams_file_with_a_bad_line_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "streams.txt"
    for text, wanted in (
        ("http://a.example/x one\nftp://b.example/y two\n", "streams.txt:2: 'ftp"),
        ("http://a.example/x one\nhttp://b.example/y one\n", "taken by line 1"),
        ("# nothing\n\n", "lists no stream"),
        ("device:\n", "device: needs"),
    ):
        path.write_text(text)
        with pytest.raises(StreamerError, match=wanted):
            read_stream_list(path)


def test_sigterm_ends_a_monitor_with_every_record_closed(mp3: bytes, tmp_path: Path) -> None:
    streams = tmp_path / "stations.txt"
    with IcyServer(mp3, duration=SECONDS) as server:
        streams.write_text(f"{server.url}/live a\n{server.url}/live b\n")
        process, _ = start("monitor", str(streams), "--records", str(tmp_path / "r"), "--no-tagger")
        time.sleep(6)
        process.send_signal(signal.SIGTERM)
        messages = lines_of(process)
    for name in ("a", "b"):
        [last] = [
            json.loads(x) for x in (tmp_path / "r" / f"{name}.jsonl").read_text().splitlines()
        ]
        assert last["end"] > 2
        assert any(m.get("stream") == name and m["type"] == "segment" for m in messages)


def test_monitor_takes_an_input_device_beside_a_stream(
    mp3: bytes, tmp_path: Path, pulse_device: dict[str, str], sine_44k: Path
) -> None:
    streams = tmp_path / "stations.txt"
    with IcyServer(mp3, duration=SECONDS) as server:
        streams.write_text(f"{server.url}/live radio\ndevice:pulse studio line-in\n")
        process, url = start(
            "monitor", str(streams), "--records", str(tmp_path / "r"), "--no-tagger",
            "--duration", "8", env=pulse_device,
        )  # fmt: skip
        with connect(url) as client:
            hello = json.loads(client.recv(timeout=10))
            assert [s["name"] for s in hello["streams"]] == ["radio", "studio line-in"]
            receive_until(client, lambda m: m.get("stream") == "studio line-in")
            pulse.play(sine_44k, pulse_device).wait(timeout=20)
        messages = lines_of(process)
    studio = [m for m in messages if m.get("stream") == "studio line-in"]
    assert "pulse" in next(m for m in studio if m["type"] == "status")["source"]
    assert max(m["level_dbfs"] for m in studio if m["type"] == "update") > -20  # the tone
    radio = [m for m in messages if m.get("stream") == "radio" and m["type"] == "update"]
    assert radio[-1]["time"] == pytest.approx(8, abs=0.6)


def test_a_device_that_is_not_there_stops_the_monitor_naming_its_line(tmp_path: Path) -> None:
    streams = tmp_path / "stations.txt"
    streams.write_text("http://127.0.0.1:9/live radio\ndevice:nothing-like-it studio\n")
    done = subprocess.run(
        [sys.executable, "-m", "streamer", "monitor", str(streams), "--no-view"],
        env=NO_PULSE, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("streamer: error: stream 'studio' (line 2): "), line
    assert not (tmp_path / "monitor-records").exists()  # nothing left behind
