"""The chain from samples to segments that listen and tag share: one file gives the same
hops, updates and segments however it is cut into blocks, and again after `reset`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import TRAIN_RATE, render_genre
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.analysis.model import GenreModel
from streamer.chain import GenreChain, TrackedHop
from streamer.segments import Segment, SegmentConfig

SECONDS = 15.0  # not on a hop boundary: the end of the file is heard but not analysed
# Float32 rounding: the mel product's BLAS kernels depend on how many frames a block
# completes, so the values may differ in their last bits (measured: 1e-7, levels 1e-6 dB).
ROUNDING = 1e-5
# A lag of 4.5 s, so that a 15 s file has segments closed while it is pushed, not only at
# its end (the defaults' 21.5 s would hold them all for `finish`).
SHORT_LAG = SegmentConfig(novelty_seconds=2, peak_seconds=2, vote_seconds=0.5, min_track_seconds=4)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """A file of music, a change of sound, a silence and music again, as decoded."""
    rng = np.random.default_rng(5)
    parts = [render_genre("tones", rng, 4.0), render_genre("noise", rng, 4.0)]
    parts += [np.zeros(3 * TRAIN_RATE), render_genre("clicks", rng, 4.0)]
    path = tmp_path_factory.mktemp("chain") / "set.wav"
    soundfile.write(path, np.concatenate(parts), TRAIN_RATE)
    return soundfile.read(path, dtype="float32")[0]


@dataclass
class Outputs:
    """All a chain gave for one file: every hop with its update, what `finish` returned,
    and all the segments."""

    tracked: list[TrackedHop]
    finished: list[Segment]
    segments: list[Segment]


def run(chain: GenreChain, y: np.ndarray, sizes: list[int]) -> Outputs:
    """`y` pushed through `chain` in blocks of `sizes` (cycled), then finished."""
    tracked: list[TrackedHop] = []
    position, i = 0, 0
    while position < y.size:
        size = sizes[i % len(sizes)]
        tracked += chain.push(y[position : position + size])
        position, i = position + size, i + 1
    finished = chain.finish()
    return Outputs(tracked, finished, list(chain.segments))


def bounds(segment: Segment) -> tuple[int, float, float, str | None, str]:
    return segment.index, segment.start, segment.end, segment.genre, segment.state


def assert_same(got: Outputs, expected: Outputs) -> None:
    """Hop for hop and segment for segment: times, states and genres exactly, values to
    float32 rounding."""
    hops = [(t.hop.index, t.hop.time) for t in got.tracked]
    assert hops == [(t.hop.index, t.hop.time) for t in expected.tracked]
    shown = ("time", "top", "state", "segment_start")
    for a, b in zip(got.tracked, expected.tracked, strict=True):
        np.testing.assert_allclose(a.hop.probabilities, b.hop.probabilities, atol=ROUNDING)
        np.testing.assert_allclose(a.hop.embedding, b.hop.embedding, atol=ROUNDING)
        assert a.hop.level_dbfs == pytest.approx(b.hop.level_dbfs, abs=ROUNDING)
        np.testing.assert_allclose(a.update.probabilities, b.update.probabilities, atol=ROUNDING)
        assert a.update.confidence == pytest.approx(b.update.confidence, abs=ROUNDING)
        assert [getattr(a.update, k) for k in shown] == [getattr(b.update, k) for k in shown]
        assert [bounds(s) for s in a.update.closed] == [bounds(s) for s in b.update.closed]
    for name in ("finished", "segments"):
        segments, expected_segments = getattr(got, name), getattr(expected, name)
        assert [bounds(s) for s in segments] == [bounds(s) for s in expected_segments]
        for a, b in zip(segments, expected_segments, strict=True):
            assert a.confidence == pytest.approx(b.confidence, abs=ROUNDING)


@pytest.fixture(scope="module")
def in_30_s_blocks(small_model: Path, audio: np.ndarray) -> Outputs:
    """A new chain, the file in blocks of 30 s as `streamer tag` reads it."""
    chain = GenreChain(GenreModel(small_model), segments=SHORT_LAG)
    return run(chain, audio, [round(30 * TRAIN_RATE)])


@pytest.fixture(scope="module")
def reused(small_model: Path) -> GenreChain:
    """One chain for all the other runs, `reset` before each."""
    return GenreChain(GenreModel(small_model), segments=SHORT_LAG)


def test_a_file_gives_hops_with_their_updates_and_segments_to_its_end(
    in_30_s_blocks: Outputs, audio: np.ndarray
) -> None:
    out = in_30_s_blocks
    assert audio.size == SECONDS * TRAIN_RATE
    assert len(out.tracked) == 28
    assert [t.update.time for t in out.tracked] == [t.hop.time for t in out.tracked]
    assert {s.state for s in out.segments} == {"music", "silence"}
    closed = [s for t in out.tracked for s in t.update.closed]
    assert closed and out.finished  # the lag holds the last few seconds' for `finish`
    assert closed + out.finished == out.segments
    assert out.finished[-1].end == SECONDS > out.tracked[-1].hop.time
    lag = round(SHORT_LAG.lag_seconds / 0.5)
    hops = [t.hop.time for t in out.tracked]
    for t in out.tracked:
        for segment in t.update.closed:  # closed `lag` after the hop where it ended
            decided = hops[t.hop.index - lag]  # a track change is dated half a window early
            assert segment.end <= decided <= segment.end + 1.5


def test_blocks_of_a_tenth_of_a_second_give_the_same(
    reused: GenreChain, audio: np.ndarray, in_30_s_blocks: Outputs
) -> None:
    """As `streamer listen --file` reads it."""
    reused.reset()
    assert_same(run(reused, audio, [round(0.1 * TRAIN_RATE)]), in_30_s_blocks)


@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(1, 40_000), min_size=1, max_size=8))
def test_blocks_of_any_sizes_give_the_same(
    reused: GenreChain, audio: np.ndarray, in_30_s_blocks: Outputs, sizes: list[int]
) -> None:
    reused.reset()
    assert_same(run(reused, audio, sizes), in_30_s_blocks)


def test_a_finished_chain_takes_no_more_until_reset(reused: GenreChain, audio: np.ndarray) -> None:
    reused.reset()
    run(reused, audio[:TRAIN_RATE], [TRAIN_RATE])
    with pytest.raises(RuntimeError, match="reset"):
        reused.push(audio[:TRAIN_RATE])
    reused.reset()
    assert reused.seconds == 0 and reused.segments == []


@pytest.fixture(scope="module")
def tagged_chain(small_model: Path) -> GenreChain:
    """The CNN with musicnn's shipped taggers and a decision over its labels and one more."""
    from streamer.analysis.fusion import GenreFusion
    from streamer.analysis.tagger import TagAnalyzer, TagModel, shipped_tagger_paths

    taggers = [TagModel(p) for p in shipped_tagger_paths()]
    model = GenreModel(small_model)
    fusion = GenreFusion(
        labels=(*model.labels, "electronic"),
        cnn_labels=model.labels,
        tag_labels=TagAnalyzer(taggers, input_rate=TRAIN_RATE).labels,
        mapping={"a": ["mtt/classical"], "b": ["msd/rock"], "electronic": ["msd/electronic"]},
        cnn_weight=0.5,
        sharpness=1.0,
        missing_cnn=0.01,
        missing_tags=0.05,
    )
    return GenreChain(model, taggers=taggers, fusion=fusion)


