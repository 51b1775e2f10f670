"""Audio sources behind one interface: a live input device, or a file.

Every source delivers mono float32 samples at the feature sample rate, in chunks, through
`AudioSource.read`. The device source does the least possible work in the PortAudio
callback (downmix into a preallocated ring buffer); reading, resampling and everything
else happen on the consumer's thread.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import numpy as np
import soxr

from streamer.errors import StreamerError
from streamer.ringbuffer import RingBuffer

AUDIO_FORMATS = "wav, flac, ogg or mp3"
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus"})
"""Extensions of the files soundfile (libsndfile) decodes: what a folder scan picks up."""
NO_INPUT_DEVICE = (
    "no audio input device found: connect a microphone or line-in (and check that "
    "PulseAudio/ALSA sees it), or analyse a file with `streamer listen --file PATH`; "
    'no sound card: see "Without a sound card" in README.md'
)


def import_sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio library into a clear error."""
    try:
        import sounddevice
    except OSError as error:
        raise StreamerError(
            f"PortAudio is not installed ({error}): install it with "
            "`apt-get install libportaudio2` (Debian/Ubuntu) and try again"
        ) from None
    return sounddevice


MAX_SAMPLE = 1000.0
"""Beyond this magnitude (60 dB over full scale) a float sample is not audio but a corrupt
file or driver: it would overflow the features, and it is treated like a NaN."""


class AudioSource(ABC):
    """A stream of mono float32 samples at `sample_rate`, all of them finite and sane.

    A NaN or infinite sample, or one beyond `MAX_SAMPLE` (a broken float file, a faulty
    driver), is replaced by 0 as soon as it is read, before the resampler (which would
    smear it over its filter length) and the analysis see it, and counted in
    `invalid_samples`: the input is analysed as if those samples were silence, and the
    caller says so once.
    """

    sample_rate: int
    description: str
    _invalid = 0

    @property
    def invalid_samples(self) -> int:
        """Input samples replaced by 0 so far (NaN, infinite or beyond `MAX_SAMPLE`)."""
        return self._invalid

    def _usable(self, samples: np.ndarray) -> np.ndarray:
        """`samples` with every NaN, +-Inf and magnitude beyond `MAX_SAMPLE` set to 0 (in
        place), counted."""
        bad = ~(np.abs(samples) <= MAX_SAMPLE)  # NaN compares False: bad too
        count = int(np.count_nonzero(bad))
        if count:
            samples[bad] = 0.0
            self._invalid += count
        return samples

    @property
    def overflow_samples(self) -> int:
        """Samples lost because the consumer fell behind (0 where nothing can be lost)."""
        return 0

    @property
    def overflow_events(self) -> int:
        """Times the input reported or suffered an overflow."""
        return 0

    @property
    def backlog_seconds(self) -> float:
        """Audio captured but not read yet (part of the live latency)."""
        return 0.0

    @property
    def input_lost(self) -> bool:
        """True while the input is gone (a device unplugged); `read` then gives silence."""
        return False

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def read(self, timeout: float = 0.1, *, min_samples: int = 1) -> np.ndarray | None:
        """Return the next samples; empty if none came within `timeout`, None at the end.

        A source may hold samples back until it has `min_samples` (at `sample_rate`): the
        reader wakes once per hop instead of once per device block, and each wake-up costs
        more than the work it does (measured: `DeviceSource`).
        """

    def __enter__(self) -> AudioSource:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- input devices -----------------------------------------------------------------------


@dataclass(frozen=True)
class InputDevice:
    """An input device as PortAudio lists it."""

    index: int
    name: str
    host_api: str
    channels: int
    default_rate: float
    is_default: bool


def list_input_devices() -> list[InputDevice]:
    """All devices with at least one input channel."""
    sd = import_sounddevice()
    default_index = sd.default.device[0]
    host_apis = sd.query_hostapis()
    return [
        InputDevice(
            index=info["index"],
            name=info["name"],
            host_api=host_apis[info["hostapi"]]["name"],
            channels=info["max_input_channels"],
            default_rate=info["default_samplerate"],
            is_default=info["index"] == default_index,
        )
        for info in sd.query_devices()
        if info["max_input_channels"] > 0
    ]


