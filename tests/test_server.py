"""The protocol's schemas and the broadcast server, with real websocket clients on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from conftest import LABELS, TIMEOUT, make_hello, receive, update
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from streamer.analysis.features import FeatureSpec
from streamer.errors import StreamerError
from streamer.outlets import protocol
from streamer.outlets.access import MAX_MESSAGE_BYTES
from streamer.outlets.server import BroadcastServer, ServerThread

LONG_LABELS = tuple(f"{name}-{'x' * 60}" for name in "abcdefghijklmnop")  # 1.3 kB updates


def segment(index: int) -> dict[str, Any]:
    return protocol.segment_message(
        index=index,
        start=index * 10,
        end=index * 10 + 10,
        genre=None,
        state="silence",
        confidence=0.9,
    )


def status() -> dict[str, Any]:
    return protocol.status_message(
        time=2.0,
        overflow_samples=0,
        overflow_events=0,
        latency_ms=None,
        clients=1,
        dropped_messages=0,
        source="default input",
    )


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


def small_buffer_socket(port: int) -> socket.socket:
    """A TCP connection whose tiny receive window makes the server's sends back up soon."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: sets the window
    sock.connect(("127.0.0.1", port))
    return sock


@pytest.fixture
def serve() -> Iterator[Callable[..., ServerThread]]:
    """Start servers on free ports in background threads; stop them after the test."""
    running: list[ServerThread] = []

    def start(**options: Any) -> ServerThread:
        running.append(ServerThread(BroadcastServer(port=0, hello=make_hello, **options)).start())
        return running[-1]

    yield start
    for thread in running:
        thread.stop()


# The protocol

TRACK = {
    "id": 4, "name": "Band - Song", "file": "song.flac", "title": "Song", "artist": "Band",
    "album": None, "genre": "jazz", "tempo": 121.5, "key": "A minor", "camelot": "8A",
}  # fmt: skip


def recommendations() -> dict[str, Any]:
    return protocol.recommendations_message(
        time=12.5,
        basis={"genre": "jazz", "tempo": 120.0, "key": "C major", "camelot": "8B"},
        now_playing={**TRACK, "id": 2, "similarity": 0.99},
        tracks=[{**TRACK, "similarity": 0.8, "reasons": ["same genre: jazz (70%)"]}],
    )


def tagged(index: int) -> dict[str, Any]:
    """Update `index` with musicnn's descriptor tags, as once the tagger has run."""
    return {**update(index), "tags": {"instrumental": 0.91, "mellow": 0.55, "80s": 0.02}}


def test_every_builder_output_validates() -> None:
    updates = [update(3), {**update(4), "top": None, "state": "silence"}, tagged(5)]
    messages = [
        make_hello(),
        {**make_hello(), "state": updates[0], "segments": [segment(0), segment(1)]},
        *updates,
        segment(2),
        protocol.segment_message(
            index=0, start=0, end=1.5, genre="jazz", state="music", confidence=0.5
        ),
        status(),
        {**status(), "latency_ms": 120.5},
        protocol.error_message("no"),
        protocol.pong_message(),
        protocol.parse_client_message('{"type": "ping"}'),
        protocol.parse_client_message('{"type": "feedback", "track": 3, "action": "skip"}'),
        recommendations(),
        {**make_hello(), "recommendations": recommendations()},
        {**recommendations(), "now_playing": None, "tracks": []},
    ]
    for message in messages:
        protocol.validate(message)
        assert json.loads(protocol.encode(message)) == message


def test_builders_turn_numpy_scalars_into_json_numbers() -> None:
    probabilities = np.array([0.2, 0.3, 0.5], dtype=np.float32)
    message = protocol.update_message(
        time=np.float64(1.23456),
        probabilities=dict(zip(LABELS, probabilities, strict=True)),
        top=np.str_("rock"),
        confidence=probabilities.max(),
        state="music",
        level_dbfs=np.float32(-20.04),
        segment_start=np.float64(0.5),
        tags={"mellow": np.float32(0.123456), "80s": np.float64(1.0)},
    )
    protocol.validate(message)
    assert json.loads(protocol.encode(message))["probabilities"] == {
        "blues": 0.2,
        "jazz": 0.3,
        "rock": 0.5,
    }
    assert (message["time"], message["level_dbfs"]) == (1.235, -20.0)
    assert json.loads(protocol.encode(message))["tags"] == {"mellow": 0.1235, "80s": 1.0}
    assert update(1)["tags"] is None  # before the tagger's first patch


