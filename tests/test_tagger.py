"""musicnn's taggers in the stream: the second FeatureSpec streams as it batches, and the
tag hops do not depend on how the audio was cut into blocks."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from streamer.analysis.features import BatchExtractor, FeatureSpec, StreamingExtractor
from streamer.analysis.tagger import DESCRIPTORS, TagAnalyzer, TagModel, shipped_tagger_paths

RATE = 22050


@pytest.fixture(scope="module")
def taggers() -> tuple[TagModel, ...]:
    return tuple(TagModel(path) for path in shipped_tagger_paths())


def music_like(seconds: float, *, seed: int = 0) -> np.ndarray:
    """Chords of harmonics that change every half second, with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    y = np.zeros_like(t)
    for start in np.arange(0.0, seconds, 0.5):
        inside = (t >= start) & (t < start + 0.5)
        for f in rng.uniform(110, 880, size=3):
            y[inside] += sum(np.sin(2 * np.pi * f * k * t[inside]) / k for k in range(1, 5))
    y = 0.1 * y / np.abs(y).max() + 0.005 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def pushed(processor: TagAnalyzer, y: np.ndarray, sizes: list[int]) -> list:
    hops, start = [], 0
    for size in sizes:
        hops += processor.push(y[start : start + size])
        start += size
    return hops + processor.push(y[start:])


def test_the_taggers_spec_streams_as_it_batches(taggers: tuple[TagModel, ...]) -> None:
    spec = taggers[0].spec
    assert (spec.sample_rate, spec.n_mels, spec.compression) == (16000, 96, "log10_1p_10000")
    y = music_like(6.0)
    resampler = soxr.ResampleStream(RATE, spec.sample_rate, 1)
    rng = np.random.default_rng(1)
    pieces, start = [], 0
    while start < y.size:
        size = int(rng.integers(1, 3000))
        pieces.append(resampler.resample_chunk(y[start : start + size]))
        start += size
    pieces.append(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    y16 = np.concatenate(pieces)
    np.testing.assert_array_equal(y16, soxr.resample(y, RATE, spec.sample_rate))

    stream = StreamingExtractor(spec)
    frames = [stream.push(y16[i : i + 777]) for i in range(0, y16.size, 777)]
    frames.append(stream.finish())
    batch = BatchExtractor(spec).logmel(y16)
    np.testing.assert_allclose(np.concatenate(frames), batch, atol=1e-4, rtol=0)
    assert batch.max() > 1.0  # log10(1 + 10000 x): music lies well above zero


def test_tag_hops_do_not_depend_on_the_blocks_and_equal_the_batch_tags(
    taggers: tuple[TagModel, ...],
) -> None:
    y = music_like(10.0, seed=2)
    whole = pushed(TagAnalyzer(taggers, input_rate=RATE), y, [])
    analyzer = TagAnalyzer(taggers, input_rate=RATE)
    sizes = list(np.random.default_rng(3).integers(1, 4096, size=200))
    cut = pushed(analyzer, y, sizes)
    assert [h.index for h in cut] == [0, 1, 2]  # 10 s: three 2.99 s patches
    assert [h.time for h in cut] == pytest.approx([2.992, 5.984, 8.976])
    for a, b in zip(whole, cut, strict=True):
        assert a.time == b.time
        np.testing.assert_allclose(a.tags, b.tags, atol=1e-5)
        np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-4)

    spec = taggers[0].spec
    frames = BatchExtractor(spec).logmel(soxr.resample(y, RATE, spec.sample_rate))
    patches = np.stack([frames[i * 187 : (i + 1) * 187] for i in range(3)])
    expected = np.concatenate([t.predict(patches)[0] for t in taggers], axis=1)
    np.testing.assert_allclose(np.stack([h.tags for h in cut]), expected, atol=1e-3)
    assert len(analyzer.labels) == 100 and analyzer.labels[0] == "msd/rock"

    analyzer.reset()  # a new stream starts at tag hop 0 again
    assert [h.index for h in pushed(analyzer, y[: 4 * RATE], [])] == [0]


def test_a_faster_cadence_overlaps_the_patches(taggers: tuple[TagModel, ...]) -> None:
    analyzer = TagAnalyzer(taggers[:1], input_rate=RATE, cadence_frames=94)
    hops = pushed(analyzer, music_like(6.0), [])
    assert [round(h.time, 3) for h in hops] == [2.992, 4.496, 6.0][: len(hops)]
    assert len(hops) >= 2


def test_every_descriptor_is_a_tag_of_the_shipped_taggers(
    taggers: tuple[TagModel, ...],
) -> None:
    analyzer = TagAnalyzer(taggers, input_rate=RATE)
    assert set(analyzer.descriptors) == set(DESCRIPTORS)
    hop = pushed(analyzer, music_like(3.5), [])[0]
    described = analyzer.describe(hop.tags)
    assert all(0.0 <= p <= 1.0 for p in described.values())
    assert described["instrumental"] == hop.tags[analyzer.labels.index("msd/instrumental")]
    only_msd = TagAnalyzer(taggers[:1], input_rate=RATE)
    assert "fast" not in only_msd.descriptors and "mellow" in only_msd.descriptors


def test_taggers_with_different_features_are_refused(taggers: tuple[TagModel, ...]) -> None:
    from streamer.errors import StreamerError

    class Other:
        spec = FeatureSpec()

    with pytest.raises(StreamerError, match="share one FeatureSpec"):
        TagAnalyzer([taggers[0], Other()], input_rate=RATE)  # type: ignore[list-item]
