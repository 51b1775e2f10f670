"""Tracking: a steady genre and segments from per-hop model probabilities, live and offline.

The CNN sees a 3 s window every hop (0.5 s by default) and its per-hop argmax flickers.
`GenreTracker` turns those guesses into a displayed genre that stays put within a track
but follows a real change within a few hops, and cuts the stream into segments.

Smoothing is a causal HMM forward filter over the genres with sticky transitions: the
genre stays with probability ``stay_probability`` and otherwise moves to one of the other
``N - 1`` genres evenly, so ``A p = stay * p + (1 - stay) / (N - 1) * (1 - p)`` costs O(N)
and ``p_t ∝ obs_t ⊙ A p_{t-1}``. The model's probabilities serve as scaled likelihoods
(uniform class prior), floored at ``probability_floor`` so that one hop cannot rule a genre
out for good. Every genre keeps at least ``(1 - stay) / (N - 1)`` of prior mass however
long a track has lasted, so the evidence a change needs is bounded.

Decision rule: another genre is displayed once its filtered probability has exceeded the
displayed one's by ``switch_margin`` for ``confirm_hops`` consecutive hops. With no genre
displayed yet (after the start or a silence), a genre is claimed once it beats all the
others together by the margin, for as many hops; until then the state is music with no
genre (``top`` None), which keeps one noisy first hop from opening a segment of its own.
Causality makes live and offline identical, with no lookahead.

Latency, measured in tests/test_smoothing.py with ten genres and the defaults: when the
probabilities step cleanly to a new genre (0.9 on it), the displayed genre changes on the
third hop that shows it, 2 hops of smoothing delay. The model's own window adds about
half its length (~3 hops of 0.5 s) before the new genre dominates its output, so a change
shows about 2.5 s after it happens in the audio. The defaults were chosen on simulated
noisy outputs (tests/test_smoothing.py has one case): with the true genre winning only
two hops in three, a track stays one segment.

Silence is a state, not a genre. In music, a hop quieter than ``silence_dbfs`` starts a
quiet run; the filter is held (the model's guesses on near-silence are not evidence), the
displayed genre stays, and if the level comes back within ``min_silence_seconds`` nothing
happens: a short pause does not split a track. A longer run becomes a silence segment
starting at the run's first hop; the filter is reset to uniform, as at the start of a
stream, since the next track owes nothing to the last. Silence ends at the first hop at
least ``silence_hysteresis_db`` above the threshold. A stream starts in silence.

Times are whatever the caller passes for each hop, e.g. the stream time at the end of the
analysed window; they must increase. A silence segment starts at the first quiet hop, the
music after it at the first loud hop (levels are of each hop's own audio, with no window).
A change of genre is decided late, but dated early: the new segment starts at the first
hop of the lead that confirmed it, less half the model's window (``window_seconds``, the
moment the new music began to fill what the model heard), never before the open segment's
start. So a DJ's tracklist puts the change where it happened in the audio, not where the
tracker became sure of it (2.5 s later with the shipped model). Segments end where the
next one starts, so they tile the stream from the first hop to `GenreTracker.finish`.
`streamer tag` and `streamer listen` push their audio through the same chain
(`streamer.chain.GenreChain`): the output of one is that of the other, exactly
(tests/test_tagging.py compares the two commands on one file).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import numpy as np

State = Literal["music", "silence"]


@dataclass(frozen=True)
class SmoothingConfig:
    """Parameters of the smoothing and segmentation.

    Parameters
    ----------
    stay_probability : float
        Prior probability that the genre is the same at the next hop. Closer to 1 is
        steadier and slower: the bounded evidence a change needs grows with
        ``log(stay * (N - 1) / (1 - stay))``.
    switch_margin : float
        How much more filtered probability another genre needs before it is displayed.
    confirm_hops : int
        Consecutive hops the new genre must lead by the margin before it is displayed.
    probability_floor : float
        Lower bound on each model probability, limiting what a single hop can prove.
    silence_dbfs : float
        Hops quieter than this (dBFS) count as quiet.
    silence_hysteresis_db : float
        Silence ends only at a level of ``silence_dbfs + silence_hysteresis_db`` or more, so
        a level hovering at the threshold does not toggle.
    min_silence_seconds : float
        Time from the first quiet hop of a run to the current one before the run is
        silence; shorter pauses stay inside the track. At 0.5 s hops the default 1 s
        keeps a pause of one or two quiet hops in the track and makes three silence.

    The defaults, for ten genres at 0.5 s hops, keep a flickering track in one segment
    and follow a clean change in 2 hops (see the module notes).

    Examples
    --------
    >>> SmoothingConfig(switch_margin=0.5).switch_margin
    0.5
    >>> SmoothingConfig(stay_probability=1.0)
    Traceback (most recent call last):
    ...
    ValueError: invalid SmoothingConfig: stay_probability must be in (0, 1)
    """

    stay_probability: float = 0.9
    switch_margin: float = 0.3
    confirm_hops: int = 2
    probability_floor: float = 1e-3
    silence_dbfs: float = -50.0
    silence_hysteresis_db: float = 6.0
    min_silence_seconds: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.stay_probability < 1:
            problems.append("stay_probability must be in (0, 1)")
        if not 0 <= self.switch_margin < 1:
            problems.append("switch_margin must be in [0, 1)")
        if self.confirm_hops < 1:
            problems.append("confirm_hops must be at least 1")
        if not 0 < self.probability_floor < 1:
            problems.append("probability_floor must be in (0, 1)")
        if not math.isfinite(self.silence_dbfs):
            problems.append("silence_dbfs must be finite")
        if not 0 <= self.silence_hysteresis_db < math.inf:
            problems.append("silence_hysteresis_db must be finite and >= 0")
        if not 0 <= self.min_silence_seconds < math.inf:
            problems.append("min_silence_seconds must be finite and >= 0")
        if problems:
            raise ValueError("invalid SmoothingConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def quiet(self, level_dbfs: float | np.ndarray) -> np.ndarray:
        """Whether audio at `level_dbfs` (a hop's, or an array of levels) is quiet: its
        model output is no evidence. The one test of silence, for the live tracker and for
        the library (music hops, descriptor frames) alike; a 0-d array for one level, which
        is true or false like a bool."""
        return np.asarray(np.less(level_dbfs, self.silence_dbfs))


DEFAULT_SMOOTHING = SmoothingConfig()
"""The defaults, for callers that take a config."""


@dataclass(frozen=True)
class Segment:
    """A stretch of the stream with one state and genre, ``[start, end)`` in stream seconds.

    ``confidence`` is the mean over the segment's hops of their `TrackerUpdate.confidence`:
    for music the filtered probability of the segment's genre, for silence the fraction of
    hops below the threshold (hops in the hysteresis band count 0).
    """

    index: int
    start: float
    end: float
    genre: str | None
    state: State
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrackerUpdate:
    """What one hop shows: the filtered probabilities and the displayed state and genre.

    ``top`` is None in silence and in music whose genre is not decided yet. ``confidence``
    is the filtered probability of ``top`` (of the best genre while undecided) in music,
    and in silence 1.0 for a hop below the threshold, 0.0 for one in the hysteresis band.
    ``closed`` is the segment this hop ended, if any; ``segment_start`` is where the open
    one began.
    """

    time: float
    probabilities: np.ndarray
    top: str | None
    confidence: float
    state: State
    segment_start: float
    closed: Segment | None


class Observation(Protocol):
    """What the tracker reads of a hop (`streamer.analysis.hops.Hop` is one)."""

    @property
    def time(self) -> float: ...
    @property
    def probabilities(self) -> np.ndarray: ...
    @property
    def level_dbfs(self) -> float: ...


class GenreTracker:
    """Online smoothing and segmentation: `push` hops, `finish` at the end.

    A `streamer.chain.Processor`: hops in; an update for each hop out, and from `finish`
    the last segment. `reset` begins another stream with the same parameters.

    Parameters
    ----------
    labels : sequence of str
        Genre names, in the order of the model's probabilities (two or more).
    config : SmoothingConfig
        Smoothing and silence parameters.
    window_seconds : float
        The audio each hop's probabilities saw; a change of genre is dated half of it
        before the first hop of the lead that confirmed it (see the module notes). 0 dates
        it at that hop.

    Examples
    --------
    >>> from types import SimpleNamespace as Hop
    >>> tracker = GenreTracker(["jazz", "rock"])
    >>> jazz, rock = np.array([0.8, 0.2]), np.array([0.1, 0.9])
    >>> updates = tracker.push([Hop(time=0.5, probabilities=jazz, level_dbfs=-20),
    ...                         Hop(time=1.0, probabilities=jazz, level_dbfs=-20),
    ...                         Hop(time=1.5, probabilities=rock, level_dbfs=-70)])  # a pause
    >>> [update.top for update in updates]
    [None, 'jazz', 'jazz']
    >>> [segment] = tracker.finish(time=2.0)
    >>> segment.start, segment.end, segment.genre, segment.state
    (0.5, 2.0, 'jazz', 'music')
    """

    def __init__(
        self,
        labels: Sequence[str],
        *,
        config: SmoothingConfig = SmoothingConfig(),
        window_seconds: float = 0.0,
    ) -> None:
        self.labels = tuple(labels)
        self.window_seconds = window_seconds
        if len(self.labels) < 2:
            raise ValueError("GenreTracker needs two or more labels")
        self.config = config
        n = len(self.labels)
        self._move = (1.0 - config.stay_probability) / (n - 1)
        self._keep = config.stay_probability - self._move
        self._uniform = np.full(n, 1.0 / n)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next hop begins a new one, in silence, with no segment."""
        self._filtered = self._uniform
        self.segments: list[Segment] = []
        self._state: State = "silence"
        self._genre: int | None = None
        self._start: float | None = None  # of the open segment; None before the first hop
        self._sum = 0.0  # of the open segment's hop confidences
        self._count = 0
        self._quiet_since: float | None = None  # first hop of a quiet run inside music
        self._quiet_sum = 0.0  # music confidences of that run, not yet assigned
        self._quiet_count = 0
        self._challenger: int | None = None  # genre leading the displayed one by the margin
        self._lead_hops = 0  # consecutive hops it has done so
        self._lead_since = 0.0  # time of the first of those hops
        self._last_time = -math.inf
        self._finished = False

    def push(self, hops: Iterable[Observation]) -> list[TrackerUpdate]:
        """Take hops, in order of time; return what each shows."""
        return [self._track(hop.time, hop.probabilities, hop.level_dbfs) for hop in hops]

    def _track(self, time: float, probabilities: np.ndarray, level_dbfs: float) -> TrackerUpdate:
        observation = self._check(time, probabilities, level_dbfs)
        config = self.config
        closed = None
        if self._state == "silence":
            if level_dbfs >= config.silence_dbfs + config.silence_hysteresis_db:
                closed = self._begin(time, "music", None)
                self._filter(observation)
                self._decide(time)
            elif self._start is None:
                self._begin(time, "silence", None)
        elif config.quiet(level_dbfs):
            if self._quiet_since is None:
                self._quiet_since = time
            if time - self._quiet_since >= config.min_silence_seconds:
                quiet_hops = self._quiet_count  # earlier hops of the run, all below threshold
                closed = self._begin(self._quiet_since, "silence", None)
                self._sum = self._count = quiet_hops
                self._filtered = self._uniform
            else:
                self._quiet_sum += self._music_confidence()
                self._quiet_count += 1
                return self._report(time, self._music_confidence(), None)
        else:
            self._end_pause()
            self._filter(observation)
            closed = self._decide(time)
        if self._state == "music":
            confidence = self._music_confidence()
        else:
            confidence = float(config.quiet(level_dbfs))
        self._sum += confidence
        self._count += 1
        return self._report(time, confidence, closed)

    def finish(self, *, time: float | None = None) -> list[Segment]:
        """Close the open segment at `time` (end of file, Ctrl-C; by default the last hop's
        time) and return it.

        A quiet run too short to be silence stays in the track. Returns no segment when no
        hop was seen. The tracker takes no more hops afterwards, until `reset`.
        """
        if self._finished:
            raise RuntimeError("finish called twice: reset or create a new GenreTracker")
        end = self._last_time if time is None else time
        if not end >= self._last_time:
            raise ValueError(f"finish time {end} is before the last hop {self._last_time}")
        self._finished = True
        if self._start is None:
            return []
        self._end_pause()
        return [self._close(end)]

    def _end_pause(self) -> None:
        """A quiet run that did not become silence was a pause: its hops join the track."""
        self._sum += self._quiet_sum
        self._count += self._quiet_count
        self._quiet_since, self._quiet_sum, self._quiet_count = None, 0.0, 0

    def _check(self, time: float, probabilities: np.ndarray, level_dbfs: float) -> np.ndarray:
        """Validate one hop; return the floored probabilities used as likelihoods.

        Whatever a model can emit is taken: a hop whose probabilities are not a distribution
        (NaN or infinite values, negative ones, all zero) is no evidence, a uniform
        observation that leaves the genres as the transitions make them. A wrong shape, a
        NaN level or a time that does not increase are the caller's bugs and raise.
        """
        if self._finished:
            raise RuntimeError("push after finish: reset or create a new GenreTracker")
        if not (math.isfinite(time) and time > self._last_time):
            raise ValueError(f"hop time {time} must be finite and after {self._last_time}")
        if math.isnan(level_dbfs):
            raise ValueError("level_dbfs is NaN")
        values = np.asarray(probabilities, dtype=np.float64)
        if values.shape != (len(self.labels),):
            raise ValueError(
                f"probabilities have shape {values.shape}, expected ({len(self.labels)},)"
            )
        self._last_time = time
        if not (np.all(np.isfinite(values)) and np.all(values >= 0) and values.sum() > 0):
            return self._uniform  # not a distribution (NaN, all zero): no evidence either way
        floored: np.ndarray = np.maximum(values / values.sum(), self.config.probability_floor)
        return floored

    def _filter(self, observation: np.ndarray) -> None:
        """One forward step: ``p ∝ obs ⊙ A p`` with the sticky transition matrix A."""
        posterior = observation * (self._keep * self._filtered + self._move)
        self._filtered = posterior / posterior.sum()

    def _decide(self, time: float) -> Segment | None:
        """Apply the decision rule after a filter step; a change of genre closes the open
        segment and returns it."""
        filtered = self._filtered
        best = int(np.argmax(filtered))
        # with no genre displayed, the best must beat all the others together
        rival = 1.0 - filtered[best] if self._genre is None else filtered[self._genre]
        if best == self._genre or filtered[best] - rival <= self.config.switch_margin:
            self._challenger, self._lead_hops = None, 0
            return None
        if best != self._challenger:
            self._challenger, self._lead_hops, self._lead_since = best, 0, time
        self._lead_hops += 1
        if self._lead_hops < self.config.confirm_hops:
            return None
        if self._genre is None:
            self._genre = best
            return None
        assert self._start is not None
        began = self._lead_since - self.window_seconds / 2
        return self._begin(began if began > self._start else time, "music", best)

    def _music_confidence(self) -> float:
        genre = int(np.argmax(self._filtered)) if self._genre is None else self._genre
        return float(self._filtered[genre])

    def _begin(self, start: float, state: State, genre: int | None) -> Segment | None:
        """Close the open segment (if any) at `start` and open a new one there."""
        closed = None if self._start is None else self._close(start)
        self._state, self._genre, self._start = state, genre, start
        self._sum, self._count = 0.0, 0
        self._quiet_since, self._quiet_sum, self._quiet_count = None, 0.0, 0
        self._challenger, self._lead_hops = None, 0
        return closed

    def _close(self, end: float) -> Segment:
        assert self._start is not None
        genre = self._genre
        if genre is None and self._state == "music":  # ended before a genre was decided
            genre = int(np.argmax(self._filtered))
        segment = Segment(
            index=len(self.segments),
            start=self._start,
            end=end,
            genre=None if genre is None else self.labels[genre],
            state=self._state,
            confidence=float(self._sum / self._count),
        )
        self.segments.append(segment)
        return segment

    def _report(self, time: float, confidence: float, closed: Segment | None) -> TrackerUpdate:
        assert self._start is not None
        return TrackerUpdate(
            time=time,
            probabilities=self._filtered.copy(),
            top=None if self._genre is None else self.labels[self._genre],
            confidence=float(confidence),
            state=self._state,
            segment_start=self._start,
            closed=closed,
        )