def test_confident_tags_follow_the_rule_the_hello_announces() -> None:
    tags = {"sad": 0.3999, "80s": 0.4, "mellow": 0.7, "chill": 0.7, "happy": 0.95, "party": 0.5}
    assert protocol.confident_tags(tags) == [("happy", 0.95), ("chill", 0.7), ("mellow", 0.7)]
    assert protocol.confident_tags(tags, minimum=0.45, limit=10)[-1] == ("party", 0.5)
    assert protocol.confident_tags(tags, minimum=0.4, limit=10)[-1] == ("80s", 0.4)  # inclusive
    assert protocol.confident_tags(None) == [] == protocol.confident_tags({"sad": 0.1})
    rule = make_hello()["shown_tags"]
    assert rule == {"minimum": protocol.SHOWN_TAG_MIN, "limit": protocol.SHOWN_TAG_LIMIT}
    assert protocol.confident_tags(tags, **rule) == protocol.confident_tags(tags)


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({k: v for k, v in update(1).items() if k != "confidence"}, "'confidence' is a required"),
        ({**update(1), "time": "1.0"}, "time: '1.0' is not of type 'number'"),
        ({**update(1), "probabilities": {"jazz": 1.5}}, "probabilities/jazz"),
        ({**update(1), "state": "silence"}, "top: 'blues' is not of type 'null'"),
        ({**update(1), "extra": 1}, "'extra' was unexpected"),
        ({k: v for k, v in update(1).items() if k != "tags"}, "'tags' is a required"),
        ({**tagged(1), "tags": {"mellow": 1.5}}, "tags"),
        ({**tagged(1), "tags": ["mellow"]}, "tags"),
        ({k: v for k, v in make_hello().items() if k != "shown_tags"}, "'shown_tags' is a"),
        ({**make_hello(), "shown_tags": {"minimum": 0.4, "limit": 1.5}}, "shown_tags/limit"),
        ({**segment(1), "index": -1}, "index"),
        ({**segment(1), "index": 1.5}, "index"),
        ({**status(), "clients": "2"}, "clients"),
        ({**make_hello(), "protocol": 2}, "protocol"),
        ({**make_hello(), "model": {"name": "m", "sha256": "xyz"}}, "model/sha256"),
        ({**make_hello(), "segments": [{**segment(0), "end": None}]}, "segments/0"),
        ({**make_hello(), "state": {**update(1), "top": 3}}, "state"),
        (protocol.error_message(""), "message"),
        ({**recommendations(), "basis": {}}, "basis"),
        ({**recommendations(), "tracks": [{"id": 1}]}, "tracks/0"),
        (
            {
                **recommendations(),
                "tracks": [{**TRACK, "similarity": 0.5, "reasons": [], "path": "/"}],
            },
            "tracks/0",
        ),
        (
            {**recommendations(), "now_playing": {**TRACK, "camelot": "13A", "similarity": 1}},
            "now_playing",
        ),
        ({"type": "feedback", "track": 0, "action": "like"}, "track"),
        ({"type": "bogus"}, "unknown or missing type 'bogus'"),
        (["update"], "unknown or missing type None"),
    ],
)
def test_invalid_messages_fail_validation(message: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=r"^(invalid|not a protocol)") as error:
        protocol.validate(message)
    assert problem in str(error.value)


