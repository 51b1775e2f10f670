"""A local Icecast-style HTTP server on loopback: an audio file served as an internet radio
stream, paced in real time, with ICY titles, and the ways a station goes wrong.

`IcyServer` answers on these paths:

- ``/live``: the stream, endless (the file looped) or once, with ICY metadata every
  `metaint` audio bytes when the client asks for it (``Icy-MetaData: 1``), as Icecast does:
  the title current at that point of the stream when it changed, else a zero length byte.
- ``/icy``: the same under Shoutcast v1's status line ``ICY 200 OK``.
- ``/file``: the file as a plain web server sends one: at once, with its Content-Length,
  no ICY metadata.
- ``/moved``: a 302 to ``/live`` (a relative Location); ``/loop``: a 302 to itself.
- ``/missing``: 404; ``/page``: a web page (text/html); ``/playlist.m3u``: an M3U playlist.
- ``/stall``: the headers and `STALL_BYTES` of the stream, then nothing, the connection
  kept open.

`stop` closes the listening socket and every open connection at once, as a server that
goes away; `restart` listens again on the same port. `frozen` (an Event), while set, holds
every stream back, the connections open: a server that stalls.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import av
import numpy as np

CHUNK_SECONDS = 0.05
"""Audio sent at a time: a paced server writes 20 times a second."""
STALL_BYTES = 300
"""What ``/stall`` sends: less than one MP3 frame (418 bytes at 128 kbit/s), so that no
audio comes out of them."""


def make_music(seconds: float, *, rate: int = 44100, seed: int = 0) -> np.ndarray:
    """Stereo float32 ``(n, 2)``: a melody of decaying harmonic notes over a bass, with
    noise hi-hats; something an MP3 encoder treats like music, never the same twice."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    music = np.zeros((n, 2), dtype=np.float64)
    beat = int(0.25 * rate)
    t = np.arange(beat) / rate
    decay = np.exp(-6 * t)
    for start in range(0, n - beat, beat):
        note = 220.0 * 2 ** (rng.integers(0, 12) / 12)
        tone = sum(np.sin(2 * np.pi * k * note * t) / k for k in (1, 2, 3)) * decay * 0.25
        bass = np.sin(2 * np.pi * note / 4 * t) * 0.2
        hat = rng.standard_normal(beat) * np.exp(-60 * t) * 0.1
        pan = rng.uniform(0.3, 0.7)
        music[start : start + beat, 0] += tone * pan + bass + hat
        music[start : start + beat, 1] += tone * (1 - pan) + bass + hat
    return music.astype(np.float32)


ENCODINGS = {
    "mp3": ("mp3", "libmp3lame"),
    "aac": ("adts", "aac"),
    "vorbis": ("ogg", "vorbis"),
    "opus": ("ogg", "libopus"),
    "flac": ("flac", "flac"),
}
"""(container, encoder) of each encoding `encode` writes."""


def encode(samples: np.ndarray, *, rate: int, encoding: str, bit_rate: int = 128_000) -> bytes:
    """Stereo float32 ``(n, 2)`` samples as a file of `encoding` (see `ENCODINGS`), by
    FFmpeg's encoders through PyAV; constant bit rate where the encoder has one. An MP3 is
    bare frames, as a station's encoder sends them: no ID3 tag, no Xing/LAME frame (whose
    encoder delay only a file's demuxer would trim)."""
    container_format, codec = ENCODINGS[encoding]
    buffer = io.BytesIO()
    options = {"write_xing": "0", "id3v2_version": "0"} if encoding == "mp3" else {}
    with av.open(buffer, "w", format=container_format, options=options) as container:
        stream: Any = container.add_stream(codec, rate=rate, layout="stereo")
        stream.bit_rate = bit_rate
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        to_encoder = av.AudioResampler(
            format=stream.codec_context.codec.audio_formats[0], layout="stereo", rate=rate
        )
        step = 4096
        for start in range(0, samples.shape[0], step):
            planar = np.ascontiguousarray(samples[start : start + step].T)
            frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = rate, start
            for converted in to_encoder.resample(frame):
                container.mux(stream.encode(converted))
        for converted in to_encoder.resample(None):
            container.mux(stream.encode(converted))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """A whole encoded file decoded directly (no HTTP): mono float32 and its rate."""
    with av.open(io.BytesIO(data), "r") as container:
        to_float = av.AudioResampler(format="flt")
        rate = container.streams.audio[0].rate
        chunks = [
            packed.to_ndarray().reshape(-1, packed.layout.nb_channels).mean(axis=1)
            for frame in container.decode(audio=0)
            for packed in to_float.resample(frame)
        ]
    return np.concatenate(chunks).astype(np.float32), rate


