"""Segments that are tracks: a fixed-lag decision over the hops' evidence.

A DJ reads a set as tracks first, then genres. The genre a hop shows flickers between
neighbours within one song (rock, metal, rock), so segments cut at every change of the
shown genre are useless. `TrackSegmenter` cuts where the music itself changes, and only
then: it looks `SegmentConfig.lag_seconds` ahead of the hop it decides, so a segment is
closed that much later than its end, while the view keeps showing the current genre at
once (`streamer.tracking.GenreTracker`).

Each hop arrives with a class (`HopClass`: music, silence, not-music), a feature vector
(what the music sounds like: the networks' embeddings and the decision's probabilities),
and the decision's probabilities. Three rules decide, for each hop ``c`` once hop
``c + lag`` is in:

1. Class smoothing. Among the hops that are not silent, a hop's class is the majority of
   music and not-music in ``[c - vote, c + vote]`` (ties keep its own): a detector that
   errs on one hop in a stretch of speech or song changes nothing. Silence is a level,
   not a guess, and is never voted away.
2. States. A run of another class opens a segment of that class only when it lasts at
   least its minimum (`min_silence_seconds`, `min_not_music_seconds`,
   `min_music_seconds`); a shorter run stays inside the open segment: a pause, a
   shout, a DJ's word do not split a track, and a stab of music does not open one. A
   silence too short for a segment of its own does not break a run either (a pause in
   talk). A change into not-music is dated a model's window before the hop that shows it
   (that window held no music), one back into music half a window (as a track change),
   never shortening the segment it ends below its minimum.
3. Track changes. Within music, the novelty of hop ``c`` compares the mean feature of
   the music hops in ``[c - W, c)`` with that of ``[c, c + W)`` (W = `novelty_seconds`),
   in units of their spread (a two-sample statistic, so one loud track is not "more
   novel" than a quiet one). A track ends at ``c`` when the novelty is at least
   `change_threshold`, is the largest within ``peak_seconds`` on either side, and the
   open segment has lasted `min_track_seconds`. The lag is therefore
   ``W + peak_seconds + vote_seconds``. The change is dated half the model's window
   before hop ``c``, where the new music began to fill what the model heard.

A music segment's genre is the argmax of the decision's mean over its music hops, its
confidence that mean, and its `Segment.mixture` the genres holding at least
`mixture_share` of it: a track that wavers between rock and metal is one segment,
"rock" with mixture {rock: 0.55, metal: 0.35}, not ten.

Everything is a function of the sequence of hops: a stream pushed live gives the
segments of the same audio tagged offline, exactly, with the lag applied at the end by
`TrackSegmenter.finish` (tests/test_segments.py, tests/test_tagging.py).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

State = Literal["music", "silence", "not-music"]
"""What a segment (and a hop) is: music with a genre, or one of the two states without."""


@dataclass(frozen=True)
class SegmentConfig:
    """Parameters of the fixed-lag segmenter (the defaults were chosen on generated DJ
    mixes, bench/bench_segments.py, and checked on the real development set).

    Parameters
    ----------
    min_silence_seconds, min_not_music_seconds, min_music_seconds : float
        The shortest run of each class that opens a segment of its own.
    vote_seconds : float
        Half-width of the majority vote between music and not-music.
    novelty_seconds : float
        Audio compared on each side of a candidate change.
    peak_seconds : float
        A change must be the most novel point within this much on each side.
    change_threshold : float
        The novelty (in units of the features' spread) a track change needs.
    min_track_seconds : float
        The shortest music segment that a track change may close.
    mixture_share : float
        A genre with at least this mean share of a music segment is in its mixture.

    Examples
    --------
    >>> SegmentConfig().lag_seconds
    26.5
    >>> SegmentConfig(novelty_seconds=0)
    Traceback (most recent call last):
    ...
    ValueError: invalid SegmentConfig: novelty_seconds must be positive
    """

    min_silence_seconds: float = 1.0
    min_not_music_seconds: float = 3.0
    min_music_seconds: float = 3.0
    vote_seconds: float = 1.5
    novelty_seconds: float = 15.0
    peak_seconds: float = 10.0
    change_threshold: float = 1.6
    min_track_seconds: float = 30.0
    mixture_share: float = 0.2

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be positive"
            for name in ("novelty_seconds", "peak_seconds", "change_threshold")
            if not 0 < getattr(self, name) < math.inf
        ]
        problems += [
            f"{name} must be finite and >= 0"
            for name in (
                "min_silence_seconds",
                "min_not_music_seconds",
                "min_music_seconds",
                "vote_seconds",
                "min_track_seconds",
            )
            if not 0 <= getattr(self, name) < math.inf
        ]
        if not 0 < self.mixture_share <= 1:
            problems.append("mixture_share must be in (0, 1]")
        if not problems and self.lookahead_seconds > self.lag_seconds:
            problems.append("vote_seconds plus the longest minimum run must not exceed the lag")
        if problems:
            raise ValueError("invalid SegmentConfig: " + "; ".join(problems))

    @property
    def lag_seconds(self) -> float:
        """How long after a hop its segment is decided: the novelty's window and peak,
        and the vote."""
        return self.novelty_seconds + self.peak_seconds + self.vote_seconds

    @property
    def lookahead_seconds(self) -> float:
        """What the class rules need ahead of a hop: the vote and the longest minimum run."""
        longest = max(self.min_silence_seconds, self.min_not_music_seconds, self.min_music_seconds)
        return self.vote_seconds + longest

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_SEGMENTS = SegmentConfig()
"""The defaults, for callers that take a config."""


@dataclass(frozen=True)
class Segment:
    """A stretch of the stream with one state and genre, ``[start, end)`` in stream seconds.

    ``confidence`` is, for music, the decision's mean probability of ``genre`` over the
    segment's music hops; for silence and not-music the fraction of its hops of that class
    (before smoothing). ``mixture`` holds the genres with at least
    `SegmentConfig.mixture_share` of the mean decision, strongest first (music only).
    """

    index: int
    start: float
    end: float
    genre: str | None
    state: State
    confidence: float
    mixture: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def novelty(before: np.ndarray, after: np.ndarray) -> float:
    """How different two stretches of features are: the distance between their means over
    their spread (the root mean squared distance of each to its own mean). Scale-free, so
    a loud or busy track is not "more novel" than a quiet one.

    >>> rng = np.random.default_rng(0)
    >>> same = novelty(rng.normal(size=(20, 8)), rng.normal(size=(20, 8)))
    >>> other = novelty(rng.normal(size=(20, 8)), 2 + rng.normal(size=(20, 8)))
    >>> bool(same < 1 < other)
    True
    """
    spread_before = ((before - before.mean(0)) ** 2).sum(1).mean()
    spread_after = ((after - after.mean(0)) ** 2).sum(1).mean()
    spread = math.sqrt((spread_before + spread_after) / 2)
    return float(np.linalg.norm(before.mean(0) - after.mean(0))) / max(spread, 1e-9)


@dataclass
class _Open:
    """The segment being decided: its state, start and running sums."""

    state: State
    start: float
    probabilities: np.ndarray  # sum over its music hops
    music_hops: int = 0
    hops: int = 0
    own_class_hops: int = 0  # hops whose raw class is the segment's state


class TrackSegmenter:
    """Hops in; segments out, each decided `SegmentConfig.lag_seconds` after its hops.

    A `streamer.chain.Processor` in the manner of the others: `push` one hop at a time
    (its class, features and decision), `finish` at the end of the stream, `reset` for
    another. Memory is bounded: about twice the lag of hops is kept.

    Parameters
    ----------
    labels : sequence of str
        The decision's genres, in the order of its probabilities.
    hop_seconds : float
        Time between hops; the config's durations are rounded up to whole hops.
    window_seconds : float
        The audio each hop's features saw: a track change is dated half of it early.
    config : SegmentConfig
        The rules' parameters.

    Examples
    --------
    Twenty seconds of one track, then thirty of another: the change is decided ``lag``
    late, the last segment at the end.

    >>> segmenter = TrackSegmenter(["a", "b"], hop_seconds=0.5, window_seconds=0,
    ...                            config=SegmentConfig(min_track_seconds=5))
    >>> one, two = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    >>> rng = np.random.default_rng(0)
    >>> closed = []
    >>> for k in range(100):
    ...     sound = one if k < 40 else two
    ...     features = sound + 0.1 * rng.standard_normal(2)
    ...     closed += segmenter.push(time=0.5 * k, hop_class="music",
    ...                              probabilities=sound, features=features)
    >>> [(s.start, s.end, s.genre) for s in closed]
    [(0.0, 20.0, 'a')]
    >>> [(s.start, s.end, s.genre) for s in segmenter.finish(time=50.0)]
    [(20.0, 50.0, 'b')]
    """

    def __init__(
        self,
        labels: tuple[str, ...] | list[str],
        *,
        hop_seconds: float,
        window_seconds: float = 0.0,
        config: SegmentConfig = DEFAULT_SEGMENTS,
    ) -> None:
        self.labels = tuple(labels)
        self.config = config
        self.hop_seconds = hop_seconds
        self.window_seconds = window_seconds

        def hops(seconds: float) -> int:
            return math.ceil(seconds / hop_seconds - 1e-9)

        self._vote = hops(config.vote_seconds)
        self._window = max(2, hops(config.novelty_seconds))
        self._peak = max(1, hops(config.peak_seconds))
        self._lag = self._window + self._peak + self._vote
        self._min_run: dict[State, int] = {
            "silence": hops(config.min_silence_seconds),
            "not-music": hops(config.min_not_music_seconds),
            "music": hops(config.min_music_seconds),
        }
        self._min_track = config.min_track_seconds
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next hop begins a new one."""
        self.segments: list[Segment] = []
        self._first = 0  # absolute index of the first hop kept
        self._times: deque[float] = deque()
        self._raw: deque[State] = deque()
        self._features: deque[np.ndarray] = deque()
        self._probabilities: deque[np.ndarray] = deque()
        self._smoothed: dict[int, State] = {}  # by hop index, once final
        self._novelty: dict[int, float] = {}
        self._pushed = 0
        self._committed = 0  # hops decided so far
        self._open: _Open | None = None
        self._finished = False

    @property
    def lag_seconds(self) -> float:
        """Hops are decided this long after they arrive (whole hops)."""
        return self._lag * self.hop_seconds

    def min_run_hops(self, state: State) -> int:
        """The shortest run of `state`, in hops, that opens a segment of its own."""
        return self._min_run[state]

    @property
    def open_start(self) -> float | None:
        """Where the segment being decided began; None before the first decision."""
        return None if self._open is None else self._open.start

    def push(
        self,
        *,
        time: float,
        hop_class: State,
        probabilities: np.ndarray,
        features: np.ndarray,
    ) -> list[Segment]:
        """Take the next hop; return the segments that deciding the hop ``lag`` back
        closed (at most one)."""
        if self._finished:
            raise RuntimeError("push after finish: reset or create a new TrackSegmenter")
        self._times.append(time)
        self._raw.append(hop_class)
        self._features.append(np.asarray(features, dtype=np.float64))
        self._probabilities.append(np.asarray(probabilities, dtype=np.float64))
        self._pushed += 1
        closed: list[Segment] = []
        while self._committed + self._lag < self._pushed:
            closed += self._commit(end=self._pushed)
        self._trim()
        return closed

    def finish(self, *, time: float) -> list[Segment]:
        """End the stream at `time`: decide the last ``lag`` of hops with what there is,
        close the open segment there, and return what this closed."""
        if self._finished:
            raise RuntimeError("finish called twice: reset or create a new TrackSegmenter")
        self._finished = True
        closed: list[Segment] = []
        while self._committed < self._pushed:
            closed += self._commit(end=self._pushed)
        if self._open is not None:
            closed.append(self._close(time))
        return closed

    # -- the rules, for hop `self._committed`, seeing hops [.., end) --------------------

    def _commit(self, *, end: int) -> list[Segment]:
        c = self._committed
        self._committed += 1
        state = self._class(c, end)
        closed: list[Segment] = []
        if self._open is None:
            self._open = self._new(self._first_state(c, end), self._time(c))
        elif state != self._open.state and self._run(c, end, state) >= self._min_run[state]:
            # Dated back, but never so far that the segment it ends falls below its minimum.
            shortest = self._open.start + self._min_run[self._open.state] * self.hop_seconds
            start = max(
                min(shortest, self._time(c)), self._time(c) - self._dating(self._open.state, state)
            )
            closed.append(self._close(start))
            self._open = self._new(state, start)
        elif self._open.state == "music" and state == "music" and self._is_change(c, end):
            start = self._time(c) - self.window_seconds / 2
            closed.append(self._close(start))
            self._open = self._new("music", start)
        self._count(c, state)
        return closed

    def _class(self, k: int, end: int) -> State:
        """Rule 1: the hop's class after the vote. Kept once its vote has seen all its
        hops (the lag covers that for every hop the rules look at)."""
        if k in self._smoothed:
            return self._smoothed[k]
        state = self._raw_at(k)
        if state != "silence":
            neighbours = range(max(self._first, k - self._vote), min(end, k + self._vote + 1))
            votes = [self._raw_at(i) for i in neighbours]
            music, other = votes.count("music"), votes.count("not-music")
            if music != other:
                state = "music" if music > other else "not-music"
        if k + self._vote < end or self._finished:
            self._smoothed[k] = state
        return state

    def _run(self, c: int, end: int, state: State) -> int:
        """Hops from `c` on whose class is `state`, counted up to its minimum run. A silence
        too short for a segment of its own does not break a run of music or not-music (a
        pause between two sentences is part of the talk), and counts in it."""
        n = 0
        while n < self._min_run[state] and c + n < end:
            here = self._class(c + n, end)
            if here == "silence" != state:
                pause = self._run(c + n, end, "silence")
                if pause >= self._min_run["silence"] or c + n + pause >= end:
                    break  # a silence of its own, or one whose length is not known yet
                n += pause
            elif here == state:
                n += 1
            else:
                break
        return min(n, self._min_run[state])

    def _dating(self, before: State, after: State) -> float:
        """How long before the hop that shows a change of state the change happened. A hop
        is not-music only when its window holds no music (speech over a music bed is
        music), so music had stopped before that window began: a whole window early. Music
        back is heard as soon as part of the window holds it: half a window, as a track
        change. Silence is the level of the hop's own samples: at the hop."""
        if after == "not-music" and before == "music":
            return self.window_seconds
        if before == "not-music" and after == "music":
            return self.window_seconds / 2
        return 0.0

    def _first_state(self, c: int, end: int) -> State:
        """The first segment's state: that of the first run from `c` long enough to count
        (a stream that starts with half a second of hiss is music from its first hop)."""
        longest = max(self._min_run.values())
        for k in range(c, end if self._finished else end - self._vote - longest):
            state = self._class(k, end)
            if self._run(k, end, state) >= self._min_run[state]:
                return state
        return self._class(c, end)

    def _is_change(self, c: int, end: int) -> bool:
        """Rule 3: a novelty peak above the threshold, the open track long enough (to
        where the change is dated), and the new music at least its minimum run."""
        assert self._open is not None
        if self._time(c) - self.window_seconds / 2 - self._open.start < self._min_track:
            return False
        if self._run(c, end, "music") < self._min_run["music"]:
            return False
        score = self._novelty_at(c, end)
        if score < self.config.change_threshold:
            return False
        before = [self._novelty_at(k, end) for k in range(max(self._first, c - self._peak), c)]
        after = [self._novelty_at(k, end) for k in range(c + 1, min(end, c + self._peak + 1))]
        return all(score > s for s in before) and all(score >= s for s in after)

    def _novelty_at(self, k: int, end: int) -> float:
        """The two-sample statistic at hop `k`: the distance of the mean features of the
        music hops before and after it, over their spread; 0 without enough music on
        either side. Kept once its windows are complete."""
        if k in self._novelty:
            return self._novelty[k]
        half = self._window
        before = self._music_features(max(self._first, k - half), k, end)
        after = self._music_features(k, min(end, k + half), end)
        score = 0.0
        if len(before) >= half // 2 and len(after) >= half // 2:
            score = novelty(np.stack(before), np.stack(after))
        if k + half + self._vote < end or self._finished:
            self._novelty[k] = score
        return score

    def _music_features(self, start: int, stop: int, end: int) -> list[np.ndarray]:
        return [
            self._features[i - self._first]
            for i in range(start, stop)
            if self._class(i, end) == "music"
        ]

    # -- bookkeeping ---------------------------------------------------------------------

    def _new(self, state: State, start: float) -> _Open:
        return _Open(state=state, start=start, probabilities=np.zeros(len(self.labels)))

    def _count(self, c: int, state: State) -> None:
        assert self._open is not None
        segment = self._open
        segment.hops += 1
        segment.own_class_hops += self._raw_at(c) == segment.state
        if state == "music" and segment.state == "music":
            segment.probabilities += self._probabilities[c - self._first]
            segment.music_hops += 1

    def _close(self, end: float) -> Segment:
        assert self._open is not None
        segment = self._open
        genre, confidence, mixture = None, 0.0, {}
        if segment.state == "music":
            mean = segment.probabilities / max(segment.music_hops, 1)
            best = int(np.argmax(mean))
            genre, confidence = self.labels[best], float(mean[best])
            order = np.argsort(-mean, kind="stable")
            mixture = {
                self.labels[i]: round(float(mean[i]), 4)
                for i in order
                if mean[i] >= self.config.mixture_share
            }
        else:
            confidence = segment.own_class_hops / max(segment.hops, 1)
        closed = Segment(
            index=len(self.segments),
            start=segment.start,
            end=end,
            genre=genre,
            state=segment.state,
            confidence=confidence,
            mixture=mixture,
        )
        self.segments.append(closed)
        self._open = None
        return closed

    def _time(self, k: int) -> float:
        return self._times[k - self._first]

    def _raw_at(self, k: int) -> State:
        return self._raw[k - self._first]

    def _trim(self) -> None:
        """Keep the hops the rules can still look at: the novelty's window and peak, and
        the vote, behind the next hop to decide."""
        keep_from = self._committed - self._window - self._peak - self._vote - 1
        while self._first < keep_from:
            self._times.popleft()
            self._raw.popleft()
            self._features.popleft()
            self._probabilities.popleft()
            self._smoothed.pop(self._first, None)
            self._novelty.pop(self._first, None)
            self._first += 1
