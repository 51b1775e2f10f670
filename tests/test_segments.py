"""The fixed-lag segmenter on made-up evidence: a track is one segment however its genre
wavers, a change of music is a new one, short interruptions stay inside, and every
segment is decided exactly the lag late."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.segments import DEFAULT_SEGMENTS, Segment, SegmentConfig, State, TrackSegmenter

LABELS = ("blues", "jazz", "metal", "rock")
HOP = 0.5
FIRST = 3.0  # the first hop's time: the end of the model's first window
DIM = 8
NOISE = 0.3  # per dimension: a track's features spread by about sqrt(DIM) * NOISE
LAG_HOPS = round(DEFAULT_SEGMENTS.lag_seconds / HOP)  # novelty + peak + vote, in hops


@dataclass
class Stream:
    """Made-up evidence, one row per hop: class, features and decision."""

    classes: list[State]
    features: np.ndarray
    probabilities: np.ndarray

    @property
    def times(self) -> np.ndarray:
        return FIRST + HOP * np.arange(len(self.classes))


def sound(track: int) -> np.ndarray:
    """The mean features of track `track`: tracks 4 apart (about 5 spreads)."""
    return 4.0 * np.eye(DIM)[track % DIM]


def genre(name: str, p: float = 0.7) -> np.ndarray:
    out = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1))
    out[LABELS.index(name)] = p
    return out


def stream(
    runs: Sequence[tuple[State, int, int, str]], *, seed: int = 0, fade_hops: int = 0
) -> Stream:
    """`runs` of (class, hops, track, genre); features are the track's sound plus noise,
    moving linearly from one track's to the next over `fade_hops` (the model's window
    filling with the new music)."""
    rng = np.random.default_rng(seed)
    classes: list[State] = []
    means, probabilities = [], []
    for state, hops, track, name in runs:
        classes += [state] * hops
        means += [sound(track)] * hops
        probabilities += [genre(name)] * hops
    mean = np.array(means)
    if fade_hops:
        changes = [k for k in range(1, len(mean)) if not np.array_equal(mean[k], mean[k - 1])]
        smooth = mean.copy()
        for k in changes:
            for j in range(fade_hops):
                if k + j < len(mean):
                    f = (j + 1) / fade_hops
                    smooth[k + j] = (1 - f) * mean[k - 1] + f * mean[k]
        mean = smooth
    features = mean + NOISE * rng.standard_normal(mean.shape)
    return Stream(classes, features, np.array(probabilities))


@dataclass
class Result:
    """What a segmenter gave: the segments each push closed, and those of `finish`."""

    closed: list[list[Segment]]
    finished: list[Segment]
    segmenter: TrackSegmenter

    @property
    def segments(self) -> list[Segment]:
        return [s for batch in self.closed for s in batch] + self.finished


def run(
    evidence: Stream,
    *,
    config: SegmentConfig = DEFAULT_SEGMENTS,
    window_seconds: float = 0.0,
    end: float | None = None,
    segmenter: TrackSegmenter | None = None,
) -> Result:
    """`evidence` pushed hop by hop, then finished at `end` (by default a hop after the
    last)."""
    if segmenter is None:
        segmenter = TrackSegmenter(
            LABELS, hop_seconds=HOP, window_seconds=window_seconds, config=config
        )
    times = evidence.times
    closed = [
        segmenter.push(time=float(t), hop_class=c, probabilities=p, features=f)
        for t, c, p, f in zip(
            times, evidence.classes, evidence.probabilities, evidence.features, strict=True
        )
    ]
    stop = float(times[-1]) + HOP if end is None else end
    return Result(closed, segmenter.finish(time=stop), segmenter)


def summary(segments: Sequence[Segment]) -> list[tuple[str, str | None]]:
    return [(s.state, s.genre) for s in segments]


def assert_tiles(segments: Sequence[Segment], *, start: float, end: float) -> None:
    """Indices in order, each segment beginning where the last ended, from `start` to `end`."""
    assert [s.index for s in segments] == list(range(len(segments)))
    assert segments[0].start == start
    assert segments[-1].end == end
    for previous, segment in itertools.pairwise(segments):
        assert segment.start == previous.end
    for segment in segments[:-1]:
        assert segment.start < segment.end


@pytest.mark.parametrize("seed", range(3))
def test_one_steady_noisy_track_is_one_segment(seed: int) -> None:
    """Four minutes of one track, its features and its genre's evidence noisy."""
    n = 480
    evidence = stream([("music", n, 0, "jazz")], seed=seed)
    rng = np.random.default_rng(seed)
    evidence.probabilities = rng.dirichlet(np.ones(len(LABELS)), size=n) * 0.6
    evidence.probabilities[:, LABELS.index("jazz")] += 0.4
    result = run(evidence)
    [segment] = result.segments
    assert (segment.state, segment.genre) == ("music", "jazz")
    assert (segment.start, segment.end) == (FIRST, FIRST + HOP * n)
    mean = evidence.probabilities.mean(axis=0)
    assert segment.confidence == pytest.approx(mean[LABELS.index("jazz")])


