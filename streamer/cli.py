"""The `streamer` command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Any

from streamer import __version__
from streamer.access import MAX_MESSAGE_BYTES
from streamer.errors import StreamerError, run_command
from streamer.exports import FORMATS as EXPORT_FORMATS
from streamer.files import default_catalogue_path
from streamer.model import DEFAULT_MODEL
from streamer.server import DEFAULT_HOST, DEFAULT_PORT
from streamer.smoothing import SmoothingConfig

DEFAULT_EXPORTS = ("json", "csv", "cue")
EXIT_INPUT_LOST = 3
"""`streamer listen --on-device-loss exit`: the input device went away."""
EPILOG = """\
examples:
  streamer devices                       list inputs, pick one by index or name
  streamer listen                        analyse the default input (microphone, line-in)
  streamer listen --device "USB Audio"   analyse the input whose name contains "USB Audio"
  streamer listen --file set.flac        play a file through the engine, paced in real time
  streamer listen --record set.jsonl     also append every closed segment to set.jsonl
  streamer listen --no-view --duration 60 > session.jsonl
                                         headless: every protocol message as a JSON line
  streamer watch ws://127.0.0.1:8765     follow a running listen from another terminal
  streamer index ~/Music                 analyse your library (again: only what changed)
  streamer recommend ~/Music/a.flac      tracks of your library that fit a.flac
  streamer listen --library              live recommendations from the indexed library
  streamer library stats                 what the library holds, and what failed
  streamer tag set.flac --plot           tag a recording: segments, CUE sheet, picture
  streamer export set.jsonl --format cue the exports of a live --record file