def find_input_device(device: int | str | None) -> InputDevice:
    """Pick an input device by index, by (case-insensitive) name substring, or the default.

    An exact name wins over substring matches; several substring matches are an error,
    so that a recording never silently comes from the wrong input.
    """
    devices = list_input_devices()
    if not devices:
        raise StreamerError(NO_INPUT_DEVICE)
    if device is None:
        return next((d for d in devices if d.is_default), devices[0])
    if isinstance(device, int) or device.strip().isdigit():
        index = int(device)
        for candidate in devices:
            if candidate.index == index:
                return candidate
        raise StreamerError(
            f"device {index} is not an input device: use an index that `streamer devices` lists"
        )
    wanted = device.strip().lower()
    exact = [d for d in devices if d.name.lower() == wanted]
    matches = exact or [d for d in devices if wanted in d.name.lower()]
    if not matches:
        raise StreamerError(
            f"no input device matches {device!r}: run `streamer devices` to see the names"
        )
    if len(matches) > 1:
        names = ", ".join(f"{d.index}: {d.name}" for d in matches)
        raise StreamerError(
            f"{device!r} matches several input devices ({names}): give the index or a longer name"
        )
    return matches[0]


CALLBACK_SECONDS = 0.1
"""Audio per PortAudio callback. Left to PortAudio (blocksize 0), a PulseAudio input
called back every few milliseconds and `streamer listen` spent 18 % of a core; with 30 ms
blocks 6.8 %; with 100 ms blocks and reads that wait for a hop of samples 3.1 % (measured
on a null sink, per thread: analysis 1.4 %, libpulse 1.0 %, PortAudio callbacks 0.7 %).
Capture latency is one block at most, a fifth of the 0.5 s hop."""


