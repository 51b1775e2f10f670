"""A preallocated single-producer/single-consumer ring buffer for audio samples.

The producer is the audio callback: it must never allocate a buffer, take a lock or wait,
or the sound card overruns. The consumer is the analysis thread. Each side owns one
monotonically increasing counter (`_written` for the producer, `_read` for the consumer)
and only reads the other's; publishing a counter is a single attribute assignment, atomic
under the GIL, and happens after the samples are copied. So no lock is needed.

When the consumer falls behind and the buffer is full, the producer drops the samples
that do not fit (it cannot move the consumer's counter) and counts them, in samples and in
events: data is never lost silently.

Each write is also stamped with when it happened, in a small preallocated ring of its own
(`arrived_at`), so the consumer can tell how long a sample waited before it was analysed:
the live latency a status reports.
"""

from __future__ import annotations

import time

import numpy as np

STAMPS = 64
"""Writes whose time a ring keeps: 1.7 s of MP3 frames, 6 s of 100 ms device callbacks."""


class RingBuffer:
    """Fixed-capacity FIFO of mono samples, lock-free for one writer and one reader.

    Parameters
    ----------
    capacity : int
        Samples the buffer holds; allocated once, here.
    dtype : numpy dtype
        Sample type (float32 for audio).

    Examples
    --------
    >>> ring = RingBuffer(4)
    >>> ring.write(np.array([1, 2, 3], dtype=np.float32))
    3
    >>> ring.read().tolist()
    [1.0, 2.0, 3.0]
    >>> ring.write(np.arange(6, dtype=np.float32))  # only 4 fit, 2 are counted as lost
    4
    >>> ring.overflow_samples, ring.overflow_events
    (2, 1)
    """

    def __init__(self, capacity: int, dtype: np.dtype | type = np.float32) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._data = np.zeros(capacity, dtype=dtype)
        self._written = 0  # owned by the producer
        self._read = 0  # owned by the consumer
        self.overflow_samples = 0  # owned by the producer
        self.overflow_events = 0  # owned by the producer
        self._overflow_filled = 0  # owned by the consumer: overflow given back as zeros
        # The last STAMPS writes (owned by the producer): the count of samples stored after
        # each, and when (time.monotonic); `_stamps` is published last.
        self._stamp_end = np.zeros(STAMPS, dtype=np.int64)
        self._stamp_at = np.zeros(STAMPS, dtype=np.float64)
        self._stamps = 0

    @property
    def available(self) -> int:
        """Samples written and not yet read."""
        return self._written - self._read

    def write(self, block: np.ndarray) -> int:
        """Append samples (producer side); return how many were stored.

        A 2-D block ``(frames, channels)`` is downmixed to mono (channel mean) straight
        into the buffer, without a temporary array.
        """
        frames = block.shape[0]
        free = self.capacity - (self._written - self._read)
        n = min(frames, free)
        if n < frames:
            self.overflow_samples += frames - n
            self.overflow_events += 1
        start = self._written % self.capacity
        first = min(n, self.capacity - start)
        self._store(block[:first], self._data[start : start + first])
        if n > first:
            self._store(block[first:n], self._data[: n - first])
        self._written += n
        slot = self._stamps % STAMPS
        self._stamp_end[slot] = self._written
        self._stamp_at[slot] = time.monotonic()
        self._stamps += 1
        return int(n)

    @property
    def consumed(self) -> int:
        """Samples read so far (consumer side; overflowed ones are not counted)."""
        return self._read

    def arrived_at(self, index: int) -> float | None:
        """When (`time.monotonic`) the write that stored the `index`-th sample happened
        (consumer side; 0-based, counting stored samples only), or None when that write is
        older than the ones whose time is kept.

        >>> ring = RingBuffer(8)
        >>> ring.write(np.zeros(3, dtype=np.float32)), ring.write(np.zeros(2, dtype=np.float32))
        (3, 2)
        >>> ring.arrived_at(2) < ring.arrived_at(3)
        True
        """
        stamps = self._stamps
        found = None
        # Newest first; the oldest slot may be being overwritten: left out.
        for back in range(1, min(stamps, STAMPS - 1) + 1):
            slot = (stamps - back) % STAMPS
            if self._stamp_end[slot] <= index:
                return found
            found = float(self._stamp_at[slot])
        return found if stamps < STAMPS else None

    @staticmethod
    def _store(source: np.ndarray, target: np.ndarray) -> None:
        if source.ndim == 2:
            # +Inf and -Inf from a broken driver average to NaN: no warning here, in the
            # audio callback; the reader replaces what is not audio (AudioSource._usable).
            with np.errstate(all="ignore"):
                np.mean(source, axis=1, out=target)
        else:
            target[:] = source

    def read(self, max_samples: int | None = None) -> np.ndarray:
        """Remove and return up to `max_samples` samples (consumer side), oldest first."""
        n = self._written - self._read
        if max_samples is not None:
            n = min(n, max_samples)
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        out = np.empty(n, dtype=self._data.dtype)
        out[:first] = self._data[start : start + first]
        out[first:] = self._data[: n - first]
        self._read += n
        return out

    def read_filled(self) -> np.ndarray:
        """Remove and return all it holds, then zeros for the samples that overflowed it
        since the last call (consumer side): a reader that fell behind keeps its place on
        the stream clock. The ring drops what does not fit, so whatever it lost came after
        all it holds.

        >>> ring = RingBuffer(2)
        >>> ring.write(np.ones(3, dtype=np.float32))
        2
        >>> ring.read_filled().tolist()
        [1.0, 1.0, 0.0]
        """
        block = self.read()
        lost = self.overflow_samples - self._overflow_filled
        if not lost:
            return block
        self._overflow_filled += lost
        return np.concatenate([block, np.zeros(lost, dtype=block.dtype)])

    def wait_for(self, count: int, *, timeout: float, rate: float, shortest: float) -> None:
        """Sleep (consumer side) until `count` samples are available or `timeout` seconds
        have passed, waking when the missing samples should be there at `rate` samples a
        second, but not more often than every `shortest` seconds: a wake-up or two per
        hop, not one every few milliseconds (each cost more than the work it found)."""
        deadline = time.monotonic() + timeout
        while (missing := count - self.available) > 0 and (now := time.monotonic()) < deadline:
            time.sleep(min(max(missing / rate, shortest), deadline - now))