Run `streamer COMMAND --help` for the options of a command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamer",
        description="Real-time music genre analyzer for a microphone, a line-in or a file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"streamer {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    devices = commands.add_parser(
        "devices",
        help="list audio input devices with their rates and channels",
        description="List the audio inputs PortAudio sees. Use the index or a part of the "
        "name with `streamer listen --device`. The default input is marked with *.",
    )
    devices.set_defaults(run=run_devices)

    listen = commands.add_parser(
        "listen",
        help="analyse live audio from an input device or a file",
        description="Capture audio and tag its genre live: every hop the model sees the "
        "last patch of audio, a smoother keeps the tag stable within a track and follows a "
        "real change, and every update goes to the terminal view and to websocket clients "
        "(docs/protocol.md). Without --device the default input is used; with --file a file "
        "is played through the same path, paced like a line-in. Ctrl-C or SIGTERM closes "
        "the open segment, flushes --record and closes the clients. If the input device "
        "goes away (unplugged, or the sound server stops), the view and the clients are "
        "told at once; see --on-device-loss. Exit status: 0 when stopped, 2 on an error, "
        f"{EXIT_INPUT_LOST} when the input was lost with --on-device-loss exit.",
        epilog="examples:\n  streamer listen --device 2 --record set.jsonl\n"
        "  streamer listen --file mix.flac --no-view --port 0 > updates.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = listen.add_mutually_exclusive_group()
    source.add_argument(
        "--device", metavar="INDEX|NAME", help="input device: index or part of its name"
    )
    source.add_argument("--file", metavar="PATH", help="analyse an audio file instead of a device")
    listen.add_argument(
        "--device-rate", type=float, metavar="HZ",
        help="open the device at this rate (default: the device's own default rate)",
    )  # fmt: skip
    listen.add_argument(
        "--on-device-loss", choices=("wait", "exit"), default="wait",
        help="when the input device goes away: 'wait' keeps the session, analyses the gap "
        "as silence (stream time runs on with the clock) and resumes when the device is "
        f"back; 'exit' closes the open segment, flushes --record and exits with status "
        f"{EXIT_INPUT_LOST} (default: %(default)s)",
    )  # fmt: skip
    listen.add_argument(
        "--fast", action="store_true", help="with --file: do not pace the file in real time"
    )
    listen.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this much audio"
    )
    listen.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, metavar="ONNX",
        help="genre model with its .json metadata beside it (default: the shipped model)",
    )  # fmt: skip
    add_analysis_options(listen)
    listen.add_argument(
        "--host", default=DEFAULT_HOST,
        help="websocket address to bind (default: %(default)s, this machine only)",
    )  # fmt: skip
    listen.add_argument(
        "--port", type=int, default=DEFAULT_PORT,
        help="websocket port; 0 picks a free one (default: %(default)s)",
    )  # fmt: skip
    listen.add_argument(
        "--token",
        help="clients must present this token (?token=... in the URL); made up and printed "
        "when --host is not loopback and none is given",
    )  # fmt: skip
    listen.add_argument(
        "--allow-origin", action="append", default=[], metavar="ORIGIN",
        help="let browser pages from ORIGIN connect, e.g. https://overlay.example (repeat); "
        "pages served by streamer itself always may",
    )  # fmt: skip
    listen.add_argument(
        "--max-clients", type=positive_int, default=1000, metavar="N",
        help="refuse websocket clients beyond N (default: %(default)s)",
    )  # fmt: skip
    listen.add_argument(
        "--max-message-bytes", type=positive_int, default=MAX_MESSAGE_BYTES, metavar="N",
        help="close a client that sends a message over N bytes (default: %(default)s)",
    )  # fmt: skip
    listen.add_argument(
        "--max-message-rate", type=positive_float, default=10.0, metavar="PER_SECOND",
        help="answer a client's messages beyond this rate with an error, in bursts of up to "
        "twice it (default: %(default)s)",
    )  # fmt: skip
    listen.add_argument(
        "--record", type=Path, metavar="FILE",
        help="append each closed segment to FILE as a JSON line, on disk at once",
    )  # fmt: skip
    listen.add_argument(
        "--no-view", action="store_true",
        help="no terminal view: print every protocol message as a JSON line on stdout",
    )  # fmt: skip
    listen.add_argument(
        "--library", type=Path, nargs="?", const=default_catalogue_path(), metavar="DB",
        help="recommend tracks from this catalogue while listening (without DB: the "
        "default one, see `streamer index`)",
    )  # fmt: skip
    add_recommendation_options(listen)
    listen.set_defaults(run=run_listen)

    index = commands.add_parser(
        "index",
        help="analyse the audio files of folders into the library catalogue",
        description="Analyse every audio file under the folders (genre distribution and "
        "embedding from the model, tempo, key, timbre; tags from the file) into a SQLite "
        "catalogue. Run it again after changes: unchanged files are not decoded again, "
        "moved files are followed, deleted ones removed. A file that cannot be read is "
        "listed with its reason and skipped; Ctrl-C keeps every finished track.",
        epilog="examples:\n  streamer index ~/Music\n"
        "  streamer index ~/Music /mnt/usb/crates --db crates.sqlite --workers 4",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    index.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    add_db_option(index)
    index.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, metavar="ONNX",
        help="genre model (default: the shipped model); a new model re-analyses every track",
    )  # fmt: skip
    index.add_argument(
        "--workers", type=positive_int, metavar="N",
        help="files analysed in parallel (default: one per CPU core)",
    )  # fmt: skip
    index.set_defaults(run=run_index)

    recommend = commands.add_parser(
        "recommend",
        help="tracks of the library that fit a track or an audio file",
        description="The library tracks most similar to a catalogue track (by id or path) "
        "or to any audio file (analysed now), with the reasons: genre, tempo, key "
        "compatibility on the Camelot wheel, and overall similarity.",
        epilog="examples:\n  streamer recommend ~/Music/track.flac -k 5\n"
        "  streamer recommend 42 --harmonic --tempo 120-130",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    recommend.add_argument("track", metavar="TRACK_OR_FILE", help="catalogue id or audio file")
    add_db_option(recommend)
    recommend.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, metavar="ONNX",
        help="the model the library was indexed with, to analyse a file (default: shipped)",
    )  # fmt: skip
    add_recommendation_options(recommend, default_k=10)
    recommend.set_defaults(run=run_recommend)

    library = commands.add_parser(
        "library",
        help="what the library catalogue holds; remove entries",
        description="`stats`: tracks, hours, genres (by the model and by the files' tags) "
        "and the files that failed, with why. `remove`: forget files or whole folders.",
    )
    library_commands = library.add_subparsers(dest="library_command", required=True)
    stats = library_commands.add_parser("stats", help="counts, genres and failures")
    add_db_option(stats)
    stats.set_defaults(run=run_library_stats)
    remove = library_commands.add_parser("remove", help="forget files or folders")
    remove.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add_db_option(remove)
    remove.set_defaults(run=run_library_remove)

    tag = commands.add_parser(
        "tag",
        help="tag recordings offline: genre segments, exports, a picture of the set",
        description="Tag each recording as fast as the machine allows, with the same "
        "analysis, smoothing and segmentation as `streamer listen` (a file tags exactly as "
        "it would have sounded live), in bounded memory whatever its length. Writes the "
        "chosen exports beside each file or into --out. A file that cannot be read is "
        "reported and the others are still tagged.",
        epilog="examples:\n  streamer tag set.flac\n"
        "  streamer tag *.mp3 --format cue,tracklist --plot --out tagged/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tag.add_argument("files", nargs="+", type=Path, metavar="FILE")
    tag.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, metavar="ONNX",
        help="genre model with its .json metadata beside it (default: the shipped model)",
    )  # fmt: skip
    add_analysis_options(tag)
    add_export_options(tag)
    tag.set_defaults(run=run_tag)

    export = commands.add_parser(
        "export",
        help="turn a `listen --record` file into the exports of `streamer tag`",
        description="Read the segments a live session recorded (`streamer listen --record "
        "FILE`) and write them in the chosen formats; --plot draws the timeline (without "
        "probabilities, which a record does not keep).",
        epilog="example: streamer export set.jsonl --format cue,csv",
    )
    export.add_argument("record", type=Path, metavar="RECORD.jsonl")
    add_export_options(export)
    export.set_defaults(run=run_export)

    watch = commands.add_parser(
        "watch",
        help="follow a running `streamer listen` over its websocket",
        description="The remote view: connect to a streamer websocket and show the same "
        "view as `streamer listen`.",
        epilog="example: streamer watch ws://127.0.0.1:8765",
    )
    watch.add_argument("url", nargs="?", default=f"ws://{DEFAULT_HOST}:{DEFAULT_PORT}")
    watch.add_argument(
        "--no-view", action="store_true", help="print the received messages as JSON lines"
    )
    watch.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this many seconds"
    )
    watch.set_defaults(run=run_watch)
    return parser


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """Hop and smoothing: the same for live listening and offline tagging."""
    parser.add_argument(
        "--hop", type=float, default=0.5, metavar="SECONDS",
        help="seconds of audio between two analyses (default: %(default)s)",
    )  # fmt: skip
    smoothing = SmoothingConfig()
    parser.add_argument(
        "--stay-probability", type=float, default=smoothing.stay_probability, metavar="P",
        help="smoothing: chance per hop that the genre stays; higher is steadier, slower "
        "to follow a change (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--confirm-hops", type=int, default=smoothing.confirm_hops, metavar="N",
        help="smoothing: hops a new genre must lead before the tag changes "
        "(default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--silence-dbfs", type=float, default=smoothing.silence_dbfs, metavar="DB",
        help="input level below which audio counts as silence (default: %(default)s)",
    )  # fmt: skip


