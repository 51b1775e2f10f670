"""Internet radio: an HTTP(S) audio stream (Icecast, Shoutcast) decoded by PyAV, with its titles.

Each stream's thread connects (following redirects), checks the answer and, when the
connection ends, reconnects with a growing pause between failed tries. The bytes are read
without it where they can be: bare MP3 and AAC frames over plain HTTP go to the process's
one receiver thread (`streamer.capture.receiver`), which strips the ICY metadata (keeping
the titles), cuts the frames with FFmpeg's parser as they come and decodes them; containers
(Ogg Vorbis/Opus, FLAC) and HTTPS are read by the stream's own thread, through FFmpeg's
demuxers or the same parser. Either way the audio is resampled to the caller's rate and
written into a ring buffer. The consumer's `StreamSource.read` only takes from the ring
and hands out silence through a loss, so the analysis never waits on the network.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import http.client
import io
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import urljoin, urlsplit, urlunsplit

import av
import numpy as np
import soxr

from streamer import __version__
from streamer.capture.file import downmix
from streamer.capture.loss import InputWatch
from streamer.capture.receiver import READ_BYTES, shared_receiver
from streamer.capture.ringbuffer import RingBuffer
from streamer.capture.source import AudioSource
from streamer.errors import StreamerError

URL_SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
FORMAT_HINTS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/aac": "aac",
    "audio/aacp": "aac",
    "audio/x-aac": "aac",
    "application/ogg": "ogg",
    "audio/ogg": "ogg",
    "video/ogg": "ogg",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
}
"""FFmpeg's demuxer for a stream's content type; any other type is probed."""
NOT_ONLY_AUDIO_TYPES = frozenset({"application/ogg", "video/ogg", "application/octet-stream"})
"""Content types that are no audio/* type but under which stations serve audio."""
PARSED_CODECS = {"mp3": "mp3float", "aac": "aac"}
"""Streams of bare frames (MP3, ADTS AAC), cut by FFmpeg's parser rather than a demuxer, and
their decoders: the floating-point ones, whose planes the ring takes as they are (FFmpeg's
plain "mp3" is its fixed-point decoder, whose integers would be converted first)."""
PROBE_BYTES = 65536
"""Bytes of a parsed stream that must give a frame, else it is not what it says it is."""
PLAYLIST_TYPES = frozenset({"audio/x-mpegurl", "audio/mpegurl", "audio/x-scpls"})
POLL_SECONDS = 0.025
"""Shortest sleep of a waiting `StreamSource.read`: about one MP3 frame (26 ms), the smallest
step in which decoded audio comes."""
STOP_SECONDS = 2.0
"""How long `StreamSource.stop` waits for the reader thread. A read is broken at once by
shutting the socket down, but a connect or a name lookup in progress cannot be: the thread
(a daemon) then ends by itself when that returns."""
STREAM_TITLE = re.compile(r"StreamTitle='(.*?)';?(?=\w+=|\s*\Z)", re.DOTALL)


def parse_stream_title(metadata: bytes) -> str | None:
    """The StreamTitle of an ICY metadata block ('' for an empty one), None if it has none.

    The block is UTF-8 on most servers, latin-1 on old Shoutcast ones; a title may hold
    apostrophes (only ``';`` before the next field ends it).

    Examples
    --------
    >>> parse_stream_title(b"StreamTitle='Guns N' Roses - Patience';StreamUrl='';\\0\\0")
    "Guns N' Roses - Patience"
    >>> parse_stream_title("StreamTitle='Mot\\xf6rhead';".encode("latin-1"))
    'Motörhead'
    >>> parse_stream_title(b"StreamUrl='http://example.org';") is None
    True
    """
    raw = metadata.rstrip(b"\0")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    match = STREAM_TITLE.search(text)
    return None if match is None else match.group(1).strip()


def is_stream_url(url: str) -> bool:
    """Whether the reader could try `url`: http or https, a host, a valid port if any.

    >>> is_stream_url("http://radio.example:8000/live"), is_stream_url("ftp://x/y")
    (True, False)
    """
    parts = urlsplit(url)
    try:
        return parts.scheme in URL_SCHEMES and bool(parts.hostname) and parts.port != 0
    except ValueError:  # urlsplit checks the port only when asked for it
        return False


def _check_url(url: str) -> None:
    """Refuse, in one line, a URL that the reader thread could not even try."""
    if urlsplit(url).scheme not in URL_SCHEMES:
        raise StreamerError(
            f"{url}: not an http:// or https:// URL: give the stream's own URL, such as "
            "http://HOST:PORT/mount (a file is analysed with --file)"
        )
    if not is_stream_url(url):
        raise StreamerError(f"{url}: no host, or a bad port: give the stream's own URL")


def _utf8(header: str) -> str:
    """A header's text as the UTF-8 that servers send, which http.client reads as latin-1."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeError:  # latin-1 indeed (an old Shoutcast)
        return header


class _StatusLineFixed:
    """A response's socket file whose first line ``ICY 200 OK`` (Shoutcast v1, which
    http.client refuses) reads as ``HTTP/1.0 200 OK``; everything else goes to the file."""

    def __init__(self, fp: io.BufferedReader) -> None:
        self._fp = fp
        self._first = True

    def readline(self, limit: int = -1) -> bytes:
        line = self._fp.readline(limit)
        if self._first and line.startswith(b"ICY "):
            line = b"HTTP/1.0 " + line[4:]
        self._first = False
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)


class _IcyResponse(http.client.HTTPResponse):
    """An HTTP response that also takes Shoutcast v1's ``ICY 200 OK`` status line."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = cast(io.BufferedReader, _StatusLineFixed(self.fp))


class _Failure(Exception):
    """A connection that cannot give audio, with its one-line reason (the message)."""


class _IcyFraming:
    """The audio bytes of a response, its ICY metadata taken out, as they come.

    Every `metaint` audio bytes the server puts a length byte L and L * 16 bytes of
    metadata. Each StreamTitle found is kept in `titles` with the count of audio bytes
    before it, where it starts; `position` counts the audio bytes so far.
    """

    def __init__(self, metaint: int | None) -> None:
        self._metaint = metaint
        self._until_metadata = metaint or 0
        self._metadata: bytearray | None = None  # the block being read, if any
        self._metadata_size = 0
        self.position = 0
        self.titles: collections.deque[tuple[int, str]] = collections.deque()

    def split(self, data: bytes) -> list[tuple[int, bytes]]:
        """The audio in `data`, as (position of its first byte, bytes) pieces."""
        if self._metaint is None:
            self.position += len(data)
            return [(self.position - len(data), data)]
        pieces, at = [], 0
        while at < len(data):
            if self._metadata is not None:  # inside a metadata block
                taken = data[at : at + self._metadata_size - len(self._metadata)]
                self._metadata += taken
                at += len(taken)
                if len(self._metadata) == self._metadata_size:
                    if (title := parse_stream_title(bytes(self._metadata))) is not None:
                        self.titles.append((self.position, title))
                    self._metadata, self._until_metadata = None, self._metaint
            elif self._until_metadata == 0:  # the length byte
                self._metadata_size = data[at] * 16
                at += 1
                if self._metadata_size:
                    self._metadata = bytearray()
                else:
                    self._until_metadata = self._metaint
            else:
                audio = data[at : at + self._until_metadata]
                pieces.append((self.position, audio))
                at += len(audio)
                self.position += len(audio)
                self._until_metadata -= len(audio)
        return pieces


class _AudioBytes:
    """What PyAV's demuxers read (`read`): the response's audio bytes, pulled.

    A failed read raises once (PyAV raises it again from the call that was reading, so what
    FFmpeg holds is not decoded as if the stream had ended) and is kept in `failure`; the
    reads after it give the end of the stream, for PyAV prints every exception raised after
    the first.
    """

    def __init__(
        self,
        response: http.client.HTTPResponse,
        framing: _IcyFraming,
        *,
        before_reading: Callable[[], None],
    ) -> None:
        self._response = response
        self._framing = framing
        self._before_reading = before_reading
        self.failure: Exception | None = None

    def read(self, size: int) -> bytes:
        if self.failure is not None:
            return b""
        self._before_reading()  # FFmpeg has decoded all it had: hand that on before waiting
        try:
            while data := self._response.read1(size):
                audio = b"".join(piece for _, piece in self._framing.split(data))
                if audio:
                    return audio
            return b""
        except (OSError, http.client.HTTPException) as error:
            self.failure = error
            raise


class _Parsing:
    """Bare MP3 or ADTS AAC frames decoded as their bytes come (`feed`), cut by FFmpeg's
    parser: a frame is decoded as soon as it is whole, where a demuxer first reads ahead
    (about 80 ms more delay). Runs on the receiver's thread, or on the source's own."""

    def __init__(self, source: StreamSource, framing: _IcyFraming, kind: str) -> None:
        self._source = source
        self._framing = framing
        self._kind = kind
        codec = av.CodecContext.create(PARSED_CODECS[kind], "r")
        self._codec = cast(av.AudioCodecContext, codec)
        self.decoded = _Decoded(source)

    def feed(self, data: bytes | None) -> None:
        """Decode what `data` completes (None: the end, decode what the parser holds) and
        hand it to the ring, titles at their place."""
        pieces = self._framing.split(data) if data is not None else [(self._framing.position, None)]
        for position, piece in pieces:
            packets = self._codec.parse(piece)
            self._source._decode_packets(
                ((position, functools.partial(self._codec.decode, p)) for p in packets),
                self._framing,
                self.decoded,
            )
        self.decoded.flush()
        if not self.decoded.frames and self._framing.position > PROBE_BYTES:
            raise _Failure(
                f"{self._source.url}: no {self._kind} frame in its first "
                f"{PROBE_BYTES // 1024} KB: give the URL of an MP3, AAC, Ogg or FLAC stream"
            )


class _Decoded:
    """Decoded frames on their way to a source's ring: mono, resampled, checked, written.

    Frames wait here until the bytes of a network read are decoded (`_Parsing.feed`, or
    `_AudioBytes` when FFmpeg asks for more, before it may wait for the network), so the work
    per frame in Python is done once per network read for all the frames it brought (two or
    so of MP3 at 128 kbit/s), with no delay: what waits is only what was decoded since the
    last read.
    """

    def __init__(self, source: StreamSource) -> None:
        self._source = source
        self._pending: list[np.ndarray] = []
        self._rate = 0  # of the decoded frames
        self._to_rate: Any = None  # soxr's, made for the decoder's rate at the first frame
        self._to_float: av.AudioResampler | None = None  # for decoders that give integers
        self.frames = 0  # decoded so far

    def add(self, frame: av.AudioFrame) -> None:
        """Keep a frame's samples, downmixed to mono float32 (a new rate, as where a station
        joins two files, ends the resampler's stream and starts another)."""
        self.frames += 1
        if frame.sample_rate != self._rate:
            self.flush(last=True)
            self._rate, self._to_float = frame.sample_rate, None
            self._to_rate = soxr.ResampleStream(
                frame.sample_rate, self._source.sample_rate, 1, dtype="float32", quality="HQ"
            )
        channels = frame.layout.nb_channels
        if frame.format.name == "fltp":  # MP3, AAC, Vorbis: planes of float32
            planes = frame.to_ndarray()
            self._pending.append(np.full(channels, 1 / channels, np.float32) @ planes)
            return
        if self._to_float is None:
            self._to_float = av.AudioResampler(format="flt")
        for packed in self._to_float.resample(frame):
            self._pending.append(downmix(packed.to_ndarray().reshape(-1, channels)))

    def flush(self, *, last: bool = False) -> None:
        """Resample what waits and give it to the ring (with the resampler's tail if `last`)."""
        if self._to_rate is None or not (self._pending or last):
            return
        if len(self._pending) == 1:
            block = self._pending[0]
        else:
            block = np.concatenate([np.empty(0, np.float32), *self._pending])
        self._pending = []
        source = self._source
        source._offer(self._to_rate.resample_chunk(source._usable(block), last=last))


class StreamSource(AudioSource):
    """An internet radio stream over HTTP(S), decoded on its own thread, surviving drops.

    The reader thread connects (following up to `MAX_REDIRECTS` redirects, accepting
    Shoutcast v1's ``ICY 200 OK``), asks for ICY metadata, checks the status and content
    type, decodes with PyAV and writes mono float32 at `sample_rate` into a ring buffer. A
    packet the decoder refuses is skipped (`skipped_packets`). When the connection ends
    (the server closed it, nothing came for `stall_seconds`, the demuxer gave up), it says
    why in `problem` and connects again `retry_seconds` later, doubling the pause after each
    failed try up to `max_retry_seconds`, back to `retry_seconds` once audio flows.

    The consumer side does no I/O. The input is lost (`input_lost`) once the reader is
    between connections, or nothing came for `stall_seconds`; `read` then hands out digital
    silence at the pace of the wall clock, so the stream clock keeps time through the gap
    (the rule is `streamer.capture.loss.InputWatch`), and the input is back with the first
    samples of a new connection. `title_changes` gives the changes of the stream's title
    at their place on that clock.

    Parameters
    ----------
    url : str
        The stream's own http:// or https:// URL (not a playlist, not a web page).
    sample_rate : int
        Rate delivered to the caller (soxr resamples the decoder's rate).
    stall_seconds : float
        No data for this long ends a connection (the socket's read timeout), and no
        samples for this long makes the input lost.
    retry_seconds : float
        Pause before connecting again after a connection ends or fails.
    max_retry_seconds : float
        Longest pause, which the doubling after each failed try stops at.
    ring_seconds : float
        Capacity of the ring buffer between the reader thread and the consumer.
    timeout : float
        Time allowed to connect; `start` waits this plus `stall_seconds` at most for the
        first audio (a connection, then a stall, can take that long to fail).
    """

    def __init__(
        self,
        url: str,
        *,
        sample_rate: int,
        stall_seconds: float = 5.0,
        retry_seconds: float = 1.0,
        max_retry_seconds: float = 30.0,
        ring_seconds: float = 30.0,
        timeout: float = 10.0,
    ) -> None:
        _check_url(url)
        self.url = url
        self.sample_rate = sample_rate
        self.description = url
        self.stall_seconds = stall_seconds
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.timeout = timeout
        self.redirected_to: str | None = None
        self.skipped_packets = 0
        """Packets the decoder refused and that were skipped (about 26 ms of MP3 each): a
        damaged frame, or the ID3 tag a station sends between two files it plays."""
        self._problem: str | None = None
        self._ring = RingBuffer(int(ring_seconds * sample_rate))
        self._watch = InputWatch(
            sample_rate=sample_rate, stall_seconds=stall_seconds, retry_seconds=retry_seconds
        )
        # Reader side: the thread, what stops it, and what it tells the consumer.
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._first_outcome = threading.Event()  # first audio, or the first try failed
        self._socket: socket.socket | None = None
        self._connecting_or_connected = False  # False while pausing between connections
        self._framing: _IcyFraming | None = None  # the connection's audio bytes
        self._offered = 0  # samples given to the ring (stored or overflowed)
        self._title: str | None = None
        self._titles: collections.deque[tuple[int, str | None]] = collections.deque()
        # Consumer side.
        self._kept = 0  # samples left in the ring by the last read
        self._from_ring = 0  # samples handed out that the ring gave (with overflow zeros)
        self._handed_out = 0  # all samples handed out: the stream clock
        self._last_block = (0, 0, 0)  # the last read from the ring: clock, ring index, samples
        self._title_changes: list[tuple[float, str | None]] = []

    # --- consumer side ---------------------------------------------------------------------

    @property
    def problem(self) -> str | None:
        """Why the last connection failed or ended, in one line; None while audio flows."""
        return self._problem

    @property
    def overflow_samples(self) -> int:
        return self._ring.overflow_samples

    @property
    def overflow_events(self) -> int:
        return self._ring.overflow_events

    @property
    def backlog_seconds(self) -> float:
        return self._ring.available / self.sample_rate

    def arrived_at(self, sample: int) -> float | None:
        clock, first, count = self._last_block
        offset = sample - clock
        return self._ring.arrived_at(first + offset) if 0 <= offset < count else None

    @property
    def input_lost(self) -> bool:
        return self._watch.lost

    def launch(self) -> None:
        """Start the reader thread without waiting: a stream that fails goes on retrying,
        and says why in `problem` (for a monitor of many streams, where one failing must
        not stop the others)."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"stream {self.url}", daemon=True)
        self._watch.opened(now=time.monotonic())
        self._thread.start()

    def start(self) -> None:
        """Start the reader thread and return once audio comes; raise `StreamerError` with
        the reason if the first connection fails (or gives no audio in time)."""
        self.launch()
        if not self._first_outcome.wait(self.timeout + self.stall_seconds):
            reason = (
                f"{self.url}: no audio within {self.timeout + self.stall_seconds:g} s: check "
                "that the URL is the stream's own"
            )
        elif self._offered == 0:
            reason = self._problem or f"{self.url}: no audio"
        else:
            return
        self.stop()
        raise StreamerError(reason)

    def stop(self) -> None:
        """Stop the reader thread: break its connection, wait for it (`STOP_SECONDS`)."""
        self._stopping.set()
        self._break_connection()
        if self._thread is not None:
            self._thread.join(STOP_SECONDS)
            self._thread = None

    def read(self, timeout: float = 0.1, *, min_samples: int = 1) -> np.ndarray | None:
        """Samples once the ring holds `min_samples`, else empty at `timeout` (0: no wait);
        silence at the wall clock's pace while the input is lost; None once stopped."""
        if self._thread is None:
            return None
        self._ring.wait_for(
            min_samples, timeout=timeout, rate=self.sample_rate, shortest=POLL_SECONDS
        )
        now = time.monotonic()
        available = self._ring.available
        if available > self._kept:  # new samples, not only those kept from the last read
            self._watch.arrived(now=now)
        if available >= min_samples:
            self._kept = 0
            return self._read_ring()
        self._kept = available
        if not self._watch.lost and self._watch.stalled(
            now=now, active=self._connecting_or_connected
        ):
            self._watch.lose(now=now)
            self._kept = 0
            return self._read_ring()  # what came before the gap
        if available:
            return np.empty(0, dtype=np.float32)  # not `min_samples` yet: kept for later
        if self._watch.lost and self._receiving():
            return np.empty(0, dtype=np.float32)  # the gap is over: its audio is on the way
        silence = np.zeros(self._watch.silence(now=now), dtype=np.float32)
        self._handed_out += silence.size
        return silence

    def title_changes(self) -> list[tuple[float, str | None]]:
        """The changes of title handed out by `read` since the last call, in order, each
        once, as (stream seconds, title or None when the station clears it)."""
        changes, self._title_changes = self._title_changes, []
        return changes

    def _receiving(self) -> bool:
        """Whether a connection is receiving audio bytes. After a loss the gap ends where they
        begin: a demuxer (Ogg, FLAC) decodes nothing before it has probed some 28 KB (1.75 s
        at 128 kbit/s), which then come out at once, so silence handed out while they come
        would put the stream clock ahead of the wall's by as much at every reconnection."""
        framing = self._framing  # the reader may set it to None meanwhile
        return framing is not None and framing.position > 0

    def _read_ring(self) -> np.ndarray:
        """All the ring holds (with zeros where it overflowed), handed out; where its
        samples were in the ring is kept for `arrived_at`."""
        clock, first = self._handed_out, self._ring.consumed
        block = self._ring.read_filled()
        self._last_block = (clock, first, self._ring.consumed - first)
        return self._hand_out(block)

    def _hand_out(self, block: np.ndarray) -> np.ndarray:
        """Count `block` on the stream clock and place the titles that start in it there.

        Silence is handed out only while the ring is empty, so a title's place on the stream
        clock is its place among the ring's samples plus the silence handed out before it.
        """
        start = self._from_ring
        self._from_ring += block.size
        while self._titles and self._titles[0][0] < self._from_ring:
            position, title = self._titles.popleft()
            seconds = (self._handed_out + position - start) / self.sample_rate
            self._title_changes.append((seconds, title))
        self._handed_out += block.size
        return block

    # --- reader thread ---------------------------------------------------------------------

    def _run(self) -> None:
        """Connect, decode until the connection ends, pause, again, until stopped."""
        pause: float | None = None
        while not self._stopping.is_set():
            self._connecting_or_connected = True
            flowed = self._connection()
            self._connecting_or_connected = False
            self._first_outcome.set()
            if flowed or pause is None:
                pause = self.retry_seconds
            else:
                pause = min(2 * pause, self.max_retry_seconds)
            if self._stopping.wait(pause):
                return

    def _connection(self) -> bool:
        """One connection, from connecting to its end; whether audio flowed. The reason it
        failed or ended goes to `problem` (unless `stop` ended it)."""
        offered = self._offered
        response: http.client.HTTPResponse | None = None
        try:
            response = self._connect()
            reason = self._decode(response)
        except _Failure as failure:
            reason = str(failure)
        finally:
            if response is not None:
                response.close()
            if self._socket is not None:
                self._socket.close()
                self._socket = None
        if not self._stopping.is_set():
            self._problem = reason
        return self._offered > offered

    def _connect(self) -> http.client.HTTPResponse:
        """Connect to the stream, following redirects; its response, checked."""
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            response = self._request(url)
            location = response.getheader("Location")
            if response.status not in REDIRECT_STATUSES or not location:
                self._check(response, url)
                self.redirected_to = None if url == self.url else url
                return response
            response.close()
            url = urljoin(url, location)
            if not is_stream_url(url):
                raise _Failure(f"{self.url}: redirected to {url}, not an http(s) URL")
        raise _Failure(
            f"{self.url}: more than {MAX_REDIRECTS} redirects (a loop?): give the stream's "
            "final URL"
        )

    def _request(self, url: str) -> http.client.HTTPResponse:
        """GET `url` asking for ICY metadata; the response's status line and headers."""
        parts = urlsplit(url)
        connection_type = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_type(parts.hostname or "", parts.port, timeout=self.timeout)
        connection.response_class = _IcyResponse
        if self._socket is not None:  # the previous hop of a redirect
            self._socket.close()
            self._socket = None
        try:
            connection.connect()
        except TimeoutError:
            raise _Failure(
                f"{url}: no answer within {self.timeout:g} s: check the host and port, and "
                "that the station is on the air"
            ) from None
        except OSError as error:
            raise _Failure(
                f"{url}: cannot connect ({error.strerror or error}): check the host and port, "
                "and that the station is on the air"
            ) from None
        assert connection.sock is not None  # connected
        self._socket = connection.sock
        if self._stopping.is_set():  # `stop` came before it could break this connection
            raise _Failure("stopped")
        self._socket.settimeout(self.stall_seconds)
        target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        headers = {"Icy-MetaData": "1", "User-Agent": f"streamer/{__version__}"}
        try:
            connection.request("GET", target, headers=headers)
            return connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            raise _Failure(self._network_reason(error, url)) from None

    def _check(self, response: http.client.HTTPResponse, url: str) -> None:
        """Refuse a response that is no audio stream, with what to do about it."""
        if response.status != 200:
            raise _Failure(
                f"{url}: {response.status} {response.reason}: check the URL (the mount point) "
                "with the station"
            )
        content_type = self._content_type(response)
        if content_type in PLAYLIST_TYPES:
            raise _Failure(
                f"{url}: a playlist ({content_type}), not a stream: give one of the URLs inside it"
            )
        if content_type and not (
            content_type.startswith("audio/") or content_type in NOT_ONLY_AUDIO_TYPES
        ):
            raise _Failure(
                f"{url} serves {content_type}, not audio: give the stream's own URL (a "
                ".pls/.m3u playlist or a web page is not a stream)"
            )

    @staticmethod
    def _content_type(response: http.client.HTTPResponse) -> str:
        return (response.getheader("Content-Type") or "").split(";")[0].strip().lower()

    def _network_reason(self, error: Exception, url: str) -> str:
        if isinstance(error, TimeoutError):
            return (
                f"{url}: no data for {self.stall_seconds:g} s (the server stalled): check that "
                "the station is on the air"
            )
        if isinstance(error, http.client.RemoteDisconnected | http.client.IncompleteRead):
            return f"{url}: the server closed the connection"
        detail = getattr(error, "strerror", None) or str(error) or type(error).__name__
        return f"{url}: connection failed ({detail})"

    def _decode(self, response: http.client.HTTPResponse) -> str:
        """Decode the response into the ring until it ends; the one-line reason it ended."""
        metaint = response.getheader("icy-metaint") or "0"
        if not metaint.strip().isdigit():
            return f"{self.url}: icy-metaint {metaint!r} is not a byte count: a broken server"
        framing = self._framing = _IcyFraming(int(metaint) or None)
        kind = FORMAT_HINTS.get(self._content_type(response))
        try:
            if kind in PARSED_CODECS:
                self._describe(response, kind)
                return self._parse(response, _Parsing(self, framing, kind))
            return self._demux(response, framing, kind)
        finally:
            self._framing = None
            self._place_titles(framing.titles, before=None)

    def _parse(self, response: http.client.HTTPResponse, parsing: _Parsing) -> str:
        """Bare frames: read by the process's receiver thread where the connection allows it
        (plain HTTP, the body as it is), else by this thread; the reason it ended."""
        error: BaseException | None = None
        try:
            sock = self._socket
            if (
                isinstance(sock, socket.socket)
                and not isinstance(sock, ssl.SSLSocket)
                and not (response.chunked or response.length is not None)
            ):
                error = self._receive(response, sock, parsing)
            else:
                while data := response.read1(READ_BYTES):
                    parsing.feed(data)
            if error is None:
                parsing.feed(None)
        except Exception as raised:  # as the receiver would end it
            error = raised
        finally:
            parsing.decoded.flush(last=True)
        return self._ending(error)

    def _receive(
        self, response: http.client.HTTPResponse, sock: socket.socket, parsing: _Parsing
    ) -> BaseException | None:
        """Hand the socket to the receiver thread and wait for the connection's end."""
        ended = threading.Event()
        outcome: list[BaseException | None] = []

        def on_end(error: BaseException | None) -> None:
            outcome.append(error)
            ended.set()

        sock.setblocking(False)
        early = response.fp.peek()  # what came with the headers: given first
        if early:
            parsing.feed(response.fp.read(len(early)))
        shared_receiver().add(
            sock, on_data=parsing.feed, on_end=on_end, stall_seconds=self.stall_seconds
        )
        ended.wait()
        return outcome[0]

    def _demux(self, response: http.client.HTTPResponse, framing: _IcyFraming,
               kind: str | None) -> str:  # fmt: skip
        """A container (Ogg, FLAC, or what FFmpeg probes) through its demuxer, read by this
        thread; the reason it ended."""
        decoded = _Decoded(self)
        audio = _AudioBytes(response, framing, before_reading=decoded.flush)
        error: BaseException | None = None
        try:
            with av.open(audio, "r", format=kind) as container:
                if not container.streams.audio:
                    return f"{self.url}: no audio in the stream: give the stream's own URL"
                self._describe(response, container.format.name)
                stream = container.streams.audio[0]
                demuxed = ((p.pos or 0, p.decode) for p in container.demux(stream))
                self._decode_packets(demuxed, framing, decoded)
        except Exception as raised:
            error = raised
        finally:
            decoded.flush(last=True)
        return self._ending(audio.failure or error)

    def _ending(self, error: BaseException | None) -> str:
        """The one-line reason a connection ended with `error` (None: the server ended it)."""
        if error is None:
            return f"{self.url}: the server ended the stream"
        if isinstance(error, _Failure):
            return str(error)
        if isinstance(error, av.FFmpegError | ValueError):  # the demuxer or the decoder gave up
            detail = getattr(error, "strerror", None) or error  # (some are OSErrors too)
            return (
                f"{self.url}: the decoder gave up ({detail}): give the URL of an MP3, AAC, Ogg "
                "or FLAC stream"
            )
        if isinstance(error, OSError | http.client.HTTPException):
            return self._network_reason(error, self.url)
        raise error

    def _describe(self, response: http.client.HTTPResponse, kind: str) -> None:
        name = response.getheader("icy-name")
        self.description = f"{_utf8(name)} ({self.url}, {kind})" if name else f"{self.url} ({kind})"

    def _decode_packets(
        self,
        packets: Iterable[tuple[int, Callable[[], list[av.AudioFrame]]]],
        framing: _IcyFraming,
        decoded: _Decoded,
    ) -> None:
        """Each packet's frames into `decoded`, the titles at their place: `packets` are
        (audio byte position, the call that decodes the packet)."""
        for position, decode in packets:
            if framing.titles and framing.titles[0][0] <= position:
                decoded.flush()  # the title starts after what was decoded so far
                self._place_titles(framing.titles, before=position)
            try:
                frames = decode()
            except av.InvalidDataError:  # a damaged frame, or a file's ID3 tag
                self.skipped_packets += 1  # between two songs: skip it, go on
                continue
            for frame in frames:
                decoded.add(frame)

    def _offer(self, samples: np.ndarray) -> None:
        """Into the ring; the first samples of a connection mean audio flows again."""
        if not samples.size:
            return
        self._ring.write(samples)
        self._offered += samples.size
        self._problem = None
        self._first_outcome.set()

    def _place_titles(
        self, titles: collections.deque[tuple[int, str]], *, before: int | None
    ) -> None:
        """Record the changes of title among those met before audio byte `before` (all of
        them if None): the title starts at the next sample given to the ring."""
        while titles and (before is None or titles[0][0] <= before):
            title = titles.popleft()[1] or None
            if title != self._title:
                self._title = title
                self._titles.append((self._offered, title))

    def _break_connection(self) -> None:
        """Shut the socket down: the reader's blocking read returns at once."""
        connected = self._socket  # the reader may set it to None meanwhile
        if connected is not None:
            with contextlib.suppress(OSError):
                connected.shutdown(socket.SHUT_RDWR)
