"""Smoothing and segmentation: stable within a track, prompt on a change, silence apart,
and the live tracker equal to offline tagging."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.analysis.hops import Hop
from streamer.tracking import (
    GenreTracker,
    Segment,
    SmoothingConfig,
    TrackerUpdate,
)

LABELS = (
    "blues", "classical", "country", "disco", "hiphop",
    "jazz", "metal", "pop", "reggae", "rock",
)  # fmt: skip
HOP = 0.5
WINDOW_HOPS = 6  # the model's 3 s window
LOUD, QUIET = -20.0, -80.0
SMOOTHING_LATENCY_HOPS = 2  # documented in streamer/tracking.py
NO_EMBEDDING = np.zeros(0, dtype=np.float32)  # the tracker reads none


def hop_times(n: int, *, first: float = 3.0) -> np.ndarray:
    """Stream times of `n` hops: the end of each 3 s window, 0.5 s apart."""
    return first + HOP * np.arange(n)


def confident(genre: str, n: int, *, p: float = 0.9) -> np.ndarray:
    """`n` hops of model output putting `p` on `genre`, the rest spread evenly."""
    out = np.full((n, len(LABELS)), (1 - p) / (len(LABELS) - 1))
    out[:, LABELS.index(genre)] = p
    return out


def track_offline(
    *,
    times: Sequence[float] | np.ndarray,
    probabilities: np.ndarray,
    levels_dbfs: Sequence[float] | np.ndarray,
    labels: Sequence[str],
    end: float | None = None,
    **options: Any,
) -> tuple[list[TrackerUpdate], list[Segment]]:
    """A whole recording through a `GenreTracker` made with `options`, hop by hop as live;
    the last segment ends at `end`, by default the last hop's time."""
    tracker = GenreTracker(labels, **options)
    updates = tracker.push(
        Hop(i, float(t), p, NO_EMBEDDING, float(level))
        for i, (t, p, level) in enumerate(zip(times, probabilities, levels_dbfs, strict=True))
    )
    tracker.finish(time=end)
    return updates, tracker.segments


def push_one(
    tracker: GenreTracker, *, time: float, probabilities: np.ndarray, level_dbfs: float
) -> TrackerUpdate:
    """One hop through `tracker`, as the analyzer gives it; what it shows."""
    [shown] = tracker.push([Hop(0, time, probabilities, NO_EMBEDDING, level_dbfs)])
    return shown


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def tops(updates: list[TrackerUpdate]) -> list[str | None]:
    return [u.top for u in updates]


def summary(segments: list[Segment]) -> list[tuple[str, str | None]]:
    return [(s.state, s.genre) for s in segments]


def test_clean_change_is_followed_after_the_stated_latency() -> None:
    change = 30
    probabilities = np.concatenate([confident("jazz", change), confident("metal", 30)])
    times = hop_times(60)
    updates, segments = track_offline(
        times=times, probabilities=probabilities, levels_dbfs=np.full(60, LOUD), labels=LABELS
    )
    switch = change + SMOOTHING_LATENCY_HOPS
    # the first hop only leads; the second confirms the genre
    assert tops(updates) == [None] + ["jazz"] * (switch - 1) + ["metal"] * (60 - switch)
    assert summary(segments) == [("music", "jazz"), ("music", "metal")]
    assert segments[0].start == times[0]
    # decided at `switch`, dated at the first hop of the confirming lead (no window given)
    assert segments[0].end == segments[1].start == times[switch - 1]
    assert updates[switch].closed == segments[0]
    assert segments[1].end == times[-1]
    jazz_hops = [u.confidence for u in updates[:switch]]
    assert segments[0].confidence == pytest.approx(np.mean(jazz_hops))
    assert segments[1].confidence > 0.9


