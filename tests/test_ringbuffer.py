"""The ring buffer between the audio callback and the analysis thread."""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pytest

from streamer.capture.ringbuffer import STAMPS, RingBuffer


def test_wrap_around_keeps_order() -> None:
    ring = RingBuffer(5, dtype=np.float64)
    ring.write(np.arange(4.0))
    assert ring.read(3).tolist() == [0, 1, 2]
    ring.write(np.arange(4.0, 8.0))  # wraps: slots 4, 0, 1, 2
    assert ring.available == 5
    assert ring.read().tolist() == [3, 4, 5, 6, 7]
    assert ring.available == 0
    assert ring.overflow_samples == 0


def test_overflow_is_counted_exactly_and_keeps_the_oldest() -> None:
    ring = RingBuffer(8, dtype=np.float64)
    assert ring.write(np.arange(6.0)) == 6
    assert ring.write(np.arange(6.0, 11.0)) == 2  # 3 samples do not fit
    assert ring.write(np.arange(11.0, 12.0)) == 0  # 1 more lost
    assert (ring.overflow_samples, ring.overflow_events) == (4, 2)
    assert ring.read().tolist() == list(range(8))
    assert ring.write(np.arange(3.0)) == 3
    assert ring.overflow_samples == 4


def test_multichannel_block_is_downmixed_in_place() -> None:
    ring = RingBuffer(4)
    ring.read(0)
    ring.write(np.ones((3, 2), dtype=np.float32))
    ring.read(2)
    block = np.array([[1.0, 3.0], [0.0, -1.0], [0.5, 0.5]], dtype=np.float32)
    ring.write(block)  # wraps across the end of the buffer
    assert ring.read().tolist() == [1.0, 2.0, -0.5, 0.5]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RingBuffer(0)


def test_concurrent_writer_and_reader_lose_and_duplicate_nothing() -> None:
    """Several seconds of a writer thread and a reader thread racing on a small buffer.

    The writer pushes a counting sequence in random block sizes, like a callback; every
    sample the reader gets must be the next one written, except for the gaps the buffer
    counted as overflow, which must add up exactly.
    """
    ring = RingBuffer(4096, dtype=np.float64)
    seconds = 3.0
    stop = threading.Event()
    produced = [0]
    stored = [0]

    def writer() -> None:
        rng = np.random.default_rng(0)
        while not stop.is_set():
            n = int(rng.integers(1, 1024))
            stored[0] += ring.write(np.arange(produced[0], produced[0] + n, dtype=np.float64))
            produced[0] += n
            if rng.random() < 0.5:
                time.sleep(0.0002)

    received: list[np.ndarray] = []

    def reader() -> None:
        rng = np.random.default_rng(1)
        while not stop.is_set() or ring.available:
            received.append(ring.read(int(rng.integers(1, 3000))))
            if rng.random() < 0.5:
                time.sleep(0.0005)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    data = np.concatenate(received)
    steps = np.diff(data)
    assert data.size == stored[0]
    assert np.all(steps >= 1), "a sample was duplicated or reordered"
    assert int(np.sum(steps - 1)) + int(data[0]) + (produced[0] - 1 - int(data[-1])) == (
        ring.overflow_samples
    )
    assert produced[0] - data.size == ring.overflow_samples
    assert data.size > 100_000


def test_a_broken_drivers_infinities_pass_without_a_warning_in_the_callback() -> None:
    """A stereo frame of +Inf and -Inf (or two huge values) averages to NaN (or Inf): the
    write, which runs in the audio callback, must not warn; the reader cleans it up."""
    ring = RingBuffer(8, dtype=np.float32)
    block = np.array([[np.inf, -np.inf], [3e38, 3e38], [0.5, 0.25]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ring.write(block) == 3
    out = ring.read()
    assert np.isnan(out[0]) and np.isinf(out[1]) and out[2] == np.float32(0.375)


def test_each_sample_knows_when_its_write_came_until_the_stamps_run_out() -> None:
    ring = RingBuffer(1000)
    times = []
    for _ in range(3):  # writes of 10, 10 and 10 samples, 20 ms apart
        ring.write(np.zeros(10, dtype=np.float32))
        times.append(time.monotonic())
        time.sleep(0.02)
    got = [ring.arrived_at(index) for index in (0, 9, 10, 19, 29)]
    assert all(t is not None for t in got)
    first, last_of_first, second, last_of_second, third = got  # type: ignore[misc]
    assert first == last_of_first and second == last_of_second, "one stamp per write"
    assert times[0] - 0.01 <= first <= times[0] < second <= times[1] < third <= times[2]
    ring.read()  # reading does not change when samples came
    assert ring.arrived_at(10) == second and ring.consumed == 30
    for _ in range(STAMPS):  # the first three writes' stamps are overwritten
        ring.write(np.zeros(1, dtype=np.float32))
        ring.read()
    assert ring.arrived_at(29) is None, "too old to know: not a wrong time"
    assert ring.arrived_at(30 + STAMPS - 2) is not None