def test_each_schema_is_a_valid_draft_2020_12_schema_named_after_its_type() -> None:
    import jsonschema

    for name in protocol.SERVER_TYPES + protocol.CLIENT_TYPES:
        loaded = protocol.schema(name)
        jsonschema.Draft202012Validator.check_schema(loaded)
        assert loaded["$id"].endswith(f"/{name}.schema.json")
        assert loaded["properties"]["type"] == {"const": name}
    with pytest.raises(ValueError, match="no schema"):
        protocol.schema("../features")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hello", "not JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"kind": "ping"}', 'missing "type"'),
        ('{"type": "listen"}', "unknown message type 'listen'"),
        ('{"type": "ping", "id": 3}', "unexpected fields ['id']"),
        ('{"type": "subscribe"}', 'missing "streams"'),
        ('{"type": "subscribe", "streams": "a"}', '"streams" must be a list of stream names'),
        ('{"type": "subscribe", "streams": ["a", ""]}', '"streams" must be a list'),
        ('{"type": "subscribe", "streams": ["a", "a"]}', "must not name a stream twice"),
        ('{"type": "ping", "pad": "' + "x" * protocol.MAX_CLIENT_MESSAGE + '"}', "too long"),
        (b'{"type": "ping"}', "binary messages are not supported"),
        ('{"type": "feedback", "action": "like"}', 'missing "track"'),
        ('{"type": "feedback", "track": "7", "action": "like"}', '"track" must be a track id'),
        ('{"type": "feedback", "track": true, "action": "like"}', '"track" must be a track id'),
        ('{"type": "feedback", "track": 7, "action": "love"}', '"action" must be one of'),
        ('{"type": "feedback", "track": 7, "action": ["like"]}', '"action" must be one of'),
    ],
)
def test_client_messages_are_checked(text: str | bytes, problem: str) -> None:
    with pytest.raises(ValueError) as error:
        protocol.parse_client_message(text)
    assert problem in str(error.value)


# The server


def test_client_gets_a_valid_hello_then_every_update_in_order(
    serve: Callable[..., ServerThread],
) -> None:
    server = serve().server

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with connect(server.url) as client:
            hello = await receive(client)
            for index in range(20):
                server.publish(update(index))
            return hello, [await receive(client) for _ in range(20)]

    hello, updates = asyncio.run(scenario())
    protocol.validate(hello)
    assert (hello["labels"], hello["state"], hello["segments"]) == (list(LABELS), None, [])
    assert hello["features"] == FeatureSpec().to_dict()
    for message in updates:
        protocol.validate(message)
    assert updates == [update(index) for index in range(20)]


def test_late_joiner_gets_the_latest_state_and_the_recent_segments_then_the_stream(
    serve: Callable[..., ServerThread],
) -> None:
    server = serve(recent_segments=2).server

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with connect(server.url) as early:
            await receive(early)
            for index in range(3):
                server.publish(update(index))
                server.publish(segment(index))
            server.publish(status())
            for _ in range(7):  # everything published has been dispatched
                await receive(early)
            async with connect(server.url) as late:
                hello = await receive(late)
                server.publish(update(3))
                return hello, await receive(late)

    hello, first = asyncio.run(scenario())
    protocol.validate(hello)
    assert hello["state"] == update(2)
    assert hello["segments"] == [segment(1), segment(2)]
    assert first == update(3)


def test_publish_from_several_threads_keeps_each_threads_order(
    serve: Callable[..., ServerThread],
) -> None:
    server = serve(queue_size=1000).server
    per_thread = 100

    def publish_segments(first: int) -> None:
        for index in range(first, first + per_thread):
            server.publish(segment(index))

    async def scenario() -> list[int]:
        async with connect(server.url) as client:
            await receive(client)
            threads = [
                threading.Thread(target=publish_segments, args=(first,)) for first in (0, 1000)
            ]
            for thread in threads:
                thread.start()
            indices = [(await receive(client))["index"] for _ in range(2 * per_thread)]
            for thread in threads:
                thread.join(TIMEOUT)
            return indices

    indices = asyncio.run(scenario())
    assert [i for i in indices if i < 1000] == list(range(per_thread))
    assert [i for i in indices if i >= 1000] == list(range(1000, 1000 + per_thread))
    assert server.dropped_messages == 0


def test_invalid_client_messages_get_an_error_and_the_connection_survives(
    serve: Callable[..., ServerThread],
) -> None:
    server = serve().server
    bad = {
        "not json": "not JSON",
        '{"type": "listen"}': "unknown message type 'listen'",
        '{"type": "subscribe", "streams": ["a"]}': "one input: there are no streams",
        "x" * (protocol.MAX_CLIENT_MESSAGE + 1): "too long",
    }

    async def scenario() -> tuple[list[dict[str, Any]], ConnectionClosed]:
        async with connect(server.url) as client:
            await receive(client)
            replies = []
            for text in [*bad, b"\x00binary", '{"type": "ping"}']:
                await client.send(text)
                replies.append(await receive(client))
            server.publish(update(1))
            replies.append(await receive(client))
            await client.send("x" * (MAX_MESSAGE_BYTES + 1))
            with pytest.raises(ConnectionClosed) as closed:
                await receive(client)
            return replies, closed.value

    replies, closed = asyncio.run(scenario())
    for reply, problem in zip(replies[:5], [*bad.values(), "binary"], strict=True):
        protocol.validate(reply)
        assert reply["type"] == "error"
        assert problem in reply["message"]
    assert replies[-2:] == [protocol.pong_message(), update(1)]
    assert closed.rcvd is not None and closed.rcvd.code == 1009