def test_change_through_the_model_window_shows_within_window_plus_two_hops() -> None:
    """The model's output moves over gradually as the new genre fills its 3 s window."""
    change, n = 40, 80
    fraction = np.clip((np.arange(n) - change + 1) / WINDOW_HOPS, 0, 1)
    logits = np.zeros((n, len(LABELS)))
    logits[:, LABELS.index("reggae")] = 5 * (1 - fraction)
    logits[:, LABELS.index("disco")] = 5 * fraction
    updates, segments = track_offline(
        times=hop_times(n), probabilities=softmax(logits), levels_dbfs=np.full(n, LOUD),
        labels=LABELS,
    )  # fmt: skip
    first_disco = tops(updates).index("disco")
    assert change < first_disco <= change + WINDOW_HOPS + 2
    assert summary(segments) == [("music", "reggae"), ("music", "disco")]


def test_a_change_is_dated_back_to_where_the_audio_changed() -> None:
    """Hop `change` is the first whose window holds the new genre (one hop of it), so the
    audio changed at the previous hop's time; the segment starts within two hops of that
    (the filter needs the new genre past the margin, a little after half the window)."""
    change, n = 40, 80
    fraction = np.clip((np.arange(n) - change + 1) / WINDOW_HOPS, 0, 1)
    logits = np.zeros((n, len(LABELS)))
    logits[:, LABELS.index("reggae")] = 5 * (1 - fraction)
    logits[:, LABELS.index("disco")] = 5 * fraction
    times = hop_times(n)
    updates, segments = track_offline(
        times=times, probabilities=softmax(logits), levels_dbfs=np.full(n, LOUD),
        labels=LABELS, window_seconds=WINDOW_HOPS * HOP,
    )  # fmt: skip
    assert summary(segments) == [("music", "reggae"), ("music", "disco")]
    decided = next(u.time for u in updates if u.closed is not None)
    assert abs(segments[1].start - times[change - 1]) <= 2 * HOP
    assert decided - segments[1].start >= 2.0  # the decision itself came seconds later
    assert segments[0].end == segments[1].start


