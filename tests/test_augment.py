"""Augmentation: rooms keep shape and bounds, and each stage does what its name says."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from training.augment import (
    EVALUATION_ROOM,
    EqBand,
    PatchAugment,
    RoomDistribution,
    add_noise,
    augment_batch,
    augment_patch,
    babble,
    change_speed,
    clip,
    colored_noise,
    compress,
    evaluation_room,
    impulse_response,
    mix_power,
    random_room,
    response_sos,
    reverberate,
)

SR = 22050
EVERY_STAGE = RoomDistribution(
    p_drift=1, p_compress=1, p_clip=1, p_filter=1, p_reverb=1, p_noise=1, p_crowd=1
)
NOTHING = PatchAugment(
    gain_db=0, timbre_db=0, max_shift_frames=0, p_mix=0, time_masks=0, freq_masks=0
)  # fmt: skip


def music(seconds: float, *, seed: int = 0, amplitude: float = 0.3) -> np.ndarray:
    """Decaying harmonic notes over noise: tonal, percussive and broadband at once."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    notes = sum(
        np.sin(2 * np.pi * f0 * k * t) / k for f0 in (110.0, 220.0 * 1.26) for k in range(1, 6)
    )
    envelope = np.exp(-6.0 * (t % 0.25))
    y = notes * envelope + 0.2 * rng.standard_normal(t.size)
    return (amplitude * y / np.max(np.abs(y))).astype(np.float32)


def db(x: float) -> float:
    return float(10 * np.log10(x))


def power(y: np.ndarray) -> float:
    return float(np.mean(np.square(y, dtype=np.float64)))


def sine(freq: float, seconds: float, amplitude: float = 0.1) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)


def tone_gain_db(y_in: np.ndarray, y_out: np.ndarray, freq: float) -> float:
    """Level change of the `freq` component, measured after the first half second."""
    a, b = y_in[SR // 2 :], y_out[SR // 2 :]
    freqs = np.fft.rfftfreq(a.size, 1 / SR)
    near = np.abs(freqs - freq) < 5
    window = np.hanning(a.size)
    return 2 * db(
        np.abs(np.fft.rfft(b * window))[near].max() / np.abs(np.fft.rfft(a * window))[near].max()
    )


# --- Waveform chains ----------------------------------------------------------------------


@pytest.mark.parametrize("distribution", [RoomDistribution(), EVERY_STAGE], ids=["default", "all"])
@pytest.mark.parametrize("n", [0, 1, 300, 2 * SR])
def test_random_room_keeps_length_dtype_and_bounds(distribution: RoomDistribution, n: int) -> None:
    y = 3.0 * music(max(n, 1) / SR)[:n]  # louder than full scale: the output must fix that
    for seed in range(4):
        out = random_room(
            y, sample_rate=SR, rng=np.random.default_rng(seed), distribution=distribution
        )
        assert out.shape == (n,)
        assert out.dtype == np.float32
        assert np.all(np.isfinite(out))
        assert np.all(np.abs(out) <= 1.0)


def test_random_room_is_reproducible_and_varies() -> None:
    y = music(1.0)
    first = random_room(y, sample_rate=SR, rng=np.random.default_rng(7), distribution=EVERY_STAGE)
    again = random_room(y, sample_rate=SR, rng=np.random.default_rng(7), distribution=EVERY_STAGE)
    other = random_room(y, sample_rate=SR, rng=np.random.default_rng(8), distribution=EVERY_STAGE)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other, atol=1e-3)
    assert not np.allclose(first, y, atol=1e-3)


def test_random_room_default_chains_differ_between_calls() -> None:
    rng = np.random.default_rng(0)
    y = music(0.5)
    outputs = [random_room(y, sample_rate=SR, rng=rng) for _ in range(8)]
    distinct = {np.round(out, 4).tobytes() for out in outputs}
    assert len(distinct) == len(outputs)


@pytest.mark.parametrize("bad", [np.zeros((2, 100)), np.array([0.0, np.nan, 0.0])])
def test_rooms_reject_non_mono_or_non_finite_input(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="1-D finite"):
        random_room(bad, sample_rate=SR, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="1-D finite"):
        evaluation_room(bad, sample_rate=SR)


