"""The internet-radio source against a real HTTP server on loopback (tests/icyserver.py),
decoding with the real PyAV: titles, the audio itself, every format, each way a station
fails, a server that goes away and comes back, and the pauses between tries."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
import soxr
from icyserver import IcyServer, decode, encode, make_music, metadata_block

from streamer.capture.stream import StreamSource, _IcyFraming
from streamer.errors import StreamerError

RATE = 22050
HOP = RATE // 2
SECONDS = 8.0  # of the served file
TITLES = [(0.0, "Artist - One"), (2.0, "Artist - Two"), (4.0, "")]


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    return make_music(SECONDS)


@pytest.fixture(scope="module")
def mp3(music: np.ndarray) -> bytes:
    return encode(music, rate=44100, encoding="mp3")


@pytest.fixture
def server(mp3: bytes) -> Iterator[IcyServer]:
    """The MP3 as an endless stream paced in real time, titled, metadata every 4 KB."""
    with IcyServer(mp3, duration=SECONDS, titles=TITLES, metaint=4096, name="Radio Tëst") as icy:
        yield icy


def direct_decode(data: bytes) -> np.ndarray:
    """The file decoded without HTTP, mono at `RATE`: what the stream must give."""
    samples, rate = decode(data)
    resampled: np.ndarray = soxr.resample(samples, rate, RATE, quality="HQ")
    return resampled


def best_alignment(got: np.ndarray, expected: np.ndarray) -> tuple[int, float]:
    """The lag of `got` behind `expected` (samples, within 0.1 s) and their correlation."""
    most = RATE // 10
    n = min(got.size, expected.size) - 2 * most
    lags = range(-most, most + 1)
    middle = got[most : most + n]
    scores = [np.dot(middle, expected[most + lag : most + lag + n]) for lag in lags]
    lag = lags[int(np.argmax(scores))]
    return lag, float(np.corrcoef(middle, expected[most + lag : most + lag + n])[0, 1])


def read_for(source: StreamSource, seconds: float) -> np.ndarray:
    """What `read` hands out until `seconds` of it have come (at most 3 s more wall time)."""
    chunks: list[np.ndarray] = []
    deadline = time.monotonic() + seconds + 3
    while sum(c.size for c in chunks) < seconds * RATE and time.monotonic() < deadline:
        chunk = source.read(0.5, min_samples=HOP)
        assert chunk is not None
        chunks.append(chunk)
    return np.concatenate(chunks)


def test_titles_come_at_their_place_and_the_audio_is_the_files(
    server: IcyServer, mp3: bytes
) -> None:
    source = StreamSource(f"{server.url}/live", sample_rate=RATE, stall_seconds=2.0)
    source.start()
    got, changes = read_for(source, 6.0), source.title_changes()
    assert source.title_changes() == [], "each change is handed out once"
    stopping = time.monotonic()
    source.stop()
    assert time.monotonic() - stopping < 0.5, "stop breaks the blocking read at once"
    assert source.read(0.1) is None

    # A title starts at the first metadata block after its time, at which the server sends
    # it; its place may be off by an MP3 frame (26 ms) and the encoder's delay.
    def sent_at(seconds: float) -> float:
        block = server.metaint / server.bytes_per_second
        return float(np.ceil(seconds / block) * block) if seconds else block

    assert [title for _, title in changes] == ["Artist - One", "Artist - Two", None]
    for (seconds, _), (start, _) in zip(changes, TITLES, strict=True):
        assert seconds == pytest.approx(sent_at(start), abs=0.1)

    lag, correlation = best_alignment(got, direct_decode(mp3))
    assert lag == 0, "the stream starts where the file does"
    assert correlation > 0.999, "the same decoder: the same samples"
    assert source.description == f"Radio Tëst ({server.url}/live, mp3)"
    headers = server.requests[-1].headers
    assert headers["Icy-MetaData"] == "1"
    assert headers["User-Agent"].startswith("streamer/")


@pytest.mark.parametrize(
    ("encoding", "rate", "content_type", "demuxer"),
    [
        ("aac", 44100, "audio/aac", "aac"),
        ("vorbis", 44100, "application/ogg", "ogg"),
        ("opus", 48000, "audio/ogg", "ogg"),
        ("flac", 44100, "audio/flac", "flac"),
        ("mp3", 44100, "application/octet-stream", "mp3"),  # no hint: FFmpeg probes
    ],
)
def test_each_format_decodes_to_the_files_audio(
    music: np.ndarray, encoding: str, rate: int, content_type: str, demuxer: str
) -> None:
    seconds = 3.0
    clip = music[: int(seconds * 44100)]
    if rate != 44100:
        clip = soxr.resample(clip, 44100, rate).astype(np.float32)
    data = encode(clip, rate=rate, encoding=encoding)
    with IcyServer(
        data, duration=seconds, content_type=content_type, loop=False, realtime=False
    ) as icy:
        source = StreamSource(f"{icy.url}/live", sample_rate=RATE, stall_seconds=1.0)
        with source:
            got = read_for(source, 2.5)
        assert source.description == f"{icy.url}/live ({demuxer})", "no icy-name"
    lag, correlation = best_alignment(got, direct_decode(data))
    assert lag == 0
    assert correlation > 0.999


def test_a_file_from_a_plain_web_server_decodes_to_its_audio(mp3: bytes) -> None:
    """A body of known length is read by the stream's own thread (as HTTPS is), not by the
    shared receiver, which takes only open-ended bodies."""
    with IcyServer(mp3, duration=SECONDS, loop=False) as icy:
        source = StreamSource(f"{icy.url}/file", sample_rate=RATE, stall_seconds=1.0)
        with source:
            got = read_for(source, SECONDS - 1.0)
    lag, correlation = best_alignment(got, direct_decode(mp3))
    assert lag == 0
    assert correlation > 0.999


def test_icy_metadata_is_taken_out_however_the_reads_cut_it() -> None:
    """The framing is fed as the network gives it: a read may end inside a length byte's
    block or the audio; the audio and each title's place come out the same."""
    audio = bytes(range(256)) * 40  # 10240 audio bytes, metadata every 1000
    stream, titles = bytearray(), {2000: "A - One", 7000: "B - Two"}
    for start in range(0, len(audio), 1000):
        stream += audio[start : start + 1000]
        stream += metadata_block(titles.get(start + 1000)) if start + 1000 <= len(audio) else b""
    rng = np.random.default_rng(3)
    cuts = np.cumsum(rng.integers(1, 8, size=len(stream)))  # reads of 1 to 7 bytes
    cuts = cuts[cuts < len(stream)]
    framing = _IcyFraming(1000)
    got = bytearray()
    for piece in np.split(np.frombuffer(bytes(stream), np.uint8), cuts):
        for position, part in framing.split(piece.tobytes()):
            assert position == len(got)
            got += part
    assert bytes(got) == audio
    assert list(framing.titles) == [(2000, "A - One"), (7000, "B - Two")]