def test_with_the_taggers_any_blocks_give_the_same_decisions(
    tagged_chain: GenreChain, audio: np.ndarray
) -> None:
    whole = run(tagged_chain, audio, [round(30 * TRAIN_RATE)])
    assert tagged_chain.labels == ("a", "b", "c", "electronic")
    with_tags = [t for t in whole.tracked if t.tags is not None]
    first = whole.tracked[0]
    assert first.tags is None and np.allclose(
        first.probabilities[:3], first.hop.probabilities, atol=0.02
    )
    assert [t.tags.index for t in with_tags[:1]] == [0] and with_tags[0].tags.time <= with_tags[
        0
    ].hop.time - 0.1
    assert {t.tags.index for t in with_tags} == {0, 1, 2, 3}  # 15 s: four 2.99 s patches
    assert not np.allclose(
        with_tags[-1].probabilities[:3], with_tags[-1].hop.probabilities, atol=0.02
    )
    for sizes in ([round(0.1 * TRAIN_RATE)], [1, 999, 4096, 17]):
        tagged_chain.reset()
        cut = run(tagged_chain, audio, sizes)
        assert_same(cut, whole)
        for a, b in zip(cut.tracked, whole.tracked, strict=True):
            assert (a.tags is None) == (b.tags is None)
            assert a.tags is None or b.tags is None or a.tags.index == b.tags.index
            np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4)


def test_hops_carry_the_calibrated_decision_and_the_tracker_filters_its_evidence(
    tagged_chain: GenreChain, audio: np.ndarray
) -> None:
    """The curve re-states the top genre's probability for people; the tracker's filter
    reads the temperature's output, whose ratios between genres are likelihoods."""
    from dataclasses import replace

    from streamer.analysis.calibration import Calibration
    from streamer.tracking import Evidence, GenreTracker

    assert tagged_chain.fusion is not None
    calibration = Calibration(0.5, ((0.3, 0.2), (0.6, 0.5), (0.95, 0.9)))
    fusion = replace(tagged_chain.fusion, calibration=calibration)
    chain = GenreChain(tagged_chain.analyzer.model, taggers=tagged_chain.tagger.taggers,  # type: ignore[union-attr]
                       fusion=fusion)  # fmt: skip
    out = run(chain, audio, [round(30 * TRAIN_RATE)])
    replayed = GenreTracker(chain.labels, hop_seconds=chain.analyzer.hop_seconds,
                            window_seconds=chain.analyzer.window_seconds)  # fmt: skip
    for tracked in out.tracked:
        decision = fusion.fuse(tracked.hop.probabilities, None if tracked.tags is None
                               else tracked.tags.tags)  # fmt: skip
        np.testing.assert_allclose(tracked.probabilities, calibration.apply(decision))
        evidence = calibration.evidence(decision)
        (update,) = replayed.push([Evidence(
            time=tracked.hop.time, probabilities=evidence, level_dbfs=tracked.hop.level_dbfs,
            features=chain._features(tracked.hop, evidence, tracked.tags),
        )])  # fmt: skip
        np.testing.assert_allclose(update.probabilities, tracked.update.probabilities)
    assert not np.allclose(out.tracked[-1].probabilities, evidence)


