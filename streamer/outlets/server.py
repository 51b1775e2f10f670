"""The websocket server that pushes every analysis update to any number of clients.

The analysis thread must never wait for a client. `BroadcastServer.publish` encodes the
message in the caller's thread and hands it to the event loop without blocking; on the loop
it goes into each client's bounded queue, and one sender task per client drains that queue
at whatever pace the client reads. A client that falls behind loses its oldest pending
``update`` and ``status`` messages (later ones supersede them) but never a ``segment`` or a
reply; one that stays behind is disconnected, and can reconnect to get the current state at
once from the hello. That rule is `streamer.outlets.pacing`, which this module calls with the
loop's time; docs/protocol.md describes it for client authors.

The same port serves the browser overlay (`streamer.outlets.overlay`) to plain HTTP requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from streamer.errors import StreamerError
from streamer.outlets import protocol
from streamer.outlets.access import OPEN_ON_LOOPBACK, AccessPolicy, MessageRate, is_loopback
from streamer.outlets.overlay import OverlayFiles
from streamer.outlets.pacing import ClientQueue, SlowClientPolicy

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
SEND_BUFFER_BYTES = 16 * 1024
"""Kernel send buffer and websockets write buffer of each connection, each at most this.

Left alone, the kernel grows a connection's send buffer to megabytes (4 MB measured on
loopback): a client that stopped reading would hide an hour of updates in it before the
server noticed anything. Updates are a few hundred bytes every half second, so this is
still tens of seconds of stream.
"""
COMPRESSION = None
"""The server declines permessage-deflate. Messages are under 2 kB at 2 per second, and
deflating them for each client separately (the extension keeps a context per connection)
cost 2.5 times the CPU of the whole send: 61 us against 23 us per client and message,
measured by bench/bench_fanout.py with 500 clients."""
KEEPALIVE_SECONDS = 20.0
"""Ping interval and pong timeout: a client that does not answer a ping within this time,
because it stopped reading or lags that far behind, is closed with 1011."""


UNSPECIFIED_HOSTS = frozenset({"", "0.0.0.0", "::"})
ROUTE_PROBE = "192.0.2.1"
"""An address (TEST-NET-1) to ask the routing table for this machine's outgoing address:
connecting a UDP socket sends nothing."""


def hosts_to_open(host: str) -> list[str]:
    """Addresses a person can open for a server bound to `host`, best first.

    For the address of every interface (0.0.0.0; ``::`` also takes IPv4 on Linux), the
    machine's own: the source address of its default route (what other machines on the LAN
    reach), those its host name resolves to, then loopback. Any other `host` is itself.
    """
    if host not in UNSPECIFIED_HOSTS:
        return [host]
    found: list[str] = []
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((ROUTE_PROBE, 9))
        found.append(probe.getsockname()[0])
    family = socket.AF_UNSPEC if host == "::" else socket.AF_INET
    with contextlib.suppress(OSError):
        found += [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), 0, family)]
    return list(dict.fromkeys([*(name for name in found if not is_loopback(name)), "127.0.0.1"]))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _Client:
    """One connection, its queue of messages waiting to be sent, and what wakes its sender."""

    def __init__(self, connection: ServerConnection, rate: MessageRate, queue: ClientQueue) -> None:
        self.connection = connection
        self.rate = rate
        self.queue = queue
        self.ready = asyncio.Event()
        self.errors = 0  # invalid messages it sent
        self.streams: frozenset[str] | None = None  # what it subscribed to; None: all

    def wants(self, message: dict[str, Any]) -> bool:
        """Whether a broadcast message is for this client (its stream is subscribed)."""
        stream = message.get("stream")
        return self.streams is None or stream is None or stream in self.streams

    def caught_up(self) -> bool:
        """Nothing waits and the connection takes more: a message may be written at once."""
        return (
            self.queue.idle
            and self.connection.transport.get_write_buffer_size() < SEND_BUFFER_BYTES
        )


class BroadcastServer:
    """Broadcast protocol messages to websocket clients, skipping for slow ones.

    Parameters
    ----------
    host, port : str, int
        Where to listen; port 0 picks a free port (see `port`).
    hello : callable
        Builds the hello message (`protocol.hello_message`) for each new connection, on the
        event loop's thread. The server fills in ``state`` and ``segments`` itself, from
        what was published.
    queue_size : int
        Messages that may wait for one client before its oldest update or status is skipped
        (`streamer.outlets.pacing.ClientQueue`).
    recent_segments : int
        Closed segments kept for the hello of late joiners.
    slow_seconds : float
        A client that has not caught up for this long since its first skipped message, or
        whose queue is full of messages that cannot be skipped, is disconnected (1008).
    close_timeout : float
        Seconds a closing client has to answer before its connection is dropped. Without
        this bound, a client that stopped reading would hold `stop` forever.
    on_message : callable, optional
        Called on the event loop's thread with each valid client message other than a ping
        (a feedback); must not block. A `ValueError` it raises goes back to that client as
        an error. None: such messages get an error.
    access : AccessPolicy
        Token, allowed origins, the most clients, and limits on what clients send
        (`streamer.outlets.access`). A host other than loopback needs a token: without one the
        server refuses to start.
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        hello: Callable[[], dict[str, Any]],
        queue_size: int = 64,
        recent_segments: int = 50,
        slow_seconds: float = 5.0,
        close_timeout: float = 5.0,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        access: AccessPolicy = OPEN_ON_LOOPBACK,
    ) -> None:
        if recent_segments < 0 or close_timeout <= 0:
            raise ValueError("need recent_segments >= 0 and positive close_timeout")
        if access.token is None and not is_loopback(host):
            raise StreamerError(
                f"refusing to listen on {host} without a token: anyone on the network could "
                "connect; give --token (streamer listen makes one up if you give none)"
            )
        self.host = host
        self.access = access
        self._requested_port = port
        self._hello = hello
        self._pacing = SlowClientPolicy(queue_size=queue_size, slow_seconds=slow_seconds)
        self.close_timeout = close_timeout
        self._on_message = on_message
        self._overlay = OverlayFiles.load()
        self._latest: dict[str, Any] | None = None
        self._latest_of_stream: dict[str, dict[str, Any]] = {}  # `streamer monitor`
        self._recommendations: dict[str, Any] | None = None
        self._segments: deque[dict[str, Any]] = deque(maxlen=recent_segments)
        self._clients: dict[ServerConnection, _Client] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refused = 0

    @property
    def port(self) -> int:
        """The bound port while running (the actual one when 0 was asked for)."""
        if self._server is None:
            return self._requested_port
        return int(self._server.sockets[0].getsockname()[1])

    @functools.cached_property
    def hosts(self) -> list[str]:
        """Where a person reaches the server, best first (`hosts_to_open`)."""
        return hosts_to_open(self.host)

    def url_of(self, host: str, *, scheme: str = "ws") -> str:
        return f"{scheme}://{_url_host(host)}:{self.port}"

    @property
    def url(self) -> str:
        """The websocket at the first of `hosts`."""
        return self.url_of(self.hosts[0])

    @property
    def overlay_url(self) -> str:
        """Where a browser finds the overlay (add ``?token=...`` when there is a token)."""
        return self.url_of(self.hosts[0], scheme="http") + "/"

    @property
    def clients(self) -> int:
        """Connected clients that still receive the broadcast."""
        return len(self._clients)

    @property
    def dropped_messages(self) -> int:
        """Messages skipped for slow clients, in total over all clients."""
        return self._pacing.dropped_messages

    @property
    def refused(self) -> int:
        """Handshakes refused by the access policy (token, origin, capacity)."""
        return self._refused

    @property
    def disconnected_slow(self) -> int:
        """Clients disconnected for staying behind."""
        return self._pacing.disconnected_slow

    async def start(self) -> None:
        """Listen; a port that cannot be bound raises a one-line `StreamerError`."""
        try:
            self._server = await serve(
                self._handle,
                self.host,
                self._requested_port,
                max_size=self.access.max_message_bytes,
                compression=COMPRESSION,
                write_limit=SEND_BUFFER_BYTES,
                ping_interval=KEEPALIVE_SECONDS,
                ping_timeout=KEEPALIVE_SECONDS,
                close_timeout=self.close_timeout,
                process_request=self._admit,
            )
        except OSError as error:
            address = f"ws://{self.host}:{self._requested_port}"
            if error.errno == errno.EADDRINUSE:
                raise StreamerError(
                    f"cannot listen on {address}: the port is in use (another streamer?); "
                    "choose another one with --port"
                ) from None
            reason = error.strerror or str(error)
            raise StreamerError(f"cannot listen on {address}: {reason}") from None
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        """Close every client with 1001 (going away) and stop listening."""
        server, self._server, self._loop = self._server, None, None
        if server is None:
            return
        await asyncio.gather(
            *(
                self._close(connection, CloseCode.GOING_AWAY, "server stopping")
                for connection in list(self._clients)
            )
        )
        server.close()  # also closes a connection that opened meanwhile
        await server.wait_closed()
        if self._closing:
            await asyncio.gather(*self._closing)

    def publish(self, message: dict[str, Any]) -> None:
        """Broadcast `message`; callable from any thread, never blocks.

        The message is encoded here, so an unencodable one raises in the caller; it must
        not be changed afterwards, as the server keeps updates and segments for the hello.
        Messages published while the server is not running are discarded.
        """
        text = protocol.encode(message)
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._dispatch, message, text)

    def _dispatch(self, message: dict[str, Any], text: str) -> None:
        """Write to every caught-up client at once; queue for the others.

        websockets' `broadcast` frames and writes in this loop step without a task switch
        per client, which is what keeps hundreds of clients within milliseconds (a sender
        task per message measured 55 us per client, broadcast about 10).
        """
        kind = message["type"]
        if kind == "update" and "stream" in message:
            self._latest_of_stream[message["stream"]] = message
        elif kind == "update":
            self._latest = message
        elif kind == "segment":
            self._segments.append(message)
        elif kind == "recommendations":
            self._recommendations = message
        now: list[ServerConnection] = []
        later: list[_Client] = []
        for client in self._clients.values():
            if not client.wants(message):
                continue
            if client.caught_up():
                now.append(client.connection)
            else:
                later.append(client)
        broadcast(now, text)
        for client in later:
            self._enqueue(client, kind, text)

    def _enqueue(self, client: _Client, kind: str, text: str) -> None:
        """Queue `text` for the client's sender task, skipping or disconnecting if behind."""
        loop = asyncio.get_running_loop()
        too_slow = client.queue.put(kind, text, now=loop.time())
        if too_slow is None:
            client.ready.set()
            return
        del self._clients[client.connection]
        task = loop.create_task(
            self._close(client.connection, CloseCode.POLICY_VIOLATION, too_slow)
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, connection: ServerConnection, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(connection.close(code, reason), self.close_timeout)
        except asyncio.TimeoutError:  # the client does not read: the close frame cannot go out
            connection.transport.abort()

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """During the handshake: the overlay for plain HTTP, else the access policy.

        The overlay's files are not guarded by the token: they are the same for everyone
        and hold nothing of the session, which only the websocket they open carries.
        """
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return self._overlay.respond(request.path)
        refused = self.access.refusal(
            path=request.path,
            headers=request.headers.raw_items(),
            port=self.port,
            clients=len(self._clients),
        )
        if refused is None:
            return None
        self._refused += 1
        return connection.respond(*refused)

    async def _handle(self, connection: ServerConnection) -> None:
        """Send the hello, then the broadcast; answer what the client sends."""
        sock = connection.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        rate = MessageRate(self.access.max_message_rate)
        client = _Client(connection, rate, self._pacing.queue())
        hello = {**self._hello(), "state": self._latest, "segments": list(self._segments)}
        if hello.get("streams") is not None:
            hello["streams"] = [
                {**stream, "state": self._latest_of_stream.get(stream["name"])}
                for stream in hello["streams"]
            ]
        if self._recommendations is not None:
            hello["recommendations"] = self._recommendations
        # In the same loop step as the hello is built: nothing published is missed or repeated.
        self._enqueue(client, "hello", protocol.encode(hello))
        self._clients[connection] = client
        sender = asyncio.create_task(self._send(client))
        try:
            async for text in connection:
                if client.rate.allow(asyncio.get_running_loop().time()):
                    reply = self._answer(client, text)
                else:
                    most = self.access.max_message_rate
                    reply = protocol.error_message(f"too many messages: at most {most:g} a second")
                if reply is not None and reply["type"] == "error":
                    client.errors += 1
                    if client.errors > self.access.max_invalid_messages:
                        self._clients.pop(connection, None)
                        await self._close(
                            connection, CloseCode.POLICY_VIOLATION, "too many invalid messages"
                        )
                        break
                if reply is not None and connection in self._clients:  # not if closing
                    self._enqueue(client, reply["type"], protocol.encode(reply))
        except ConnectionClosed:
            pass
        finally:
            self._clients.pop(connection, None)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    def _answer(self, client: _Client, text: str | bytes) -> dict[str, Any] | None:
        """The reply to a client message: pong, nothing (handled) or an error."""
        try:
            message = protocol.parse_client_message(text)
            if message["type"] == "ping":
                return protocol.pong_message()
            if message["type"] == "subscribe":
                client.streams = self._subscription(message["streams"])
                return None
            if self._on_message is None:
                raise ValueError(f"this server takes no {message['type']} messages")
            self._on_message(message)
        except ValueError as error:
            return protocol.error_message(str(error))
        return None

    def _subscription(self, names: list[str]) -> frozenset[str] | None:
        """The streams a subscribe asks for (None: all); `ValueError` for unknown names."""
        streams = self._hello().get("streams")
        if streams is None:
            raise ValueError("this server analyses one input: there are no streams to choose")
        unknown = sorted(set(names) - {stream["name"] for stream in streams})
        if unknown:
            raise ValueError(f"no such stream: {', '.join(unknown)}; the hello lists them")
        return frozenset(names) or None

    @staticmethod
    async def _send(client: _Client) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                while (text := client.queue.take()) is None:
                    client.ready.clear()
                    await client.ready.wait()
                await client.connection.send(text)
                client.queue.sent()


class ServerThread:
    """Run a `BroadcastServer` on its own event loop in a daemon thread.

    For the synchronous engine: `start` returns once the server listens (or raises its
    `StreamerError`), `server.publish` may then be called from any thread, and `stop` closes
    the clients and ends the thread. Also a context manager.

    Examples
    --------
    >>> from streamer.outlets.protocol import hello_message
    >>> hello = lambda: hello_message(labels=["a", "b"], model={"name": "m", "sha256": "0" * 64},
    ...                               segment_lag_seconds=26.5,
    ...                               features={}, hop_seconds=0.5, window_seconds=3.0)
    >>> with ServerThread(BroadcastServer(port=0, hello=hello)) as running:
    ...     running.server.port > 0
    True
    """

    def __init__(self, server: BroadcastServer) -> None:
        self.server = server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, *, timeout: float = 10.0) -> ServerThread:
        if self._thread is not None:
            raise RuntimeError("the server thread is already running")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="streamer-server", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout)
        except BaseException:
            self._end(timeout)
            raise
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the server, then the loop; waits at most about `timeout` seconds for each."""
        if self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout)
        finally:
            self._end(timeout)

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _end(self, timeout: float) -> None:
        loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        assert loop is not None and thread is not None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
