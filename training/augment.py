"""Augmentation: make clean General-MIDI renders sound like music heard in a room.

The corpus is rendered straight from MIDI, while the analyzer listens through a speaker, a
room and a microphone (or a line-in after someone else's EQ and limiter). Two layers close
that gap:

* Waveform rooms. `random_room` draws a fresh chain per call from `TRAINING_ROOMS`: playback
  speed drift, compression, clipping, speaker/microphone EQ and band-limits, reverberation,
  background and crowd noise. `evaluation_room` is one fixed chain, `EVALUATION_ROOM`, that
  the held-out "room" metrics use; its parameters are printed on the model card.
* Patch augmentation. `augment_patch` and `augment_batch` work on log-mel patches in dB
  ``(n_mels, n_frames)`` inside the training data pipeline (numpy only, no TensorFlow):
  gain, circular time shift, power-domain mixing with another patch, SpecAugment masks.

Every stage is a public function so that tests and notebooks can run it alone. Randomness
comes only from the `numpy.random.Generator` passed in, so a seed reproduces a clip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import scipy.ndimage
import scipy.signal
import soxr

NoiseColor = Literal["white", "pink", "brown"]
EqKind = Literal["peak", "low_shelf", "high_shelf"]

# Power spectral density slope of each noise colour: PSD ~ 1 / f**exponent.
_COLOR_EXPONENT: dict[str, float] = {"white": 0.0, "pink": 1.0, "brown": 2.0}
_DB_TO_NEPER = np.log(10.0) / 10.0  # x dB (power) = exp(x * _DB_TO_NEPER)


class EqBand(NamedTuple):
    """One parametric EQ band (RBJ cookbook biquad); `q` is ignored by shelves."""

    kind: EqKind
    freq_hz: float
    gain_db: float
    q: float = 0.707


@dataclass(frozen=True)
class RoomDistribution:
    """What `random_room` draws from: each stage's probability and parameter ranges.

    Ranges are ``(low, high)`` for uniform draws (log-uniform for frequencies). Stages run in
    the physical order of the playback path: speed drift (turntable, tape, resampling
    player), compression and clipping (mastering, an overdriven amplifier), speaker and
    microphone response, the room's reverberation, then noise in the room.
    """

    p_drift: float = 0.5
    drift: float = 0.025  # speed factor within 1 +- drift (pitch and tempo together)
    p_compress: float = 0.4
    threshold_db: tuple[float, float] = (-24.0, -6.0)  # relative to the clip's peak
    ratio: tuple[float, float] = (2.0, 10.0)
    release_db_per_s: tuple[float, float] = (20.0, 120.0)
    p_clip: float = 0.15
    clip_drive_db: tuple[float, float] = (1.0, 12.0)  # overdrive above the clip's peak
    p_filter: float = 0.8
    highpass_hz: tuple[float, float] = (60.0, 300.0)
    lowpass_hz: tuple[float, float] = (3000.0, 10000.0)  # capped below Nyquist
    filter_orders: tuple[int, ...] = (2, 4, 6)
    eq_bands: tuple[int, int] = (0, 3)
    eq_freq_hz: tuple[float, float] = (100.0, 8000.0)
    eq_gain_db: tuple[float, float] = (-9.0, 9.0)
    eq_q: tuple[float, float] = (0.5, 2.0)
    p_reverb: float = 0.7
    rt60_s: tuple[float, float] = (0.1, 1.0)
    direct_to_reverb_db: tuple[float, float] = (-6.0, 12.0)
    p_noise: float = 0.6
    noise_colors: tuple[NoiseColor, ...] = ("white", "pink", "brown")
    p_crowd: float = 0.3
    crowd_voices: tuple[int, int] = (3, 8)
    snr_db: tuple[float, float] = (5.0, 30.0)  # per noise source, against the signal's RMS


@dataclass(frozen=True)
class EvaluationRoom:
    """The fixed chain of `evaluation_room`: reverberation, band-limit, pink noise.

    The noise is added last, at `snr_db` against the RMS of the reverberated, band-limited
    signal (the level a microphone would hear it at). `seed` fixes the impulse response's
    noise and the pink noise.
    """

    rt60_s: float = 0.5
    direct_to_reverb_db: float = 3.0
    highpass_hz: float = 150.0
    lowpass_hz: float = 6000.0
    filter_order: int = 6  # Butterworth, per edge: 36 dB per octave
    noise_color: NoiseColor = "pink"
    snr_db: float = 20.0
    seed: int = 20250101


@dataclass(frozen=True)
class PatchAugment:
    """What `augment_batch` draws from, on log-mel patches in dB.

    The timbre curve stands in for what differs between soundfonts, instruments and
    speakers at the level of a mel spectrum: a broad, smooth colouring of the bands. The
    held-out soundfont is what the evaluation measures, and three training soundfonts alone
    teach their own colour.

    Masks are filled with the augmented patch's mean, not its minimum: the minimum of a
    render is often the -100 dB floor of digital silence, and a 100 dB hole with sharp edges
    is something no real input contains, so the network would learn to spot masks instead of
    working around missing information. The mean is SpecAugment's choice (zero once the
    features are normalised) and keeps the patch's statistics where they were.
    """

    gain_db: float = 6.0  # uniform offset within +-gain_db
    timbre_db: float = 6.0  # a smooth random EQ curve over the bands, peak within +-timbre_db
    timbre_order: int = 4  # cosines in that curve: 1 is a tilt, more add broad bumps
    max_shift_frames: int = 65  # circular roll within +-max_shift_frames
    p_mix: float = 0.3
    mix_snr_db: tuple[float, float] = (6.0, 20.0)  # mean power of patch over the mixed one
    time_masks: int = 2
    time_mask_frames: tuple[int, int] = (0, 13)
    freq_masks: int = 2
    freq_mask_bands: tuple[int, int] = (0, 12)


TRAINING_ROOMS = RoomDistribution()
EVALUATION_ROOM = EvaluationRoom()
PATCH_AUGMENT = PatchAugment()


# --- Waveform stages --------------------------------------------------------------------


def impulse_response(
    *,
    sample_rate: int,
    rt60_s: float,
    direct_to_reverb_db: float,
    rng: np.random.Generator,
    early_reflections: int = 6,
) -> np.ndarray:
    """Synthetic room impulse response with unit energy.

    A direct path at t = 0, a few early reflections (2-40 ms, random sign), and a late tail
    of Gaussian noise whose energy falls by 60 dB over `rt60_s`: the diffuse field of a room
    is close to that, and noise has no tonal colouring a fixed IR would teach the model.
    Unit energy keeps the level of broadband input unchanged.

    Parameters
    ----------
    sample_rate : int
        In Hz.
    rt60_s : float
        Reverberation time: seconds for the tail's energy to fall by 60 dB.
    direct_to_reverb_db : float
        Energy of the direct path over that of reflections plus tail.
    rng : numpy.random.Generator
        Source of the tail noise and the reflections.
    early_reflections : int
        Number of discrete early reflections.

    Returns
    -------
    numpy.ndarray
        The response, ``int(rt60_s * sample_rate) + 1`` samples (float64).
    """
    n = int(rt60_s * sample_rate) + 1
    t = np.arange(n) / sample_rate
    reverb = rng.standard_normal(n) * 10.0 ** (-3.0 * t / rt60_s)  # amplitude: -60 dB at rt60
    onset = min(n - 1, int(0.002 * sample_rate))
    reverb[: onset + 1] = 0.0
    delays = rng.integers(onset, max(onset + 1, min(n, int(0.04 * sample_rate))), early_reflections)
    np.add.at(
        reverb,
        delays,
        rng.choice([-1.0, 1.0], early_reflections)
        * rng.uniform(0.3, 1.0, early_reflections)
        * 10.0 ** (-3.0 * t[delays] / rt60_s)
        * np.sqrt(0.01 * sample_rate),  # a reflection carries about 10 ms of tail energy
    )
    reverb *= np.sqrt(10.0 ** (-direct_to_reverb_db / 10.0) / max(np.sum(reverb**2), 1e-30))
    reverb[0] = 1.0  # the direct path
    return reverb / np.sqrt(np.sum(reverb**2))


def reverberate(y: np.ndarray, *, ir: np.ndarray) -> np.ndarray:
    """Convolve `y` with `ir`, keeping the first ``len(y)`` samples (the clip's own span)."""
    return scipy.signal.oaconvolve(y, ir)[: y.size]


def response_sos(
    *,
    sample_rate: int,
    highpass_hz: float,
    lowpass_hz: float,
    order: int,
    bands: tuple[EqBand, ...] = (),
) -> np.ndarray:
    """Second-order sections of a speaker/microphone response: band-limits plus EQ bands.

    Butterworth high- and low-pass edges (small speakers lose the bass, cheap microphones
    and lossy links the treble), followed by RBJ-cookbook peaking/shelving biquads for the
    bumps and dips of a real response. One cascade means one `scipy.signal.sosfilt` call.

    Parameters
    ----------
    sample_rate : int
        In Hz.
    highpass_hz, lowpass_hz : float
        -3 dB edges, ``0 < highpass_hz < lowpass_hz < sample_rate / 2``.
    order : int
        Butterworth order of each edge (6 dB per octave per order).
    bands : tuple of EqBand
        Parametric EQ bands.

    Returns
    -------
    numpy.ndarray
        Sections, shape ``(n_sections, 6)``.
    """
    if not 0 < highpass_hz < lowpass_hz < sample_rate / 2:
        raise ValueError(f"need 0 < highpass {highpass_hz} < lowpass {lowpass_hz} < Nyquist")
    sections = [
        scipy.signal.butter(order, highpass_hz, "highpass", fs=sample_rate, output="sos"),
        scipy.signal.butter(order, lowpass_hz, "lowpass", fs=sample_rate, output="sos"),
    ]
    sections += [_biquad(band, sample_rate=sample_rate) for band in bands]
    return np.concatenate(sections)


def _biquad(band: EqBand, *, sample_rate: int) -> np.ndarray:
    """One RBJ Audio-EQ-Cookbook section ``(1, 6)``; shelves use slope S = 1."""
    gain = 10.0 ** (band.gain_db / 40.0)
    w0 = 2.0 * np.pi * band.freq_hz / sample_rate
    cos_w0 = np.cos(w0)
    if band.kind == "peak":
        alpha = np.sin(w0) / (2.0 * band.q)
        b = [1 + alpha * gain, -2 * cos_w0, 1 - alpha * gain]
        a = [1 + alpha / gain, -2 * cos_w0, 1 - alpha / gain]
    else:
        two_sqrt_a_alpha = np.sin(w0) * np.sqrt(gain)  # 2 sqrt(A) alpha with S = 1
        sign = 1.0 if band.kind == "low_shelf" else -1.0
        plus, minus = gain + 1, gain - 1
        b = [
            gain * (plus - sign * minus * cos_w0 + two_sqrt_a_alpha),
            sign * 2 * gain * (minus - sign * plus * cos_w0),
            gain * (plus - sign * minus * cos_w0 - two_sqrt_a_alpha),
        ]
        a = [
            plus + sign * minus * cos_w0 + two_sqrt_a_alpha,
            -sign * 2 * (minus + sign * plus * cos_w0),
            plus + sign * minus * cos_w0 - two_sqrt_a_alpha,
        ]
    return np.concatenate([b, a])[None, :] / a[0]


def _shaped_noise(
    n: int, *, rate: float, rng: np.random.Generator, gain: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Gaussian noise of `n` samples with amplitude spectrum ``gain(freqs)``, unit RMS.

    Shaping white noise in one FFT is exact and costs about as much as one filter pass.
    Returns zeros when the shaped spectrum is empty (e.g. ``n < 2``).
    """
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum = np.fft.rfft(rng.standard_normal(n)) * gain(freqs)
    noise = np.fft.irfft(spectrum, n)
    return _unit_rms(noise)


def colored_noise(n: int, *, color: NoiseColor, rng: np.random.Generator) -> np.ndarray:
    """White, pink (-3 dB/octave) or brown (-6 dB/octave) noise with unit RMS and no DC.

    Hiss, hum-free room tone and rumble respectively: the three slopes bracket the
    background of real rooms and electronics.
    """
    exponent = _COLOR_EXPONENT[color]

    def gain(freqs: np.ndarray) -> np.ndarray:
        return np.where(freqs > 0, np.maximum(freqs, 1e-12) ** (-exponent / 2.0), 0.0)

    return _shaped_noise(n, rate=1.0, rng=rng, gain=gain)


def babble(n: int, *, sample_rate: int, voices: int, rng: np.random.Generator) -> np.ndarray:
    """Crowd-like noise with unit RMS: a sum of independent "voices".

    Each voice is noise band-passed around a random speech-range centre (300-2000 Hz, one
    octave wide) whose amplitude follows a random envelope band-limited to 2-6 Hz, the
    syllable rate of speech; several voices blur into the murmur of a bar or a party. The
    envelopes run at a 100 Hz control rate and are interpolated, so they cost nothing.
    """
    control_rate = 100.0
    n_control = int(np.ceil(n / sample_rate * control_rate)) + 2
    control_t = np.arange(n_control) / control_rate
    t = np.arange(n) / sample_rate

    def syllable_band(freqs: np.ndarray) -> np.ndarray:
        return ((freqs >= 2.0) & (freqs <= 6.0)).astype(float)

    total = np.zeros(n)
    for _ in range(voices):
        centre = np.exp(rng.uniform(np.log(300.0), np.log(2000.0)))
        sos = scipy.signal.butter(
            2, [centre / np.sqrt(2), centre * np.sqrt(2)], "bandpass", fs=sample_rate, output="sos"
        )
        slow = _shaped_noise(n_control, rate=control_rate, rng=rng, gain=syllable_band)
        envelope = np.interp(t, control_t, np.maximum(1.0 + slow, 0.0))
        total += envelope * scipy.signal.sosfilt(sos, rng.standard_normal(n))
    return _unit_rms(total)


def add_noise(y: np.ndarray, noise: np.ndarray, *, snr_db: float) -> np.ndarray:
    """Return ``y + k * noise`` with ``k`` making RMS(y) / RMS(k * noise) equal to `snr_db` (dB).

    A silent `y` (or silent noise) is returned unchanged: no level makes that ratio true.
    """
    signal_rms, noise_rms = _rms(y), _rms(noise)
    if signal_rms == 0 or noise_rms == 0:
        return y.copy()
    return y + noise * (signal_rms / noise_rms * 10.0 ** (-snr_db / 20.0))


def compress(
    y: np.ndarray,
    *,
    sample_rate: int,
    threshold_db: float,
    ratio: float,
    release_db_per_s: float = 60.0,
    lookahead_s: float = 0.005,
) -> np.ndarray:
    """Feed-forward peak compressor, vectorised (no per-sample Python loop).

    Level detection is a centred running maximum of ``|y|`` (a look-ahead of `lookahead_s`,
    so peaks are caught before they pass, as broadcast limiters do). Above the threshold
    the level is reduced by ``(1 - 1/ratio)`` of the excess in dB. Release is linear in dB,
    which makes peak-hold-with-release a running maximum of ``reduction + slope * n``
    (`numpy.maximum.accumulate`) instead of a recursion. A short centred mean removes the
    gain's steps. No make-up gain: the level is the patch gain augmentation's business.

    Parameters
    ----------
    y : numpy.ndarray
        Mono signal.
    sample_rate : int
        In Hz.
    threshold_db : float
        Threshold in dB relative to the clip's peak (<= 0), so that renders at any level
        are compressed alike.
    ratio : float
        Compression ratio (>= 1).
    release_db_per_s : float
        How fast the gain reduction recovers.
    lookahead_s : float
        Half-width of the detector's window.
    """
    peak = np.max(np.abs(y))
    if peak == 0:
        return y.copy()
    lookahead = max(1, int(lookahead_s * sample_rate))
    level = scipy.ndimage.maximum_filter1d(np.abs(y), size=2 * lookahead + 1) / peak
    excess = 20.0 * np.log10(np.maximum(level, 1e-6)) - threshold_db
    reduction = np.maximum(excess, 0.0) * (1.0 - 1.0 / ratio)
    slope = release_db_per_s / sample_rate * np.arange(y.size)
    held = np.maximum.accumulate(reduction + slope) - slope
    smooth = scipy.ndimage.uniform_filter1d(held, size=lookahead)
    return y * 10.0 ** (-smooth / 20.0)


def clip(y: np.ndarray, *, drive_db: float, soft: bool) -> np.ndarray:
    """Overdrive `y` by `drive_db` above its peak into full scale and clip it.

    ``soft=True`` is a tanh saturation (valve amplifiers, tape), ``False`` hard clipping
    at +-1 (converters, cheap amplifiers). Output stays within [-1, 1].
    """
    peak = np.max(np.abs(y))
    if peak == 0:
        return y.copy()
    driven = y * (10.0 ** (drive_db / 20.0) / peak)
    return np.tanh(driven) if soft else np.clip(driven, -1.0, 1.0)


def change_speed(y: np.ndarray, *, sample_rate: int, factor: float) -> np.ndarray:
    """Play `y` `factor` times faster: pitch and tempo move together, the length by 1/factor.

    That is what an off-speed turntable or a mismatched resampler does; the model should
    not hinge on exact tuning or tempo. Uses soxr (band-limited, fast).
    """
    return soxr.resample(y, sample_rate * factor, sample_rate, quality="MQ")


# --- Waveform chains --------------------------------------------------------------------


def random_room(
    y: np.ndarray,
    *,
    sample_rate: int,
    rng: np.random.Generator,
    distribution: RoomDistribution = TRAINING_ROOMS,
) -> np.ndarray:
    """One random playback path for a training clip, drawn fresh per call.

    Each stage of `distribution` runs with its own probability and random parameters, so
    the model sees clean renders too. The same `rng` state gives the same output.

    Parameters
    ----------
    y : numpy.ndarray
        Mono signal, 1-D and finite.
    sample_rate : int
        In Hz.
    rng : numpy.random.Generator
        The only source of randomness.
    distribution : RoomDistribution
        Stage probabilities and parameter ranges.

    Returns
    -------
    numpy.ndarray
        float32, same length as `y`, finite, peak at most 1 (scaled down, never clipped,
        when a stage raised it).
    """
    d = distribution
    x = _as_signal(y)
    n = x.size
    if n == 0:
        return x.astype(np.float32)
    if rng.random() < d.p_drift:
        factor = 1.0 + rng.uniform(-d.drift, d.drift)
        x = _fit_length(change_speed(x, sample_rate=sample_rate, factor=factor), n)
    if rng.random() < d.p_compress:
        x = compress(
            x,
            sample_rate=sample_rate,
            threshold_db=rng.uniform(*d.threshold_db),
            ratio=rng.uniform(*d.ratio),
            release_db_per_s=rng.uniform(*d.release_db_per_s),
        )
    if rng.random() < d.p_clip:
        x = clip(x, drive_db=rng.uniform(*d.clip_drive_db), soft=bool(rng.random() < 0.5))
    if rng.random() < d.p_filter:
        x = scipy.signal.sosfilt(_random_response(rng, d, sample_rate=sample_rate), x)
    if rng.random() < d.p_reverb:
        ir = impulse_response(
            sample_rate=sample_rate,
            rt60_s=rng.uniform(*d.rt60_s),
            direct_to_reverb_db=rng.uniform(*d.direct_to_reverb_db),
            rng=rng,
        )
        x = reverberate(x, ir=ir)
    if rng.random() < d.p_noise:
        noise = colored_noise(n, color=rng.choice(d.noise_colors).item(), rng=rng)
        x = add_noise(x, noise, snr_db=rng.uniform(*d.snr_db))
    if rng.random() < d.p_crowd:
        voices = int(rng.integers(d.crowd_voices[0], d.crowd_voices[1] + 1))
        crowd = babble(n, sample_rate=sample_rate, voices=voices, rng=rng)
        x = add_noise(x, crowd, snr_db=rng.uniform(*d.snr_db))
    return _peak_safe(x)


def evaluation_room(
    y: np.ndarray, *, sample_rate: int, room: EvaluationRoom = EVALUATION_ROOM
) -> np.ndarray:
    """The fixed "room" test condition: same input, same output, on every machine.

    Reverberation with one fixed impulse response, a Butterworth band-limit, then noise at
    a fixed SNR against the RMS of the band-limited signal; see `EvaluationRoom` for the
    values. `random_room` never draws exactly these settings: its RT60, direct/reverb
    ratio, cut-offs and SNR are continuous uniform draws, which hit any given value with
    probability zero, and its impulse responses and noises come from the caller's
    generator, not from ``room.seed``. So the evaluation measures generalisation to an
    unseen room, not recall of a training one.

    Parameters
    ----------
    y : numpy.ndarray
        Mono signal, 1-D and finite.
    sample_rate : int
        In Hz.
    room : EvaluationRoom
        The chain's parameters.

    Returns
    -------
    numpy.ndarray
        float32, same length as `y`, finite, peak at most 1.
    """
    x = _as_signal(y)
    if x.size == 0:
        return x.astype(np.float32)
    ir_rng, noise_rng = np.random.default_rng(room.seed).spawn(2)
    ir = impulse_response(
        sample_rate=sample_rate,
        rt60_s=room.rt60_s,
        direct_to_reverb_db=room.direct_to_reverb_db,
        rng=ir_rng,
    )
    sos = response_sos(
        sample_rate=sample_rate,
        highpass_hz=room.highpass_hz,
        lowpass_hz=room.lowpass_hz,
        order=room.filter_order,
    )
    x = scipy.signal.sosfilt(sos, reverberate(x, ir=ir))
    noise = colored_noise(x.size, color=room.noise_color, rng=noise_rng)
    return _peak_safe(add_noise(x, noise, snr_db=room.snr_db))


def _random_response(
    rng: np.random.Generator, d: RoomDistribution, *, sample_rate: int
) -> np.ndarray:
    """Draw a speaker/microphone response (`response_sos`), edges kept below Nyquist."""
    nyquist_cap = 0.45 * sample_rate
    bands = tuple(
        EqBand(
            kind=rng.choice(["peak", "low_shelf", "high_shelf"]).item(),
            freq_hz=_log_uniform(rng, d.eq_freq_hz[0], min(d.eq_freq_hz[1], nyquist_cap)),
            gain_db=rng.uniform(*d.eq_gain_db),
            q=rng.uniform(*d.eq_q),
        )
        for _ in range(rng.integers(d.eq_bands[0], d.eq_bands[1] + 1))
    )
    return response_sos(
        sample_rate=sample_rate,
        highpass_hz=_log_uniform(rng, *d.highpass_hz),
        lowpass_hz=min(_log_uniform(rng, *d.lowpass_hz), nyquist_cap),
        order=int(rng.choice(d.filter_orders)),
        bands=bands,
    )


def _as_signal(y: np.ndarray) -> np.ndarray:
    x = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError("expected a 1-D finite mono signal")
    return x


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) if x.size else 0.0


def _unit_rms(x: np.ndarray) -> np.ndarray:
    """`x` scaled to unit RMS; all-zero `x` stays zero."""
    rms = _rms(x)
    return x / rms if rms > 0 else x


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """Frequencies are perceived on a log scale: draw them uniformly there."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Crop the end, or pad it with silence, to `n` samples."""
    return x[:n] if x.size >= n else np.pad(x, (0, n - x.size))


def _peak_safe(x: np.ndarray) -> np.ndarray:
    """float32 with peak <= 1: scale down (a gain, which the model must not care about)."""
    peak = np.max(np.abs(x))
    return (x / peak if peak > 1.0 else x).astype(np.float32)


# --- Log-mel patches ----------------------------------------------------------------------


def augment_batch(
    patches: np.ndarray,
    *,
    rng: np.random.Generator,
    others: np.ndarray | None = None,
    settings: PatchAugment = PATCH_AUGMENT,
) -> np.ndarray:
    """Augment log-mel patches ``(batch, n_mels, n_frames)`` in dB, vectorised over the batch.

    In order: circular time shift (the live analyzer's windows start anywhere in a bar),
    mixing with a random patch of `others` in the power domain (another sound in the room:
    ``10 log10(10**(a/10) + g 10**(b/10))``, which never lowers a bin), a gain offset (the
    features use a fixed dB reference, so input level shows up as an offset), a smooth
    random EQ curve over the bands (another soundfont or speaker), then time
    and frequency masks filled with each patch's mean (see `PatchAugment` for why).

    Parameters
    ----------
    patches : numpy.ndarray
        Shape ``(batch, n_mels, n_frames)``, values in dB.
    rng : numpy.random.Generator
        The only source of randomness.
    others : numpy.ndarray, optional
        Patches ``(k, n_mels, n_frames)`` to mix in, e.g. background recordings or the
        batch itself. The mixed patch sits `settings.mix_snr_db` below in mean power, so
        the label of the main patch stays right. None: no mixing.
    settings : PatchAugment
        Probabilities and ranges.

    Returns
    -------
    numpy.ndarray
        float32, the shape of `patches`.
    """
    s = settings
    x = np.asarray(patches, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"expected (batch, n_mels, n_frames), got shape {x.shape}")
    batch, n_mels, n_frames = x.shape
    rows = np.arange(batch)[:, None]

    shifts = rng.integers(-s.max_shift_frames, s.max_shift_frames + 1, batch)
    x = x[rows, :, (np.arange(n_frames) - shifts[:, None]) % n_frames].transpose(0, 2, 1)

    if others is not None and len(others):
        chosen = np.flatnonzero(rng.random(batch) < s.p_mix)
        other = np.asarray(others)[rng.integers(len(others), size=chosen.size)]
        x[chosen] = mix_power(x[chosen], other, snr_db=rng.uniform(*s.mix_snr_db, chosen.size))

    x = x + rng.uniform(-s.gain_db, s.gain_db, batch)[:, None, None]
    if s.timbre_db > 0 and s.timbre_order > 0:
        x = (
            x
            + timbre_curves(rng, batch, n_mels, peak_db=s.timbre_db, order=s.timbre_order)[
                :, :, None
            ]
        )

    fill = x.mean(axis=(1, 2))
    masked_frames = _random_spans(rng, batch, n_frames, s.time_masks, s.time_mask_frames)
    masked_bands = _random_spans(rng, batch, n_mels, s.freq_masks, s.freq_mask_bands)
    masked = masked_bands[:, :, None] | masked_frames[:, None, :]
    x = np.where(masked, fill[:, None, None], x)
    return x.astype(np.float32)


def augment_patch(
    patch: np.ndarray,
    *,
    rng: np.random.Generator,
    others: np.ndarray | None = None,
    settings: PatchAugment = PATCH_AUGMENT,
) -> np.ndarray:
    """Augment one log-mel patch ``(n_mels, n_frames)`` in dB; see `augment_batch`.

    Cheap enough (about 0.3 ms at 128 x 130, 2 ms when it mixes) to call per item from a
    ``keras.utils.PyDataset`` or a ``tf.numpy_function``.

    Examples
    --------
    >>> patch = np.full((128, 130), -40.0)
    >>> out = augment_patch(patch, rng=np.random.default_rng(0))
    >>> out.shape, out.dtype
    ((128, 130), dtype('float32'))
    """
    return augment_batch(np.asarray(patch)[None], rng=rng, others=others, settings=settings)[0]


def mix_power(patches: np.ndarray, others: np.ndarray, *, snr_db: np.ndarray) -> np.ndarray:
    """Add `others` to `patches` (both ``(batch, ...)`` in dB) as powers, at `snr_db` below.

    Each other patch is scaled so that its mean power is `snr_db` (one value per patch)
    below its partner's, then ``10 log10(10**(a/10) + 10**(b/10))`` is taken. Written as
    ``a + 10 log10(1 + 10**((b - a)/10))`` so that even in floating point no bin can come
    out lower than it went in: adding a sound never removes energy.
    """
    a = np.asarray(patches, dtype=np.float64)
    b = np.asarray(others, dtype=np.float64)
    level = _mean_power_db(a) - _mean_power_db(b) - np.asarray(snr_db)
    level = level.reshape((-1,) + (1,) * (a.ndim - 1))
    return a + np.logaddexp(0.0, (b + level - a) * _DB_TO_NEPER) / _DB_TO_NEPER


def _mean_power_db(x: np.ndarray) -> np.ndarray:
    """Mean power of each patch ``(batch, ...)`` in dB, computed without overflow."""
    axes = tuple(range(1, x.ndim))
    top = x.max(axis=axes, keepdims=True)
    relative = np.mean(10.0 ** ((x - top) / 10.0), axis=axes, keepdims=True)
    return (top + 10.0 * np.log10(relative)).reshape(len(x))


def timbre_curves(
    rng: np.random.Generator, batch: int, n_bands: int, *, peak_db: float, order: int
) -> np.ndarray:
    """Smooth random EQ curves ``(batch, n_bands)`` in dB, each peaking at most `peak_db`.

    A sum of the first `order` cosines over the band index (``cos(pi k b / (B - 1))``,
    k = 1..order, uniform random weights), scaled so that each curve's peak is uniform in
    ``[0, peak_db]``. No constant term: the gain offset is drawn separately.

    Examples
    --------
    >>> curves = timbre_curves(np.random.default_rng(0), 4, 128, peak_db=6.0, order=3)
    >>> curves.shape, bool(np.abs(curves).max() <= 6.0)
    ((4, 128), True)
    """
    k = np.arange(1, order + 1)[:, None]
    basis = np.cos(np.pi * k * np.arange(n_bands)[None, :] / max(n_bands - 1, 1))
    curves = rng.uniform(-1.0, 1.0, (batch, order)) @ basis
    peak = np.abs(curves).max(axis=1, keepdims=True) + 1e-12
    return curves / peak * rng.uniform(0.0, peak_db, (batch, 1))


def _random_spans(
    rng: np.random.Generator, batch: int, size: int, count: int, widths: tuple[int, int]
) -> np.ndarray:
    """Boolean ``(batch, size)``: the union of `count` random spans per row (SpecAugment)."""
    width = rng.integers(widths[0], min(widths[1], size) + 1, (batch, count))
    start = rng.integers(0, size - width + 1)
    index = np.arange(size)[None, None, :]
    inside = (index >= start[..., None]) & (index < (start + width)[..., None])
    return inside.any(axis=1)
