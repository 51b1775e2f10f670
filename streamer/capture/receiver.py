"""One thread that reads every connection of a process: many streams without a thread each.

A monitor of a hundred stations spends most of its reading time not on the bytes but on a
hundred threads taking turns at the interpreter lock, each woken twenty times a second for
a few hundred bytes. `Receiver` waits on all the sockets at once (`selectors`) and hands
each its bytes as they come, on its one thread; the consumer of a connection gets
``on_data(bytes)`` for each read and one ``on_end(error)`` when it ends: None for the
server closing it, `TimeoutError` after `stall_seconds` without a byte, or what
`on_data` or the read raised. A connection that misbehaves ends alone; the others go on.

`shared_receiver` is the process's one instance, started on first use.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

READ_BYTES = 65536
"""The most bytes taken from a connection per read, here or on a stream's own thread (a read
gives what has come)."""
MAX_WAIT_SECONDS = 0.5
"""The longest the thread sleeps without looking at the stall deadlines."""
PAUSE_PER_CONNECTION = 0.001
MAX_PAUSE_SECONDS = 0.025
"""Between two rounds of reads the thread rests 1 ms per connection, at most 25 ms (an MP3
frame is 26 ms): a read then takes what came meanwhile, so with many streams each is read
and decoded in half as many pieces (half the work of the reader: measured 0.7 -> 0.4 % of
a core per stream at 20 streams), while one stream waits only a millisecond."""


@dataclass
class _Connection:
    sock: socket.socket
    on_data: Callable[[bytes], None]
    on_end: Callable[[BaseException | None], None]
    stall_seconds: float
    last_data: float


class Receiver:
    """Reads registered sockets on one daemon thread (see the module docstring)."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._added: list[_Connection] = []
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="stream receiver", daemon=True)
        self._thread.start()

    def add(
        self,
        sock: socket.socket,
        *,
        on_data: Callable[[bytes], None],
        on_end: Callable[[BaseException | None], None],
        stall_seconds: float,
    ) -> None:
        """Read `sock` (made non-blocking) from now on, until it ends; the callbacks run on
        the receiver's thread and must not block."""
        sock.setblocking(False)
        connection = _Connection(sock, on_data, on_end, stall_seconds, time.monotonic())
        with self._lock:
            self._added.append(connection)
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def _run(self) -> None:
        connections: dict[socket.socket, _Connection] = {}
        while True:
            self._step(connections)

    def _step(self, connections: dict[socket.socket, _Connection]) -> None:
        """Wait for bytes or a stall deadline and deal with them. A method of its own so that
        no ended connection stays referenced by a local while the thread waits."""
        time.sleep(min(MAX_PAUSE_SECONDS, PAUSE_PER_CONNECTION * len(connections)))
        with self._lock:
            added, self._added = self._added, []
        for connection in added:
            connections[connection.sock] = connection
            self._selector.register(connection.sock, selectors.EVENT_READ, connection)
        now = time.monotonic()
        deadline = min(
            (c.last_data + c.stall_seconds for c in connections.values()),
            default=now + MAX_WAIT_SECONDS,
        )
        events = self._selector.select(min(max(deadline - now, 0.0), MAX_WAIT_SECONDS))
        now = time.monotonic()
        for key, _ in events:
            if key.data is None:  # woken for new connections
                with contextlib.suppress(OSError):
                    self._wake_reader.recv(4096)
                continue
            self._read(key.data, connections, now=now)
        for connection in list(connections.values()):
            if now - connection.last_data > connection.stall_seconds:
                self._end(connection, connections, TimeoutError("stalled"))

    def _read(
        self, connection: _Connection, connections: dict[socket.socket, _Connection], *, now: float
    ) -> None:
        try:
            data = connection.sock.recv(READ_BYTES)
        except BlockingIOError:
            return
        except OSError as error:
            self._end(connection, connections, error)
            return
        if not data:
            self._end(connection, connections, None)
            return
        connection.last_data = now
        try:
            connection.on_data(data)
        except Exception as error:  # this connection's decoding failed: it ends alone
            self._end(connection, connections, error)

    def _end(
        self,
        connection: _Connection,
        connections: dict[socket.socket, _Connection],
        error: BaseException | None,
    ) -> None:
        del connections[connection.sock]
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(connection.sock)
        connection.on_end(error)


_shared: Receiver | None = None
_shared_lock = threading.Lock()


def shared_receiver() -> Receiver:
    """The process's receiver, started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Receiver()
        return _shared
