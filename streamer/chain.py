"""The one processor interface, and the one chain from samples to genres and segments.

Every stage that turns a stream into a stream follows `Processor`, in the manner of madmom's
online processors: `push` a block of any size and get what it completes, `finish` the
stream and get what its end completes, `reset` to begin another. The stages are
`StreamingExtractor` (samples to log-mel frames), `HopAnalyzer` (samples to the model's
view of each hop) and `GenreTracker` (hops to what is shown, and segments). Each gives the
same outputs however its input was cut into blocks, so a stream pushed live gives what the
same audio gives in one piece.

`GenreChain` is the analyzers, the decision and the tracker: `streamer listen`
(`streamer.live.engine`) and `streamer tag` (`streamer.offline.tagging`) both push their
samples through it and differ only in the source and in what they do with its outputs. So
a file tags exactly as it sounds live (tests/test_chain.py, and tests/test_tagging.py on
the two commands).

With musicnn's taggers (`TagAnalyzer`, every 3 s) beside the genre CNN (`HopAnalyzer`,
every hop), each hop's decision (`GenreFusion`) uses the latest tag hop that ended at
least `TAG_DELAY_SECONDS` before it. The delay covers the resampler's latency (soxr, about
40 ms), so which tag hop a genre hop sees is fixed by the stream clock alone, never by how
the audio was cut into blocks: the online == offline property holds for both networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import numpy as np

from streamer.analysis.calibration import Calibration, ShownCalibration
from streamer.analysis.fusion import GenreFusion
from streamer.analysis.hops import Hop, HopAnalyzer
from streamer.analysis.inference import Steps, run_inline
from streamer.analysis.model import GenreModel
from streamer.analysis.notmusic import THRESHOLD as NOT_MUSIC_THRESHOLD
from streamer.analysis.notmusic import NotMusicDetector
from streamer.analysis.tagger import TagAnalyzer, TagHop, TagModel
from streamer.segments import DEFAULT_SEGMENTS, Segment, SegmentConfig
from streamer.tracking import (
    DEFAULT_SMOOTHING,
    Evidence,
    GenreTracker,
    SmoothingConfig,
    TrackerUpdate,
)

TAG_DELAY_SECONDS = 0.1
"""A tag hop counts for the genre hops at least this long after its patch ended."""

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
    """One hop of the chain: the CNN's view, the latest tags, the decision, what is shown."""

    hop: Hop  # the genre CNN's output (its labels, its embedding)
    update: TrackerUpdate  # as shown: its confidence restated (`GenreChain.shown`)
    probabilities: np.ndarray  # the calibrated decision over `GenreChain.labels`, unsmoothed
    tags: TagHop | None = None  # the tag hop the decision used; None before the first
    evidence: Evidence | None = None  # what the tracker read (`GenreChain.show` replays it)


