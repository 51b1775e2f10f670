"""From samples to the model's view of each hop: one processor for live and offline use.

`HopAnalyzer` takes mono samples in blocks of any size and, every hop of audio, runs the
model on the patch of the most recent frames. Hop boundaries are fixed in samples from the
start of the stream, and a block is split at each boundary, so the hops, their times and
their patches do not depend on how the audio was cut into blocks: a file pushed in one
piece gives the same hops as the same file captured live (madmom's online == offline).
It is a `streamer.chain.Processor`, the first stage of `streamer.chain.GenreChain`.

The first hop comes as soon as one patch of audio has been heard, at sample
``(patch_frames - 1) * hop_length + n_fft - n_fft // 2`` (the first moment ``patch_frames``
frames are complete); the following ones every ``hop_seconds``. A hop's ``time`` is the
stream time of its boundary: the end of the audio its patch saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamer.analysis.features import StreamingExtractor, modulation
from streamer.analysis.inference import Inference, Steps, run_inline
from streamer.analysis.model import GenreModel
from streamer.errors import StreamerError


@dataclass(frozen=True)
class Hop:
    """The model's output for the patch that ends at `time` (stream seconds)."""

    index: int
    time: float
    probabilities: np.ndarray
    embedding: np.ndarray
    level_dbfs: float  # RMS level of this hop's own audio (the last hop_seconds)
    modulation: np.ndarray  # how the patch's spectrum moves (`features.modulation`)


def level_dbfs(sum_squares: float, count: int) -> float:
    """RMS level in dB relative to full scale, floored at -100 dBFS."""
    return float(rms_dbfs(np.sqrt(sum_squares / count) if count else 0.0))


def rms_dbfs(rms: float | np.ndarray) -> np.ndarray:
    """RMS values (one, or an array of them) in dBFS, floored at -100 dBFS."""
    return 20 * np.log10(np.maximum(rms, 1e-5))


class HopAnalyzer:
    """Samples in; every hop, class probabilities and embedding of the latest patch.

    Parameters
    ----------
    model : GenreModel
        The model; its FeatureSpec defines the features and the patch.
    hop_seconds : float
        Audio between two analyses; rounded to whole samples.
    """

    def __init__(self, model: GenreModel, *, hop_seconds: float = 0.5) -> None:
        spec = model.spec
        self.model = model
        self.spec = spec
        self.hop_samples = max(1, round(hop_seconds * spec.sample_rate))
        self.hop_seconds = self.hop_samples / spec.sample_rate
        self._extractor = StreamingExtractor(spec)
        # Twice the patch, so appending never reallocates: frames shift down when full.
        self._frames = np.empty((2 * spec.patch_frames, spec.n_mels))
        self._first_boundary = (
            (spec.patch_frames - 1) * spec.hop_length + spec.n_fft - spec.n_fft // 2
        )
        self.first_hop_seconds = self._first_boundary / spec.sample_rate
        """Audio heard before the first hop: shorter input gives no analysis at all."""
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next `push` begins a new one at sample 0."""
        self._extractor.reset()
        self._filled = 0
        self._samples = 0
        self._next_boundary = self._first_boundary
        self._sum_squares = 0.0
        self._hops = 0
        self._finished = False

    @property
    def samples(self) -> int:
        """Samples pushed so far: the stream clock."""
        return self._samples

    @property
    def samples_to_next_hop(self) -> int:
        """Samples still to push before the next hop is analysed."""
        return self._next_boundary - self._samples

    @property
    def window_seconds(self) -> float:
        """Audio a patch sees."""
        return self.spec.patch_frames * self.spec.frame_seconds

    def too_short(self, path: str | Path, *, seconds: float) -> StreamerError:
        """The one-line error for a file shorter than `first_hop_seconds`, for every command."""
        return StreamerError(
            f"{path}: too short ({seconds:.1f} s): the model needs "
            f"{self.first_hop_seconds:.1f} s of audio; give a longer file"
        )

    def push(self, samples: np.ndarray) -> list[Hop]:
        """Add samples; return the hops they complete (usually none or one live)."""
        return run_inline(self.steps(samples))

    def steps(self, samples: np.ndarray) -> Steps[list[Hop]]:
        """`push` as requests to the model (`streamer.analysis.inference`)."""
        if self._finished:
            raise RuntimeError("push after finish: reset the HopAnalyzer for a new stream")
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        patches: list[np.ndarray] = []
        pending: list[tuple[int, float]] = []
        start = 0
        while start < samples.size:
            piece = samples[start : start + self._next_boundary - self._samples]
            start += piece.size
            self._consume(piece)
            if self._samples == self._next_boundary:
                patches.append(
                    self._frames[self._filled - self.spec.patch_frames : self._filled].copy()
                )
                pending.append((self._hops, level_dbfs(self._sum_squares, self.hop_samples)))
                self._hops += 1
                self._sum_squares = 0.0
                self._next_boundary += self.hop_samples
        if not patches:
            return []
        stacked = np.stack(patches)
        probabilities, embeddings = yield Inference(self.model, stacked)
        moving = modulation(stacked, frame_seconds=self.spec.frame_seconds)
        rate = self.spec.sample_rate
        first = self._next_boundary - self.hop_samples * len(pending)
        return [
            Hop(index, (first + i * self.hop_samples) / rate, p, e, level, m)
            for i, ((index, level), p, e, m) in enumerate(
                zip(pending, probabilities, embeddings, moving, strict=True)
            )
        ]

    def finish(self) -> list[Hop]:
        """End the stream; return no hop: one is analysed only at its boundary.

        The samples after the last boundary (less than a hop) count in `samples` but are
        never analysed, so where a stream stops changes none of its hops.
        """
        self._finished = True
        return []

    def _consume(self, piece: np.ndarray) -> None:
        # The level counts only the samples of the hop that ends at the next boundary.
        counted_from = max(0, self._next_boundary - self.hop_samples - self._samples)
        tail = piece[counted_from:]
        self._sum_squares += float(np.dot(tail, tail))
        self._samples += piece.size
        frames = self._extractor.push(piece)
        for first in range(0, len(frames), self.spec.patch_frames):
            self._append(frames[first : first + self.spec.patch_frames])

    def _append(self, frames: np.ndarray) -> None:
        """Append at most patch_frames frames, shifting the latest patch down when full."""
        n = len(frames)
        capacity = len(self._frames)
        if self._filled + n > capacity:
            keep = self.spec.patch_frames - n
            self._frames[:keep] = self._frames[self._filled - keep : self._filled]
            self._filled = keep
        self._frames[self._filled : self._filled + n] = frames
        self._filled += n