def test_what_overflows_the_ring_comes_out_as_zeros_and_counted(music: np.ndarray) -> None:
    data = encode(music[: 3 * 44100], rate=44100, encoding="mp3")
    with IcyServer(data, duration=3.0, loop=False, realtime=False) as icy:
        source = StreamSource(f"{icy.url}/live", sample_rate=RATE, ring_seconds=0.5)
        with source:
            time.sleep(1.0)  # the whole file decodes meanwhile, into a ring of 0.5 s
            got = source.read(0)
            assert got is not None
            lost, events = source.overflow_samples, source.overflow_events
    assert lost > RATE and events >= 1
    assert got.size == RATE // 2 + lost, "what the ring holds, then a zero for each lost"
    whole = direct_decode(data).size  # 3 s and the encoder's delay and padding
    assert got.size == pytest.approx(whole, abs=RATE // 100), "the stream clock goes on"
    assert np.any(got[: RATE // 2]) and not np.any(got[RATE // 2 :])


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/missing", "404 Not Found: check the URL (the mount point)"),
        ("/page", "serves text/html, not audio: give the stream's own URL"),
        ("/playlist.m3u", "a playlist (audio/x-mpegurl), not a stream"),
        ("/stall", "no data for 0.5 s (the server stalled)"),
        ("/loop", "more than 5 redirects (a loop?)"),
    ],
)
def test_a_stream_that_cannot_play_fails_start_in_one_line(
    server: IcyServer, path: str, words: str
) -> None:
    source = StreamSource(f"{server.url}{path}", sample_rate=RATE, stall_seconds=0.5)
    with pytest.raises(StreamerError) as raised:
        source.start()
    message = str(raised.value)
    assert words in message
    assert message.startswith(f"{server.url}{path}")
    assert "\n" not in message


def test_bytes_that_are_no_mp3_under_its_content_type_fail_in_one_line() -> None:
    noise = np.random.default_rng(0).bytes(200_000)  # sync words by chance, no real frame
    with IcyServer(noise, duration=10.0, loop=False, realtime=False) as icy:
        source = StreamSource(f"{icy.url}/live", sample_rate=RATE, stall_seconds=2.0)
        with pytest.raises(StreamerError) as raised:
            source.start()
    assert str(raised.value) == (
        f"{icy.url}/live: no mp3 frame in its first 64 KB: give the URL of an MP3, AAC, Ogg "
        "or FLAC stream"
    )


def test_a_server_that_is_not_there_is_named(server: IcyServer) -> None:
    url = f"{server.url}/live"
    server.stop()
    with pytest.raises(StreamerError, match=r"cannot connect .*[Rr]efused.*: check the host"):
        StreamSource(url, sample_rate=RATE).start()


@pytest.mark.parametrize("path", ["/moved", "/icy"])
def test_redirects_and_shoutcast_status_lines_play(server: IcyServer, path: str) -> None:
    with StreamSource(f"{server.url}{path}", sample_rate=RATE, stall_seconds=2.0) as source:
        got = read_for(source, 1.0)
        redirected = source.redirected_to
    assert np.sqrt(np.mean(got**2)) > 0.05, "audio, not silence"
    assert redirected == (f"{server.url}/live" if path == "/moved" else None)


@pytest.mark.parametrize(
    "url", ["ftp://example.org/live", "/music/live.mp3", "http:///live", "http://host:99999/x"]
)
def test_a_url_that_is_not_http_is_refused_at_once(url: str) -> None:
    with pytest.raises(StreamerError, match="give the stream's own URL"):
        StreamSource(url, sample_rate=RATE)


@pytest.fixture
def one_title_server(mp3: bytes) -> Iterator[IcyServer]:
    """`server` with one title, which it sends again to each new connection."""
    with IcyServer(mp3, duration=SECONDS, titles=[(0.0, "Artist - One")], metaint=4096) as icy:
        yield icy


def test_a_server_gone_and_back_is_a_loss_with_the_wall_clocks_silence(
    one_title_server: IcyServer,
) -> None:
    server, stall = one_title_server, 1.0
    source = StreamSource(
        f"{server.url}/live",
        sample_rate=RATE,
        stall_seconds=stall,
        retry_seconds=0.2,
        max_retry_seconds=0.8,
    )
    started = time.monotonic()  # the connection's audio covers the time from here
    source.start()
    before = read_for(source, 2.0)
    server.stop()
    stopped = time.monotonic()
    lost_at = restarted_at = None
    last_audio: list[np.ndarray] = []  # what the ring held when the loss was seen
    during: list[np.ndarray] = []
    after: list[np.ndarray] = []
    while time.monotonic() - stopped < 8.0:
        chunk = source.read(0.1, min_samples=HOP)
        assert chunk is not None
        now = time.monotonic()
        if lost_at is None:
            last_audio.append(chunk)
            if source.input_lost:
                lost_at, problem_while_lost = now, source.problem
        elif source.input_lost:
            during.append(chunk)
        else:
            after.append(chunk)
            if sum(c.size for c in after) > 1.5 * RATE:
                break
        if lost_at is not None and restarted_at is None and now - stopped > 3.0:
            server.restart()
            restarted_at = now
    handed_out = sum(c.size for c in [before, *last_audio, *during, *after])
    elapsed = time.monotonic() - started
    backlog, titles = source.backlog_seconds, [title for _, title in source.title_changes()]
    source.stop()

    assert lost_at is not None and lost_at - stopped < stall, "lost within stall_seconds"
    assert problem_while_lost is not None and server.url in problem_while_lost
    assert during and not np.any(np.concatenate(during)), "silence through the gap"
    assert after and np.sqrt(np.mean(np.concatenate(after) ** 2)) > 0.05, "audio again"
    assert source.problem is None
    assert titles == ["Artist - One"], "the title sent again on reconnecting is no change"
    # The stream clock kept the wall's time through the gap (what the ring holds is not
    # handed out yet; one hop of slack for where the reads fell).
    assert handed_out / RATE + backlog == pytest.approx(elapsed, abs=HOP / RATE)


def test_a_stalled_stream_is_lost_within_stall_seconds_and_said_so(server: IcyServer) -> None:
    stall = 1.0
    with StreamSource(f"{server.url}/live", sample_rate=RATE, stall_seconds=stall) as source:
        read_for(source, 1.0)
        server.frozen.set()  # the connection stays open, nothing comes
        frozen = time.monotonic()
        while not source.input_lost and time.monotonic() - frozen < 3 * stall:
            source.read(0.1, min_samples=HOP)
        lost_after = time.monotonic() - frozen
        silence = read_for(source, 0.5)
        problem = source.problem
    assert lost_after < stall + HOP / RATE + 0.3, "what the ring held, then the stall"
    assert not np.any(silence)
    assert problem is not None and problem.startswith(f"{server.url}/live: no data for 1 s")


def test_a_failing_stream_retries_with_growing_pauses_and_says_why(server: IcyServer) -> None:
    source = StreamSource(
        f"{server.url}/missing",
        sample_rate=RATE,
        retry_seconds=0.1,
        max_retry_seconds=0.4,
    )
    source.launch()  # no waiting: a monitor goes on with its other streams
    launched = time.monotonic()
    handed_out = 0
    while time.monotonic() - launched < 2.0:
        chunk = source.read(0.1)
        assert chunk is not None
        handed_out += chunk.size
    source.stop()
    tries = [request.at for request in server.requests if request.path == "/missing"]
    pauses = np.diff(tries)
    expected = np.minimum(0.1 * 2.0 ** np.arange(len(pauses)), 0.4)  # 0.1, 0.2, 0.4, 0.4...
    assert len(pauses) >= 4
    assert np.all(pauses > expected - 0.02) and np.all(pauses < expected + 0.1), pauses
    assert source.input_lost
    assert "404 Not Found" in (source.problem or "")
    assert handed_out / RATE == pytest.approx(2.0, abs=0.15), "silence at the wall's pace"


def test_each_sample_handed_out_knows_when_it_came_in(server: IcyServer) -> None:
    """The live latency counts from a sample's arrival, not from its read."""
    with StreamSource(f"{server.url}/live", sample_rate=RATE) as source:
        first = read_for(source, 0.5)
        time.sleep(0.5)  # audio keeps coming meanwhile and waits in the ring
        block = source.read(0)
        read_at = time.monotonic()
        assert block is not None and block.size > 0.3 * RATE
        start = first.size  # the block's first sample on the stream clock
        oldest = source.arrived_at(start)
        newest = source.arrived_at(start + block.size - 1)
        assert oldest is not None and newest is not None
        assert read_at - oldest > 0.3, "the block's first samples waited in the ring"
        assert read_at - newest < 0.2, "its last came just before the read"
        assert source.arrived_at(start - 1) is None, "only the last block read is known"
        assert source.arrived_at(start + block.size) is None


def test_the_latency_a_status_reports_counts_the_wait_in_the_ring(server: IcyServer) -> None:
    """An analysis held up for 1.5 s (here by a slow sink) shows in the latency: the first
    hop after it had waited in the ring, though each read is analysed in milliseconds."""
    import threading

    from streamer.analysis.model import GenreModel, shipped_model_path
    from streamer.chain import GenreChain
    from streamer.live.engine import Engine

    model = GenreModel(shipped_model_path())
    stop = threading.Event()
    # (updates before, latency_ms of the hop before this update): an update is handed to
    # the sinks before its own latency is known.
    latencies: list[tuple[int, float]] = []

    def sink(message: dict) -> None:
        if message["type"] != "update":
            return
        if engine.latency_ms is not None:
            latencies.append((len(latencies), engine.latency_ms))
        if len(latencies) == 3:
            time.sleep(1.5)
        if len(latencies) == 10:
            stop.set()

    source = StreamSource(f"{server.url}/live", sample_rate=model.spec.sample_rate)
    engine = Engine(source=source, chain=GenreChain(model), sinks=[sink])
    engine.run(stop)
    # The hop whose sink held up counts the hold-up itself (its latency is taken after it
    # was handed out): left out. The next one's audio came during the hold-up.
    before = [ms for n, ms in latencies if n < 3]
    after = [ms for n, ms in latencies if n > 3]
    assert before and max(before) < 300, "no wait: a hop is analysed as its audio comes"
    assert after and max(after) > 700, "the first hop after the hold-up waited in the ring"
