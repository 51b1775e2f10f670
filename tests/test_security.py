"""Who may connect, and what a hostile client can do: real clients over loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import make_hello, receive, update
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from streamer.errors import StreamerError
from streamer.outlets import protocol
from streamer.outlets.access import AccessPolicy, is_loopback
from streamer.outlets.server import BroadcastServer, ServerThread

TOKEN = "s3cret-token"


def test_listening_beyond_loopback_needs_a_token() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    with pytest.raises(StreamerError, match="without a token"):
        BroadcastServer(host="0.0.0.0", port=0, hello=make_hello)
    BroadcastServer(host="0.0.0.0", port=0, hello=make_hello, access=AccessPolicy(token=TOKEN))


async def status_of(url: str, **options: Any) -> int | str:
    """The HTTP status a handshake is refused with, or "open"."""
    try:
        async with connect(url, **options) as client:
            await receive(client)
            return "open"
    except InvalidStatus as refused:
        return refused.response.status_code


def test_a_token_is_required_when_set() -> None:
    with ServerThread(
        BroadcastServer(port=0, hello=make_hello, access=AccessPolicy(token=TOKEN))
    ) as running:
        url = running.server.url

        async def scenario() -> list[int | str]:
            return [
                await status_of(url),
                await status_of(f"{url}/?token=wrong"),
                await status_of(f"{url}/?token={TOKEN}"),
                await status_of(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}),
            ]

        assert asyncio.run(scenario()) == [401, 401, "open", "open"]
        assert running.server.refused == 2


def test_browsers_connect_only_from_allowed_origins() -> None:
    policy = AccessPolicy(origins=frozenset({"https://overlay.example"}))
    with ServerThread(BroadcastServer(port=0, hello=make_hello, access=policy)) as running:
        url, port = running.server.url, running.server.port

        async def scenario() -> list[int | str]:
            return [
                await status_of(url, origin="https://evil.example"),
                await status_of(url, origin="null"),
                await status_of(url, origin=f"http://localhost:{port}"),
                await status_of(url, origin="https://overlay.example"),
                await status_of(url),  # not a browser: no Origin
            ]

        assert asyncio.run(scenario()) == [403, 403, "open", "open", "open"]


def test_clients_beyond_the_maximum_are_refused() -> None:
    policy = AccessPolicy(max_clients=2)
    with ServerThread(BroadcastServer(port=0, hello=make_hello, access=policy)) as running:
        url = running.server.url

        async def scenario() -> int | str:
            async with connect(url) as first, connect(url) as second:
                await receive(first)
                await receive(second)
                return await status_of(url)

        assert asyncio.run(scenario()) == 503


def test_a_flood_of_bad_messages_closes_that_client_only() -> None:
    with ServerThread(BroadcastServer(port=0, hello=make_hello)) as running:
        server = running.server

        async def scenario() -> tuple[int | None, list[dict[str, Any]]]:
            async with connect(server.url) as bad, connect(server.url) as good:
                await receive(bad)
                await receive(good)
                code = None
                try:
                    for index in range(1000):
                        await bad.send(f"garbage {index}")
                        if index % 100 == 0:
                            server.publish(update(index // 100))
                    while True:
                        await bad.recv()
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd else None
                for index in range(10, 13):
                    server.publish(update(index))
                received = [await receive(good) for _ in range(13)]
                return code, received

        code, received = asyncio.run(scenario())
    assert code == 1008
    times = [m["time"] for m in received if m["type"] == "update"]
    assert times == [update(i)["time"] for i in range(13)]  # every update, in order


def schema_accepts(text: str | bytes) -> bool:
    """The reference: a JSON object text within the size limit that its type's schema
    validates (the schemas know no size limit and no binary frames)."""
    if isinstance(text, bytes) or len(text) > protocol.MAX_CLIENT_MESSAGE:
        return False
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        return False
    if not isinstance(message, dict) or message.get("type") not in protocol.CLIENT_TYPES:
        return False
    try:
        protocol.validate(message)
    except ValueError:
        return False
    return True


client_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 2**70),
    st.floats(),
    st.integers(-3, 50).map(float),  # 3.0: an integer to JSON Schema
    st.text(max_size=20),
    st.sampled_from(["ping", "feedback", "like", "skip", "played", "subscribe"]),
    st.lists(st.integers(), max_size=2),
    st.lists(st.sampled_from(["", "a", "b", 1]), max_size=3),  # stream names, good and bad
)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=50),
        st.dictionaries(
            st.sampled_from(["type", "track", "action", "streams", "x"]),
            client_values,
            max_size=4,
        ).map(json.dumps),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["ping", "feedback"])},
            optional={
                "track": st.one_of(
                    st.integers(-1, 9), st.integers(-1, 9).map(float), client_values
                ),
                "action": st.one_of(st.sampled_from(protocol.FEEDBACK_ACTIONS), client_values),
            },
        ).map(json.dumps),
        st.text(
            min_size=protocol.MAX_CLIENT_MESSAGE - 30, max_size=protocol.MAX_CLIENT_MESSAGE
        ).map(lambda pad: json.dumps({"type": "feedback", "track": 1, "action": "like", "x": pad})),
    )
)
def test_the_client_message_parser_accepts_exactly_valid_messages(text: str | bytes) -> None:
    """Fuzz: the parser accepts a message exactly when its schema validates it, returns it
    as valid, and refuses anything else with a ValueError that says why."""
    try:
        message = protocol.parse_client_message(text)
    except ValueError as error:
        assert str(error)
        assert not schema_accepts(text), f"valid message refused: {error}"
        return
    assert schema_accepts(text), f"invalid message accepted: {text!r}"
    protocol.validate(message)


def test_listen_beyond_loopback_makes_up_a_token_and_enforces_it(
    small_model: Path, sine_44k: Path
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "streamer", "listen", "--model", str(small_model), "--no-view",
         "--host", "0.0.0.0", "--port", "0", "--file", str(sine_44k)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        process.stderr.readline()  # websocket on ws://ADDRESS:PORT
        line = process.stderr.readline()
        assert "clients connect with" in line, line
        url = line.split("connect with ")[1].strip()
        without = url.split("/?")[0]
        assert asyncio.run(status_of(without)) == 401
        assert asyncio.run(status_of(url)) == "open"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_browser_on_the_lan_opens_the_overlay_at_an_address_listen_prints(
    small_model: Path, two_genres: Path
) -> None:
    """Bound to 0.0.0.0, `listen` prints this machine's addresses, never 0.0.0.0; a page
    at one of them connects (Origin and Host name the same address, as a LAN browser sends
    them), a page of another origin is refused, and so is one of a name that resolves to
    loopback on a server without a token (DNS rebinding)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "streamer", "listen", "--model", str(small_model), "--no-view",
         "--host", "0.0.0.0", "--port", "0", "--token", TOKEN, "--file", str(two_genres)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = [process.stderr.readline() for _ in range(4)]
        assert not any("0.0.0.0" in line for line in lines), lines
        overlay = next(line for line in lines if "overlay on " in line).split("overlay on ")[1]
        page = urlsplit(overlay.strip())
        assert page.query == f"token={TOKEN}" and not is_loopback(page.hostname), lines
        assert f"also on http://127.0.0.1:{page.port}/?token={TOKEN}" in lines[3], lines
        url = f"ws://{page.netloc}/?token={TOKEN}"  # as the overlay's script builds it
        assert asyncio.run(status_of(url, origin=f"http://{page.netloc}")) == "open"
        assert asyncio.run(status_of(url, origin="http://evil.example")) == 403
        assert asyncio.run(status_of(url, origin=f"http://evil.example:{page.port}")) == 403
    finally:
        process.terminate()
        process.wait(timeout=20)

    with ServerThread(BroadcastServer(port=0, hello=make_hello)) as running:
        port = running.server.port

        async def rebound(name: str) -> int | str:
            """A page of `name` whose DNS answer is 127.0.0.1: Host and Origin say `name`."""
            loopback = socket.create_connection(("127.0.0.1", port))
            return await status_of(f"ws://{name}:{port}/", origin=f"http://{name}:{port}",
                                   sock=loopback)  # fmt: skip

        assert asyncio.run(rebound("evil.example")) == 403
        assert asyncio.run(rebound("localhost")) == "open"