def test_evaluation_room_is_deterministic() -> None:
    y = music(1.0)
    first = evaluation_room(y, sample_rate=SR)
    np.random.seed(123)  # the global legacy state must not matter
    np.random.standard_normal(10)
    again = evaluation_room(y, sample_rate=SR)
    np.testing.assert_array_equal(first, again)
    assert first.dtype == np.float32 and first.shape == y.shape
    assert not np.allclose(first, y, atol=1e-3)


def test_evaluation_room_noise_is_at_its_snr() -> None:
    # Reverb and filters are linear and the noise does not depend on the signal's sign, so
    # with y and -y: the sum of the outputs is twice the noise, the difference twice the
    # reverberated, band-limited signal.
    y = music(2.0, amplitude=0.1)
    plus = evaluation_room(y, sample_rate=SR).astype(np.float64)
    minus = evaluation_room(-y, sample_rate=SR).astype(np.float64)
    noise, signal = (plus + minus) / 2, (plus - minus) / 2
    assert db(power(signal) / power(noise)) == pytest.approx(EVALUATION_ROOM.snr_db, abs=0.05)
    slope = spectral_slope(noise)
    assert slope == pytest.approx(-1.0, abs=0.15)  # pink


def test_evaluation_room_band_limits() -> None:
    gains = {f: tone_gain_db(sine(f, 2.0), evaluation_room(sine(f, 2.0), sample_rate=SR), f)
             for f in (1000.0, 9000.0)}  # fmt: skip
    assert gains[1000.0] > -10.0
    assert gains[9000.0] < gains[1000.0] - 30.0


