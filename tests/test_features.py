"""One feature definition: the streaming extractor equals the batch one, which equals librosa."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.analysis.features import (
    BatchExtractor,
    FeatureSpec,
    StreamingExtractor,
    analysis_kernels,
    mel_basis,
)

SPEC = FeatureSpec()
SMALL = FeatureSpec(n_fft=512, hop_length=128, n_mels=40, n_mfcc=13, sample_rate=16000)


def signal(seed: int, n: int, amplitude: float) -> np.ndarray:
    """Noise plus a sine: broadband and tonal content, float32 like captured audio."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SPEC.sample_rate
    y = amplitude * (0.5 * rng.standard_normal(n) + np.sin(2 * np.pi * rng.uniform(50, 5000) * t))
    return np.clip(y, -1, 1).astype(np.float32)


def stream(extractor: StreamingExtractor, y: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Feed `y` in blocks cycling through `sizes`, then finish."""
    out, position, i = [], 0, 0
    while position < y.size:
        size = sizes[i % len(sizes)]
        out.append(extractor.push(y[position : position + size]))
        position += size
        i += 1
    out.append(extractor.finish())
    return np.concatenate(out)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 3 * SPEC.sample_rate),
    amplitude=st.floats(1e-4, 1.0),
    sizes=st.lists(st.integers(1, 20000), min_size=1, max_size=8),
    spec=st.sampled_from([SPEC, SMALL]),
)
def test_stream_equals_batch(
    seed: int, n: int, amplitude: float, sizes: list[int], spec: FeatureSpec
) -> None:
    y = signal(seed, n, amplitude)
    batch = BatchExtractor(spec).logmel(y)
    streamed = stream(StreamingExtractor(spec), y, sizes)
    assert streamed.shape == batch.shape == (1 + n // spec.hop_length, spec.n_mels)
    np.testing.assert_allclose(streamed, batch, rtol=0, atol=1e-4)


def test_each_frame_is_emitted_once_as_soon_as_its_window_is_complete() -> None:
    spec = SPEC
    extractor = StreamingExtractor(spec)
    y = signal(1, 3 * spec.sample_rate, 0.5)
    for end in range(1, y.size + 1, 700):
        before = extractor.frames_emitted
        new = extractor.push(y[end - 1 : min(end + 699, y.size)])
        received = min(end + 699, y.size) + spec.n_fft // 2
        complete = max(0, (received - spec.n_fft) // spec.hop_length + 1)
        assert new.shape[0] == complete - before
        assert extractor.frames_emitted == complete


def test_large_push_is_processed_in_bounded_steps() -> None:
    y = signal(2, 10 * SPEC.sample_rate, 0.3)
    extractor = StreamingExtractor(SPEC, max_block=4096)
    frames = np.concatenate([extractor.push(y), extractor.finish()])
    np.testing.assert_allclose(frames, BatchExtractor(SPEC).logmel(y), atol=1e-4, rtol=0)
    assert extractor._buffer.size == SPEC.n_fft + 4096


def test_push_after_finish_is_refused() -> None:
    extractor = StreamingExtractor(SPEC)
    extractor.finish()
    with pytest.raises(RuntimeError, match="new StreamingExtractor"):
        extractor.push(np.zeros(10))


@pytest.mark.parametrize("spec", [SPEC, SMALL], ids=["default", "small"])
def test_batch_equals_librosa(spec: FeatureSpec) -> None:
    y = signal(3, 2 * spec.sample_rate, 0.8).astype(np.float64)
    kwargs = {
        "sr": spec.sample_rate, "n_fft": spec.n_fft, "hop_length": spec.hop_length,
        "n_mels": spec.n_mels, "fmin": spec.fmin, "fmax": spec.fmax,
    }  # fmt: skip
    reference = librosa.power_to_db(librosa.feature.melspectrogram(y=y, **kwargs), top_db=None)
    batch = BatchExtractor(spec)
    np.testing.assert_allclose(batch.logmel(y), reference.T, atol=1e-6, rtol=0)


def test_reference_does_not_depend_on_the_clip() -> None:
    """A quiet patch keeps its level inside a loud file: no per-clip peak normalisation."""
    quiet = signal(4, SPEC.sample_rate, 0.01)
    loud = np.concatenate([quiet, signal(5, SPEC.sample_rate, 1.0)])
    batch = BatchExtractor(SPEC)
    alone = batch.logmel(quiet)[:30]
    inside = batch.logmel(loud)[:30]
    np.testing.assert_allclose(alone, inside, atol=1e-6)


def test_spec_json_round_trip_with_normalisation() -> None:
    spec = SMALL.with_normalization(np.linspace(-60, -20, 40), np.linspace(5, 15, 40))
    assert FeatureSpec.from_json(spec.to_json()) == spec
    frames = np.full((3, 40), -40.0)
    normalised = spec.normalize(frames)
    np.testing.assert_allclose(
        normalised[0], (-40 - np.linspace(-60, -20, 40)) / np.linspace(5, 15, 40)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hop_length": 0}, "hop_length"),
        ({"n_mfcc": 500}, "n_mfcc"),
        ({"norm_mean": (1.0,), "norm_std": (1.0,)}, "norm_mean"),
        ({"version": 99}, "version"),
    ],
)
def test_spec_rejects_inconsistent_values(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeatureSpec.from_dict({**SPEC.to_dict(), **change})


def test_spec_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        FeatureSpec.from_dict({**SPEC.to_dict(), "hop": 3})


def test_analysis_kernels_are_cached_and_rebuilt_when_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    window, basis = analysis_kernels(SMALL)
    np.testing.assert_array_equal(basis, mel_basis(SMALL))
    np.testing.assert_allclose(window, scipy.signal.get_window("hann", SMALL.n_fft, fftbins=True))
    (cached,) = (tmp_path / "streamer").glob("kernels-*.npz")
    written = cached.stat().st_mtime_ns
    np.testing.assert_array_equal(analysis_kernels(SMALL)[1], basis)
    assert cached.stat().st_mtime_ns == written  # read back, not rebuilt
    assert len(list((tmp_path / "streamer").glob("kernels-*.npz"))) == 1
    assert analysis_kernels(SPEC)[1].shape == (SPEC.n_mels, 1 + SPEC.n_fft // 2)  # own file
    for damage in (b"damaged", cached.read_bytes()[:100]):  # garbage, a truncated zip
        cached.write_bytes(damage)
        np.testing.assert_array_equal(analysis_kernels(SMALL)[1], basis)
    with np.load(cached) as repaired:
        np.testing.assert_array_equal(repaired["mel_basis"], basis)