def smoothing_config(args: argparse.Namespace) -> SmoothingConfig:
    return SmoothingConfig(
        stay_probability=args.stay_probability,
        confirm_hops=args.confirm_hops,
        silence_dbfs=args.silence_dbfs,
    )


def add_export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", dest="formats", action="append", metavar="FORMAT[,FORMAT]",
        help=f"what to write: {', '.join(EXPORT_FORMATS)}; repeat or separate with commas "
        f"(default: {','.join(DEFAULT_EXPORTS)}; layouts: `python -m pydoc streamer.exports`)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, metavar="DIR",
        help="write the exports into DIR (default: beside each input file)",
    )  # fmt: skip
    parser.add_argument(
        "--plot", action="store_true",
        help="also draw the set as a PNG: genre timeline and probabilities over time",
    )  # fmt: skip


def export_formats(args: argparse.Namespace) -> list[str]:
    """``--format json,csv --format cue`` -> ["json", "csv", "cue"] (checked by `export`)."""
    return [f.strip() for item in args.formats or DEFAULT_EXPORTS for f in item.split(",")]


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", type=Path, default=default_catalogue_path(), metavar="PATH",
        help="the library catalogue (default: %(default)s)",
    )  # fmt: skip


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least 1")
    return int(text)


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number above 0")
    return value


def tempo_range(text: str) -> tuple[float, float]:
    """``"118-128"`` -> (118.0, 128.0)."""
    try:
        low, high = (float(part) for part in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a BPM range such as 118-128") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: give a BPM range such as 118-128")
    return low, high


