"""The input-loss rule (`streamer.capture.loss`) driven by made-up clocks: no device, no sleep.

tests/test_faults.py checks the same rule end to end, through `DeviceSource` and a fake
PortAudio that can be unplugged.
"""

from __future__ import annotations

import random

import pytest

from streamer.capture.loss import InputWatch

RATE = 22050


def watch(*, stall_seconds: float = 3.0, retry_seconds: float = 1.0) -> InputWatch:
    return InputWatch(sample_rate=RATE, stall_seconds=stall_seconds, retry_seconds=retry_seconds)


def test_a_stall_shorter_than_stall_seconds_is_no_loss() -> None:
    input_ = watch(stall_seconds=3.0)
    input_.opened(now=100.0)
    assert not input_.stalled(now=102.9, active=True)  # a slow first callback
    input_.arrived(now=102.9)
    assert not input_.stalled(now=105.9, active=True)  # counted from the last samples
    assert not input_.lost and input_.silence(now=105.9) == 0
    assert input_.stalled(now=105.95, active=True)


def test_a_stream_that_ended_by_itself_is_lost_at_once() -> None:
    input_ = watch()
    input_.opened(now=0.0)
    input_.arrived(now=1.0)
    assert input_.stalled(now=1.01, active=False)
    assert input_.lose(now=1.01) and input_.lost


@pytest.mark.parametrize("seed", range(5))
def test_a_gap_gets_its_length_in_zeros_whatever_the_read_times(seed: int) -> None:
    reads = random.Random(seed)
    input_ = watch(stall_seconds=0.3)
    input_.opened(now=1000.0)
    last = 1000.0 + reads.uniform(0, 1)
    input_.arrived(now=last)
    assert input_.lose(now=last + 0.3 + reads.uniform(0, 0.1))  # the gap starts at `last`
    now, handed_out = last + 0.3, 0
    while now < last + 2.5:
        now = min(now + reads.uniform(0, 0.3), last + 2.5)
        due = input_.silence(now=now)
        assert due >= 0
        handed_out += due
        assert handed_out == round((now - last) * RATE)  # on the wall clock's pace throughout
    assert handed_out == round(2.5 * RATE)
    input_.arrived(now=now + 0.05)
    assert not input_.lost and input_.silence(now=now + 1.0) == 0


def test_retries_come_every_retry_seconds_until_the_input_is_back() -> None:
    input_ = watch(stall_seconds=3.0, retry_seconds=1.0)
    input_.opened(now=0.0)
    input_.lose(now=3.25)
    tries = [now / 4 for now in range(13, 30) if input_.retry(now=now / 4)]  # every 0.25 s
    assert tries == [4.25, 5.25, 6.25, 7.25]
    input_.opened(now=7.25)  # the last try reopened it: lost until its first samples
    assert input_.lost
    input_.arrived(now=7.5)
    assert not input_.lost


def test_retries_count_from_each_try_however_late() -> None:
    input_ = watch(retry_seconds=1.0)
    input_.lose(now=10.0)
    assert not input_.retry(now=10.9)
    assert input_.retry(now=11.6)  # the reader came late
    assert not input_.retry(now=12.5) and input_.retry(now=12.6)


def test_an_input_never_opened_is_opened_at_the_first_chance() -> None:
    assert watch().retry(now=-5.0)


def test_a_reopened_stream_that_never_delivers_closes_inside_the_same_gap() -> None:
    input_ = watch(stall_seconds=0.5, retry_seconds=1.0)
    input_.opened(now=0.0)
    input_.arrived(now=2.0)
    assert input_.lose(now=2.6)
    assert input_.silence(now=3.0) == round(1.0 * RATE)
    assert input_.retry(now=3.6)
    input_.opened(now=3.6)
    assert not input_.stalled(now=4.0, active=True)
    assert input_.silence(now=4.0) == round(2.0 * RATE) - round(1.0 * RATE)  # zeros go on
    assert input_.stalled(now=4.2, active=True)
    assert not input_.lose(now=4.2)  # no new gap: it still counts from the samples at 2.0
    assert input_.silence(now=5.0) == round(3.0 * RATE) - round(2.0 * RATE)
    assert not input_.retry(now=5.1) and input_.retry(now=5.2)


def test_a_second_loss_starts_its_own_gap() -> None:
    input_ = watch(stall_seconds=0.5)
    input_.opened(now=0.0)
    input_.lose(now=0.6)
    assert input_.silence(now=2.0) == 2 * RATE
    input_.opened(now=2.0)
    input_.arrived(now=2.1)
    input_.arrived(now=10.0)
    assert input_.lose(now=10.7)
    assert input_.silence(now=11.0) == RATE
