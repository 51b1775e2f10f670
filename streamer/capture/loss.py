"""When a live input counts as lost, when to try it again, and the silence that fills the gap.

The rule without the I/O, in the manner of python-websockets' sans-I/O protocol:
`streamer.capture.device.DeviceSource` tells an `InputWatch` what happened (a stream opened,
samples arrived, the stream looks inactive) and when, with `time.monotonic()`, and does what
it answers (close the stream, reopen it, hand out zeros). Nothing here reads a clock, so the
rule can be tested with made-up times.
"""

from __future__ import annotations

import math


class InputWatch:
    """Loss and recovery of one live input, as a function of the times events happen at.

    - **Lost**: an open stream that ended by itself, or has delivered nothing for more than
      `stall_seconds` since its last samples (or since it opened), is lost (`stalled`, then
      `lose`). The gap starts at the last samples heard.
    - **Silence**: while lost, `silence` says how many zero samples are due so that the zeros
      handed out since the gap began keep the wall clock's pace: after a gap of ``g`` seconds
      they total ``round(g * sample_rate)``, however the calls are spread over it.
    - **Retry**: `retry` says when to reopen: `retry_seconds` after the loss is noticed,
      then every `retry_seconds` (counted from each try) while reopening fails. A reopened
      stream that stalls again is closed without starting a new gap.
    - **Back**: the input is back with the first samples after a loss (`arrived`), not when
      a stream merely reopens.

    Parameters
    ----------
    sample_rate : int
        Rate of the silence handed out.
    stall_seconds : float
        No samples for longer than this means the input is lost.
    retry_seconds : float
        Time between two attempts to reopen a lost input.
    """

    def __init__(self, *, sample_rate: int, stall_seconds: float, retry_seconds: float) -> None:
        self.sample_rate = sample_rate
        self.stall_seconds = stall_seconds
        self.retry_seconds = retry_seconds
        self._last_samples_at = 0.0  # when samples last came (or the stream opened)
        self._lost_since: float | None = None  # when the last samples before a loss came
        self._gap_samples = 0  # silence handed out since then
        self._next_retry = -math.inf  # a closed input is opened at the first chance

    @property
    def lost(self) -> bool:
        """Lost and not back yet."""
        return self._lost_since is not None

    def opened(self, *, now: float) -> None:
        """A stream opened at `now`: it has `stall_seconds` from now to deliver."""
        self._last_samples_at = now

    def arrived(self, *, now: float) -> None:
        """Samples came at `now`: the input is fine, or back if it was lost."""
        self._last_samples_at = now
        self._lost_since = None

    def stalled(self, *, now: float, active: bool) -> bool:
        """Whether an open stream that has nothing to read is lost: it is no longer `active`
        (ended by itself), or nothing came for more than `stall_seconds`."""
        return not active or now - self._last_samples_at > self.stall_seconds

    def lose(self, *, now: float) -> bool:
        """The stream was closed as lost at `now`; the next retry comes `retry_seconds` later.

        Returns True on a loss that starts a gap, False for a reopened stream that never
        delivered (the gap it belongs to goes on).
        """
        self._next_retry = now + self.retry_seconds
        if self._lost_since is not None:
            return False
        self._lost_since, self._gap_samples = self._last_samples_at, 0
        return True

    def retry(self, *, now: float) -> bool:
        """Whether to try reopening the closed input at `now`; a yes schedules the next try."""
        if now < self._next_retry:
            return False
        self._next_retry = now + self.retry_seconds
        return True

    def silence(self, *, now: float) -> int:
        """Zero samples due at `now` to keep the gap at the wall clock's pace (0 if not lost)."""
        if self._lost_since is None:
            return 0
        due = round((now - self._lost_since) * self.sample_rate) - self._gap_samples
        self._gap_samples += due
        return due
