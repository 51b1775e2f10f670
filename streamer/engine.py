"""The live engine: source -> features -> model every hop -> smoothing -> messages.

Capture, analysis and output are decoupled. The PortAudio callback only fills the source's
ring buffer; `Engine.run` (the analysis thread) reads it, runs `HopAnalyzer` and
`GenreTracker`, and hands each protocol message to its sinks. Sinks never block: the
websocket server queues per client, the view swaps its state under a short lock, and files
and stdout are written by `JsonLinesWriter` threads. So a slow disk, terminal or client
never stalls the analysis, and the analysis never stalls capture. A live recommender
(``--library``) gets copies of the audio and hops and does its work on its own thread.

The stream clock is the count of samples analysed: update and segment times are stream
seconds, exact whatever the wall clock or the machine load did. When the input is lost
(`AudioSource.input_lost`: a device unplugged), the source hands out silence at the wall
clock's pace, so the clock keeps running through the gap and the open segment ends where
the input went, as at any silence. The loss and the return are published at once as
``status`` messages; with ``on_input_loss="exit"`` the session ends at the loss instead.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from streamer import protocol
from streamer.analysis import Hop, HopAnalyzer
from streamer.errors import StreamerError
from streamer.features import live_thread_limits
from streamer.smoothing import GenreTracker, Segment
from streamer.sources import AudioSource

if TYPE_CHECKING:  # the recommender pulls in librosa and the catalogue: only with --library
    from streamer.live_recommend import LiveRecommender

Sink = Callable[[dict[str, Any]], None]
InputLossPolicy = Literal["wait", "exit"]
_STOP = object()


class JsonLinesWriter:
    """Write messages as JSON lines from a background thread (the caller never waits).

    With ``durable=True`` every line is flushed and fsynced as soon as it is written, so a
    crash loses nothing already handed over (used by ``--record``).
    """

    def __init__(self, stream: IO[str], *, durable: bool = False, owned: bool = False) -> None:
        self._stream = stream
        self._durable = durable
        self._owned = owned  # close the stream with the writer
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_all, name="jsonl-writer", daemon=True)
        self._thread.start()

    @classmethod
    def append_to(cls, path: str | Path) -> JsonLinesWriter:
        """Durable appending to a file; a clear error if it cannot be opened."""
        try:
            stream = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        except OSError as error:
            raise StreamerError(
                f"cannot write {path} ({error.strerror}): choose a writable path for --record"
            ) from None
        return cls(stream, durable=True, owned=True)

    def write(self, message: dict[str, Any]) -> None:
        """Hand a message over; returns at once."""
        self._queue.put(message)

    def close(self) -> None:
        """Write everything handed over, then close the stream if the writer opened it."""
        self._queue.put(_STOP)
        self._thread.join()
        if self._owned:
            self._stream.close()

    def _write_all(self) -> None:
        while (message := self._queue.get()) is not _STOP:
            self._stream.write(json.dumps(message, separators=(",", ":")) + "\n")
            self._stream.flush()
            if self._durable:
                os.fsync(self._stream.fileno())


def segment_to_message(segment: Segment) -> dict[str, Any]:
    return protocol.segment_message(**segment.to_dict())


class Engine:
    """Run the analysis of one source until it ends or `stop` is set.

    Parameters
    ----------
    source : AudioSource
        Mono samples at the model's sample rate.
    analyzer : HopAnalyzer
        Features and model, every hop.
    tracker : GenreTracker
        Smoothing and segments.
    sinks : list of callables
        Each receives every protocol message (update, segment, status); must not block.
    clients : callable, optional
        ``() -> (connected clients, dropped messages)`` for the status message.
    status_seconds : float
        Stream seconds between two status messages.
    recommender : LiveRecommender, optional
        Sees the audio and every hop; its ``recommendations`` messages go to the sinks.
    on_input_loss : "wait" or "exit"
        When the source loses its input: go on through the gap until it is back, or end
        the run there (`input_lost_at` then tells the caller).
    """

    def __init__(
        self,
        *,
        source: AudioSource,
        analyzer: HopAnalyzer,
        tracker: GenreTracker,
        sinks: list[Sink],
        clients: Callable[[], tuple[int, int]] = lambda: (0, 0),
        status_seconds: float = 2.0,
        recommender: LiveRecommender | None = None,
        on_input_loss: InputLossPolicy = "wait",
    ) -> None:
        self.source = source
        self.analyzer = analyzer
        self.tracker = tracker
        self.sinks = sinks
        self.clients = clients
        self.status_seconds = status_seconds
        self.recommender = recommender
        self.on_input_loss = on_input_loss
        self.latency_ms: float | None = None
        self.input_lost_at: float | None = None  # stream time of the loss, while lost
        self.input_losses = 0
        self._next_status = 0.0

    @property
    def stream_seconds(self) -> float:
        return self.analyzer.samples / self.analyzer.spec.sample_rate

    def run(self, stop: threading.Event, *, duration: float | None = None) -> list[Segment]:
        """Analyse until the source ends, `stop` is set or `duration` seconds were heard;
        close the open segment and return all segments."""
        limit = None if duration is None else round(duration * self.analyzer.spec.sample_rate)
        with self.source, live_thread_limits():
            while not stop.is_set() and (limit is None or self.analyzer.samples < limit):
                chunk = self.source.read(timeout=0.1, min_samples=self.analyzer.samples_to_next_hop)
                if chunk is None:
                    break
                read_at = time.perf_counter()
                if limit is not None:
                    chunk = chunk[: limit - self.analyzer.samples]
                if self.recommender is not None:
                    self.recommender.audio(chunk)
                for hop in self.analyzer.push(chunk):
                    self._publish_hop(hop, read_at)
                if self.recommender is not None:
                    for message in self.recommender.ready():
                        self._emit(message)
                if self.source.input_lost != (self.input_lost_at is not None):
                    self._input_changed()
                    if self.input_lost_at is not None and self.on_input_loss == "exit":
                        break
                if self.stream_seconds >= self._next_status:
                    self._publish_status()
        last = self.tracker.finish(time=self.stream_seconds)
        if last is not None:
            self._emit(segment_to_message(last))
        self._publish_status()
        return list(self.tracker.segments)

    def _publish_hop(self, hop: Hop, read_at: float) -> None:
        update = self.tracker.update(
            time=hop.time, probabilities=hop.probabilities, level_dbfs=hop.level_dbfs
        )
        if update.closed is not None:
            self._emit(segment_to_message(update.closed))
        if self.recommender is not None:
            self.recommender.hop(hop, update)
        labels = self.tracker.labels
        self._emit(
            protocol.update_message(
                time=update.time,
                probabilities=dict(zip(labels, update.probabilities.tolist(), strict=True)),
                top=update.top,
                confidence=update.confidence,
                state=update.state,
                level_dbfs=hop.level_dbfs,
                segment_start=update.segment_start,
            )
        )
        # Audio-to-broadcast latency: what still waited in the capture buffer when this
        # chunk was read, plus the time spent analysing it.
        backlog = self.source.backlog_seconds
        self.latency_ms = 1000 * (backlog + time.perf_counter() - read_at)

    def _input_changed(self) -> None:
        """The input was lost or is back: tell the clients at once, not at the next status."""
        if self.source.input_lost:
            self.input_lost_at = self.stream_seconds
            self.input_losses += 1
        else:
            self.input_lost_at = None
        self._publish_status()

    def _publish_status(self) -> None:
        clients, dropped = self.clients()
        self._emit(
            protocol.status_message(
                time=self.stream_seconds,
                overflow_samples=self.source.overflow_samples,
                overflow_events=self.source.overflow_events,
                latency_ms=self.latency_ms,
                clients=clients,
                dropped_messages=dropped,
                source=self.source.description,
                input_lost_at=self.input_lost_at,
                input_losses=self.input_losses,
            )
        )
        self._next_status = self.stream_seconds + self.status_seconds

    def _emit(self, message: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink(message)
