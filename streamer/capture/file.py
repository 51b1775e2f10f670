"""Audio files: opening them with a clear word for what is wrong, decoding them whole, and
a source that decodes block by block, paced like a line-in or as fast as possible."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from streamer.capture.source import AudioSource
from streamer.errors import StreamerError

AUDIO_FORMATS = "wav, flac, ogg or mp3"
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus"})
"""Extensions of the files soundfile (libsndfile) decodes: what a folder scan picks up."""


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
    resampled: np.ndarray = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return resampled.astype(np.float32, copy=False)


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
        self.file_rate: int = self._sound.samplerate
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
        frames: int = self._sound.frames
        return frames / self.file_rate

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
        resampled: np.ndarray = self._resampler.resample_chunk(downmix(block), last=last)
        return resampled