class DeviceSource(AudioSource):
    """Live capture from a PortAudio input, in callback mode, that survives losing it.

    The input is lost when its stream ends by itself (PortAudio stops it when the device
    reports an error: unplugged, or the sound server went away) or delivers nothing for
    `stall_seconds`. While lost, `read` hands out digital silence at the pace of the wall
    clock, so the stream clock keeps time through the gap, and every `retry_seconds` it
    re-enumerates the devices (PortAudio lists them only when initialised) and reopens the
    same device; the input is back with the first samples of the new stream. All of this
    runs on the reader's thread: the callback never sees it.

    Samples lost because the ring was full (the reader fell behind: the machine was busy)
    are counted by the ring, and `read` puts as many zeros where they were lost (after
    what the ring held), so that the stream clock stays on the device's time.

    Parameters
    ----------
    sample_rate : int
        Rate delivered to the caller; the device's samples are resampled (soxr) when the
        device runs at another rate.
    device : int, str or None
        Index, name substring, or None for the default input. After a loss the device is
        looked for again by its full name (or as the default input).
    device_rate : float or None
        Rate to open the device at; None uses the device's default rate.
    channels : int or None
        Channels to capture (downmixed to mono); None takes up to two.
    ring_seconds : float
        Capacity of the ring buffer between callback and consumer.
    stall_seconds : float
        No samples for this long means the input is lost. A working device calls back
        every `CALLBACK_SECONDS`; a fresh PulseAudio null sink took 1.7 s for its first.
    retry_seconds : float
        Time between two attempts to reopen a lost input.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        device: int | str | None = None,
        device_rate: float | None = None,
        channels: int | None = None,
        ring_seconds: float = 10.0,
        stall_seconds: float = 3.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self._sd = import_sounddevice()
        self.sample_rate = sample_rate
        self.stall_seconds = stall_seconds
        self.retry_seconds = retry_seconds
        self._requested = (device_rate, channels)
        self._configure(device)
        self._wanted = None if device is None else self.device.name
        self._ring = RingBuffer(int(ring_seconds * self.device_rate))
        self.status_overflows = 0
        self._overflow_filled = 0  # ring overflow samples already replaced by zeros
        self._stream: Any = None
        self._last_samples_at = 0.0  # monotonic time samples last came (or the stream opened)
        self._lost_since: float | None = None  # when the last samples before a loss came
        self._gap_samples = 0  # silence handed out since then
        self._next_retry = 0.0

    def _configure(self, device: int | str | None) -> None:
        """Find the device, settle rate and channels, check them; a new resampler."""
        device_rate, channels = self._requested
        self.device = find_input_device(device)
        self.device_rate = float(device_rate or self.device.default_rate)
        self.channels = channels or min(self.device.channels, 2)
        self.description = f"{self.device.name} ({self.device.host_api}) at {self.device_rate:g} Hz"
        self._check_settings()
        self._resampler = soxr.ResampleStream(
            self.device_rate, self.sample_rate, 1, dtype="float32", quality="HQ"
        )
        self._ratio = self.device_rate / self.sample_rate  # device samples per output sample

    def _check_settings(self) -> None:
        try:
            self._sd.check_input_settings(
                device=self.device.index,
                channels=self.channels,
                samplerate=self.device_rate,
                dtype="float32",
            )
        except self._sd.PortAudioError as error:
            if self._requested[0] is not None:
                advice = f"omit --device-rate to use its default {self.device.default_rate:g} Hz"
            else:
                advice = "pick another input with --device (see `streamer devices`)"
            raise StreamerError(
                f"{self.device.name!r} refuses {self.channels} channel(s) at "
                f"{self.device_rate:g} Hz ({error.args[0]}): {advice}"
            ) from None
        except ValueError as error:
            raise StreamerError(f"{self.device.name!r}: {error}") from None

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Runs on PortAudio's thread: no allocation of buffers, no lock, no I/O.
        if status.input_overflow:
            self.status_overflows += 1
        self._ring.write(indata)

    @property
    def overflow_samples(self) -> int:
        return self._ring.overflow_samples

    @property
    def overflow_events(self) -> int:
        return self._ring.overflow_events + self.status_overflows

    @property
    def backlog_seconds(self) -> float:
        return self._ring.available / self.device_rate

    @property
    def input_lost(self) -> bool:
        return self._lost_since is not None

    def start(self) -> None:
        try:
            self._stream = self._sd.InputStream(
                device=self.device.index,
                channels=self.channels,
                samplerate=self.device_rate,
                dtype="float32",
                latency="low",
                blocksize=round(CALLBACK_SECONDS * self.device_rate),
                callback=self._callback,
            )
            self._stream.start()
        except self._sd.PortAudioError as error:
            self.stop()
            raise StreamerError(
                f"cannot open {self.device.name!r} ({error.args[0]}): check that no other "
                "program holds it exclusively, or pick another input with --device"
            ) from None
        self._last_samples_at = time.monotonic()

    def stop(self) -> None:
        """Close the stream; what a dead device answers on the way out changes nothing."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            with contextlib.suppress(self._sd.PortAudioError):
                stream.stop()
            with contextlib.suppress(self._sd.PortAudioError):
                stream.close()

    def read(self, timeout: float = 0.1, *, min_samples: int = 1) -> np.ndarray:
        """Samples once the ring holds `min_samples` after resampling, else empty at
        `timeout`; silence at the wall clock's pace while the input is lost."""
        if self._stream is None and time.monotonic() >= self._next_retry:
            self._reopen()
        # Device samples that give `min_samples` after the resampler's delay (which soxr only
        # knows after its first input: the first read may come out a little short).
        wanted = 1
        if min_samples > 1:
            wanted = math.ceil((min_samples + self._resampler.delay()) * self._ratio)
        deadline = time.monotonic() + timeout
        while (missing := wanted - self._ring.available) > 0 and (
            now := time.monotonic()
        ) < deadline:
            # Sleep until the missing samples should be there: a wake-up or two per hop,
            # not one every few milliseconds (each cost more than the work it found).
            pause = max(missing / self.device_rate, CALLBACK_SECONDS / 4)
            time.sleep(min(pause, deadline - now))
        now = time.monotonic()
        if self._ring.available:
            self._last_samples_at = now
            self._lost_since = None  # samples again: the input is back (or was never lost)
        if self._ring.available >= wanted:
            return self._resampler.resample_chunk(self._read_ring())
        if self._ring.available:
            return np.empty(0, dtype=np.float32)  # not a hop's worth yet: keep it for later
        if self._stream is not None and (
            not self._stream.active or now - self._last_samples_at > self.stall_seconds
        ):
            return self._lose()
        if self._lost_since is None:
            return np.empty(0, dtype=np.float32)
        due = round((now - self._lost_since) * self.sample_rate) - self._gap_samples
        self._gap_samples += due
        return np.zeros(due, dtype=np.float32)

    def _read_ring(self) -> np.ndarray:
        """What the ring holds, then zeros for the samples that overflowed it meanwhile.

        The ring drops what does not fit, so whatever it lost came after all it holds.
        """
        block = self._usable(self._ring.read())  # here, never in the callback
        lost = self._ring.overflow_samples - self._overflow_filled
        if not lost:
            return block
        self._overflow_filled += lost
        return np.concatenate([block, np.zeros(lost, dtype=block.dtype)])

    def _lose(self) -> np.ndarray:
        """Close the dead stream; on a first loss, start the gap and flush the resampler."""
        self.stop()
        self._next_retry = time.monotonic() + self.retry_seconds
        if self._lost_since is not None:  # a reopened stream that never delivered
            return np.empty(0, dtype=np.float32)
        self._lost_since, self._gap_samples = self._last_samples_at, 0
        return self._resampler.resample_chunk(np.empty(0, dtype=np.float32), last=True)

    def _reopen(self) -> None:
        """Enumerate the devices again and reopen ours; it stays lost if that fails."""
        self._next_retry = time.monotonic() + self.retry_seconds
        with contextlib.suppress(StreamerError, self._sd.PortAudioError):
            self._sd._terminate()
            self._sd._initialize()
            self._configure(self._wanted)
            self.start()


# --- files -------------------------------------------------------------------------------


SFE_BAD_FILE = 7
"""libsndfile's "File does not exist or is not a regular file (possibly a pipe?)", which its
MPEG decoder also returns for a regular file in which libmpg123 finds no audio frames."""


