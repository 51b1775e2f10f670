"""The one processor interface, and the one chain from samples to genres and segments.

Every stage that turns a stream into a stream follows `Processor`, in the manner of madmom's
online processors: `push` a block of any size and get what it completes, `finish` the
stream and get what its end completes, `reset` to begin another. The stages are
`StreamingExtractor` (samples to log-mel frames), `HopAnalyzer` (samples to the model's
view of each hop) and `GenreTracker` (hops to what is shown, and segments). Each gives the
same outputs however its input was cut into blocks, so a stream pushed live gives what the
same audio gives in one piece.

`GenreChain` is the analyzer then the tracker: `streamer listen` (`streamer.live.engine`)
and `streamer tag` (`streamer.offline.tagging`) both push their samples through it and
differ only in the source and in what they do with its outputs. So a file tags exactly as
it sounds live (tests/test_chain.py, and tests/test_tagging.py on the two commands).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from streamer.analysis.hops import Hop, HopAnalyzer
from streamer.analysis.model import GenreModel
from streamer.tracking import (
    DEFAULT_SMOOTHING,
    GenreTracker,
    Segment,
    SmoothingConfig,
    TrackerUpdate,
)

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)


class Processor(Protocol[In, Out]):
    """A stage of a stream: blocks in, what they complete out, the same for any blocks.

    ``Out`` is what one call returns: a list of outputs (an array of frames for the
    extractor); the tracker returns its updates from `push` and its last segment from
    `finish`, so its ``Out`` holds both.
    """

    def push(self, block: In, /) -> Out:
        """Take the next block of the stream; return the outputs it completes."""
        ...

    def finish(self) -> Out:
        """End the stream; return the outputs its end completes."""
        ...

    def reset(self) -> None:
        """Forget the stream: the next `push` begins a new one."""
        ...


@dataclass(frozen=True)
class TrackedHop:
    """One hop of the chain: the model's view of it and what the tracker shows for it."""

    hop: Hop
    update: TrackerUpdate


class GenreChain:
    """Samples in; every hop, the model's view and the tracker's update; segments at the end.

    Itself a `Processor`: `push` returns the hops a block completes, `finish` the last
    segment; `reset` lets one chain tag file after file.

    Parameters
    ----------
    model : GenreModel
        The model; its FeatureSpec and labels define the analysis.
    hop_seconds : float
        Audio between two analyses (`HopAnalyzer`).
    smoothing : SmoothingConfig
        The tracker's smoothing and silence parameters.
    """

    def __init__(
        self,
        model: GenreModel,
        *,
        hop_seconds: float = 0.5,
        smoothing: SmoothingConfig = DEFAULT_SMOOTHING,
    ) -> None:
        self.analyzer = HopAnalyzer(model, hop_seconds=hop_seconds)
        self.tracker = GenreTracker(
            model.labels, config=smoothing, window_seconds=self.analyzer.window_seconds
        )

    @property
    def seconds(self) -> float:
        """Audio pushed so far: the stream clock, in seconds."""
        return self.analyzer.samples / self.analyzer.spec.sample_rate

    @property
    def segments(self) -> list[Segment]:
        """The segments closed so far, in order; after `finish`, all of the stream."""
        return self.tracker.segments

    def push(self, samples: np.ndarray) -> list[TrackedHop]:
        """Add mono samples; return the hops they complete, each with its update."""
        hops = self.analyzer.push(samples)
        updates = self.tracker.push(hops)
        return [TrackedHop(hop, update) for hop, update in zip(hops, updates, strict=True)]

    def finish(self) -> list[Segment]:
        """End the stream where its samples end; return the open segment, closed there.

        Audio after the last hop boundary (less than a hop) is heard by the clock but never
        analysed, live and offline alike. Returns no segment when no hop was analysed.
        """
        self.analyzer.finish()  # a hop is analysed at its boundary only: the end adds none
        return self.tracker.finish(time=self.seconds)

    def reset(self) -> None:
        """Forget the stream: the next `push` begins a new one (a new file, say)."""
        self.analyzer.reset()
        self.tracker.reset()