def test_messages_beyond_the_rate_get_errors_and_the_size_limit_closes_that_client_only() -> None:
    policy = AccessPolicy(max_message_rate=10.0, max_message_bytes=1000)
    with ServerThread(BroadcastServer(port=0, hello=make_hello, access=policy)) as running:
        server = running.server

        async def scenario() -> tuple[list[str], str, int | None, dict[str, Any]]:
            async with connect(server.url) as client, connect(server.url) as good:
                await receive(client)
                await receive(good)
                for _ in range(25):  # a burst: the bucket holds 20
                    await client.send('{"type": "ping"}')
                burst = [(await receive(client))["type"] for _ in range(25)]
                await asyncio.sleep(1.0)  # refills 10
                await client.send('{"type": "ping"}')
                after = (await receive(client))["type"]
                await client.send(json.dumps({"type": "ping", "pad": "x" * 2000}))
                with pytest.raises(ConnectionClosed) as closed:
                    await receive(client)
                server.publish(update(1))
                return (
                    burst,
                    after,
                    closed.value.rcvd and closed.value.rcvd.code,
                    await receive(good),
                )

        burst, after, code, received = asyncio.run(scenario())
    assert 20 <= burst.count("pong") <= 21 and burst.count("error") == 25 - burst.count("pong")
    assert burst[:20] == ["pong"] * 20
    assert after == "pong"
    assert code == 1009  # over --max-message-bytes: that client is closed ...
    assert received == update(1)  # ... and the other one goes on