@contextlib.contextmanager
def _decoder_stderr_held() -> Iterator[None]:
    """Send what C libraries print on stderr to nowhere while a file is opened.

    libmpg123 prints "Note: Illegal Audio-MPEG-Header ..." lines for a file it refuses,
    around the one line that `open_sound_file` raises. The open is short: at worst one
    refresh of a progress bar is lost. (What a decoder prints later, reading a file damaged
    in the middle, still shows: the read is long, and the bar draws on the same stderr.)
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_sound_file(path: str | Path) -> Any:
    """Open `path` with soundfile, or raise a one-line error saying what is wrong."""
    import soundfile

    path = Path(path)
    give = f"give a {AUDIO_FORMATS} file"
    if path.is_dir():
        raise StreamerError(f"{path}: a folder, not an audio file: {give}")
    if not path.exists():
        raise StreamerError(f"{path}: no such file")
    if not path.is_file():
        raise StreamerError(f"{path}: not a regular file (a pipe or a device?): {give}")
    if path.stat().st_size == 0:
        raise StreamerError(f"{path}: the file is empty: {give}")
    try:
        with _decoder_stderr_held():
            sound = soundfile.SoundFile(path)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        if getattr(error, "code", None) == SFE_BAD_FILE:  # a regular file: see SFE_BAD_FILE
            reason = f"{path.suffix.lstrip('.').lower()} decoder: no audio frames found"
        else:
            reason = str(error).split(":")[-1].strip().rstrip(".") or "unknown format"
        raise StreamerError(f"{path}: not a readable audio file ({reason}): {give}") from None
    if sound.frames == 0:
        sound.close()
        raise StreamerError(f"{path}: the file holds no audio samples")
    return sound


def downmix(frames: np.ndarray) -> np.ndarray:
    """Mono float32 from ``(n, channels)`` frames: the channels' mean, as a matrix-vector
    product (8 times faster than ``mean(axis=1)`` on interleaved stereo, measured)."""
    channels = frames.shape[1]
    return frames @ np.full(channels, 1.0 / channels, dtype=np.float32)


def read_audio(path: str | Path, *, sample_rate: int) -> np.ndarray:
    """Decode a whole file to mono float32 at `sample_rate` (batch use: training, tagging)."""
    with open_sound_file(path) as sound:
        data = sound.read(dtype="float32", always_2d=True)
        rate = sound.samplerate
    mono = downmix(data)
    if rate == sample_rate:
        return mono
    return soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32, copy=False)


class FileSource(AudioSource):
    """A file decoded block by block, either paced in real time or as fast as possible.

    Paced, it stands in for a line-in: `read` hands out samples no faster than the clock
    allows, so the rest of the pipeline sees the timing of a live input.

    Parameters
    ----------
    path : str or Path
        Any file soundfile decodes (wav, flac, ogg, mp3, ...).
    sample_rate : int
        Rate delivered to the caller (the file is resampled with soxr when it differs).
    realtime : bool
        Pace delivery by the wall clock.
    block_seconds : float
        Size of one decoded block.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sample_rate: int,
        realtime: bool = False,
        block_seconds: float = 0.1,
    ) -> None:
        self.path = Path(path)
        self._sound = open_sound_file(self.path)
        self.sample_rate = sample_rate
        self.realtime = realtime
        self.file_rate = self._sound.samplerate
        self.description = (
            f"{self.path.name} ({self.file_rate} Hz{', real time' if realtime else ''})"
        )
        self._block = max(1, int(block_seconds * self.file_rate))
        self._resampler = soxr.ResampleStream(
            self.file_rate, sample_rate, 1, dtype="float32", quality="HQ"
        )
        self._decoded = 0  # file-rate samples handed on
        self._started_at = 0.0
        self._ended = False

    @property
    def duration(self) -> float:
        """Seconds of audio in the file."""
        return self._sound.frames / self.file_rate

    def start(self) -> None:
        self._started_at = time.monotonic()

    def stop(self) -> None:
        self._sound.close()

    def read(self, timeout: float = 0.1, *, min_samples: int = 1) -> np.ndarray | None:
        if self._ended:
            return None
        if self.realtime:
            due = (time.monotonic() - self._started_at) * self.file_rate
            wait = (self._decoded + self._block - due) / self.file_rate
            if wait > timeout:
                time.sleep(timeout)
                return np.empty(0, dtype=np.float32)
            time.sleep(max(wait, 0.0))
        block = self._usable(self._sound.read(self._block, dtype="float32", always_2d=True))
        self._decoded += block.shape[0]
        last = block.shape[0] < self._block
        self._ended = last
        return self._resampler.resample_chunk(downmix(block), last=last)
