"""The slow-client rule (`streamer.outlets.pacing`) driven by made-up clocks: no socket, no sleep.

tests/test_server.py checks the same rule end to end, over loopback websockets.
"""

from __future__ import annotations

import pytest

from streamer.outlets.pacing import ClientQueue, SlowClientPolicy


def drain(queue: ClientQueue) -> list[str]:
    """What a sender that keeps up writes, in order, until the queue is empty."""
    written = []
    while (text := queue.take()) is not None:
        written.append(text)
        queue.sent()
    return written


def test_client_that_never_acknowledges_skips_updates_keeps_segments_and_goes_after_the_lag() -> (
    None
):
    policy = SlowClientPolicy(queue_size=8, slow_seconds=5.0)
    queue = policy.queue()
    assert queue.put("hello", "hello", now=0.0) is None
    assert queue.take() == "hello"  # written to a socket that never takes it: no `sent`
    verdicts = {}
    for hop in range(100):  # an update every 0.5 s, a segment every 5 s
        now = hop * 0.5
        kind = "segment" if hop % 10 == 9 else "update"
        verdicts[now] = queue.put(kind, f"{kind} {hop}", now=now)
        if verdicts[now] is not None:
            break
    # Full from the ninth message on (t = 4 s): the first skip starts the 5 s of grace.
    assert [now for now, verdict in verdicts.items() if verdict is not None] == [9.5]
    assert verdicts[9.5] == "too slow: behind for 5 s"
    assert (policy.dropped_messages, policy.disconnected_slow) == (11, 1)
    # What waits: the segment, which outlived eleven skips, and the seven newest updates.
    queue.sent()
    assert drain(queue) == ["segment 9", *(f"update {hop}" for hop in range(12, 19))]


def test_the_oldest_update_or_status_makes_room_never_the_rest() -> None:
    policy = SlowClientPolicy(queue_size=4, slow_seconds=60.0)
    queue = policy.queue()
    for kind in ["hello", "update", "segment", "status"]:
        assert queue.put(kind, kind, now=0.0) is None
    assert queue.put("recommendations", "recommendations", now=1.0) is None  # skips the update
    assert queue.put("pong", "pong", now=2.0) is None  # skips the status
    assert drain(queue) == ["hello", "segment", "recommendations", "pong"]
    assert policy.dropped_messages == 2


@pytest.mark.parametrize("kind", ["hello", "segment", "recommendations", "pong", "error"])
def test_a_queue_full_of_what_cannot_be_skipped_goes_at_once(kind: str) -> None:
    policy = SlowClientPolicy(queue_size=4, slow_seconds=60.0)
    queue = policy.queue()
    for index in range(4):
        assert queue.put(kind, f"{kind} {index}", now=0.0) is None
    assert queue.put("update", "update", now=0.1) == "too slow: 4 messages to catch up"
    assert (policy.dropped_messages, policy.disconnected_slow) == (0, 1)
    assert drain(queue) == [f"{kind} {index}" for index in range(4)]  # nothing lost meanwhile


def test_a_client_that_catches_up_starts_afresh() -> None:
    policy = SlowClientPolicy(queue_size=2, slow_seconds=1.0)
    queue = policy.queue()
    for now in [0.0, 0.1, 0.2]:  # the third skips: behind since 0.2
        assert queue.put("update", f"update {now}", now=now) is None
    assert queue.put("update", "late", now=1.1) is None  # behind for 0.9 s: still in grace
    assert drain(queue) == ["update 0.2", "late"]
    for now in [5.0, 5.1, 5.2, 6.1]:  # behind again since 5.2, not since 0.2
        assert queue.put("update", f"update {now}", now=now) is None
    assert queue.put("update", "too late", now=6.3) == "too slow: behind for 1 s"
    assert (policy.dropped_messages, policy.disconnected_slow) == (4, 1)


def test_a_client_that_only_empties_its_queue_late_is_still_behind() -> None:
    """Behind lasts until the sender finds the queue empty, not while it merely writes."""
    policy = SlowClientPolicy(queue_size=2, slow_seconds=1.0)
    queue = policy.queue()
    for now in [0.0, 0.1, 0.2]:
        assert queue.put("update", f"update {now}", now=now) is None
    assert queue.take() == "update 0.1"
    queue.sent()
    assert queue.put("update", "update 0.9", now=0.9) is None
    assert queue.put("update", "update 1.3", now=1.3) == "too slow: behind for 1 s"


def test_a_message_goes_out_at_once_only_when_nothing_waits_or_is_being_written() -> None:
    queue = SlowClientPolicy(queue_size=4, slow_seconds=1.0).queue()
    assert queue.idle and queue.take() is None
    queue.put("update", "a", now=0.0)
    assert not queue.idle
    assert queue.take() == "a"
    assert not queue.idle and len(queue) == 0  # taken, not written yet
    queue.sent()
    assert queue.idle


def test_totals_count_every_client_of_the_policy() -> None:
    policy = SlowClientPolicy(queue_size=1, slow_seconds=1.0)
    queues = [policy.queue() for _ in range(3)]
    for queue in queues:
        for now in [0.0, 0.5, 1.0]:
            assert queue.put("update", "u", now=now) is None
    assert queues[0].put("update", "u", now=1.6) == "too slow: behind for 1 s"  # since 0.5
    assert (policy.dropped_messages, policy.disconnected_slow) == (6, 1)


@pytest.mark.parametrize(("queue_size", "slow_seconds"), [(0, 1.0), (4, 0.0)])
def test_a_policy_that_would_drop_everyone_is_refused(queue_size: int, slow_seconds: float) -> None:
    with pytest.raises(ValueError, match="queue_size >= 1 and positive slow_seconds"):
        SlowClientPolicy(queue_size=queue_size, slow_seconds=slow_seconds)