def test_feedback_goes_to_the_handler_whose_errors_go_back_to_the_client(
    serve: Callable[..., ServerThread],
) -> None:
    taken: list[dict[str, Any]] = []

    def handler(message: dict[str, Any]) -> None:
        if message["track"] == 99:
            raise ValueError("no track 99 in the library")
        taken.append(message)

    with_handler = serve(on_message=handler).server
    without = serve().server

    async def exchange(url: str, *texts: str) -> list[dict[str, Any]]:
        async with connect(url) as client:
            await receive(client)
            for text in texts:
                await client.send(text)
            await client.send('{"type": "ping"}')  # its pong ends the replies
            replies = [await receive(client)]
            while replies[-1]["type"] != "pong":
                replies.append(await receive(client))
            return replies

    good = '{"type": "feedback", "track": 3, "action": "like"}'
    unknown = '{"type": "feedback", "track": 99, "action": "skip"}'
    replies = asyncio.run(exchange(with_handler.url, good, unknown))
    assert taken == [{"type": "feedback", "track": 3, "action": "like"}]
    assert replies == [protocol.error_message("no track 99 in the library"), {"type": "pong"}]
    replies = asyncio.run(exchange(without.url, good))
    assert replies[0]["type"] == "error" and "no feedback" in replies[0]["message"]


