"""The one interface of every audio source: mono float32 samples at the model's rate,
in chunks, through `AudioSource.read`; what is not audio (NaN, Inf, absurd values) is
replaced by silence and counted as it is read."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import TypeVar

import numpy as np

Source = TypeVar("Source", bound="AudioSource")
MAX_SAMPLE = 1000.0
"""Beyond this magnitude (60 dB over full scale) a float sample is not audio but a corrupt
file or driver: it would overflow the features, and it is treated like a NaN."""


class AudioSource(ABC):
    """A stream of mono float32 samples at `sample_rate`, all of them finite and sane.

    A NaN or infinite sample, or one beyond `MAX_SAMPLE` (a broken float file, a faulty
    driver), is replaced by 0 as soon as it is read, before the resampler (which would
    smear it over its filter length) and the analysis see it, and counted in
    `invalid_samples`: the input is analysed as if those samples were silence, and the
    caller says so once.
    """

    sample_rate: int
    description: str
    _invalid = 0

    @property
    def invalid_samples(self) -> int:
        """Input samples replaced by 0 so far (NaN, infinite or beyond `MAX_SAMPLE`)."""
        return self._invalid

    def _usable(self, samples: np.ndarray) -> np.ndarray:
        """`samples` with every NaN, +-Inf and magnitude beyond `MAX_SAMPLE` set to 0 (in
        place), counted."""
        bad = ~(np.abs(samples) <= MAX_SAMPLE)  # NaN compares False: bad too
        count = int(np.count_nonzero(bad))
        if count:
            samples[bad] = 0.0
            self._invalid += count
        return samples

    @property
    def overflow_samples(self) -> int:
        """Samples lost because the consumer fell behind (0 where nothing can be lost)."""
        return 0

    @property
    def overflow_events(self) -> int:
        """Times the input reported or suffered an overflow."""
        return 0

    @property
    def backlog_seconds(self) -> float:
        """Audio captured but not read yet (part of the live latency)."""
        return 0.0

    def arrived_at(self, sample: int) -> float | None:
        """When (`time.monotonic`) the `sample`-th sample `read` handed out (0-based, on
        the stream clock) had come in, if the source knows: a live update's latency counts
        from then. Asked about the last chunk read only; None by default."""
        return None

    @property
    def input_lost(self) -> bool:
        """True while the input is gone (a device unplugged); `read` then gives silence."""
        return False

    @property
    def problem(self) -> str | None:
        """Why the input is lost or failing, in one line (None while it delivers)."""
        return None

    def title_changes(self) -> list[tuple[float, str | None]]:
        """What the source said is playing, as ``(stream seconds, title)`` changes among the
        samples `read` handed out since the last call (an internet stream's ICY titles; none
        from a device or a file)."""
        return []

    @abstractmethod
    def start(self) -> None: ...

    def launch(self) -> None:
        """Start without waiting for the input to deliver: `streamer monitor` starts a hundred
        sources at once, and one that fails must not hold up the others (it counts as lost
        until it delivers). Sources that open at once start as `start` does."""
        self.start()

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def read(self, timeout: float = 0.1, *, min_samples: int = 1) -> np.ndarray | None:
        """Return the next samples; empty if none came within `timeout`, None at the end.

        A source may hold samples back until it has `min_samples` (at `sample_rate`): the
        reader wakes once per hop instead of once per device block, and each wake-up costs
        more than the work it does (measured: `DeviceSource`).
        """

    def __enter__(self: Source) -> Source:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