def test_two_different_tracks_are_two_segments_dated_where_the_music_changed() -> None:
    """The features move to the new track's over the model's 3 s window; the novelty peaks
    when half the window holds the new music, and the change is dated half the window
    back, where it happened."""
    window = 3.0
    change = 120  # hops of the first track
    evidence = stream(
        [("music", change, 0, "jazz"), ("music", 120, 1, "rock")],
        fade_hops=round(window / HOP),
    )
    result = run(evidence, window_seconds=window)
    first, second = result.segments
    assert summary(result.segments) == [("music", "jazz"), ("music", "rock")]
    truth = FIRST + HOP * (change - 1)  # the last hop whose window held none of the new track
    assert abs(first.end - truth) <= 2 * HOP
    assert first.end == second.start
    # the same evidence without the window: the same decision, dated half a window later
    undated = run(evidence, window_seconds=0.0).segments
    assert undated[0].end == pytest.approx(first.end + window / 2)


def test_a_genre_wavering_between_neighbours_is_one_segment_with_a_mixture() -> None:
    """Rock and metal take turns every few seconds over one unchanging sound."""
    n = 480
    evidence = stream([("music", n, 0, "rock")])
    turns = (np.arange(n) // 12) % 5  # rock three turns in five, metal two
    evidence.probabilities = np.where((turns < 3)[:, None], genre("rock", 0.6), genre("metal", 0.6))
    [segment] = run(evidence).segments
    assert (segment.state, segment.genre) == ("music", "rock")
    assert list(segment.mixture) == ["rock", "metal"]  # strongest first; the others < 0.2
    rock, metal = evidence.probabilities.mean(axis=0)[[LABELS.index("rock"), 2]]
    assert segment.mixture == {"rock": round(rock, 4), "metal": round(metal, 4)}
    assert segment.confidence == pytest.approx(rock)


def test_a_short_not_music_run_inside_a_track_does_not_split_it() -> None:
    """A DJ's word over a track: 2.5 s of not-music, under the 3 s minimum."""
    evidence = stream(
        [("music", 100, 0, "jazz"), ("not-music", 5, 0, "rock"), ("music", 100, 0, "jazz")]
    )
    [segment] = run(evidence).segments
    assert (segment.state, segment.genre) == ("music", "jazz")
    # the not-music hops' decision does not count for the genre
    assert segment.mixture == {"jazz": 0.7}


def test_a_long_not_music_run_is_its_own_segment_without_a_genre() -> None:
    """Ten seconds of talk between two tracks: its own segment, no genre, no mixture."""
    evidence = stream(
        [("music", 100, 0, "jazz"), ("not-music", 20, 2, "rock"), ("music", 100, 1, "metal")]
    )
    segments = run(evidence).segments
    assert summary(segments) == [("music", "jazz"), ("not-music", None), ("music", "metal")]
    talk = segments[1]
    times = evidence.times
    assert (talk.start, talk.end) == (times[100], times[120])
    assert (talk.confidence, talk.mixture) == (1.0, {})


def test_the_vote_keeps_a_detector_error_every_few_hops_from_cutting_talk() -> None:
    """Talk where one hop in four is called music: one not-music segment, its confidence
    the fraction of its hops the detector flagged."""
    runs: list[tuple[State, int, int, str]] = [("music", 100, 0, "jazz")]
    runs += [("not-music", 3, 2, "rock"), ("music", 1, 2, "rock")] * 10
    runs += [("music", 100, 1, "metal")]
    evidence = stream(runs)
    segments = run(evidence).segments
    assert summary(segments) == [("music", "jazz"), ("not-music", None), ("music", "metal")]
    talk = segments[1]
    inside = (evidence.times >= talk.start) & (evidence.times < talk.end)
    flagged = np.array(evidence.classes)[inside] == "not-music"
    assert inside.sum() >= 36  # the vote moved its ends by a hop at most
    assert talk.confidence == pytest.approx(flagged.mean()) == pytest.approx(0.75, abs=0.02)


@pytest.mark.parametrize(("quiet_hops", "split"), [(1, False), (2, True)])
def test_only_a_silence_of_the_minimum_length_splits_a_track(quiet_hops: int, split: bool) -> None:
    """The minimum silence is 1 s, two hops; silence is a level and is never voted away."""
    evidence = stream(
        [("music", 100, 0, "jazz"), ("silence", quiet_hops, 0, "rock"), ("music", 100, 0, "jazz")]
    )
    segments = run(evidence).segments
    if split:
        times = evidence.times
        assert summary(segments) == [("music", "jazz"), ("silence", None), ("music", "jazz")]
        assert (segments[1].start, segments[1].end) == (times[100], times[102])
    else:
        assert summary(segments) == [("music", "jazz")]


def test_a_change_within_the_minimum_track_length_is_not_taken() -> None:
    """Two tracks, the first 20 s long: under the 30 s minimum, the change is not taken;
    with a minimum of 15 s it is, and nothing but the last segment is shorter than that."""
    evidence = stream([("music", 40, 0, "jazz"), ("music", 160, 1, "rock")])
    assert summary(run(evidence).segments) == [("music", "rock")]
    config = SegmentConfig(min_track_seconds=15)
    first, second = run(evidence, config=config).segments
    assert first.end == evidence.times[40]
    assert second.genre == "rock"


def test_a_track_change_just_before_a_silence_leaves_no_stub_shorter_than_the_minimum() -> None:
    """A track, then 2.5 s of another sound (an outro) and a pause: the 2.5 s are under
    `SegmentConfig.min_music_seconds` and must not be a segment of their own. Found by
    the property below; fails today (the change is taken without a minimum after it)."""
    evidence = stream(
        [
            ("music", 80, 0, "jazz"),
            ("music", 5, 1, "rock"),
            ("silence", 10, 1, "rock"),
            ("music", 80, 1, "rock"),
        ]
    )
    segments = run(evidence).segments
    config = SegmentConfig()
    shortest = {"music": config.min_music_seconds, "silence": config.min_silence_seconds}
    assert [s.end - s.start >= shortest[s.state] for s in segments[:-1]] == [True] * (
        len(segments) - 1
    ), segments


def test_segments_are_closed_exactly_the_lag_after_the_hop_that_decided_them() -> None:
    """A track change, a silence and talk: each segment comes out at the push of hop
    ``c + lag``, ``c`` the hop where it ended; a stream shorter than the lag gives all its
    segments at `finish`."""
    evidence = stream(
        [
            ("music", 100, 0, "jazz"),
            ("music", 100, 1, "rock"),
            ("silence", 6, 1, "rock"),
            ("music", 100, 2, "metal"),
            ("not-music", 20, 2, "metal"),
            ("music", 80, 3, "blues"),
        ]
    )
    result = run(evidence)
    assert result.segmenter.lag_seconds == LAG_HOPS * HOP == SegmentConfig().lag_seconds
    times = list(evidence.times)
    pushed = [(k, s) for k, batch in enumerate(result.closed) for s in batch]
    assert [s.state for _, s in pushed] == ["music", "music", "silence", "music", "not-music"]
    for k, segment in pushed:
        assert k == times.index(segment.end) + LAG_HOPS
    assert summary(result.finished) == [("music", "blues")]

    short = stream(
        [("music", 20, 0, "jazz"), ("silence", 10, 0, "jazz"), ("music", LAG_HOPS - 30, 1, "rock")]
    )
    result = run(short)
    assert len(short.classes) == LAG_HOPS
    assert all(batch == [] for batch in result.closed)
    assert summary(result.finished) == [("music", "jazz"), ("silence", None), ("music", "rock")]


def test_memory_stays_bounded_over_a_long_stream() -> None:
    """An hour of hops, a change every two minutes: what is kept never passes about twice
    the lag."""
    segmenter = TrackSegmenter(LABELS, hop_seconds=HOP)
    rng = np.random.default_rng(1)
    kept = []
    for k in range(7200):
        track = k // 240
        segmenter.push(
            time=FIRST + HOP * k,
            hop_class="silence" if k % 240 < 4 else "music",
            probabilities=genre(LABELS[track % 4]),
            features=sound(track) + NOISE * rng.standard_normal(DIM),
        )
        kept.append(max(len(segmenter._times), len(segmenter._smoothed), len(segmenter._novelty)))
    assert max(kept) <= 2 * LAG_HOPS + 2
    assert len(segmenter.segments) > 50  # the stream was segmented all along


def test_finish_ends_the_stream_until_reset() -> None:
    evidence = stream([("music", 100, 0, "jazz"), ("silence", 10, 0, "jazz")])
    result = run(evidence)
    segmenter = result.segmenter
    with pytest.raises(RuntimeError, match="push after finish"):
        segmenter.push(
            time=100.0, hop_class="music", probabilities=genre("jazz"), features=sound(0)
        )
    with pytest.raises(RuntimeError, match="finish called twice"):
        segmenter.finish(time=100.0)
    segmenter.reset()
    assert segmenter.segments == [] and segmenter.open_start is None
    again = run(evidence, segmenter=segmenter)
    assert again.segments == result.segments
    assert TrackSegmenter(LABELS, hop_seconds=HOP).finish(time=1.0) == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"novelty_seconds": 0}, "novelty_seconds must be positive"),
        ({"peak_seconds": float("inf")}, "peak_seconds must be positive"),
        ({"change_threshold": -1}, "change_threshold must be positive"),
        ({"min_silence_seconds": -1}, "min_silence_seconds must be finite"),
        ({"min_not_music_seconds": float("nan")}, "min_not_music_seconds must be finite"),
        ({"min_music_seconds": float("inf")}, "min_music_seconds must be finite"),
        ({"vote_seconds": -0.5}, "vote_seconds must be finite"),
        ({"min_track_seconds": -1}, "min_track_seconds must be finite"),
        ({"mixture_share": 0}, "mixture_share must be in"),
        ({"mixture_share": 1.5}, "mixture_share must be in"),
        # the class rules would need to see further ahead than the lag
        ({"min_not_music_seconds": DEFAULT_SEGMENTS.lag_seconds}, "must not exceed the lag"),
        ({"novelty_seconds": 1, "peak_seconds": 1}, "must not exceed the lag"),
    ],
)
def test_invalid_config_raises(values: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=f"invalid SegmentConfig: .*{message}"):
        SegmentConfig(**values)


