"""The process's one receiver thread, on real sockets: every connection's bytes read on one
thread, a connection that misbehaves or stalls ended alone, the others going on."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from streamer.capture.receiver import Receiver


class Endpoint:
    """One connection given to the receiver: what it got, on which threads, how it ended."""

    def __init__(
        self, receiver: Receiver, *, stall_seconds: float = 5.0, fail_on: bytes = b""
    ) -> None:
        self.peer, mine = socket.socketpair()
        self.data = bytearray()
        self.threads: set[int] = set()
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self._fail_on = fail_on
        receiver.add(mine, on_data=self._on_data, on_end=self._on_end, stall_seconds=stall_seconds)
        self.sock = mine

    def _on_data(self, data: bytes) -> None:
        self.threads.add(threading.get_ident())
        if self._fail_on and self._fail_on in data:
            raise ValueError("cannot decode this")
        self.data += data

    def _on_end(self, error: BaseException | None) -> None:
        self.error = error
        self.ended.set()


def wait_until(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_many_connections_are_read_on_one_thread_and_each_gets_its_bytes() -> None:
    receiver = Receiver()
    endpoints = [Endpoint(receiver) for _ in range(20)]
    for round_ in range(5):
        for index, endpoint in enumerate(endpoints):
            endpoint.peer.sendall(f"{index}:{round_};".encode())
    assert wait_until(lambda: all(len(e.data) >= 5 * 4 for e in endpoints))
    for index, endpoint in enumerate(endpoints):
        assert endpoint.data.decode() == "".join(f"{index}:{r};" for r in range(5))
    threads = set().union(*(e.threads for e in endpoints))
    assert len(threads) == 1 and threading.get_ident() not in threads
    for endpoint in endpoints:
        endpoint.peer.close()
    assert wait_until(lambda: all(e.ended.is_set() for e in endpoints))
    assert all(e.error is None for e in endpoints), "a closed peer is the end, no error"


def test_a_connection_that_fails_or_stalls_ends_alone() -> None:
    receiver = Receiver()
    steady = Endpoint(receiver, stall_seconds=0.6)
    failing = Endpoint(receiver, fail_on=b"bad")
    stalling = Endpoint(receiver, stall_seconds=0.3)
    failing.peer.sendall(b"bad bytes")
    assert failing.ended.wait(2.0)
    assert isinstance(failing.error, ValueError)
    started = time.monotonic()
    while time.monotonic() - started < 1.0:  # the steady one keeps talking; the other is mute
        steady.peer.sendall(b"x")
        time.sleep(0.05)
    assert stalling.ended.is_set() and isinstance(stalling.error, TimeoutError)
    assert not steady.ended.is_set()
    assert len(steady.data) >= 15
    steady.peer.close()
    assert steady.ended.wait(2.0) and steady.error is None
