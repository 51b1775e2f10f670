"""What a websocket client that reads slower than the broadcast misses, and when it is let go.

The policy without the I/O, in the manner of python-websockets' sans-I/O protocol: the
server (`streamer.outlets.server`) hands each queue the messages it could not write at once,
the "sent" events of the client's sender task and the current time, and acts on what comes
back. Nothing here waits, reads a clock or touches a socket, so the rule can be tested with
made-up clocks. docs/protocol.md ("Backpressure") describes it for client authors.
"""

from __future__ import annotations

from collections import deque

SKIPPABLE = frozenset({"update", "status"})
"""Message types a slow client may miss: each one supersedes the previous of its type."""


class SlowClientPolicy:
    """The skip-and-drop rule shared by all clients, and its totals over all of them.

    Parameters
    ----------
    queue_size : int
        Messages that may wait for one client before its oldest update or status is skipped.
    slow_seconds : float
        A client that has not caught up for this long since its first skipped message, or
        whose queue is full of messages that cannot be skipped, is to be closed (1008).

    Attributes
    ----------
    dropped_messages : int
        Messages skipped, in total over all clients.
    disconnected_slow : int
        Clients let go for staying behind.
    """

    def __init__(self, *, queue_size: int, slow_seconds: float) -> None:
        if queue_size < 1 or slow_seconds <= 0:
            raise ValueError("need queue_size >= 1 and positive slow_seconds")
        self.queue_size = queue_size
        self.slow_seconds = slow_seconds
        self.dropped_messages = 0
        self.disconnected_slow = 0

    def queue(self) -> ClientQueue:
        """An empty queue for a new client, counted in this policy's totals."""
        return ClientQueue(policy=self)


class ClientQueue:
    """One client's messages waiting to be written, in order, with the skip-and-drop rule.

    `put` takes a message the client could not be sent at once. While fewer than
    ``queue_size`` wait, it is queued. When the queue is full, the oldest waiting ``update``
    or ``status`` (`SKIPPABLE`) makes room: a newer one supersedes it; a ``segment``,
    ``recommendations``, the hello or a reply is never skipped. The client is to be closed
    instead when the queue holds nothing skippable, or when it has been behind for more than
    ``slow_seconds`` since its first skip. It is behind from that skip until its sender finds
    the queue empty (`take` returns None), so a client that catches up starts afresh.

    The client's sender calls `take` for the next message to write and `sent` once written.
    """

    def __init__(self, *, policy: SlowClientPolicy) -> None:
        self.policy = policy
        self._pending: deque[tuple[str, str]] = deque()
        self._sending = False  # a message was taken and is not written yet
        self._behind_since: float | None = None  # time of the first skip since caught up

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def idle(self) -> bool:
        """Nothing waits and nothing is being written: a new message may go out at once."""
        return not self._pending and not self._sending

    def put(self, kind: str, text: str, *, now: float) -> str | None:
        """Queue the message of type `kind`, skipping for it if full.

        Returns why the client is to be closed with 1008 (``too slow: ...``; the message is
        not queued and the client counts in ``disconnected_slow``), or None when it is queued.
        """
        pending, policy = self._pending, self.policy
        if len(pending) >= policy.queue_size:
            if self._behind_since is None:
                self._behind_since = now
            oldest = next((i for i, (queued, _) in enumerate(pending) if queued in SKIPPABLE), None)
            if oldest is None:
                policy.disconnected_slow += 1
                return f"too slow: {len(pending)} messages to catch up"
            if now - self._behind_since > policy.slow_seconds:
                policy.disconnected_slow += 1
                return f"too slow: behind for {policy.slow_seconds:g} s"
            del pending[oldest]
            policy.dropped_messages += 1
        pending.append((kind, text))
        return None

    def take(self) -> str | None:
        """The next message to write, or None when the queue is empty: caught up."""
        if not self._pending:
            self._behind_since = None
            return None
        self._sending = True
        return self._pending.popleft()[1]

    def sent(self) -> None:
        """The message `take` gave is written."""
        self._sending = False
