"""The hop analyzer: the same hops whatever the block sizes, and the batch features' patches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.analysis.features import BatchExtractor
from streamer.analysis.hops import HopAnalyzer
from streamer.analysis.model import GenreModel


def music(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    y = 0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.1 * np.sin(t))) + 0.05 * rng.standard_normal(
        t.size
    )
    return y.astype(np.float32)


def push_in_blocks(analyzer: HopAnalyzer, y: np.ndarray, sizes: list[int]) -> list:
    hops, position, i = [], 0, 0
    while position < y.size:
        hops += analyzer.push(y[position : position + sizes[i % len(sizes)]])
        position += sizes[i % len(sizes)]
        i += 1
    return hops


@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(1, 30000), min_size=1, max_size=6))
def test_hops_do_not_depend_on_block_sizes(small_model: Path, sizes: list[int]) -> None:
    model = GenreModel(small_model)
    y = music(4.0, model.spec.sample_rate)
    whole = HopAnalyzer(model, hop_seconds=0.25).push(y)
    parts = push_in_blocks(HopAnalyzer(model, hop_seconds=0.25), y, sizes)
    assert [h.time for h in parts] == [h.time for h in whole]
    assert [h.index for h in parts] == list(range(len(whole)))
    for a, b in zip(parts, whole, strict=True):
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)
        np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-4)
        assert abs(a.level_dbfs - b.level_dbfs) < 1e-4


def test_first_hop_as_soon_as_one_patch_is_heard_then_every_hop(small_model: Path) -> None:
    model = GenreModel(small_model)
    spec = model.spec
    analyzer = HopAnalyzer(model, hop_seconds=0.5)
    first = (spec.patch_frames - 1) * spec.hop_length + spec.n_fft - spec.n_fft // 2
    y = music(5.0, spec.sample_rate)
    assert analyzer.push(y[: first - 1]) == []
    hops = analyzer.push(y[first - 1 :])
    assert hops[0].time == first / spec.sample_rate
    assert np.allclose(np.diff([h.time for h in hops]), 0.5)
    assert len(hops) == 1 + (y.size - first) // analyzer.hop_samples


def test_hop_patches_are_the_batch_features(small_model: Path) -> None:
    model = GenreModel(small_model)
    spec = model.spec
    y = music(4.0, spec.sample_rate, seed=3)
    hops = HopAnalyzer(model, hop_seconds=0.5).push(y)
    logmel = BatchExtractor(spec).logmel(y)
    patches = []
    for hop in hops:
        boundary = round(hop.time * spec.sample_rate)
        complete = (boundary + spec.n_fft // 2 - spec.n_fft) // spec.hop_length + 1
        patches.append(logmel[complete - spec.patch_frames : complete])
    probabilities, _ = model.predict(np.stack(patches))
    np.testing.assert_allclose(np.stack([h.probabilities for h in hops]), probabilities, atol=1e-5)


def test_level_is_the_hops_own_audio(small_model: Path) -> None:
    model = GenreModel(small_model)
    rate = model.spec.sample_rate
    t = np.arange(3 * rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = np.concatenate([tone, np.zeros(2 * rate, dtype=np.float32)])
    hops = HopAnalyzer(model, hop_seconds=0.5).push(y)
    loud = [h.level_dbfs for h in hops if h.time <= 3.0]
    quiet = [h.level_dbfs for h in hops if h.time >= 3.5]
    assert loud and all(abs(level - 20 * np.log10(0.5 / np.sqrt(2))) < 0.1 for level in loud)
    assert quiet and all(level == -100.0 for level in quiet)
