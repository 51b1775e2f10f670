"""The live engine: source -> features -> model every hop -> smoothing -> messages.

Capture, analysis and output are decoupled. The PortAudio callback only fills the source's
ring buffer; `Engine.run` (the analysis thread) reads it, pushes it through the chain
(`streamer.chain.GenreChain`, the one `streamer tag` uses), and hands each protocol message
to its sinks. Sinks never block: the websocket server queues per client, the view swaps its
state under a short lock, and stdout is written by a `JsonLinesWriter` thread. So a slow
terminal or client never stalls the analysis, and the analysis never stalls capture. The
one write the analysis thread waits for is the ``--record`` file's (`SegmentRecord`): a
closed segment is written and fsynced before any sink sees it, so no client or view is
ever shown a segment that a crash could lose. Segments are rare (seconds to minutes apart)
and a line plus an fsync takes milliseconds, well within the hop; updates, many a second,
never wait for a disk. A live recommender (``--library``) gets copies of the audio and hops
and does its work on its own thread.

The stream clock is the count of samples analysed: update and segment times are stream
seconds, exact whatever the wall clock or the machine load did. When the input is lost
(`AudioSource.input_lost`: a device unplugged), the source hands out silence at the wall
clock's pace, so the clock keeps running through the gap and the open segment ends where
the input went, as at any silence. The loss and the return are published at once as
``status`` messages; with ``on_input_loss="exit"`` the session ends at the loss instead.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np

from streamer.analysis.features import live_thread_limits
from streamer.capture.source import AudioSource
from streamer.chain import GenreChain, TrackedHop
from streamer.errors import StreamerError
from streamer.live.titles import TitleTimeline
from streamer.outlets import protocol
from streamer.segments import Segment

if TYPE_CHECKING:  # the recommender pulls in librosa and the catalogue: only with --library
    from streamer.live.recommend import LiveRecommender

Sink = Callable[[dict[str, Any]], None]
InputLossPolicy = Literal["wait", "exit"]
_STOP = object()


def json_line(message: dict[str, Any]) -> str:
    """A message as the websocket sends it (`protocol.encode`), as one line of a file."""
    return protocol.encode(message) + "\n"


class JsonLinesWriter:
    """Write messages as JSON lines from a background thread (the caller never waits).

    When the stream fails (a closed pipe: ``--no-view | head -1``; a full disk), the
    writer stops writing, keeps the reason in `error` and calls `on_error` once, from its
    own thread; what is handed over afterwards is dropped.
    """

    def __init__(self, stream: IO[str], *, on_error: Callable[[], None] = lambda: None) -> None:
        self._stream = stream
        self._on_error = on_error
        self.error: str | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_all, name="jsonl-writer", daemon=True)
        self._thread.start()

    def write(self, message: dict[str, Any]) -> None:
        """Hand a message over; returns at once."""
        self._queue.put(message)

    def close(self) -> None:
        """Write everything handed over."""
        self._queue.put(_STOP)
        self._thread.join()

    def _write_all(self) -> None:
        while (message := self._queue.get()) is not _STOP:
            if self.error is not None:
                continue
            try:
                self._stream.write(json_line(message))
                self._stream.flush()
            except (OSError, ValueError) as error:  # ValueError: the stream was closed
                self.error = getattr(error, "strerror", None) or str(error)
                self._on_error()


class SegmentRecord:
    """The ``--record`` file: each message appended as one JSON line, on disk (written and
    fsynced) when `write` returns. Appends with one unbuffered write per line, so a crash
    can cut only the last line short (which `exports.timeline_from_record` ignores)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as error:
            raise StreamerError(
                f"cannot write {path} ({error.strerror}): choose a writable path for --record"
            ) from None

    def write(self, message: dict[str, Any]) -> None:
        """Append `message` and fsync; raises `OSError` when the file cannot take it."""
        data = memoryview(json_line(message).encode("utf-8"))
        while data:
            data = data[os.write(self._fd, data) :]
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