def test_the_longest_minimum_run_may_fill_the_lag() -> None:
    lag = DEFAULT_SEGMENTS.lag_seconds
    config = SegmentConfig(min_not_music_seconds=lag - DEFAULT_SEGMENTS.vote_seconds)
    assert config.lookahead_seconds == config.lag_seconds == lag


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    runs=st.lists(
        st.tuples(
            st.sampled_from(["music", "music", "silence", "not-music"]),
            st.integers(1, 80),
            st.integers(0, 3),
        ),
        min_size=1,
        max_size=12,
    ),
    window_seconds=st.sampled_from([0.0, 3.0]),
    tail=st.floats(0.0, 2.0),
)
def test_segments_tile_the_stream_and_respect_their_minimums(
    seed: int,
    runs: list[tuple[State, int, int]],
    window_seconds: float,
    tail: float,
) -> None:
    """Random runs of music (of four tracks), silence and talk: the segments tile the
    stream from its first hop to `finish` without overlap, each state as it should be,
    and none but the last shorter than its minimum."""
    config = SegmentConfig(novelty_seconds=4, peak_seconds=4, min_track_seconds=10)
    evidence = stream([(c, n, t, LABELS[t]) for c, n, t in runs], seed=seed)
    end = float(evidence.times[-1]) + tail
    result = run(evidence, config=config, window_seconds=window_seconds, end=end)
    segments = result.segments
    assert result.segmenter.segments == segments
    assert_tiles(segments, start=FIRST, end=end)
    minimum = {
        "music": config.min_music_seconds,
        "silence": config.min_silence_seconds,
        "not-music": config.min_not_music_seconds,
    }
    for segment, following in itertools.pairwise(segments):
        shortest = minimum[segment.state]
        if (segment.state, following.state) == ("music", "music"):  # a track change
            shortest = config.min_track_seconds - window_seconds / 2
        assert segment.end - segment.start >= shortest - 1e-9, (segment, following)
    for previous, segment in itertools.pairwise(segments):
        assert previous.state != segment.state or segment.state == "music"
    for segment in segments:
        assert (segment.genre is None) == (segment.state != "music")
        assert bool(segment.mixture) == (segment.state == "music")
        assert 0 <= segment.confidence <= 1