def test_stuck_client_is_skipped_then_dropped_while_a_good_client_keeps_pace(
    serve: Callable[..., ServerThread],
) -> None:
    """A client that never reads must cost the others nothing: no segment, no delay."""
    running = serve(queue_size=16, slow_seconds=0.5, close_timeout=1.0)
    server = running.server
    stuck = small_buffer_socket(server.port)
    stuck.sendall(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )

    async def scenario() -> tuple[list[tuple[dict[str, Any], float]], list[float], int]:
        async with connect(server.url) as good:
            await receive(good)
            await eventually(lambda: server.clients == 2, "both clients are connected")
            arrivals: list[tuple[dict[str, Any], float]] = []

            async def read() -> None:
                async for text in good:
                    arrivals.append((json.loads(text), time.monotonic()))

            reader = asyncio.create_task(read())
            dropped: list[tuple[float, int]] = []  # when, and the skips until then

            def half_a_second_after_the_disconnection() -> bool:
                if server.disconnected_slow and not dropped:
                    dropped.append((time.monotonic(), server.dropped_messages))
                return bool(dropped) and time.monotonic() > dropped[0][0] + 0.5

            sent_at: list[float] = []
            await publish_until(server, half_a_second_after_the_disconnection, sent_at)
            expected = len(sent_at) + len(sent_at) // 10  # updates and segments
            await eventually(lambda: len(arrivals) == expected, "all messages arrived")
            assert server.clients == 1
            reader.cancel()
            return arrivals, sent_at, dropped[0][1]

    arrivals, sent_at, skipped = asyncio.run(scenario())
    assert skipped > 0
    assert (server.disconnected_slow, server.dropped_messages) == (1, skipped)
    updates = [(m["time"], at) for m, at in arrivals if m["type"] == "update"]
    assert [t for t, _ in updates] == [index / 2 for index in range(len(sent_at))]
    segments = [m["index"] for m, _ in arrivals if m["type"] == "segment"]
    assert segments == list(range(len(sent_at) // 10))
    delays = [at - sent for (_, at), sent in zip(updates, sent_at, strict=True)]
    assert max(delays) < 0.5, f"the good client waited {max(delays):.2f} s for an update"
    # The stuck connection, still unread, must not hold up stop (close_timeout is 1 s)...
    started = time.monotonic()
    running.stop(timeout=TIMEOUT)
    assert time.monotonic() - started < 2.0
    # ...and the server really let go of it: reading it reaches its end.
    stuck.settimeout(TIMEOUT)  # a timeout fails the test
    with stuck, contextlib.suppress(ConnectionResetError):
        while stuck.recv(1 << 16):
            pass


async def publish_until(server: BroadcastServer, done: Callable[[], bool], sent_at: list[float]):
    """Publish an update every 5 ms, and a segment after every tenth, until `done()`.

    `sent_at` gets the time each update was published; update ``i`` has time ``i / 2``.
    """
    deadline = time.monotonic() + 10.0
    while not done():
        assert time.monotonic() < deadline, "the server never reacted to the stalled client"
        index = len(sent_at)
        server.publish(update(index, labels=LONG_LABELS))
        sent_at.append(time.monotonic())
        if index % 10 == 9:
            server.publish(segment(index // 10))
        await asyncio.sleep(0.005)


def stalled_client(server: BroadcastServer) -> connect:
    """A client that reads only when asked to: frames back up in its tiny buffers."""
    sock = small_buffer_socket(server.port)
    # Without compression, which would shrink these repetitive updates to a few bytes.
    return connect(server.url, sock=sock, max_queue=2, compression=None)


def test_client_that_falls_behind_misses_updates_but_no_segment(
    serve: Callable[..., ServerThread],
) -> None:
    server = serve(queue_size=8, slow_seconds=60).server

    async def scenario() -> tuple[list[dict[str, Any]], int, int]:
        async with stalled_client(server) as client:
            await receive(client)
            published: list[float] = []
            await publish_until(server, lambda: server.dropped_messages >= 10, published)
            last = len(published) // 10 + 3
            for index in range(len(published) // 10, last):  # queued behind skippable updates
                server.publish(segment(index))
            server.publish(update(len(published)))
            received = []
            while not received or received[-1] != update(len(published)):
                received.append(await receive(client))
            await client.send('{"type": "ping"}')
            assert await receive(client) == protocol.pong_message()
            return received, len(published), last

    received, published, segment_count = asyncio.run(scenario())
    assert server.disconnected_slow == 0
    segments = [m["index"] for m in received if m["type"] == "segment"]
    assert segments == list(range(segment_count))
    times = [m["time"] for m in received if m["type"] == "update"]
    assert times == sorted(times)
    assert len(times) == published + 1 - server.dropped_messages


@pytest.mark.parametrize(
    ("queue_size", "slow_seconds", "reason"),
    [
        (16, 0.3, "too slow: behind for 0.3 s"),
        (4, 60, "too slow: 4 messages to catch up"),  # 4 segments, which cannot be skipped
    ],
)
def test_client_that_stays_behind_is_closed_with_1008(
    serve: Callable[..., ServerThread], queue_size: int, slow_seconds: float, reason: str
) -> None:
    server = serve(queue_size=queue_size, slow_seconds=slow_seconds, close_timeout=3.0).server

    async def scenario() -> ConnectionClosed:
        async with stalled_client(server) as client:
            await receive(client)
            await publish_until(server, lambda: server.disconnected_slow > 0, [])
            assert server.clients == 0
            with pytest.raises(ConnectionClosed) as closed:  # reading again gets the close
                for _ in range(100_000):
                    await receive(client)
            return closed.value

    closed = asyncio.run(scenario())
    assert closed.rcvd is not None and closed.rcvd.code == 1008
    assert closed.rcvd.reason == reason
    assert server.dropped_messages > 0


def test_port_in_use_is_a_one_line_streamer_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = BroadcastServer(port=port, hello=make_hello)
        before = threading.active_count()
        with pytest.raises(StreamerError) as error:
            ServerThread(server).start()
    message = str(error.value)
    assert f"ws://127.0.0.1:{port}" in message and "in use" in message and "--port" in message
    assert "\n" not in message
    assert threading.active_count() == before  # the loop thread ended


def test_stop_closes_clients_with_1001_and_later_publishes_are_ignored() -> None:
    async def scenario() -> tuple[ConnectionClosed, BroadcastServer]:
        server = BroadcastServer(port=0, hello=make_hello)
        await server.start()
        async with connect(server.url) as client:
            await receive(client)
            await asyncio.wait_for(server.stop(), TIMEOUT)
            server.publish(update(1))
            with pytest.raises(ConnectionClosed) as closed:
                await receive(client)
        return closed.value, server

    closed, server = asyncio.run(scenario())
    assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (
        1001,
        "server stopping",
    )
    assert server.clients == 0
