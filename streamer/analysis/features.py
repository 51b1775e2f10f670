"""One definition of the features, two implementations of the same numbers.

`FeatureSpec` holds every parameter that decides what a model sees. A model file carries
it as JSON, so training, offline tagging and the live stream all compute the same frames:

* `BatchExtractor` works on whole signals and is built on librosa (training, tagging).
* `StreamingExtractor` takes blocks of any size and emits each frame exactly once, as soon
  as its window is complete, with numpy/scipy only: no librosa call and no numba JIT on the
  live path, and no recomputation of old frames.

Both follow librosa's framing (`center=True`, constant zero padding of ``n_fft // 2`` on
each side, ``1 + len(y) // hop_length`` frames) and convert power to decibels against a
fixed reference (1.0), never against the clip's own peak: a clip-dependent reference would
make a 3 s patch differ from the same 3 s inside a 30 s file, and a stream from a batch.
Frames are returned time-major, shape ``(n_frames, n_mels)``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from streamer.files import user_cache_dir, write_atomically

FEATURE_SPEC_VERSION = 1
COMPRESSIONS = {"db", "log10_1p_10000"}
"""Mel power to model input: decibels (the genre CNN) or musicnn's ``log10(1 + 10000 x)``.
Model files written before the field existed carry no ``compression``: they mean ``"db"``."""


@dataclass(frozen=True)
class FeatureSpec:
    """Parameters of the log-mel features a model was trained on.

    Parameters
    ----------
    sample_rate : int
        Rate the audio is resampled to before analysis, in Hz.
    n_fft, hop_length : int
        STFT window length and hop, in samples.
    window : str
        Window name understood by `scipy.signal.get_window` (periodic).
    n_mels, fmin, fmax : int, float, float
        Mel filterbank (Slaney scale and area normalisation, as librosa's default).
        ``fmax=None`` means ``sample_rate / 2``.
    power : float
        Exponent of the magnitude spectrogram (2.0 = power).
    amin : float
        Floor applied before the logarithm; silence maps to ``10 * log10(amin)`` dB.
    compression : str
        How mel power becomes the model's input: ``"db"``, decibels against the fixed
        reference 1.0 (the genre CNN), or ``"log10_1p_10000"``, ``log10(1 + 10000 x)``
        (musicnn's taggers, see `COMPRESSIONS`; ``amin`` does not apply there).
    n_mfcc : int
        Number of MFCCs. Nothing computes them from the spec (the descriptors take their
        own 20); the field stays because every model file and hello message carries it.
    patch_frames : int
        Frames in one model input patch (130 frames at the defaults is about 3 s).
    norm_mean, norm_std : tuple of float
        Per-mel-band statistics of the training set, applied by `normalize`. Empty means
        no normalisation (a spec not yet fitted to data).

    Examples
    --------
    >>> spec = FeatureSpec()
    >>> FeatureSpec.from_json(spec.to_json()) == spec
    True
    >>> round(spec.patch_seconds, 2)
    3.02
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    window: str = "hann"
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    power: float = 2.0
    amin: float = 1e-10
    compression: str = "db"
    n_mfcc: int = 20
    patch_frames: int = 130
    norm_mean: tuple[float, ...] = field(default=())
    norm_std: tuple[float, ...] = field(default=())
    version: int = FEATURE_SPEC_VERSION

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate <= 0:
            problems.append("sample_rate must be positive")
        if not 0 < self.hop_length <= self.n_fft:
            problems.append("hop_length must be in 1..n_fft")
        if self.n_mels <= 0 or not 0 < self.n_mfcc <= self.n_mels:
            problems.append("need 0 < n_mfcc <= n_mels")
        if self.patch_frames <= 0:
            problems.append("patch_frames must be positive")
        if self.compression not in COMPRESSIONS:
            problems.append(f"compression must be one of {sorted(COMPRESSIONS)}")
        if len(self.norm_mean) != len(self.norm_std) or len(self.norm_mean) not in (0, self.n_mels):
            problems.append("norm_mean and norm_std must both be empty or have n_mels values")
        if any(s <= 0 for s in self.norm_std):
            problems.append("norm_std values must be positive")
        if self.version != FEATURE_SPEC_VERSION:
            problems.append(f"version {self.version} is not {FEATURE_SPEC_VERSION}")
        if problems:
            raise ValueError("invalid FeatureSpec: " + "; ".join(problems))

    @property
    def frame_seconds(self) -> float:
        """Seconds between two frames."""
        return self.hop_length / self.sample_rate

    @property
    def patch_seconds(self) -> float:
        """Seconds of audio covered by one patch's frame hops."""
        return self.patch_frames * self.frame_seconds

    def with_normalization(self, mean: np.ndarray, std: np.ndarray) -> FeatureSpec:
        """Return a copy carrying per-band statistics measured on training data."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["norm_mean"] = tuple(float(v) for v in mean)
        values["norm_std"] = tuple(float(v) for v in std)
        return FeatureSpec(**values)

    def normalize(self, logmel: np.ndarray) -> np.ndarray:
        """Standardise log-mel frames ``(..., n_mels)`` with the stored statistics."""
        if not self.norm_mean:
            return logmel
        normalized: np.ndarray = (logmel - np.asarray(self.norm_mean)) / np.asarray(self.norm_std)
        return normalized

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["norm_mean"] = list(self.norm_mean)
        data["norm_std"] = list(self.norm_std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"invalid FeatureSpec: unknown keys {unknown}")
        values = dict(data)
        for key in ("norm_mean", "norm_std"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> FeatureSpec:
        return cls.from_json(Path(path).read_text())


def live_thread_limits() -> contextlib.AbstractContextManager[object]:
    """Limit BLAS to one thread for the live path (a context manager).

    The per-hop mel product is small: on two busy cores a multi-threaded BLAS made the
    streaming extractor about 5x slower and erratic (measured: 13.8 vs 2.5 ms per second
    of audio, bench/bench_features.py), so the live path runs it on one thread.
    """
    from threadpoolctl import threadpool_limits

    limits: contextlib.AbstractContextManager[object] = threadpool_limits(limits=1, user_api="blas")
    return limits


def mel_basis(spec: FeatureSpec) -> np.ndarray:
    """The mel filterbank ``(n_mels, 1 + n_fft // 2)`` of `spec`, from librosa."""
    import librosa.filters

    return librosa.filters.mel(
        sr=spec.sample_rate,
        n_fft=spec.n_fft,
        n_mels=spec.n_mels,
        fmin=spec.fmin,
        fmax=spec.fmax,
        dtype=np.float64,
    )


def analysis_kernels(spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """The periodic window and the mel filterbank of `spec`, cached on disk.

    Building them imports scipy.signal and librosa (1.5-2.5 s, measured): too slow for the
    start of a live session, so they are computed once per spec and kept in the user's
    cache folder. A missing, unreadable or stale cache file is simply rebuilt.
    """
    shape = {k: spec.to_dict()[k] for k in ("sample_rate", "n_fft", "window", "n_mels")}
    shape |= {"fmin": spec.fmin, "fmax": spec.fmax}
    key = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]
    path = user_cache_dir() / f"kernels-{key}.npz"
    try:
        with np.load(path) as cached:
            return cached["window"], cached["mel_basis"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass
    import scipy.signal

    window = scipy.signal.get_window(spec.window, spec.n_fft, fftbins=True)
    basis = mel_basis(spec)
    with contextlib.suppress(OSError):  # a read-only home still works, only slower
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, window=window, mel_basis=basis)
        write_atomically(path, buffer.getvalue())
    return window, basis


def compress(mel_power: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """The model's input from mel power, by ``spec.compression``.

    ``"db"``: decibels against the fixed reference 1.0, floored at ``spec.amin``.
    ``"log10_1p_10000"``: musicnn's ``log10(1 + 10000 x)``, computed in the input's own
    precision. (musicnn's own code first rounds the mel to float16, whose product then
    overflows under numpy 2, see ../shared/NOTES.md; the rounding is not reproduced.)
    """
    if spec.compression == "log10_1p_10000":
        compressed: np.ndarray = np.log10(1.0 + 10000.0 * mel_power)
        return compressed
    decibels: np.ndarray = 10.0 * np.log10(np.maximum(mel_power, spec.amin))
    return decibels


MODULATION_BANDS = 8
MODULATION_HZ = ((0.5, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0))
"""The rates at which speech and music move: syllables come at about 4 Hz, and a room's
echo smears them, where held notes and steady beats put their energy elsewhere."""


def modulation(patches: np.ndarray, *, frame_seconds: float) -> np.ndarray:
    """How each patch's spectrum moves in time: the speech/music cue the genre CNN lacks.

    The log-mel bands of each patch ``(n, frames, n_mels)`` are pooled into
    `MODULATION_BANDS` groups; each group's trajectory (mean removed, Hann window) gives its
    power at the modulation rates `MODULATION_HZ`. Returned per patch, shape
    ``(n, 2 * bands * rates + 3)``: the log of each power, each power as a share of its
    group's, then the fraction of frames more than 12 dB under the patch's median peak (the
    pauses between words), the spread of the spectral flux relative to its mean, and the
    mean spread of the groups over time. Cheap next to the CNN (an FFT of 8 x frames).

    Examples
    --------
    >>> import numpy as np
    >>> modulation(np.zeros((2, 130, 128)), frame_seconds=512 / 22050).shape
    (2, 67)
    """
    patches = np.asarray(patches, dtype=np.float64)
    n, frames, mels = patches.shape
    pool, window, rate_bands = _modulation_plan(frames, mels, frame_seconds)
    groups = patches @ pool
    groups -= groups.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(groups * window, axis=1)) ** 2
    by_rate = rate_bands @ power  # (n, rates, groups)
    banded = by_rate.reshape(n, -1)
    shares = (by_rate / (by_rate.sum(axis=1, keepdims=True) + 1e-9)).reshape(n, -1)
    peaks = patches.max(axis=2)
    middle = [frames // 2 - 1, frames // 2] if frames % 2 == 0 else [frames // 2]
    median = np.partition(peaks, middle, axis=1)[:, middle].mean(axis=1, keepdims=True)
    pauses = np.count_nonzero(peaks < median - 12.0, axis=1) / frames
    flux = np.maximum(np.diff(patches, axis=1), 0.0).mean(axis=2)
    flux_spread = flux.std(axis=1) / (flux.mean(axis=1) + 1e-9)
    spread = groups.std(axis=1).mean(axis=1)
    extra = np.stack([pauses, flux_spread, spread], axis=1)
    return np.concatenate([np.log(banded + 1e-6), shares, extra], axis=1)


@functools.lru_cache(maxsize=8)
def _modulation_plan(
    frames: int, mels: int, frame_seconds: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What `modulation` needs per patch shape, made once: the mel-to-group pooling matrix
    ``(mels, bands)``, the Hann window and the FFT-bin-to-rate-band sums ``(rates, bins)``
    (each a matrix product there: the same numbers as group-by-group means and sums, read
    1.7 times faster, as it runs for every hop of every stream)."""
    pool = np.zeros((mels, MODULATION_BANDS))
    for group, members in enumerate(np.array_split(np.arange(mels), MODULATION_BANDS)):
        pool[members, group] = 1.0 / members.size
    bins = np.fft.rfftfreq(frames, frame_seconds)
    rate_bands = np.stack([(bins >= low) & (bins < high) for low, high in MODULATION_HZ])
    return pool, np.hanning(frames)[None, :, None], rate_bands.astype(np.float64)


class BatchExtractor:
    """Features of whole signals, built on librosa (training and offline tagging).

    Examples
    --------
    >>> import numpy as np
    >>> spec = FeatureSpec()
    >>> y = np.zeros(spec.sample_rate, dtype=np.float32)
    >>> BatchExtractor(spec).logmel(y).shape
    (44, 128)
    """

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec

    def logmel(self, y: np.ndarray) -> np.ndarray:
        """Log-mel frames ``(1 + len(y) // hop_length, n_mels)`` of mono `y` (see `compress`)."""
        import librosa

        spec = self.spec
        power = librosa.feature.melspectrogram(
            y=np.asarray(y, dtype=np.float64),
            sr=spec.sample_rate,
            n_fft=spec.n_fft,
            hop_length=spec.hop_length,
            window=spec.window,
            center=True,
            pad_mode="constant",
            power=spec.power,
            n_mels=spec.n_mels,
            fmin=spec.fmin,
            fmax=spec.fmax,
        )
        frames: np.ndarray = compress(power, spec).T  # (frames, n_mels), as the stream
        return frames


class StreamingExtractor:
    """Online log-mel frames: push blocks of any size, get each new frame exactly once.

    Frame ``t`` covers padded samples ``[t * hop, t * hop + n_fft)``, where the padding is
    ``n_fft // 2`` zeros before the first sample. It is emitted by the `push` call that
    completes its window. `finish` appends the trailing padding and emits the last frames,
    so a finished stream yields the frames of `BatchExtractor.logmel`: the same definition,
    computed in float32 (audio arrives as float32; a quarter less time than float64, and
    within 1e-5 dB of the batch frames, checked by the tests to 1e-4 dB). A
    `streamer.chain.Processor`: `reset` begins another stream.

    Parameters
    ----------
    spec : FeatureSpec
        The feature definition.
    max_block : int
        Samples analysed per internal step; larger pushes are processed in steps so memory
        stays bounded whatever the caller's block size.

    Examples
    --------
    >>> import numpy as np
    >>> spec = FeatureSpec()
    >>> stream = StreamingExtractor(spec)
    >>> stream.push(np.zeros(1000, dtype=np.float32)).shape  # window not complete yet
    (0, 128)
    >>> stream.push(np.zeros(1000, dtype=np.float32)).shape
    (2, 128)
    """

    def __init__(self, spec: FeatureSpec, *, max_block: int = 65536) -> None:
        self.spec = spec
        self._max_block = max(max_block, spec.hop_length)
        import scipy.fft  # here, not when the command line starts

        self._rfft = scipy.fft.rfft
        window, basis = analysis_kernels(spec)
        self._window = window.astype(np.float32)
        self._mel_basis_t = np.ascontiguousarray(basis.T, dtype=np.float32)
        self._buffer = np.empty(spec.n_fft + self._max_block, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next `push` begins a new one, after the leading padding."""
        self._pending = self.spec.n_fft // 2  # the leading zero padding is known in advance
        self._buffer[: self._pending] = 0.0
        self.frames_emitted = 0
        self._finished = False

    def push(self, block: np.ndarray) -> np.ndarray:
        """Add mono samples; return the log-mel frames ``(k, n_mels)`` they complete."""
        if self._finished:
            raise RuntimeError("push after finish: reset or create a new StreamingExtractor")
        block = np.asarray(block).reshape(-1)
        out = [self._empty()]
        for start in range(0, block.size, self._max_block):
            out.append(self._consume(block[start : start + self._max_block]))
        return np.concatenate(out) if len(out) > 2 else out[-1]

    def finish(self) -> np.ndarray:
        """End the stream: add the trailing zero padding and return the last frames."""
        frames = self.push(np.zeros(self.spec.n_fft // 2))
        self._finished = True
        return frames

    def _empty(self) -> np.ndarray:
        return np.empty((0, self.spec.n_mels))

    def _consume(self, chunk: np.ndarray) -> np.ndarray:
        spec = self.spec
        end = self._pending + chunk.size
        self._buffer[self._pending : end] = chunk
        self._pending = end
        if end < spec.n_fft:
            return self._empty()
        n_frames = (end - spec.n_fft) // spec.hop_length + 1
        step = self._buffer.strides[0]
        windows = np.lib.stride_tricks.as_strided(  # no copy: frame t starts at t * hop
            self._buffer, shape=(n_frames, spec.n_fft), strides=(spec.hop_length * step, step)
        )
        frames = windows * self._window
        spectrum = np.abs(self._rfft(frames, axis=1)) ** spec.power
        logmel = compress(spectrum @ self._mel_basis_t, spec)
        consumed = n_frames * spec.hop_length
        keep = end - consumed
        self._buffer[:keep] = self._buffer[consumed:end].copy()
        self._pending = keep
        self.frames_emitted += n_frames
        return logmel
