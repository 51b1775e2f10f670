"""`streamer monitor`: many streams in one process, their networks run together.

Each stream has what `streamer listen` gives its one input: its own source, chain
(features, decision, tracker, segments), record and `streamer.live.engine.Engine`. What
the streams share is one analysis thread, the networks and the outlets. `run_together`
looks at every source in turn without waiting, pushes what each has through its chain
as requests to the networks, and answers the requests of all the streams with one
onnxruntime call per network (`streamer.analysis.inference.run_batched`); then each
engine publishes its hops. A hundred streams cost one loop, not a hundred threads that
each wake for a few milliseconds of work.

A stream that fails (a 404, a server that stalls or goes away) is lost like an unplugged
device: its source hands out silence at the wall clock's pace and retries with backoff
(`streamer.capture.stream.StreamSource`), so its clock, record and segments go on and
the others never wait for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from streamer.analysis.features import live_thread_limits
from streamer.analysis.inference import run_batched
from streamer.capture.source import AudioSource
from streamer.errors import StreamerError
from streamer.live.engine import Engine

POLL_SECONDS = 0.02
"""How often the sources are looked at: a hop whose audio has come waits at most this
long, plus the work of the hops due with it, before its update goes out."""
DEVICE_PREFIX = "device:"


@dataclass(frozen=True)
class StreamEntry:
    """One line of a streams file: what to listen to, and the name its messages carry."""

    source: str  # an http(s) URL, or device:INDEX|NAME
    name: str
    line: int  # where it was written, for messages


def read_stream_list(path: Path) -> list[StreamEntry]:
    """The streams of a file: one per line, ``SOURCE [NAME]``; lines that start with ``#``
    are comments.

    SOURCE is an ``http://`` or ``https://`` URL (an Icecast or Shoutcast mount, not a
    playlist) or ``device:INDEX`` / ``device:WORD`` (an input device, as ``streamer listen
    --device`` takes it, without spaces). NAME is the rest of the line (default: the URL's
    host and path, or the device). Names must differ. A bad line is a one-line
    `StreamerError` naming it.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    ...     _ = f.write("# stations\\nhttp://radio.example:8000/jazz  Jazz FM\\ndevice:2\\n")
    >>> [(e.name, e.source) for e in read_stream_list(Path(f.name))]
    [('Jazz FM', 'http://radio.example:8000/jazz'), ('device 2', 'device:2')]
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise StreamerError(f"cannot read the streams file {path} ({reason})") from None
    entries: list[StreamEntry] = []
    names: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        source, _, name = line.partition(" ")
        where = f"{path}:{number}"
        _check_source(source, where=where)
        name = name.strip() or default_name(source)
        if name in names:
            raise StreamerError(
                f"{where}: the name {name!r} is taken by line {names[name]}: give each "
                "stream its own name after its URL"
            )
        names[name] = number
        entries.append(StreamEntry(source=source, name=name, line=number))
    if not entries:
        raise StreamerError(f"{path} lists no stream: write one URL (or device:N) per line")
    return entries


def _check_source(source: str, *, where: str) -> None:
    if source.startswith(DEVICE_PREFIX):
        if not source[len(DEVICE_PREFIX) :]:
            raise StreamerError(f"{where}: device: needs an index or a name (`streamer devices`)")
        return
    from streamer.capture.stream import is_stream_url

    if not is_stream_url(source):
        raise StreamerError(
            f"{where}: {source!r} is neither an http(s) URL nor device:INDEX|NAME: write one "
            "stream per line, its URL first"
        )


def default_name(source: str) -> str:
    """A stream's name when its line gives none: host[:port]/path, or "device X"."""
    if source.startswith(DEVICE_PREFIX):
        return f"device {source[len(DEVICE_PREFIX) :]}"
    parts = urlsplit(source)
    return f"{parts.netloc}{parts.path.rstrip('/')}"


def open_source(entry: StreamEntry, *, sample_rate: int) -> AudioSource:
    """The source of a line of the streams file (not started yet); a device that is not
    there is a one-line `StreamerError` naming the stream (a stream that fails is not: it
    is retried while the others go on)."""
    if entry.source.startswith(DEVICE_PREFIX):
        from streamer.capture.device import DeviceSource

        try:
            return DeviceSource(sample_rate=sample_rate, device=entry.source[len(DEVICE_PREFIX) :])
        except StreamerError as error:
            raise StreamerError(f"stream {entry.name!r} (line {entry.line}): {error}") from None
    from streamer.capture.stream import StreamSource

    return StreamSource(entry.source, sample_rate=sample_rate)


def run_together(
    engines: Sequence[Engine],
    stop: threading.Event,
    *,
    duration: float | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Run every engine until `stop` is set, `duration` seconds were heard by each, or all
    sources ended; then close each one's open segment.

    The steps are `Engine.run`'s, taken for all the engines at once: read what each source
    has (never waiting), push it through its chain with the networks run for all of them
    together, publish each engine's hops.
    """
    with ExitStack() as started, live_thread_limits():
        for engine in engines:
            engine.begin(duration=duration)
            engine.source.launch()
            started.callback(engine.source.stop)
        running = list(engines)
        while running and not stop.is_set():
            cycle_start = time.perf_counter()
            due, still = [], []
            for engine in running:
                wanted = engine.wanted
                chunk = None if wanted is None else engine.source.read(0, min_samples=wanted)
                if chunk is None:  # its source ended, or it heard its duration
                    continue
                still.append(engine)
                if chunk.size:
                    due.append((engine, engine.admit(chunk)))
            running = still
            read_at = time.perf_counter()
            hops = run_batched([engine.chain.steps(chunk) for engine, chunk in due])
            for (engine, _), completed in zip(due, hops, strict=True):
                engine.handle(completed, read_at)
            stop.wait(max(0.0, cycle_start + poll_seconds - time.perf_counter()))
    for engine in engines:
        engine.end()