@pytest.mark.parametrize("seed", range(5))
def test_flickering_model_within_a_track_gives_one_stable_segment(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, true = 400, LABELS.index("country")
    logits = rng.standard_normal((n, len(LABELS)))
    logits[:, true] += 2.0
    probabilities = softmax(logits)
    raw_top = probabilities.argmax(axis=1)
    assert np.argmax(probabilities.mean(axis=0)) == true
    assert np.mean(raw_top != true) > 0.25  # the raw argmax flickers a lot
    assert len(set(raw_top.tolist())) == len(LABELS)
    updates, segments = track_offline(
        times=hop_times(n), probabilities=probabilities, levels_dbfs=np.full(n, LOUD),
        labels=LABELS,
    )  # fmt: skip
    assert summary(segments) == [("music", "country")]
    decided = [top for top in tops(updates) if top is not None]
    assert set(decided) == {"country"}
    assert len(decided) >= n - 3


def test_silence_between_tracks_is_its_own_segment_without_a_genre() -> None:
    # the model keeps guessing "pop" on the silence: that guess must not surface
    probabilities = np.concatenate(
        [confident("blues", 20), confident("pop", 6, p=0.99), confident("rock", 20)]
    )
    levels = np.array([LOUD] * 20 + [QUIET] * 6 + [LOUD] * 20)
    times = hop_times(46)
    updates, segments = track_offline(
        times=times, probabilities=probabilities, levels_dbfs=levels, labels=LABELS
    )
    assert summary(segments) == [("music", "blues"), ("silence", None), ("music", "rock")]
    assert "pop" not in tops(updates)
    assert [s.index for s in segments] == [0, 1, 2]
    assert segments[1].start == times[20]  # the first quiet hop
    assert segments[1].end == segments[2].start == times[26]  # the first loud hop
    assert segments[1].confidence == 1.0
    # one minimum silence (1 s = two hops after the first) decides it
    assert [u.state for u in updates[20:26]] == ["music"] * 2 + ["silence"] * 4
    assert all(u.top is None for u in updates[22:27])
    assert updates[22].closed == segments[0]
    assert segments[0].confidence == pytest.approx(np.mean([u.confidence for u in updates[:20]]))
    # the filter was reset: the next track is not read through the last one
    np.testing.assert_allclose(updates[25].probabilities, 1 / len(LABELS))
    assert tops(updates)[27:] == ["rock"] * 19


def test_silence_confidence_is_the_fraction_of_its_hops_below_the_threshold() -> None:
    levels = [LOUD] * 4 + [QUIET] * 3 + [-47.0] * 3 + [LOUD] * 4  # -47: hysteresis band
    times = hop_times(len(levels))
    _, segments = track_offline(
        times=times, probabilities=confident("jazz", len(levels)), levels_dbfs=levels,
        labels=LABELS,
    )  # fmt: skip
    assert summary(segments) == [("music", "jazz"), ("silence", None), ("music", "jazz")]
    assert (segments[1].start, segments[1].end) == (times[4], times[10])
    assert segments[1].confidence == pytest.approx(3 / 6)


def test_an_ambiguous_start_does_not_claim_a_genre() -> None:
    """No genre is shown until one beats all the others together, so a hesitant first
    guess does not open a segment of its own."""
    first = np.full(len(LABELS), 0.2 / 8)
    first[[LABELS.index("jazz"), LABELS.index("blues")]] = 0.45, 0.35
    probabilities = np.concatenate([[first, first], confident("blues", 10)])
    updates, segments = track_offline(
        times=hop_times(12), probabilities=probabilities, levels_dbfs=[LOUD] * 12,
        labels=LABELS,
    )  # fmt: skip
    assert tops(updates)[:2] == [None, None]
    assert updates[0].confidence == pytest.approx(0.45)  # the best genre's, while undecided
    assert summary(segments) == [("music", "blues")]
    assert segments[0].start == hop_times(1)[0]


def test_a_zero_from_the_model_does_not_rule_a_genre_out() -> None:
    one_hot = np.eye(len(LABELS))[LABELS.index("metal")]
    updates, segments = track_offline(
        times=hop_times(12), probabilities=np.concatenate([confident("jazz", 10), [one_hot] * 2]),
        levels_dbfs=[LOUD] * 12, labels=LABELS,
    )  # fmt: skip
    assert np.all(updates[-1].probabilities > 0)
    assert summary(segments) == [("music", "jazz"), ("music", "metal")]


@pytest.mark.parametrize(("quiet_hops", "split"), [(1, False), (2, False), (3, True)])
def test_only_a_pause_of_the_minimum_length_splits_a_track(quiet_hops: int, split: bool) -> None:
    n = 40 + quiet_hops
    probabilities = np.concatenate(
        [confident("jazz", 20), confident("metal", quiet_hops, p=0.99), confident("jazz", 20)]
    )
    levels = np.array([LOUD] * 20 + [-60.0] * quiet_hops + [LOUD] * 20)
    updates, segments = track_offline(
        times=hop_times(n), probabilities=probabilities, levels_dbfs=levels, labels=LABELS
    )
    assert "metal" not in tops(updates)
    if split:
        assert summary(segments) == [("music", "jazz"), ("silence", None), ("music", "jazz")]
    else:
        assert summary(segments) == [("music", "jazz")]
        assert tops(updates)[1:] == ["jazz"] * (n - 1)
        # the dip's guesses are ignored: the filter is held, not updated
        for update in updates[20 : 20 + quiet_hops]:
            np.testing.assert_array_equal(update.probabilities, updates[19].probabilities)
        assert segments[0].confidence == pytest.approx(np.mean([u.confidence for u in updates]))


def test_leaving_silence_needs_the_level_above_the_hysteresis_band() -> None:
    config = SmoothingConfig(silence_dbfs=-50.0, silence_hysteresis_db=6.0)
    tracker = GenreTracker(LABELS, config=config)
    probabilities = confident("jazz", 1)[0]
    states = [
        push_one(tracker, time=t, probabilities=probabilities, level_dbfs=level).state
        for t, level in [(1.0, -60.0), (1.5, -47.0), (2.0, -45.0), (2.5, -43.0)]
    ]
    assert states == ["silence", "silence", "silence", "music"]
    silence = tracker.segments[0]
    assert (silence.start, silence.end, silence.genre) == (1.0, 2.5, None)
    assert silence.confidence == pytest.approx(1 / 3)  # one hop of three below -50 dBFS


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 80),
    n_labels=st.integers(2, 6),
    stay=st.floats(0.5, 0.99),
    confirm_hops=st.integers(1, 3),
)
def test_segments_tile_the_stream_and_match_the_updates(
    seed: int, n: int, n_labels: int, stay: float, confirm_hops: int
) -> None:
    """Invariants on random streams. That live and offline give the same hops and segments
    is checked on the commands themselves (tests/test_tagging.py)."""
    rng = np.random.default_rng(seed)
    labels = [f"g{i}" for i in range(n_labels)]
    config = SmoothingConfig(stay_probability=stay, confirm_hops=confirm_hops)
    # runs of one genre and level, so that changes and silences actually happen
    runs = rng.integers(0, n_labels, size=n // 5 + 1).repeat(5)[:n]
    probabilities = softmax(3 * np.eye(n_labels)[runs] + rng.standard_normal((n, n_labels)))
    levels = rng.choice([-90.0, -60.0, -47.0, -30.0, -np.inf], size=n // 4 + 1).repeat(4)[:n]
    times = np.cumsum(rng.uniform(0.1, 1.0, size=n))
    end = float(times[-1]) + 0.5 if n else None

    updates, segments = track_offline(
        times=times, probabilities=probabilities, levels_dbfs=levels, labels=labels,
        config=config, end=end,
    )  # fmt: skip

    assert len(updates) == n
    assert [u.time for u in updates] == list(times)
    if not n:
        assert segments == []
        return
    assert [u.closed for u in updates if u.closed is not None] == segments[:-1]
    assert [s.index for s in segments] == list(range(len(segments)))
    assert segments[0].start == times[0]
    assert segments[-1].end == end
    for previous, segment in itertools.pairwise(segments):
        assert segment.start == previous.end
        assert segment.start > previous.start
        assert (segment.state, segment.genre) != (previous.state, previous.genre)
    for segment in segments:
        assert (segment.genre is None) == (segment.state == "silence")
        assert 0 <= segment.confidence <= 1
    for update in updates:
        assert update.state == "music" or update.top is None
        assert update.probabilities.sum() == pytest.approx(1)


def test_finish_closes_the_open_segment_once() -> None:
    tracker = GenreTracker(LABELS)
    for t, p in zip(hop_times(4), confident("hiphop", 4), strict=True):
        push_one(tracker, time=float(t), probabilities=p, level_dbfs=LOUD)
    with pytest.raises(ValueError, match="before the last hop"):
        tracker.finish(time=4.0)
    [segment] = tracker.finish(time=5.0)
    assert segment == Segment(
        index=0, start=3.0, end=5.0, genre="hiphop", state="music",
        confidence=segment.confidence,
    )  # fmt: skip
    assert tracker.segments == [segment]
    with pytest.raises(RuntimeError):
        tracker.finish(time=6.0)
    with pytest.raises(RuntimeError):
        push_one(tracker, time=6.0, probabilities=confident("hiphop", 1)[0], level_dbfs=LOUD)
    assert GenreTracker(LABELS).finish(time=1.0) == []


def test_finish_keeps_a_short_trailing_pause_in_the_track() -> None:
    tracker = GenreTracker(LABELS)
    updates = [
        push_one(tracker, time=float(t), probabilities=confident("rock", 1)[0], level_dbfs=level)
        for t, level in zip(hop_times(5), [LOUD, LOUD, LOUD, QUIET, QUIET], strict=True)
    ]
    [segment] = tracker.finish(time=6.0)
    assert segment is not None
    assert (segment.state, segment.genre, segment.start, segment.end) == ("music", "rock", 3, 6)
    assert segment.confidence == pytest.approx(np.mean([u.confidence for u in updates]))


def test_music_too_short_to_decide_still_gets_the_filters_best_genre() -> None:
    tracker = GenreTracker(LABELS)
    update = push_one(tracker, time=1.0, probabilities=confident("pop", 1)[0], level_dbfs=LOUD)
    assert (update.state, update.top) == ("music", None)
    [segment] = tracker.finish(time=1.5)
    assert segment is not None
    assert segment.genre == "pop"


@pytest.mark.parametrize(
    ("probabilities", "level", "message"),
    [
        (np.full(9, 0.1), LOUD, "shape"),
        (np.full((1, 10), 0.1), LOUD, "shape"),
        (np.full(10, 0.1), float("nan"), "NaN"),
    ],
)
def test_invalid_hops_raise(probabilities: np.ndarray, level: float, message: str) -> None:
    tracker = GenreTracker(LABELS)
    with pytest.raises(ValueError, match=message):
        push_one(tracker, time=1.0, probabilities=probabilities, level_dbfs=level)
    # a rejected hop leaves the tracker as it was
    push_one(tracker, time=1.0, probabilities=np.full(10, 0.1), level_dbfs=LOUD)


@pytest.mark.parametrize(
    "garbage",
    [
        np.r_[np.nan, np.full(9, 0.1)],
        np.r_[np.inf, np.full(9, 0.1)],
        np.full(10, np.nan),
        np.r_[-0.1, np.full(9, 0.1)],
        np.zeros(10),
    ],
)
def test_what_the_model_emits_is_never_refused_a_non_distribution_is_no_evidence(
    garbage: np.ndarray,
) -> None:
    """NaN, infinite, negative or all-zero probabilities count as a uniform observation."""
    uniform = np.full((8, len(LABELS)), 0.1)
    times = hop_times(20)
    clean, fed = GenreTracker(LABELS), GenreTracker(LABELS)
    for time, row in zip(times[:12], confident("jazz", 12), strict=True):
        push_one(clean, time=time, probabilities=row, level_dbfs=LOUD)
        push_one(fed, time=time, probabilities=row, level_dbfs=LOUD)
    for time, row in zip(times[12:], uniform, strict=True):
        expected = push_one(clean, time=time, probabilities=row, level_dbfs=LOUD)
        got = push_one(fed, time=time, probabilities=garbage, level_dbfs=LOUD)
        np.testing.assert_array_equal(got.probabilities, expected.probabilities)
        assert (got.top, got.state, got.closed) == ("jazz", "music", None)
    assert fed.finish(time=times[-1] + HOP) == clean.finish(time=times[-1] + HOP)


def test_times_must_increase_and_labels_be_two_or_more() -> None:
    tracker = GenreTracker(LABELS)
    push_one(tracker, time=1.0, probabilities=np.full(10, 0.1), level_dbfs=LOUD)
    for time in (1.0, 0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="hop time"):
            push_one(tracker, time=time, probabilities=np.full(10, 0.1), level_dbfs=LOUD)
    with pytest.raises(ValueError, match="two or more"):
        GenreTracker(["pop"])


@pytest.mark.parametrize(
    "values",
    [
        {"stay_probability": 1.0},
        {"switch_margin": -0.1},
        {"confirm_hops": 0},
        {"probability_floor": 0.0},
        {"silence_dbfs": float("nan")},
        {"silence_hysteresis_db": -1.0},
        {"min_silence_seconds": float("inf")},
    ],
)
def test_invalid_config_raises(values: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(values))):
        SmoothingConfig(**values)


def test_config_and_segments_are_json() -> None:
    config = SmoothingConfig(stay_probability=0.95, min_silence_seconds=2.0)
    assert SmoothingConfig(**json.loads(json.dumps(config.to_dict()))) == config
    assert config.to_dict() == asdict(config)
    _, segments = track_offline(
        times=hop_times(4), probabilities=confident("jazz", 4), levels_dbfs=[LOUD] * 4,
        labels=LABELS,
    )  # fmt: skip
    data = json.loads(json.dumps(segments[0].to_dict()))
    assert data == {
        "index": 0, "start": 3.0, "end": 4.5, "genre": "jazz", "state": "music",
        "confidence": segments[0].confidence,
    }  # fmt: skip