def test_the_shown_genres_confidence_is_restated_for_the_smoothing_it_was_fitted_with(
    tagged_chain: GenreChain, audio: np.ndarray
) -> None:
    """What the display shows goes through the decision's shown curve; the genre, the state
    and the segments do not change, and a chain smoothing otherwise ignores the curve."""
    from dataclasses import replace

    from streamer.analysis.calibration import ShownCalibration
    from streamer.tracking import DEFAULT_SMOOTHING, SmoothingConfig

    assert tagged_chain.fusion is not None and tagged_chain.tagger is not None
    shown = ShownCalibration(((0.2, 0.1), (1.0, 0.6)), DEFAULT_SMOOTHING)
    plain = tagged_chain.fusion
    fitted = replace(plain, calibration=replace(plain.calibration, shown=shown))

    def chain(fusion: object, smoothing: SmoothingConfig = DEFAULT_SMOOTHING) -> GenreChain:
        return GenreChain(tagged_chain.analyzer.model, taggers=tagged_chain.tagger.taggers,  # type: ignore[union-attr]
                          fusion=fusion, smoothing=smoothing, segments=SHORT_LAG)  # type: ignore[arg-type]  # fmt: skip

    restating = chain(fitted)
    raw, restated = run(chain(plain), audio, [4096]), run(restating, audio, [4096])
    assert restated.segments == raw.segments
    assert "shown" in restating.description()["calibration"]
    shown_hops = 0
    for before, after in zip(raw.tracked, restated.tracked, strict=True):
        b, a = before.update, after.update
        assert (a.top, a.state, a.time) == (b.top, b.state, b.time)
        if b.top is None:
            np.testing.assert_array_equal(a.probabilities, b.probabilities)
            assert a.confidence == b.confidence
            continue
        shown_hops += 1
        genre = restating.labels.index(b.top)
        assert a.confidence == pytest.approx(float(shown.confidence(b.confidence)))
        np.testing.assert_allclose(a.probabilities, shown.restate(b.probabilities, genre=genre))
    assert shown_hops > 10
    steadier = SmoothingConfig(stay_probability=0.95)
    other = chain(fitted, steadier)
    assert other.shown is None and "shown" not in other.description()["calibration"]
    ignored, unfitted = run(other, audio, [4096]), run(chain(plain, steadier), audio, [4096])
    for a, b in zip(ignored.tracked, unfitted.tracked, strict=True):
        assert a.update.confidence == b.update.confidence


def test_what_the_tracker_read_replays_to_what_other_smoothing_would_show(
    tagged_chain: GenreChain, audio: np.ndarray
) -> None:
    """`show` alone, on each hop's recorded evidence, gives what a whole chain with other
    smoothing shows (confidence restated where the curve applies, segments alike):
    bench_segments ``--evidence`` tries options this way without the networks."""
    from dataclasses import replace

    from streamer.analysis.calibration import ShownCalibration
    from streamer.tracking import DEFAULT_SMOOTHING

    assert tagged_chain.fusion is not None and tagged_chain.tagger is not None
    plain = tagged_chain.fusion
    shown = ShownCalibration(((0.2, 0.1), (1.0, 0.6)), DEFAULT_SMOOTHING)
    fitted = replace(plain, calibration=replace(plain.calibration, shown=shown))
    tagged_chain.reset()
    recorded = run(tagged_chain, audio, [4096]).tracked
    heard = np.median([t.hop.level_dbfs for t in recorded if t.hop.level_dbfs > -90])
    other = replace(DEFAULT_SMOOTHING, silence_dbfs=heard + 1.0, silence_hysteresis_db=0.0,
                    confirm_hops=2)  # the noise is silent now  # fmt: skip
    eager = replace(SHORT_LAG, change_threshold=0.5, min_track_seconds=2.0)
    for smoothing, segments in ((DEFAULT_SMOOTHING, SHORT_LAG), (other, eager)):
        chain = GenreChain(tagged_chain.analyzer.model, taggers=tagged_chain.tagger.taggers,
                           fusion=fitted, smoothing=smoothing, segments=segments)  # fmt: skip
        direct = run(chain, audio, [4096])
        for tracked in (direct.tracked, recorded):  # its own evidence, the default chain's
            chain.reset()
            replayed = [replace(t, update=chain.show(t.evidence)) for t in tracked
                        if t.evidence is not None]  # fmt: skip
            finished = chain.tracker.finish(time=SECONDS)
            assert_same(Outputs(replayed, finished, list(chain.segments)), direct)
        assert {t.update.state for t in direct.tracked} == {"music", "silence"}