def test_evaluation_room_reverberates_a_click() -> None:
    y = np.zeros(2 * SR)
    y[SR // 2] = 0.5
    out = evaluation_room(y, sample_rate=SR).astype(np.float64)

    def energy(start_s: float) -> float:
        start = int(start_s * SR)
        return power(out[start : start + SR // 5])

    before, early, late = energy(0.25), energy(0.55), energy(0.95)
    assert db(early / before) > 10.0  # a tail well above the noise floor, 50-250 ms after
    assert db(early / late) > 10.0  # and it decays


# --- Waveform stages ----------------------------------------------------------------------


def schroeder_rt60(ir: np.ndarray) -> float:
    """RT60 from the slope of the backward-integrated energy between -5 and -25 dB."""
    edc = np.cumsum(ir[::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    t5, t25 = np.argmax(edc_db < -5), np.argmax(edc_db < -25)
    return 3 * (t25 - t5) / SR


@pytest.mark.parametrize("rt60", [0.2, 0.5, 0.9])
def test_impulse_response_decays_over_its_rt60(rt60: float) -> None:
    ir = impulse_response(
        sample_rate=SR, rt60_s=rt60, direct_to_reverb_db=-10.0, rng=np.random.default_rng(1)
    )
    assert np.sum(ir**2) == pytest.approx(1.0)
    assert schroeder_rt60(ir) == pytest.approx(rt60, rel=0.15)


@pytest.mark.parametrize("drr", [-6.0, 0.0, 9.0])
def test_impulse_response_direct_to_reverb_ratio(drr: float) -> None:
    ir = impulse_response(
        sample_rate=SR, rt60_s=0.4, direct_to_reverb_db=drr, rng=np.random.default_rng(2)
    )
    assert db(ir[0] ** 2 / np.sum(ir[1:] ** 2)) == pytest.approx(drr, abs=1e-6)


def test_reverberation_lengthens_decay() -> None:
    click = np.zeros(SR)
    click[0] = 1.0
    ir = impulse_response(
        sample_rate=SR, rt60_s=0.6, direct_to_reverb_db=0.0, rng=np.random.default_rng(3)
    )
    wet = reverberate(click, ir=ir)
    assert wet.shape == click.shape
    tail = wet[int(0.1 * SR) :]
    assert power(tail) > 1e-6 and not np.any(click[int(0.1 * SR) :])
    assert schroeder_rt60(wet) == pytest.approx(0.6, rel=0.2)


def test_response_sos_band_limits() -> None:
    sos = response_sos(sample_rate=SR, highpass_hz=150.0, lowpass_hz=6000.0, order=4)
    gain = {f: tone_gain_db(sine(f, 1.5), scipy.signal.sosfilt(sos, sine(f, 1.5)), f)
            for f in (50.0, 1000.0, 9000.0)}  # fmt: skip
    assert gain[1000.0] == pytest.approx(0.0, abs=0.5)
    assert gain[50.0] < -30.0
    assert gain[9000.0] < -30.0


@pytest.mark.parametrize(
    ("band", "at_hz", "expected_db"),
    [
        (EqBand("peak", 1000.0, 6.0, q=2.0), 1000.0, 6.0),
        (EqBand("peak", 1000.0, 6.0, q=2.0), 4000.0, 0.0),
        (EqBand("low_shelf", 200.0, -6.0), 30.0, -6.0),
        (EqBand("low_shelf", 200.0, -6.0), 5000.0, 0.0),
        (EqBand("high_shelf", 2000.0, 4.0), 10000.0, 4.0),
        (EqBand("high_shelf", 2000.0, 4.0), 100.0, 0.0),
    ],
)
def test_eq_bands_have_their_gain(band: EqBand, at_hz: float, expected_db: float) -> None:
    def response_db(bands: tuple[EqBand, ...]) -> float:
        sos = response_sos(
            sample_rate=SR, highpass_hz=20.0, lowpass_hz=10500.0, order=2, bands=bands
        )
        _, h = scipy.signal.sosfreqz(sos, worN=[at_hz], fs=SR)
        return 20 * np.log10(np.abs(h[0]))

    assert response_db((band,)) - response_db(()) == pytest.approx(expected_db, abs=0.5)


def test_response_sos_rejects_impossible_edges() -> None:
    with pytest.raises(ValueError, match="Nyquist"):
        response_sos(sample_rate=SR, highpass_hz=200.0, lowpass_hz=12000.0, order=4)


def spectral_slope(noise: np.ndarray) -> float:
    """Log-log slope of the PSD between 50 Hz and 5 kHz (0 white, -1 pink, -2 brown)."""
    freqs, psd = scipy.signal.welch(noise, fs=SR, nperseg=4096)
    band = (freqs > 50) & (freqs < 5000)
    return float(np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0])


@pytest.mark.parametrize(("color", "slope"), [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_colored_noise_slopes(color: str, slope: float) -> None:
    noise = colored_noise(4 * SR, color=color, rng=np.random.default_rng(4))
    assert power(noise) == pytest.approx(1.0)
    assert abs(np.mean(noise)) < 1e-9
    assert spectral_slope(noise) == pytest.approx(slope, abs=0.1)


def test_babble_is_speech_band_noise_at_syllable_rate() -> None:
    crowd = babble(8 * SR, sample_rate=SR, voices=1, rng=np.random.default_rng(5))
    assert power(crowd) == pytest.approx(1.0)
    freqs, psd = scipy.signal.welch(crowd, fs=SR, nperseg=2048)
    speech = (freqs > 150) & (freqs < 4000)
    assert np.sum(psd[speech]) > 0.95 * np.sum(psd)
    # Envelope: RMS in 10 ms frames, then the spectrum of its fluctuations.
    frames = np.sqrt(np.mean(crowd[: crowd.size // 220 * 220].reshape(-1, 220) ** 2, axis=1))
    mod_freqs, mod = scipy.signal.welch(frames - frames.mean(), fs=SR / 220, nperseg=256)
    syllables = np.sum(mod[(mod_freqs >= 2) & (mod_freqs <= 6)])
    faster = np.sum(mod[(mod_freqs >= 10) & (mod_freqs <= 20)])
    assert syllables > 5 * faster


@pytest.mark.parametrize("snr", [5.0, 20.0, 30.0])
def test_add_noise_hits_the_snr(snr: float) -> None:
    y = music(1.0)
    noise = colored_noise(y.size, color="brown", rng=np.random.default_rng(6))
    added = add_noise(y.astype(np.float64), noise, snr_db=snr) - y
    assert db(power(y) / power(added)) == pytest.approx(snr, abs=1e-3)


def test_add_noise_leaves_silence_silent() -> None:
    noise = colored_noise(100, color="white", rng=np.random.default_rng(0))
    assert not np.any(add_noise(np.zeros(100), noise, snr_db=10.0))


def crest_db(y: np.ndarray) -> float:
    return 2 * db(np.max(np.abs(y)) / np.sqrt(power(y)))


def test_compression_reduces_crest_factor_and_spares_quiet_parts() -> None:
    quiet = sine(440.0, 2.0, amplitude=0.15)  # below the threshold
    bursts = np.where((np.arange(quiet.size) // (SR // 500)) % 200 == 0, 0.9, 0.0)  # 2 ms hits
    y = quiet + bursts * np.sign(sine(90.0, 2.0))
    out = compress(y, sample_rate=SR, threshold_db=-12.0, ratio=6.0, release_db_per_s=200.0)
    assert crest_db(out) < crest_db(y) - 3.0
    # Between bursts, once released, the quiet tone passes untouched.
    calm = slice(int(0.3 * SR), int(0.35 * SR))
    np.testing.assert_allclose(out[calm], y[calm], rtol=1e-9)
    # After a hit the gain recovers at the release rate: 10 dB at 200 dB/s takes 50 ms.
    hit_end = 200 * (SR // 500) + SR // 500

    def gain_db(start_ms: float, stop_ms: float) -> float:
        part = slice(hit_end + int(start_ms * SR / 1000), hit_end + int(stop_ms * SR / 1000))
        return db(power(out[part]) / power(y[part]))

    assert -9.0 < gain_db(20, 30) < -3.0
    assert gain_db(70, 90) == pytest.approx(0.0, abs=0.01)
    # The loud part is reduced by about (1 - 1/ratio) of its excess over the threshold.
    peak_db = 2 * db(np.max(np.abs(out)) / np.max(np.abs(y)))
    assert peak_db == pytest.approx(-12.0 * (1 - 1 / 6.0), abs=1.0)


def test_compression_with_ratio_one_is_identity() -> None:
    y = music(0.5).astype(np.float64)
    out = compress(y, sample_rate=SR, threshold_db=-20.0, ratio=1.0)
    np.testing.assert_allclose(out, y)


@pytest.mark.parametrize("soft", [False, True])
def test_clip_overdrives_into_full_scale(soft: bool) -> None:
    y = sine(200.0, 0.2, amplitude=0.3)
    out = clip(y, drive_db=12.0, soft=soft)
    assert np.max(np.abs(out)) <= 1.0
    assert crest_db(out) < crest_db(y) - 1.0
    if soft:
        assert np.max(np.abs(out)) < 1.0
    else:
        assert np.mean(np.abs(out) == 1.0) > 0.3


@pytest.mark.parametrize("factor", [0.975, 1.025])
def test_change_speed_moves_pitch_and_length(factor: float) -> None:
    y = sine(1000.0, 1.0)
    out = change_speed(y, sample_rate=SR, factor=factor)
    assert out.size == pytest.approx(y.size / factor, abs=2)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    peak_hz = np.fft.rfftfreq(out.size, 1 / SR)[np.argmax(spectrum)]
    assert peak_hz == pytest.approx(1000.0 * factor, abs=2.0)


# --- Log-mel patches ----------------------------------------------------------------------


def patches(n: int, *, seed: int = 0) -> np.ndarray:
    """Log-mel-like patches in dB: a loud low band, quiet highs, some digital silence."""
    rng = np.random.default_rng(seed)
    x = rng.normal(-50.0, 12.0, (n, 32, 40)) - np.linspace(0, 30, 32)[:, None]
    x[:, :, :3] = -100.0
    return x.astype(np.float32)


def test_augment_patch_keeps_shape_dtype_and_is_reproducible() -> None:
    x = patches(6)
    out = augment_patch(x[0], rng=np.random.default_rng(1), others=x[1:])
    again = augment_patch(x[0], rng=np.random.default_rng(1), others=x[1:])
    other = augment_patch(x[0], rng=np.random.default_rng(2), others=x[1:])
    assert out.shape == x[0].shape and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, again)
    assert not np.array_equal(out, other)


def test_augment_batch_keeps_shape_dtype_and_bounds() -> None:
    x = patches(16)
    out = augment_batch(x, rng=np.random.default_rng(3), others=x)
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    assert np.all(out >= x.min() - PatchAugment().gain_db - 1e-3)


def test_nothing_enabled_is_identity() -> None:
    x = patches(3)
    np.testing.assert_array_equal(
        augment_batch(x, rng=np.random.default_rng(0), others=x, settings=NOTHING), x
    )


def test_time_shift_is_a_circular_roll() -> None:
    x = patches(1)[0]
    only_shift = replace(NOTHING, max_shift_frames=10)
    out = augment_patch(x, rng=np.random.default_rng(4), settings=only_shift)
    matches = [k for k in range(-10, 11) if np.array_equal(out, np.roll(x, k, axis=1))]
    assert len(matches) == 1


def test_gain_is_one_offset_per_patch_within_range() -> None:
    x = patches(10)
    only_gain = replace(NOTHING, gain_db=6)
    delta = augment_batch(x, rng=np.random.default_rng(0), settings=only_gain) - x
    offsets = delta[:, 0, 0]
    np.testing.assert_allclose(
        delta, np.broadcast_to(offsets[:, None, None], delta.shape), atol=1e-4
    )
    assert np.max(np.abs(offsets)) <= 6.0
    assert np.ptp(offsets) > 2.0  # drawn per patch, not once for the batch


def test_timbre_is_a_smooth_curve_per_patch_within_range() -> None:
    x = patches(10)
    only_timbre = replace(NOTHING, timbre_db=6, timbre_order=4)
    delta = augment_batch(x, rng=np.random.default_rng(0), settings=only_timbre) - x
    curves = delta[:, :, 0]
    np.testing.assert_allclose(delta, np.broadcast_to(curves[:, :, None], delta.shape), atol=1e-4)
    assert np.max(np.abs(curves)) <= 6.0 + 1e-4
    assert np.ptp(np.abs(curves).max(axis=1)) > 1.0  # a strength drawn per patch
    # Smooth: band-to-band steps are small next to the curve itself (about 1.4 for noise,
    # at most 2 sin(pi order / (2 (bands - 1))) = 0.40 for cosines up to order 4 on 32 bands).
    rms = np.sqrt(np.mean(curves**2, axis=1))
    step_rms = np.sqrt(np.mean(np.diff(curves, axis=1) ** 2, axis=1))
    assert np.all(step_rms <= 0.41 * rms)
    assert not np.allclose(curves[0], curves[1], atol=0.5)  # a shape drawn per patch


def test_masks_set_whole_bands_and_frame_ranges_to_the_mean() -> None:
    x = patches(1)[0]
    fixed_masks = replace(
        NOTHING, time_masks=1, time_mask_frames=(7, 7), freq_masks=1, freq_mask_bands=(5, 5)
    )
    out = augment_patch(x, rng=np.random.default_rng(5), settings=fixed_masks)
    fill = np.float32(x.astype(np.float64).mean())
    masked = out == fill
    bands = np.flatnonzero(masked.all(axis=1))
    frames = np.flatnonzero(masked.all(axis=0))
    assert len(bands) == 5 and np.all(np.diff(bands) == 1)
    assert len(frames) == 7 and np.all(np.diff(frames) == 1)
    expected = np.zeros_like(masked)
    expected[bands, :] = True
    expected[:, frames] = True
    np.testing.assert_array_equal(masked, expected)
    np.testing.assert_array_equal(out[~expected], x[~expected])


def test_mixing_never_lowers_a_bin_and_sits_below_the_patch() -> None:
    x = patches(8)
    only_mix = replace(NOTHING, p_mix=1)
    out = augment_batch(x, rng=np.random.default_rng(6), others=x[::-1], settings=only_mix)
    assert np.all(out >= x)
    assert np.any(out > x + 0.1)

    def mean_power_db(p: np.ndarray) -> float:
        return db(np.mean(10 ** (p.astype(np.float64) / 10)))

    for before, after in zip(x, out, strict=True):
        added = mean_power_db(after) - mean_power_db(before)
        snr_range = PatchAugment().mix_snr_db
        assert db(1 + 10 ** (-snr_range[1] / 10)) - 1e-6 <= added
        assert added <= db(1 + 10 ** (-snr_range[0] / 10)) + 1e-6


def test_mix_power_of_a_patch_with_itself_adds_three_db() -> None:
    x = patches(2).astype(np.float64)
    np.testing.assert_allclose(mix_power(x, x, snr_db=np.zeros(2)), x + db(2.0), atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    a=hnp.arrays(np.float32, (2, 3, 4), elements=st.floats(-150, 50, width=32)),
    b=hnp.arrays(np.float32, (2, 3, 4), elements=st.floats(-150, 50, width=32)),
    snr=st.floats(-30, 40),
)
def test_mix_power_never_lowers_any_bin(a: np.ndarray, b: np.ndarray, snr: float) -> None:
    out = mix_power(a, b, snr_db=np.full(2, snr))
    assert np.all(np.isfinite(out))
    assert np.all(out >= a)
    assert np.all(out.astype(np.float32) >= a)
