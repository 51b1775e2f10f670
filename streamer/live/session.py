"""A live session (`streamer listen`): one source through the chain, out to every outlet.

`LiveSession` holds what a session wires together: the source and the chain (the `Engine`,
on a thread of its own), the websocket server, the ``--record`` file, the terminal view or
the JSON lines on stdout, the live recommender, and the stop event that SIGINT, SIGTERM or
a stdout nobody reads any more set. `LiveSession.run` starts them in order, the server
first so that a busy port fails before anything is written; waits for the analysis to
end; stops them all, the record flushed last; and turns what went wrong into one-line
errors and the exit status. A new outlet is one more sink here: the command line only
parses its options and builds the session.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamer.analysis.model import GenreModel
from streamer.capture.source import AudioSource
from streamer.chain import GenreChain
from streamer.live.engine import Engine, InputLossPolicy, JsonLinesWriter, SegmentRecord, Sink
from streamer.outlets import protocol
from streamer.outlets.access import AccessPolicy
from streamer.outlets.server import DEFAULT_HOST, DEFAULT_PORT, BroadcastServer, ServerThread

if TYPE_CHECKING:  # the view pulls in rich, the recommender librosa: only when used
    from streamer.live.recommend import LiveRecommender
    from streamer.outlets.view import GenreView

EXIT_INPUT_LOST = 3
"""`streamer listen --on-device-loss exit`: the input device went away."""
EXIT_PROBLEM = 2
"""The session ran, but the record or stdout failed on the way (said in one line each)."""


class LiveSession:
    """Everything `streamer listen` runs, from the source to the outlets.

    Parameters
    ----------
    model : GenreModel
        The model the chain runs; named in the hello message.
    chain : GenreChain
        The analysis, every hop.
    source : AudioSource
        Mono samples at the model's sample rate: a device, or a file paced like one.
    access : AccessPolicy
        Who may connect to the server, and what they may send.
    host, port : str, int
        Where the websocket server listens (port 0: a free one).
    record : Path, optional
        The ``--record`` file closed segments are appended to, on disk at once.
    view : bool
        The terminal view; without it every message goes to stdout as a JSON line.
    recommender : LiveRecommender, optional
        Live recommendations (``--library``); its clients' feedback comes from the server.
    on_input_loss : "wait" or "exit"
        What a lost input does: the session goes on through the gap, or ends there with
        `EXIT_INPUT_LOST`.
    duration : float, optional
        Stream seconds after which the session ends.
    """

    def __init__(
        self,
        *,
        model: GenreModel,
        chain: GenreChain,
        source: AudioSource,
        access: AccessPolicy,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        record: Path | None = None,
        view: bool = True,
        recommender: LiveRecommender | None = None,
        on_input_loss: InputLossPolicy = "wait",
        duration: float | None = None,
    ) -> None:
        self.model = model
        self.chain = chain
        self.source = source
        self.record_path = record
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
        self.record: SegmentRecord | None = None
        self.stdout: JsonLinesWriter | None = None
        self.view: GenreView | None = None
        self.engine: Engine | None = None
        self._analysis: threading.Thread | None = None
        self._failure: list[BaseException] = []

    def hello(self) -> dict[str, Any]:
        """The first message every client, the view and stdout get."""
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
            if self.record is not None:
                self.record.close()
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
        from streamer.outlets.view import GenreView

        self.view = GenreView(title=f"streamer listen: {self.source.description}")
        self.view.handle(self.hello())
        return [self.server.publish, self.view.handle]

    def _analyse(self) -> None:
        """The engine on its own thread; this one draws the view until it ends."""
        if self.record_path is not None:
            self.record = SegmentRecord(self.record_path)
        self.engine = Engine(
            source=self.source,
            chain=self.chain,
            sinks=self._sinks(),
            clients=lambda: (self.server.clients, self.server.dropped_messages),
            recommender=self.recommender,
            record=self.record,
            on_input_loss=self.on_input_loss,
        )
        engine = self.engine

        def analyse() -> None:
            try:
                engine.run(self.stop, duration=self.duration)
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
        problems = []
        if self.engine.record_error is not None:
            problems.append(f"{self.engine.record_error}; the session went on without them")
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
                f"streamer: error: the input {self.source.description} was lost at "
                f"{self.engine.input_lost_at:.1f} s (unplugged, or the sound server stopped): "
                "the session is closed and recorded up to then; reconnect it and run again",
                file=sys.stderr,
            )
            return EXIT_INPUT_LOST
        return EXIT_PROBLEM if problems else 0
