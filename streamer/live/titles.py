"""What an internet stream says is playing (its ICY ``StreamTitle``), along the stream clock.

A station sends "Artist - Title" when a song starts, give or take a few seconds. Updates
carry the title in force at their time; a segment, decided tens of seconds after it ended,
carries the title that held the largest part of it, so that a segment which began during
the last seconds of the previous song is named after the song it is mostly made of.
"""

from __future__ import annotations

import bisect
import math


class TitleTimeline:
    """Title changes at stream times, with the title in force at any time after them.

    Examples
    --------
    >>> titles = TitleTimeline()
    >>> titles.add(0.0, "A - One")
    >>> titles.add(100.0, "B - Two")
    >>> titles.at(99.5), titles.at(100.0)
    ('A - One', 'B - Two')
    >>> titles.dominant(95.0, 130.0)
    'B - Two'
    >>> titles.dominant(-5.0, -1.0) is None  # before the first title: none known
    True
    """

    def __init__(self) -> None:
        self._times: list[float] = []
        self._titles: list[str | None] = []

    def add(self, time: float, title: str | None) -> None:
        """From stream time `time` on, the title is `title` (None: the stream says none).
        Times come in order."""
        if self._titles and self._titles[-1] == title:
            return
        self._times.append(time)
        self._titles.append(title)

    def at(self, time: float) -> str | None:
        """The title in force at `time` (None before the first one)."""
        position = bisect.bisect_right(self._times, time) - 1
        return self._titles[position] if position >= 0 else None

    def dominant(self, start: float, end: float) -> str | None:
        """The title in force for the largest share of ``[start, end]``; the title at
        `start` for an empty span."""
        if end <= start:
            return self.at(start)
        shares: dict[str | None, float] = {}
        starts = [-math.inf, *self._times]
        ends = [*self._times, math.inf]
        for title, since, until in zip([None, *self._titles], starts, ends, strict=True):
            overlap = min(until, end) - max(since, start)
            if overlap > 0:
                shares[title] = shares.get(title, 0.0) + overlap
        return max(shares, key=lambda title: shares[title])

    def forget_before(self, time: float) -> None:
        """Drop the changes no longer needed for times from `time` on (the one in force
        at `time` stays)."""
        keep = max(bisect.bisect_right(self._times, time) - 1, 0)
        del self._times[:keep]
        del self._titles[:keep]