def metadata_block(title: str | None) -> bytes:
    """The length byte and the padded ICY metadata of `title` (None: nothing new, one 0)."""
    if title is None:
        return b"\0"
    text = f"StreamTitle='{title}';StreamUrl='';".encode()
    size = -(-len(text) // 16)
    return bytes([size]) + text.ljust(size * 16, b"\0")


class Request(NamedTuple):
    """A request the server received."""

    path: str
    headers: dict[str, str]
    at: float  # time.monotonic()


class IcyServer:
    """The server (see the module), on 127.0.0.1, its handlers each on a thread.

    Parameters
    ----------
    audio : bytes
        The encoded file to serve.
    duration : float
        Its seconds of audio: the pace is ``len(audio) / duration`` bytes per second.
    content_type : str
        The stream's Content-Type.
    metaint : int
        Audio bytes between two metadata blocks.
    titles : sequence of (float, str)
        Titles and the stream seconds they start at ('' clears the title).
    name : str or None
        The ``icy-name`` header (the station's name), if any.
    loop : bool
        Serve the file endlessly; else once, then close the connection.
    realtime : bool
        Pace the stream by the clock; else send it as fast as the client reads.
    answer_delay : float
        Seconds a stream request waits before its answer (stations on the air since other
        times: a monitor's streams then do not all complete their hops at once).
    """

    def __init__(
        self,
        audio: bytes,
        *,
        duration: float,
        content_type: str = "audio/mpeg",
        metaint: int = 8192,
        titles: Sequence[tuple[float, str]] = (),
        name: str | None = None,
        loop: bool = True,
        realtime: bool = True,
        answer_delay: float = 0.0,
    ) -> None:
        self.audio = audio
        self.bytes_per_second = len(audio) / duration
        self.content_type = content_type
        self.metaint = metaint
        self.titles = sorted(titles)
        self.name = name
        self.loop = loop
        self.realtime = realtime
        self.answer_delay = answer_delay
        self.requests: list[Request] = []
        self.frozen = threading.Event()
        self.port = 0
        self._server: _Server | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (on a free port the first time, then on the same one) and serve."""
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()

    def stop(self) -> None:
        """Go away at once: no more listening, every open connection closed."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # the client had gone already
                    connection.shutdown(socket.SHUT_RDWR)

    def restart(self) -> None:
        """Listen again on the same port (SO_REUSEADDR: the closed connections linger)."""
        self.stop()
        self.start()

    def __enter__(self) -> IcyServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- what the handlers use -----------------------------------------------------------

    def _opened(self, connection: socket.socket) -> threading.Event:
        with self._lock:
            self._connections.add(connection)
        return self._stopping

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def title_at(self, seconds: float) -> str | None:
        """The title current `seconds` into the stream, None before the first."""
        current = None
        for start, title in self.titles:
            if start <= seconds:
                current = title
        return current


class _Server(http.server.ThreadingHTTPServer):
    """Python's threaded HTTP server (SO_REUSEADDR, daemon threads), knowing its `IcyServer`."""

    def __init__(self, address: tuple[str, int], icy: IcyServer) -> None:
        self.icy = icy
        super().__init__(address, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.icy: IcyServer = self.server.icy
        self.stopping = self.icy._opened(self.connection)

    def finish(self) -> None:
        self.icy._closed(self.connection)
        with contextlib.suppress(OSError):  # the server went away under it (`stop`)
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests' output stays clean

    def do_GET(self) -> None:
        self.icy.requests.append(Request(self.path, dict(self.headers.items()), time.monotonic()))
        with contextlib.suppress(OSError):  # the client went away, or `stop` closed it
            self._answer()

    def _answer(self) -> None:
        if self.path in ("/live", "/icy"):
            self._stream(shoutcast=self.path == "/icy")
        elif self.path == "/file":
            self._page(self.icy.content_type, self.icy.audio)
        elif self.path in ("/moved", "/loop"):
            self.send_response(302)
            self.send_header("Location", "/live" if self.path == "/moved" else "/loop")
            self.end_headers()
        elif self.path == "/page":
            self._page("text/html; charset=utf-8", b"<html><body>Listen live!</body></html>")
        elif self.path == "/playlist.m3u":
            self._page("audio/x-mpegurl", f"{self.icy.url}/live\n".encode())
        elif self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Type", self.icy.content_type)
            self.end_headers()
            self.wfile.write(self.icy.audio[:STALL_BYTES])
            self.wfile.flush()
            self.stopping.wait()
        else:
            self.send_error(404)

    def _page(self, content_type: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, *, shoutcast: bool) -> None:
        icy = self.icy
        if self.stopping.wait(icy.answer_delay):
            return
        metaint = icy.metaint if self.headers.get("Icy-MetaData") == "1" else None
        headers = {"Content-Type": icy.content_type, "icy-name": icy.name, "icy-metaint": metaint}
        head = "ICY 200 OK\r\n" if shoutcast else "HTTP/1.0 200 OK\r\n"
        head += "".join(f"{key}: {value}\r\n" for key, value in headers.items() if value)
        self.wfile.write(f"{head}\r\n".encode())  # UTF-8, as Icecast sends a name
        chunk = max(1, round(icy.bytes_per_second * CHUNK_SECONDS))
        started = time.monotonic()
        sent = 0  # audio bytes
        last_title: str | None = None
        while not self.stopping.is_set() and (icy.loop or sent < len(icy.audio)):
            if icy.realtime:
                self.stopping.wait(started + sent / icy.bytes_per_second - time.monotonic())
            if icy.frozen.is_set():
                self.stopping.wait(CHUNK_SECONDS)
                continue
            offset = sent % len(icy.audio)  # the file again from its start when looped
            size = min(chunk, len(icy.audio) - offset)
            if metaint:
                size = min(size, metaint - sent % metaint)
            piece = icy.audio[offset : offset + size]
            sent += size
            if metaint and sent % metaint == 0:
                title = icy.title_at(sent / icy.bytes_per_second)
                piece += metadata_block(title if title != last_title else None)
                last_title = title
            self.wfile.write(piece)