class GenreChain:
    """Samples in; every hop, the networks' views, the decision and the tracker's update.

    Itself a `Processor`: `push` returns the hops a block completes, `finish` the last
    segment; `reset` lets one chain tag file after file.

    Parameters
    ----------
    model : GenreModel
        The genre CNN; its FeatureSpec defines the hops.
    taggers : sequence of TagModel
        musicnn's taggers; none runs the CNN alone.
    fusion : GenreFusion, optional
        The decision from the CNN and the tags (needs `taggers`); without it the CNN's
        probabilities are the decision and the tags are only shown. Either way the
        decision is calibrated with its own map (the fusion's, or the model's), and the
        tracker reads its temperature's output (`Calibration.evidence`). What the
        tracker shows is restated by the decision's `ShownCalibration` if it was fitted
        for `smoothing` (`GenreChain.shown`).
    not_music : NotMusicDetector, optional
        Flags hops that are not music (speech, noise, tones) from the CNN's outputs; it
        must have been fitted on `model`. Without it every loud hop is music.
    hop_seconds : float
        Audio between two analyses (`HopAnalyzer`).
    smoothing : SmoothingConfig
        The tracker's smoothing and silence parameters.
    segments : SegmentConfig
        The segmenter's parameters (`streamer.segments`).
    """

    def __init__(
        self,
        model: GenreModel,
        *,
        taggers: Sequence[TagModel] = (),
        fusion: GenreFusion | None = None,
        hop_seconds: float = 0.5,
        smoothing: SmoothingConfig = DEFAULT_SMOOTHING,
        segments: SegmentConfig = DEFAULT_SEGMENTS,
        not_music: NotMusicDetector | None = None,
    ) -> None:
        self.analyzer = HopAnalyzer(model, hop_seconds=hop_seconds)
        if not_music is not None:
            not_music.check(model.info)
        self.not_music = not_music
        self.tagger = TagAnalyzer(taggers, input_rate=model.spec.sample_rate) if taggers else None
        if fusion is not None:
            if self.tagger is None:
                raise ValueError("a GenreFusion needs the taggers it fuses")
            fusion.check(cnn_labels=model.labels, tag_labels=self.tagger.labels)
        self.fusion = fusion
        self.calibration = decision_calibration(model, fusion)
        shown = self.calibration.shown
        self.shown: ShownCalibration | None = (
            shown if shown is not None and shown.smoothing == smoothing else None
        )
        """The curve that restates the shown genre's confidence; None: the tracker's own."""
        self._no_tags = np.zeros(sum(t.info.embedding_size for t in taggers))
        self.labels = fusion.labels if fusion is not None else model.labels
        """The decision's genres: the tracker's, the protocol's and the exports' labels."""
        self.tracker = GenreTracker(
            self.labels,
            config=smoothing,
            segments=segments,
            hop_seconds=self.analyzer.hop_seconds,
            window_seconds=self.analyzer.window_seconds,
        )
        self.reset()

    def descriptors(self, tracked: TrackedHop) -> dict[str, float] | None:
        """The descriptor tags people read (`DESCRIPTORS`) of a hop's tag hop, if any."""
        if self.tagger is None or tracked.tags is None:
            return None
        return self.tagger.describe(tracked.tags.tags)

    def description(self) -> dict[str, Any]:
        """What decides besides the CNN, for the hello and the exports: the taggers (file
        and sha256), whether their tags enter the decision, its calibration (with the
        shown genre's curve only where it applies), and the not-music detector (its
        sha256, or None)."""
        calibration = self.calibration.to_dict()
        if self.shown is None:
            calibration.pop("shown", None)  # fitted for other smoothing: not applied
        described: dict[str, Any] = {
            "decision": "fusion" if self.fusion else "cnn",
            "calibration": calibration,
            "not_music": None if self.not_music is None else self.not_music.sha256,
        }
        if self.tagger is not None:
            described["taggers"] = [
                {"name": t.path.name, "sha256": t.info.sha256} for t in self.tagger.taggers
            ]
        return described

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
        return run_inline(self.steps(samples))

    def steps(self, samples: np.ndarray) -> Steps[list[TrackedHop]]:
        """`push` as requests to the networks, for `streamer.analysis.inference.run_batched`
        (`streamer monitor`: many streams, one onnxruntime call for the hops due)."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        tracked: list[TrackedHop] = []
        start = 0
        while start < samples.size:  # piece by piece, so each hop sees the tags due
            piece = samples[start : start + self.analyzer.samples_to_next_hop]
            start += piece.size
            if self.tagger is not None:
                self._pending_tags += yield from self.tagger.steps(piece)
            for hop in (yield from self.analyzer.steps(piece)):
                tags = self._tags_for(hop.time)
                decision = hop.probabilities
                if self.fusion is not None:
                    decision = self.fusion.fuse(
                        hop.probabilities, None if tags is None else tags.tags
                    )
                likelihoods = self.calibration.evidence(decision)
                evidence = Evidence(
                    time=hop.time,
                    probabilities=likelihoods,
                    level_dbfs=hop.level_dbfs,
                    not_music=self._is_not_music(hop),
                    features=self._features(hop, likelihoods, tags),
                )
                calibrated = self.calibration.curve(likelihoods)  # = apply(decision)
                tracked.append(TrackedHop(hop, self.show(evidence), calibrated, tags, evidence))
        return tracked

    def show(self, evidence: Evidence) -> TrackerUpdate:
        """What one hop's evidence shows: the tracker's update with the displayed genre's
        probability, its `confidence`, restated by `shown` (how often the shown genre is
        right at that probability).

        `steps` calls it for every hop. Called alone on recorded evidence, after `reset`,
        it replays the tracker without the networks: bench/bench_segments.py ``--evidence``
        tries other smoothing and segment options that way in seconds.
        """
        (update,) = self.tracker.push([evidence])
        if self.shown is None or update.top is None:
            return update
        genre = self.labels.index(update.top)
        restated = self.shown.restate(update.probabilities, genre=genre)
        return replace(update, probabilities=restated, confidence=float(restated[genre]))

    def finish(self) -> list[Segment]:
        """End the stream where its samples end; return the segments still to decide,
        the last closed there.

        Audio after the last hop boundary (less than a hop) is heard by the clock but never
        analysed, live and offline alike. Returns no segment when no hop was analysed.
        """
        self.analyzer.finish()  # a hop is analysed at its boundary only: the end adds none
        return self.tracker.finish(time=self.seconds)

    def reset(self) -> None:
        """Forget the stream: the next `push` begins a new one (a new file, say)."""
        self.analyzer.reset()
        self.tracker.reset()
        if self.tagger is not None:
            self.tagger.reset()
        self._pending_tags: list[TagHop] = []
        self._tags: TagHop | None = None

    def _is_not_music(self, hop: Hop) -> bool:
        if self.not_music is None:
            return False
        probability = self.not_music.probabilities(
            hop.embedding[None], hop.probabilities[None], hop.modulation[None]
        )
        return bool(probability[0] >= NOT_MUSIC_THRESHOLD)

    def _features(self, hop: Hop, decision: np.ndarray, tags: TagHop | None) -> np.ndarray:
        """What a hop sounds like, for the segmenter's track changes: the CNN's embedding
        and the taggers' (each scaled to unit length, so that neither counts for its size;
        zeros before the first tag hop) and the square roots of the decision (a distance
        between genre mixtures)."""
        parts = [_unit(hop.embedding), np.sqrt(np.maximum(decision, 0.0))]
        if self.tagger is not None:
            parts.append(self._no_tags if tags is None else _unit(tags.embedding))
        return np.concatenate(parts)

    def _tags_for(self, time: float) -> TagHop | None:
        """The latest tag hop that ended `TAG_DELAY_SECONDS` or more before `time`."""
        if self.tagger is None:
            return None
        due = time - TAG_DELAY_SECONDS
        if self.tagger.heard_seconds < due:  # never seen: soxr's delay is ~40 ms
            raise RuntimeError("the taggers lag the stream by more than TAG_DELAY_SECONDS")
        while self._pending_tags and self._pending_tags[0].time <= due:
            self._tags = self._pending_tags.pop(0)
        return self._tags


def decision_calibration(model: GenreModel, fusion: GenreFusion | None) -> Calibration:
    """The calibration of the decision: the fusion's, or the model's for the CNN alone."""
    return model.calibration if fusion is None else fusion.calibration


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