class Engine:
    """Run the analysis of one source until it ends or `stop` is set.

    Parameters
    ----------
    source : AudioSource
        Mono samples at the model's sample rate.
    chain : GenreChain
        Features and model every hop, then smoothing and segments.
    sinks : list of callables
        Each receives every protocol message (update, segment, status); must not block.
    clients : callable, optional
        ``() -> (connected clients, dropped messages)`` for the status message.
    status_seconds : float
        Stream seconds between two status messages.
    recommender : LiveRecommender, optional
        Sees the audio and every hop; its ``recommendations`` messages go to the sinks.
    record : SegmentRecord, optional
        Every closed segment is written here before any sink sees it. If a write fails,
        `record_error` says why, a status with it goes out at once (before the segment),
        and nothing more is written, so the file never holds a line cut short midway.
    on_input_loss : "wait" or "exit"
        When the source loses its input: go on through the gap until it is back, or end
        the run there (`input_lost_at` then tells the caller).
    """

    def __init__(
        self,
        *,
        source: AudioSource,
        chain: GenreChain,
        sinks: list[Sink],
        clients: Callable[[], tuple[int, int]] = lambda: (0, 0),
        status_seconds: float = 2.0,
        recommender: LiveRecommender | None = None,
        record: SegmentRecord | None = None,
        on_input_loss: InputLossPolicy = "wait",
    ) -> None:
        self.source = source
        self.chain = chain
        self.sinks = sinks
        self.clients = clients
        self.status_seconds = status_seconds
        self.recommender = recommender
        self.record = record
        self.record_error: str | None = None
        self.on_input_loss = on_input_loss
        self.latency_ms: float | None = None
        self.input_lost_at: float | None = None  # stream time of the loss, while lost
        self.input_losses = 0
        self._next_status = 0.0
        self._limit: int | None = None
        self.titles = TitleTimeline()
        """The stream's titles, as far back as the open segment needs."""

    def run(self, stop: threading.Event, *, duration: float | None = None) -> list[Segment]:
        """Analyse until the source ends, `stop` is set or `duration` seconds were heard;
        close the open segment and return all segments."""
        self.begin(duration=duration)
        with self.source, live_thread_limits():
            while not stop.is_set() and (wanted := self.wanted) is not None:
                chunk = self.source.read(timeout=0.1, min_samples=wanted)
                if chunk is None:
                    break
                read_at = time.perf_counter()
                if not self.handle(self.chain.push(self.admit(chunk)), read_at):
                    break
        return self.end()

    # The steps of `run`, which `streamer.live.monitor.Monitor` takes for many engines at
    # once, running their networks together between `admit` and `handle`.

    def begin(self, *, duration: float | None = None) -> None:
        """A run starts: it ends after `duration` seconds of stream (None: never)."""
        rate = self.chain.analyzer.spec.sample_rate
        self._limit = None if duration is None else round(duration * rate)

    @property
    def wanted(self) -> int | None:
        """Samples to read before the next hop is due; None once `duration` was heard."""
        analyzer = self.chain.analyzer
        if self._limit is not None and analyzer.samples >= self._limit:
            return None
        return analyzer.samples_to_next_hop

    def admit(self, chunk: np.ndarray) -> np.ndarray:
        """The part of a chunk read from the source that the run analyses (up to its
        `duration`); the recommender hears it."""
        if self._limit is not None:
            chunk = chunk[: self._limit - self.chain.analyzer.samples]
        if self.recommender is not None:
            self.recommender.audio(chunk)
        return chunk

    def handle(self, hops: list[TrackedHop], read_at: float) -> bool:
        """Publish what the chain made of a chunk read at `read_at` (`time.perf_counter`),
        then the input's state and the status when due; False when the run ends here (the
        input was lost with ``on_input_loss="exit"``)."""
        for time_, title in self.source.title_changes():
            self.titles.add(time_, title)
        for tracked in hops:
            self._publish_hop(tracked, read_at)
        open_since = self.chain.tracker.segmenter.open_start
        if open_since is not None:  # what the segments still to close may need
            self.titles.forget_before(open_since)
        if self.recommender is not None:
            for message in self.recommender.ready():
                self._emit(message)
        if self.source.input_lost != (self.input_lost_at is not None):
            self._input_changed()
            if self.input_lost_at is not None and self.on_input_loss == "exit":
                return False
        if self.chain.seconds >= self._next_status:
            self._publish_status()
        return True

    def end(self) -> list[Segment]:
        """Close the open segment and say the last status; return all segments."""
        for last in self.chain.finish():
            self._emit(self._segment_message(last))
        self._publish_status()
        return list(self.chain.segments)

    def _publish_hop(self, tracked: TrackedHop, read_at: float) -> None:
        hop, update = tracked.hop, tracked.update
        for closed in update.closed:
            self._emit(self._segment_message(closed))
        if self.recommender is not None:
            self.recommender.hop(tracked)
        labels = self.chain.tracker.labels
        self._emit(
            protocol.update_message(
                time=update.time,
                probabilities=dict(zip(labels, update.probabilities.tolist(), strict=True)),
                top=update.top,
                confidence=update.confidence,
                state=update.state,
                level_dbfs=hop.level_dbfs,
                segment_start=update.segment_start,
                tags=self.chain.descriptors(tracked),
                title=self.titles.at(update.time),
            )
        )
        # Audio-to-broadcast latency: since the hop's newest sample came in, where the
        # source knows when; else what still waited in the capture buffer when this chunk
        # was read, plus the time spent analysing it.
        arrived = self.source.arrived_at(round(hop.time * self.source.sample_rate) - 1)
        if arrived is not None:
            self.latency_ms = 1000 * (time.monotonic() - arrived)
        else:
            backlog = self.source.backlog_seconds
            self.latency_ms = 1000 * (backlog + time.perf_counter() - read_at)

    def _segment_message(self, segment: Segment) -> dict[str, Any]:
        title = self.titles.dominant(segment.start, segment.end)
        return protocol.segment_message(**segment.to_dict(), title=title)

    def _input_changed(self) -> None:
        """The input was lost or is back: tell the clients at once, not at the next status."""
        if self.source.input_lost:
            self.input_lost_at = self.chain.seconds
            self.input_losses += 1
        else:
            self.input_lost_at = None
        self._publish_status()

    def _publish_status(self) -> None:
        clients, dropped = self.clients()
        self._emit(
            protocol.status_message(
                time=self.chain.seconds,
                overflow_samples=self.source.overflow_samples,
                overflow_events=self.source.overflow_events,
                latency_ms=self.latency_ms,
                clients=clients,
                dropped_messages=dropped,
                source=self.source.description,
                input_lost_at=self.input_lost_at,
                input_losses=self.input_losses,
                invalid_samples=self.source.invalid_samples,
                record_error=self.record_error,
                input_problem=self.source.problem,
            )
        )
        self._next_status = self.chain.seconds + self.status_seconds

    def _emit(self, message: dict[str, Any]) -> None:
        if message["type"] == "segment":
            self._record(message)
        for sink in self.sinks:
            sink(message)

    def _record(self, segment: dict[str, Any]) -> None:
        """On disk before anyone sees it; or, the first time that fails, say so at once."""
        if self.record is None or self.record_error is not None:
            return
        try:
            self.record.write(segment)
        except OSError as error:
            self.record_error = (
                f"cannot write {self.record.path} ({error.strerror}): the segments from "
                f"{segment['start']:.1f} s on are not recorded"
            )
            self._publish_status()
