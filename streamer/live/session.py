"""A live session (`streamer listen`, `streamer monitor`): sources through their chains,
out to every outlet.

`LiveSession` holds what a session wires together: each input's source and chain (its
`Engine`; the engines on a thread of their own), the websocket server, the ``--record``
files, the terminal view (a table of streams for `streamer monitor`) or the JSON lines on
stdout, the live recommender, and the stop event that SIGINT, SIGTERM or a stdout nobody
reads any more set. `LiveSession.run` starts them in order, the server first so that a
busy port fails before anything is written; waits for the analysis to end; stops them
all, the records flushed last; and turns what went wrong into one-line errors and the
exit status. A new outlet is one more sink here: the command line only parses its
options and builds the session.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamer.analysis.model import GenreModel
from streamer.capture.source import AudioSource
from streamer.chain import GenreChain
from streamer.live.engine import Engine, InputLossPolicy, JsonLinesWriter, SegmentRecord, Sink
from streamer.live.monitor import run_together
from streamer.outlets import protocol
from streamer.outlets.access import AccessPolicy
from streamer.outlets.server import DEFAULT_HOST, DEFAULT_PORT, BroadcastServer, ServerThread

if TYPE_CHECKING:  # the view pulls in rich, the recommender librosa: only when used
    from streamer.live.recommend import LiveRecommender
    from streamer.outlets.view import GenreView, MonitorView

EXIT_INPUT_LOST = 3
"""`streamer listen --on-device-loss exit`: the input device went away."""
EXIT_PROBLEM = 2
"""The session ran, but the record or stdout failed on the way (said in one line each)."""


@dataclass(frozen=True)
class LiveInput:
    """One input of a session: its source, its own chain, where its segments go on disk,
    and its name (with several inputs, `streamer monitor`, every message carries it)."""

    source: AudioSource
    chain: GenreChain
    record: Path | None = None
    name: str | None = None


class LiveSession:
    """Everything `streamer listen` and `streamer monitor` run, from the sources to the outlets.

    Parameters
    ----------
    model : GenreModel
        The model the chains run; named in the hello message.
    inputs : sequence of LiveInput
        What is analysed: the one input of `streamer listen` (unnamed), or the named streams
        of `streamer monitor`, whose networks run together (`streamer.live.monitor`).
    access : AccessPolicy
        Who may connect to the server, and what they may send.
    host, port : str, int
        Where the websocket server listens (port 0: a free one).
    view : bool
        The terminal view (a table with several inputs); without it every message goes to
        stdout as a JSON line.
    recommender : LiveRecommender, optional
        Live recommendations (``--library``, one input only); its clients' feedback comes
        from the server.
    on_input_loss : "wait" or "exit"
        What a lost input does: the session goes on through the gap, or (one input only)
        ends there with `EXIT_INPUT_LOST`.
    duration : float, optional
        Stream seconds after which the session ends.
    """

    def __init__(
        self,
        *,
        model: GenreModel,
        inputs: Sequence[LiveInput],
        access: AccessPolicy,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        view: bool = True,
        recommender: LiveRecommender | None = None,
        on_input_loss: InputLossPolicy = "wait",
        duration: float | None = None,
    ) -> None:
        if not inputs:
            raise ValueError("a session needs an input")
        self.model = model
        self.inputs = tuple(inputs)
        self.named = self.inputs[0].name is not None
        if self.named and (recommender is not None or on_input_loss != "wait"):
            raise ValueError("named inputs take no recommender and always wait for a loss")
        self.chain = self.inputs[0].chain  # every chain was made alike: it speaks for all
        self.show_view = view
        self.recommender = recommender
        self.on_input_loss = on_input_loss
        self.duration = duration
        self.server = BroadcastServer(
            host=host, port=port, hello=self.hello, access=access,
            on_message=None if recommender is None else recommender.feedback,
        )  # fmt: skip
        self.stop = threading.Event()
        """Set to end the session: by a signal, a closed stdout, or the caller."""
        self.records: list[SegmentRecord] = []
        self.stdout: JsonLinesWriter | None = None
        self.view: GenreView | MonitorView | None = None
        self.engines: list[Engine] = []
        self._analysis: threading.Thread | None = None
        self._failure: list[BaseException] = []

    @property
    def engine(self) -> Engine | None:
        """The engine of the first input (of the only one, in `streamer listen`)."""
        return self.engines[0] if self.engines else None

    def hello(self) -> dict[str, Any]:
        """The first message every client, the view and stdout get."""
        streams = None
        if self.named:
            streams = [
                {"name": each.name, "source": each.source.description, "state": None}
                for each in self.inputs
            ]
        return protocol.hello_message(
            labels=self.chain.labels,
            model={
                "name": self.model.path.name,
                "sha256": self.model.info.sha256,
                **self.chain.description(),
            },
            features=self.model.spec.to_dict(),
            hop_seconds=self.chain.analyzer.hop_seconds,
            window_seconds=self.chain.analyzer.window_seconds,
            segment_lag_seconds=self.chain.tracker.lag_seconds,
            streams=streams,
        )

    def run(self) -> int:
        """Run until the source ends, `duration` was heard or `stop` is set; return the
        exit status, its errors printed on stderr, one line each.

        An error of the analysis itself (a `StreamerError`, a bug) is raised here, after
        everything was stopped and the record flushed.
        """
        running = ServerThread(self.server).start()  # first: a busy port fails here
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stop.set())
        try:
            self._announce()
            self._analyse()
        finally:
            self.stop.set()
            if self._analysis is not None:
                self._analysis.join()
            running.stop()
            if self.recommender is not None:
                self.recommender.stop()
            if self.stdout is not None:
                self.stdout.close()
            for record in self.records:
                record.close()
        if self._failure:
            raise self._failure[0]
        return self._exit_status()

    def _announce(self) -> None:
        """Where clients connect, on stderr (stdout may carry the messages)."""
        server = self.server
        token = server.access.token
        query = "" if token is None else f"?token={token}"
        print(f"streamer: websocket on {server.url}", file=sys.stderr)
        if token is not None:
            print(f"streamer: clients connect with {server.url}/{query}", file=sys.stderr)
        print(f"streamer: overlay on {server.overlay_url}{query}", file=sys.stderr)
        for host in server.hosts[1:]:  # the machine's other addresses
            also = server.url_of(host, scheme="http")
            print(f"streamer: also on {also}/{query}", file=sys.stderr)

    def _sinks(self) -> list[Sink]:
        """Where every message goes: the server, and the view or stdout (each given the
        hello first). None of them blocks the analysis."""
        if not self.show_view:
            self.stdout = JsonLinesWriter(sys.stdout, on_error=self.stop.set)  # nobody reads
            self.stdout.write(self.hello())
            return [self.server.publish, self.stdout.write]
        from streamer.outlets.view import GenreView, MonitorView

        if self.named:
            self.view = MonitorView(title=f"streamer monitor: {len(self.inputs)} streams")
        else:
            self.view = GenreView(title=f"streamer listen: {self.inputs[0].source.description}")
        self.view.handle(self.hello())
        return [self.server.publish, self.view.handle]

    def _engine(self, each: LiveInput, sinks: list[Sink]) -> Engine:
        """The engine of one input, its messages named after it when it has a name."""
        record = None
        if each.record is not None:
            record = SegmentRecord(each.record)
            self.records.append(record)
        if each.name is not None:
            sinks = [_named(each.name, sinks)]
        return Engine(
            source=each.source,
            chain=each.chain,
            sinks=sinks,
            clients=lambda: (self.server.clients, self.server.dropped_messages),
            recommender=self.recommender,
            record=record,
            on_input_loss=self.on_input_loss,
        )

    def _analyse(self) -> None:
        """The engines on a thread of their own; this one draws the view until they end."""
        sinks = self._sinks()
        self.engines = [self._engine(each, sinks) for each in self.inputs]
        engines = self.engines

        def analyse() -> None:
            try:
                if self.named:
                    run_together(engines, self.stop, duration=self.duration)
                else:
                    engines[0].run(self.stop, duration=self.duration)
            except BaseException as error:  # handed to the main thread, which raises it
                self._failure.append(error)

        if self.recommender is not None:
            self.recommender.start()
        self._analysis = threading.Thread(target=analyse, name="analysis")
        self._analysis.start()
        with self._drawing():
            while self._analysis.is_alive():
                self._analysis.join(0.25)

    def _drawing(self) -> AbstractContextManager[object]:
        """The view redrawn four times a second while it is open (nothing without one)."""
        if self.view is None:
            return nullcontext()
        from rich.live import Live

        return Live(self.view, refresh_per_second=4)

    def _exit_status(self) -> int:
        """0, `EXIT_PROBLEM` or `EXIT_INPUT_LOST`, each problem said in one line."""
        assert self.engine is not None  # a run that got here built it
        problems = [
            f"{engine.record_error}; the session went on without them"
            for engine in self.engines
            if engine.record_error is not None
        ]
        if self.stdout is not None and self.stdout.error is not None:
            problems.append(
                f"cannot write to stdout ({self.stdout.error}): the session stopped there"
            )
            # Python flushes stdout once more at exit: let that go nowhere, not to a traceback
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        for problem in problems:
            print(f"streamer: error: {problem}", file=sys.stderr)
        if self.engine.input_lost_at is not None and self.on_input_loss == "exit":
            print(
                f"streamer: error: the input {self.inputs[0].source.description} was lost at "
                f"{self.engine.input_lost_at:.1f} s (unplugged, or the sound server stopped): "
                "the session is closed and recorded up to then; reconnect it and run again",
                file=sys.stderr,
            )
            return EXIT_INPUT_LOST
        return EXIT_PROBLEM if problems else 0


def _named(name: str, sinks: list[Sink]) -> Sink:
    """One sink that hands every message, with its stream's name, to each of `sinks`."""

    def named(message: dict[str, Any]) -> None:
        message = {**message, "stream": name}
        for sink in sinks:
            sink(message)

    return named
