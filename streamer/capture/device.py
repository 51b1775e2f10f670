"""Live capture from an input device: choosing it, and a source that survives losing it.

The PortAudio callback does the least possible work (downmix into a preallocated ring
buffer); reading, resampling and everything else happen on the consumer's thread.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import soxr

from streamer.capture.loss import InputWatch
from streamer.capture.ringbuffer import RingBuffer
from streamer.capture.source import AudioSource
from streamer.errors import StreamerError

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
    module: ModuleType = sounddevice
    return module


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
    runs on the reader's thread: the callback never sees it. The rule itself is
    `streamer.capture.loss.InputWatch`, which this class tells what happens and when.

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
        self._watch = InputWatch(
            sample_rate=sample_rate, stall_seconds=stall_seconds, retry_seconds=retry_seconds
        )
        self._requested = (device_rate, channels)
        self._configure(device)
        self._wanted = None if device is None else self.device.name
        self._ring = RingBuffer(int(ring_seconds * self.device_rate))
        self.status_overflows = 0
        self._stream: Any = None
        self._kept = 0  # samples left in the ring by the last read
        self._handed_out = 0  # samples `read` gave: the stream clock
        # The last read from the ring: clock, ring index, device samples, samples given.
        self._last_block = (0, 0, 0, 0)

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
        return self._watch.lost

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
        self._watch.opened(now=time.monotonic())

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
        block = self._take(timeout, min_samples)
        self._handed_out += block.size
        return block

    def arrived_at(self, sample: int) -> float | None:
        # An output sample of the last read is placed among the device samples it came
        # from in proportion (within the resampler's delay, a few milliseconds).
        clock, first, count, size = self._last_block
        offset = sample - clock
        if not 0 <= offset < size or not count:
            return None
        return self._ring.arrived_at(first + min(count - 1, offset * count // size))

    def _take(self, timeout: float, min_samples: int) -> np.ndarray:
        if self._stream is None and self._watch.retry(now=time.monotonic()):
            self._reopen()
        # Device samples that give `min_samples` after the resampler's delay (which soxr only
        # knows after its first input: the first read may come out a little short).
        wanted = 1
        if min_samples > 1:
            wanted = math.ceil((min_samples + self._resampler.delay()) * self._ratio)
        self._ring.wait_for(
            wanted, timeout=timeout, rate=self.device_rate, shortest=CALLBACK_SECONDS / 4
        )
        now = time.monotonic()
        available = self._ring.available
        if available > self._kept:  # new samples, not only those kept from the last read
            self._watch.arrived(now=now)
        if available >= wanted:
            self._kept = 0
            first = self._ring.consumed
            block = self._resample(self._read_ring())
            self._last_block = (self._handed_out, first, self._ring.consumed - first, block.size)
            return block
        self._kept = available
        if self._stream is not None and self._watch.stalled(now=now, active=self._stream.active):
            return self._lose()
        if available:
            return np.empty(0, dtype=np.float32)  # not a hop's worth yet: keep it for later
        return np.zeros(self._watch.silence(now=now), dtype=np.float32)

    def _resample(self, samples: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Device-rate samples to the caller's rate (soxr keeps its filter state across calls)."""
        resampled: np.ndarray = self._resampler.resample_chunk(samples, last=last)
        return resampled

    def _read_ring(self) -> np.ndarray:
        """What the ring holds, with zeros where it overflowed, checked here (never in the
        callback) for what is not audio."""
        return self._usable(self._ring.read_filled())

    def _lose(self) -> np.ndarray:
        """Close the dead stream; on a first loss, flush the resampler (the gap starts)."""
        self.stop()  # the next retry counts from when a dead device let go
        if not self._watch.lose(now=time.monotonic()):  # a reopened stream that never delivered
            return np.empty(0, dtype=np.float32)
        self._kept = 0
        return self._resample(self._read_ring(), last=True)

    def _reopen(self) -> None:
        """Enumerate the devices again and reopen ours; it stays lost if that fails."""
        with contextlib.suppress(StreamerError, self._sd.PortAudioError):
            self._sd._terminate()
            self._sd._initialize()
            self._configure(self._wanted)
            self.start()