def add_recommendation_options(parser: argparse.ArgumentParser, *, default_k: int = 5) -> None:
    parser.add_argument(
        "-k", "--recommendations", dest="k", type=positive_int, default=default_k, metavar="N",
        help="how many tracks to recommend (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--genre", action="append", default=[], metavar="GENRE",
        help="only tracks of this genre (repeat for several)",
    )  # fmt: skip
    parser.add_argument(
        "--tempo", type=tempo_range, metavar="MIN-MAX",
        help="only tracks in this BPM range (half or double time counts)",
    )  # fmt: skip
    parser.add_argument(
        "--harmonic", action="store_true",
        help="only keys that mix harmonically with the music (Camelot wheel neighbours)",
    )  # fmt: skip


def recommendation_filters(args: argparse.Namespace) -> Any:
    from streamer.recommend import Filters

    return Filters(genres=frozenset(args.genre), tempo=args.tempo, harmonic=args.harmonic)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run_command("streamer", lambda: run(args))


def run_devices(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from streamer.sources import NO_INPUT_DEVICE, list_input_devices

    devices = list_input_devices()
    if not devices:
        raise StreamerError(NO_INPUT_DEVICE)
    table = Table(title="Audio inputs")
    for column in ("", "index", "name", "host API", "channels", "default rate"):
        table.add_column(column, justify="right" if column in ("index", "channels") else "left")
    for device in devices:
        table.add_row(
            "*" if device.is_default else "",
            str(device.index),
            device.name,
            device.host_api,
            str(device.channels),
            f"{device.default_rate:g} Hz",
        )
    Console().print(table)
    return 0


def run_listen(args: argparse.Namespace) -> int:
    from rich.live import Live

    from streamer import protocol
    from streamer.access import AccessPolicy, is_loopback, new_token
    from streamer.analysis import HopAnalyzer
    from streamer.engine import Engine, JsonLinesWriter
    from streamer.model import GenreModel
    from streamer.server import BroadcastServer, ServerThread
    from streamer.smoothing import GenreTracker
    from streamer.sources import AudioSource, DeviceSource, FileSource
    from streamer.view import GenreView

    model = GenreModel(args.model)
    rate = model.spec.sample_rate
    source: AudioSource
    if args.file:
        source = FileSource(args.file, sample_rate=rate, realtime=not args.fast)
    else:
        source = DeviceSource(sample_rate=rate, device=args.device, device_rate=args.device_rate)
    analyzer = HopAnalyzer(model, hop_seconds=args.hop)
    tracker = GenreTracker(
        model.labels, config=smoothing_config(args), window_seconds=analyzer.window_seconds
    )

    def hello() -> dict[str, Any]:
        return protocol.hello_message(
            labels=model.labels,
            model={"name": model.path.name, "sha256": model.info.sha256},
            features=model.spec.to_dict(),
            hop_seconds=analyzer.hop_seconds,
            window_seconds=analyzer.window_seconds,
        )

    recommender = None
    if args.library:
        from streamer.live_recommend import LiveRecommender
        from streamer.recommend import Library, Session

        library = Library.open(args.library, labels=model.labels)
        session = Session(library, k=args.k, filters=recommendation_filters(args))
        recommender = LiveRecommender(session, sample_rate=rate, hop_seconds=analyzer.hop_seconds)
    token = args.token
    if token is None and not is_loopback(args.host):
        token = new_token()
    access = AccessPolicy(
        token=token,
        origins=frozenset(args.allow_origin),
        max_clients=args.max_clients,
        max_message_bytes=args.max_message_bytes,
        max_message_rate=args.max_message_rate,
    )
    server = BroadcastServer(
        host=args.host, port=args.port, hello=hello, access=access,
        on_message=None if recommender is None else recommender.feedback,
    )  # fmt: skip
    writers: list[JsonLinesWriter] = []
    sinks = [server.publish]
    if args.record:
        record = JsonLinesWriter.append_to(args.record)
        writers.append(record)
        sinks.append(lambda m: record.write(m) if m["type"] == "segment" else None)
    view = None
    if args.no_view:
        stdout = JsonLinesWriter(sys.stdout)
        writers.append(stdout)
        stdout.write(hello())
        sinks.append(stdout.write)
    else:
        view = GenreView(title=f"streamer listen: {source.description}")
        view.handle(hello())
        sinks.append(view.handle)
    engine = Engine(
        source=source,
        analyzer=analyzer,
        tracker=tracker,
        sinks=sinks,
        clients=lambda: (server.clients, server.dropped_messages),
        recommender=recommender,
        on_input_loss=args.on_device_loss,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    failure: list[BaseException] = []

    def analyse() -> None:
        try:
            engine.run(stop, duration=args.duration)
        except BaseException as error:  # handed to the main thread, which reports it
            failure.append(error)

    if recommender is not None:
        recommender.start()
    running = ServerThread(server).start()
    print(f"streamer: websocket on {server.url}", file=sys.stderr)
    query = "" if token is None else f"?token={token}"
    if token is not None:
        print(f"streamer: clients connect with {server.url}/{query}", file=sys.stderr)
    print(f"streamer: overlay on {server.overlay_url}{query}", file=sys.stderr)
    analysis = threading.Thread(target=analyse, name="analysis")
    try:
        analysis.start()
        with Live(view, refresh_per_second=4) if view else nullcontext():
            while analysis.is_alive():
                analysis.join(0.25)
    finally:
        stop.set()
        analysis.join()
        running.stop()
        if recommender is not None:
            recommender.stop()
        for writer in writers:
            writer.close()
    if failure:
        raise failure[0]
    if engine.input_lost_at is not None and args.on_device_loss == "exit":
        print(
            f"streamer: error: the input {source.description} was lost at "
            f"{engine.input_lost_at:.1f} s (unplugged, or the sound server stopped): the "
            "session is closed and recorded up to then; reconnect it and run again",
            file=sys.stderr,
        )
        return EXIT_INPUT_LOST
    return 0


def run_index(args: argparse.Namespace) -> int:
    from streamer.catalogue import Catalogue
    from streamer.indexer import index
    from streamer.progress import console

    with Catalogue(args.db) as catalogue:
        report = index(args.folders, catalogue=catalogue, model_path=args.model,
                       workers=args.workers)  # fmt: skip
    minutes = report.wall_seconds / 60
    done = [
        f"{report.analysed} analysed ({report.audio_seconds / 60:.1f} min of audio "
        f"in {minutes:.1f} min)",
        f"{report.unchanged} unchanged",
        f"{report.moved} moved",
        f"{report.removed} removed (gone)",
        f"{len(report.failed)} failed",
        f"{report.ignored} other files ignored",
    ]
    console.print(f"{args.db}: " + ", ".join(done))
    if report.interrupted:
        console.print("interrupted: every finished track is kept; run the same command to go on")
        return 130
    return 0


def run_recommend(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from streamer.describe import camelot
    from streamer.indexer import analyse_file
    from streamer.model import GenreModel
    from streamer.recommend import Basis, Library

    library = Library.open(args.db)
    found = library.lookup(args.track)
    if found is not None:
        query, exclude = library.vector(found.id), {found.id}
        basis = Basis(genre=found.genre, tempo=found.tempo, key=found.key)
        title = f"like {found.name} (library track {found.id})"
    elif Path(args.track).is_file():
        model = GenreModel(args.model)
        if list(model.labels) != library.labels:
            raise StreamerError(f"{args.db}: indexed with another model than {args.model}")
        record = analyse_file(Path(args.track).resolve(), model)
        query = library.query(record.embedding, record.probabilities, record.descriptor_vector)
        top = int(record.probabilities.argmax())
        basis = Basis(genre=library.labels[top], tempo=record.tempo, key=record.key)
        exclude, title = set(), f"like {Path(args.track).name}"
    else:
        raise StreamerError(
            f"{args.track}: neither a track id or path in {args.db} nor an audio file"
        )
    results = library.recommend(
        query, k=args.k, basis=basis, exclude=exclude, filters=recommendation_filters(args)
    )
    table = Table(title=title)
    for column in ("#", "id", "track", "genre", "BPM", "key", "similarity", "why"):
        table.add_column(column, justify="right" if column in ("#", "id", "BPM") else "left")
    for rank, result in enumerate(results, 1):
        track = result.track
        table.add_row(
            str(rank), str(track.id), track.name, track.genre,
            "" if track.tempo is None else f"{track.tempo:.0f}",
            "" if track.key is None else f"{track.key} ({camelot(track.key)})",
            f"{result.similarity:.3f}", "; ".join(result.reasons[1:]),
        )  # fmt: skip
    Console().print(table)
    if not results:
        print("no track passes the filters", file=sys.stderr)
    return 0


def run_library_stats(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from streamer.catalogue import Catalogue

    with Catalogue(args.db, readonly=True) as catalogue:
        stats = catalogue.stats()
        failures = catalogue.failures()
    console = Console()
    console.print(
        f"{args.db}: {stats.tracks} tracks, {stats.total_seconds / 3600:.1f} hours, "
        f"{stats.failures} failed"
    )
    for title, counts in (("genre (model)", stats.by_genre), ("genre (tags)", stats.by_genre_tag)):
        if counts:
            table = Table(title=title)
            table.add_column("genre")
            table.add_column("tracks", justify="right")
            for genre, count in sorted(counts.items(), key=lambda item: -item[1]):
                table.add_row(str(genre), str(count))
            console.print(table)
    if failures:
        table = Table(title="failed files")
        table.add_column("file", overflow="fold")
        table.add_column("reason", overflow="fold")
        for failure in failures:
            table.add_row(str(failure.path), failure.reason)
        console.print(table)
    return 0


def run_library_remove(args: argparse.Namespace) -> int:
    from streamer.catalogue import Catalogue

    removed = 0
    with Catalogue(args.db) as catalogue:
        for path in args.paths:
            path = path.expanduser().resolve()  # a file, or a folder (gone or not)
            removed += catalogue.remove([path]) + catalogue.remove_under(path)
    print(f"{args.db}: {removed} entries removed")
    return 0


def run_tag(args: argparse.Namespace) -> int:
    from streamer.features import live_thread_limits
    from streamer.model import GenreModel
    from streamer.progress import console, progress_bar
    from streamer.tagging import tag_file

    formats = export_formats(args)
    model = GenreModel(args.model)
    failed = 0
    with progress_bar() as bar, live_thread_limits():
        for path in args.files:
            task = bar.add_task(path.name, total=None, rate="")
            started = time.monotonic()

            def progress(done: float, total: float, task: Any = task, t0: float = started) -> None:
                speed = done / max(time.monotonic() - t0, 1e-9)
                bar.update(task, completed=done, total=total, rate=f"{speed:.0f}x real time")

            try:
                timeline = tag_file(
                    path, model=model, hop_seconds=args.hop, smoothing=smoothing_config(args),
                    progress=progress,
                )  # fmt: skip
                written = write_outputs(timeline, formats, args)
            except StreamerError as error:
                failed += 1
                bar.update(task, rate="[red]failed")
                console.print(f"[red]error[/] {error}")
                continue
            music = [s for s in timeline.segments if s.state == "music"]
            console.print(
                f"{path}: {len(music)} music segments, {len(timeline.segments) - len(music)} "
                f"silent; wrote {', '.join(str(p) for p in written)}"
            )
    return 1 if failed else 0


def run_export(args: argparse.Namespace) -> int:
    from streamer.exports import timeline_from_record

    timeline = timeline_from_record(args.record)
    for path in write_outputs(timeline, export_formats(args), args):
        print(path)
    return 0


def write_outputs(timeline: Any, formats: list[str], args: argparse.Namespace) -> list[Path]:
    from streamer.exports import export, output_path

    written = export(timeline, formats, out_dir=args.out)
    if args.plot:
        from streamer.plot import plot_timeline

        written.append(plot_timeline(timeline, output_path(timeline, ".png", out_dir=args.out)))
    return written


def run_watch(args: argparse.Namespace) -> int:
    import asyncio

    from rich.live import Live
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    from streamer.view import GenreView

    view = GenreView(title=f"streamer watch: {args.url}")

    async def follow() -> None:
        async with connect(args.url) as connection:
            async for text in connection:
                message = json.loads(text)
                if args.no_view:
                    print(json.dumps(message), flush=True)
                view.handle(message)

    async def main() -> None:
        with suppress(TimeoutError):  # --duration ran out
            await asyncio.wait_for(follow(), timeout=args.duration)

    try:
        with nullcontext() if args.no_view else Live(view, refresh_per_second=4):
            asyncio.run(main())
    except (OSError, WebSocketException) as error:
        raise StreamerError(
            f"cannot follow {args.url} ({error}): is `streamer listen` running there? "
            "check the host and --port"
        ) from None
    return 0
