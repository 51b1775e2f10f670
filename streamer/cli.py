"""The `streamer` command line."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from streamer import __version__
from streamer.access import MAX_MESSAGE_BYTES
from streamer.errors import StreamerError, run_command
from streamer.exports import FORMATS as EXPORT_FORMATS
from streamer.files import default_catalogue_path
from streamer.model import DEFAULT_MODEL, metadata_path
from streamer.server import DEFAULT_HOST, DEFAULT_PORT
from streamer.smoothing import SmoothingConfig

DEFAULT_EXPORTS = ("json", "csv", "cue")
MIN_HOP_SECONDS = 0.025
"""A feature frame is 23 ms: a shorter hop analyses the same patch again."""
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


class HelpFormatter(argparse.HelpFormatter):
    """Help wrapped to the terminal: a paragraph (text without a line break) is wrapped,
    never inside an option's name (``--on-device-loss``); text laid out by hand (examples:
    several lines) is kept as it is."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip("\n"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        lines = self._split_lines(text, width - len(indent))
        return "\n".join(indent + line for line in lines)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(
            " ".join(text.split()), width, break_on_hyphens=False, break_long_words=False
        )


class Parser(argparse.ArgumentParser):
    """Every streamer parser and subparser (`add_subparsers` makes its own class): help
    laid out by `HelpFormatter`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="streamer",
        description="Real-time music genre analyzer for a microphone, a line-in or a file.",
        epilog=EPILOG,
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
    )
    source = listen.add_mutually_exclusive_group()
    source.add_argument(
        "--device", metavar="INDEX|NAME", help="input device: index or part of its name"
    )
    source.add_argument("--file", metavar="PATH", help="analyse an audio file instead of a device")
    listen.add_argument(
        "--device-rate", type=number(at_least=1000, at_most=768_000), metavar="HZ",
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
        "--duration", type=positive_float, metavar="SECONDS", help="stop after this much audio"
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
        "--port", type=port_number, default=DEFAULT_PORT,
        help="websocket port; 0 picks a free one (default: %(default)s)",
    )  # fmt: skip
    listen.add_argument(
        "--token", type=non_empty,
        help="clients must present this token (?token=... in the URL); made up and printed "
        "when --host is not loopback and none is given",
    )  # fmt: skip
    listen.add_argument(
        "--allow-origin", type=origin, action="append", default=[], metavar="ORIGIN",
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
    )
    index.add_argument("folders", nargs="+", type=existing_path, metavar="FOLDER_OR_FILE")
    add_db_option(index)
    index.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, metavar="ONNX",
        help="genre model (default: the shipped model); a new model re-analyses every track",
    )  # fmt: skip
    index.add_argument(
        "--workers", type=positive_int, metavar="N",
        help="files analysed in parallel (default: one per CPU core)",
    )  # fmt: skip
    add_progress_option(index)
    index.set_defaults(run=run_index)

    recommend = commands.add_parser(
        "recommend",
        help="tracks of the library that fit a track or an audio file",
        description="The library tracks most similar to a catalogue track (by id or path) "
        "or to any audio file (analysed now), with the reasons: genre, tempo, key "
        "compatibility on the Camelot wheel, and overall similarity.",
        epilog="examples:\n  streamer recommend ~/Music/track.flac -k 5\n"
        "  streamer recommend 42 --harmonic --tempo 120-130",
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
    )
    tag.add_argument("files", nargs="+", type=Path, metavar="FILE")
    tag.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, metavar="ONNX",
        help="genre model with its .json metadata beside it (default: the shipped model)",
    )  # fmt: skip
    add_analysis_options(tag)
    add_export_options(tag)
    add_progress_option(tag)
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
    export.add_argument(
        "--session", type=positive_int, metavar="N",
        help="only the Nth session of the record (--record appends, so a file can hold "
        "several; by default each is exported, as RECORD-1.*, RECORD-2.*, ...)",
    )  # fmt: skip
    add_export_options(export)
    export.set_defaults(run=run_export)

    watch = commands.add_parser(
        "watch",
        help="follow a running `streamer listen` over its websocket",
        description="The remote view: connect to a streamer websocket and show the same "
        "view as `streamer listen`. Exit status: 0 when --duration ran out, 1 when the "
        "session stopped (or the connection was lost), 2 when it cannot connect.",
        epilog="example: streamer watch ws://127.0.0.1:8765",
    )
    watch.add_argument(
        "url", nargs="?", type=websocket_url, default=f"ws://{DEFAULT_HOST}:{DEFAULT_PORT}",
        help="the websocket of a `streamer listen` (default: %(default)s)",
    )  # fmt: skip
    watch.add_argument(
        "--no-view", action="store_true", help="print the received messages as JSON lines"
    )
    watch.add_argument(
        "--duration", type=positive_float, metavar="SECONDS", help="stop after this many seconds"
    )
    watch.set_defaults(run=run_watch)
    return parser


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """Hop and smoothing: the same for live listening and offline tagging."""
    parser.add_argument(
        "--hop", type=number(at_least=MIN_HOP_SECONDS, at_most=60), default=0.5,
        metavar="SECONDS",
        help="seconds of audio between two analyses (default: %(default)s)",
    )  # fmt: skip
    smoothing = SmoothingConfig()
    parser.add_argument(
        "--stay-probability", type=number(above=0, below=1),
        default=smoothing.stay_probability, metavar="P",
        help="smoothing: chance per hop that the genre stays; higher is steadier, slower "
        "to follow a change (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--confirm-hops", type=positive_int, default=smoothing.confirm_hops, metavar="N",
        help="smoothing: hops a new genre must lead before the tag changes "
        "(default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--silence-dbfs", type=number(at_least=-200, at_most=0),
        default=smoothing.silence_dbfs, metavar="DB",
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
        "--format", dest="formats", type=export_format_list, action="append",
        metavar="FORMAT[,FORMAT]",
        help=f"what to write: {', '.join(EXPORT_FORMATS)}; repeat or separate with commas "
        f"(default: {','.join(DEFAULT_EXPORTS)}; layouts: `python -m pydoc streamer.exports`)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=output_folder, metavar="DIR",
        help="write the exports into DIR (default: beside each input file)",
    )  # fmt: skip
    parser.add_argument(
        "--plot", action="store_true",
        help="also draw the set as a PNG: genre timeline and probabilities over time",
    )  # fmt: skip


def export_formats(args: argparse.Namespace) -> list[str]:
    """``--format json,csv --format cue`` -> ["json", "csv", "cue"] (each checked when
    parsed, by `export_format_list`)."""
    return [name for names in args.formats or [DEFAULT_EXPORTS] for name in names]


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction,
        help="draw a progress bar on stderr (default: when stderr is a terminal)",
    )  # fmt: skip


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", type=Path, default=default_catalogue_path(), metavar="PATH",
        help="the library catalogue (default: %(default)s)",
    )  # fmt: skip


def number(
    *,
    whole: bool = False,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
) -> Callable[[str], Any]:
    """An argparse type: a finite number (a whole one with `whole`) within the bounds."""
    words = [] if above is None else [f"above {above:g}"]
    if at_least is not None and at_most is not None:
        words.append(f"from {at_least:g} to {at_most:g}")
    else:
        words += [] if at_least is None else [f"of at least {at_least:g}"]
        words += [] if at_most is None else [f"of at most {at_most:g}"]
    words += [] if below is None else [f"below {below:g}"]
    wanted = ("a whole number " if whole else "a number ") + " and ".join(words)

    def within(value: float) -> bool:
        return (
            math.isfinite(value)
            and (above is None or value > above)
            and (at_least is None or value >= at_least)
            and (below is None or value < below)
            and (at_most is None or value <= at_most)
        )

    def parse(text: str) -> int | float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            value = math.nan
        if not within(value):
            raise argparse.ArgumentTypeError(f"{text!r}: give {wanted}")
        return value

    return parse


positive_int = number(whole=True, at_least=1)
positive_float = number(above=0)
port_number = number(whole=True, at_least=0, at_most=65535)


def tempo_range(text: str) -> tuple[float, float]:
    """``"118-128"`` -> (118.0, 128.0)."""
    try:
        low, high = (float(part) for part in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a BPM range such as 118-128") from None
    if not 0 < low <= high < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r}: give a BPM range such as 118-128")
    return low, high


def export_format_list(text: str) -> list[str]:
    """``"cue,csv"`` -> ["cue", "csv"], each one of the export formats."""
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in EXPORT_FORMATS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown format {unknown[0]!r}: choose from {', '.join(EXPORT_FORMATS)}"
        )
    return names


def existing_path(text: str) -> Path:
    """An argparse type: a file or folder that exists."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return path


def output_folder(text: str) -> Path:
    """An argparse type: a folder to write into (made if missing), not an existing file."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: a file, not a folder: give a folder to write")
    return path


def non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("give a non-empty value")
    return text


def origin(text: str) -> str:
    """A browser origin, ``scheme://host[:port]``, as a browser sends it (lower case)."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give an origin such as https://overlay.example or http://host:8080"
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


def websocket_url(text: str) -> str:
    """A ``ws://`` or ``wss://`` URL; an ``http://`` one (the overlay page) is turned down
    with the URL to give instead."""
    parts = urlsplit(text)
    if parts.scheme in ("ws", "wss") and parts.hostname:
        return text
    if parts.scheme in ("http", "https") and parts.netloc:
        suggestion = f"{parts.scheme.replace('http', 'ws')}://{parts.netloc}"
        raise argparse.ArgumentTypeError(
            f"{text} is a web address (the overlay page): give the websocket URL {suggestion}"
        )
    raise argparse.ArgumentTypeError(f"{text!r}: give a ws:// URL, e.g. ws://host:{DEFAULT_PORT}")


def model_labels(model: Path) -> list[str] | None:
    """The labels in a model's metadata JSON (no check, no onnxruntime: cheap enough for
    parsing), or None where it cannot be read (the command then says why)."""
    try:
        labels = json.loads(metadata_path(model).read_text())["labels"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [str(label) for label in labels] if isinstance(labels, list) else None


def check_genres(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--genre`` against the labels of ``--model``, case-insensitively, in the labels'
    own spelling; an unknown genre is a usage error that lists the labels."""
    labels = model_labels(args.model) if args.genre else None
    if labels is None:
        return
    by_name = {label.lower(): label for label in labels}
    for index, genre in enumerate(args.genre):
        if genre.strip().lower() not in by_name:
            parser.error(
                f"argument --genre: {genre!r} is not a genre of {args.model.name}: "
                f"choose from {', '.join(labels)}"
            )
        args.genre[index] = by_name[genre.strip().lower()]


def add_recommendation_options(parser: argparse.ArgumentParser, *, default_k: int = 5) -> None:
    """-k and the filters; ``--genre`` is checked against --model's labels by `main`."""
    shipped = model_labels(DEFAULT_MODEL)
    parser.set_defaults(command_parser=parser)
    parser.add_argument(
        "-k", "--recommendations", dest="k", type=positive_int, default=default_k, metavar="N",
        help="how many tracks to recommend (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--genre", action="append", default=[], metavar="GENRE",
        help="only tracks of this genre (repeat for several): a label of --model"
        + ("" if shipped is None else f"; the shipped model's: {', '.join(shipped)}"),
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
    if "genre" in args:
        check_genres(args.command_parser, args)
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
    from streamer.engine import Engine, JsonLinesWriter, SegmentRecord
    from streamer.model import GenreModel
    from streamer.server import BroadcastServer, ServerThread
    from streamer.smoothing import GenreTracker
    from streamer.sources import AudioSource, DeviceSource, FileSource
    from streamer.view import GenreView

    model = GenreModel(args.model)
    rate = model.spec.sample_rate
    analyzer = HopAnalyzer(model, hop_seconds=args.hop)
    source: AudioSource
    if args.file:
        source = FileSource(args.file, sample_rate=rate, realtime=not args.fast)
        if source.duration < analyzer.first_hop_seconds:
            raise analyzer.too_short(args.file, seconds=source.duration)
    else:
        source = DeviceSource(sample_rate=rate, device=args.device, device_rate=args.device_rate)
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
        recommender = LiveRecommender(
            session, sample_rate=rate, hop_seconds=analyzer.hop_seconds,
            smoothing=smoothing_config(args),
        )  # fmt: skip
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
    running = ServerThread(server).start()  # first: a busy port fails before anything is written
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    record: SegmentRecord | None = None
    stdout: JsonLinesWriter | None = None
    analysis: threading.Thread | None = None
    failure: list[BaseException] = []
    try:
        query = "" if token is None else f"?token={token}"
        print(f"streamer: websocket on {server.url}", file=sys.stderr)
        if token is not None:
            print(f"streamer: clients connect with {server.url}/{query}", file=sys.stderr)
        print(f"streamer: overlay on {server.overlay_url}{query}", file=sys.stderr)
        for host in server.hosts[1:]:  # the machine's other addresses
            also = server.url_of(host, scheme="http")
            print(f"streamer: also on {also}/{query}", file=sys.stderr)
        if args.record:
            record = SegmentRecord(args.record)
        view = None
        sinks = [server.publish]
        if args.no_view:
            stdout = JsonLinesWriter(sys.stdout, on_error=stop.set)  # nobody reads on: stop
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
            record=record,
            on_input_loss=args.on_device_loss,
        )

        def analyse() -> None:
            try:
                engine.run(stop, duration=args.duration)
            except BaseException as error:  # handed to the main thread, which reports it
                failure.append(error)

        if recommender is not None:
            recommender.start()
        analysis = threading.Thread(target=analyse, name="analysis")
        analysis.start()
        with Live(view, refresh_per_second=4) if view else nullcontext():
            while analysis.is_alive():
                analysis.join(0.25)
    finally:
        stop.set()
        if analysis is not None:
            analysis.join()
        running.stop()
        if recommender is not None:
            recommender.stop()
        if stdout is not None:
            stdout.close()
        if record is not None:
            record.close()
    if failure:
        raise failure[0]
    problems = []
    if engine.record_error is not None:
        problems.append(f"{engine.record_error}; the session went on without them")
    if stdout is not None and stdout.error is not None:
        problems.append(f"cannot write to stdout ({stdout.error}): the session stopped there")
        # Python flushes stdout once more at exit: let that go nowhere, not to a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    for problem in problems:
        print(f"streamer: error: {problem}", file=sys.stderr)
    if engine.input_lost_at is not None and args.on_device_loss == "exit":
        print(
            f"streamer: error: the input {source.description} was lost at "
            f"{engine.input_lost_at:.1f} s (unplugged, or the sound server stopped): the "
            "session is closed and recorded up to then; reconnect it and run again",
            file=sys.stderr,
        )
        return EXIT_INPUT_LOST
    return 2 if problems else 0


def run_index(args: argparse.Namespace) -> int:
    from streamer.catalogue import Catalogue
    from streamer.indexer import index
    from streamer.model import read_model_info
    from streamer.progress import say

    read_model_info(args.model)  # a bad model is one line, before a catalogue is made
    with Catalogue(args.db) as catalogue:
        report = index(args.folders, catalogue=catalogue, model_path=args.model,
                       workers=args.workers, progress=args.progress)  # fmt: skip
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
    if report.failed:
        done[-2] += " (listed above, and in `streamer library stats`)"
    say(f"{args.db}: " + ", ".join(done))
    if report.interrupted:
        say("interrupted: every finished track is kept; run the same command to go on")
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
    elif Path(args.track).exists():  # a folder or a pipe too: opening it says what is wrong
        model = GenreModel(args.model)
        if list(model.labels) != library.labels:
            raise StreamerError(f"{args.db}: indexed with another model than {args.model}")
        record = analyse_file(Path(args.track).resolve(), model)
        query = library.query(record.embedding, record.probabilities, record.descriptor_vector)
        top = int(record.probabilities.argmax())
        genre = library.labels[top] if record.has_music else None
        basis = Basis(genre=genre, tempo=record.tempo, key=record.key)
        exclude, title = set(), f"like {Path(args.track).name}"
    else:
        raise StreamerError(
            f"{args.track}: neither a track id or path in {args.db} nor an audio file"
        )
    if basis.genre is None:  # no music: nothing it sounds like
        raise StreamerError(f"{args.track}: no music in it (silent throughout): give another")
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
    from streamer.progress import say

    if not args.db.is_file():  # no catalogue is made to remove nothing from
        raise StreamerError(f"{args.db}: no catalogue here: give the --db of `streamer index`")
    removed = 0
    missing: list[tuple[Path, str]] = []
    with Catalogue(args.db) as catalogue:
        for path in args.paths:
            resolved = path.expanduser().resolve()  # a file, or a folder (gone or not)
            count = catalogue.remove([resolved]) + catalogue.remove_under(resolved)
            if not count:
                missing.append((path, "not in the catalogue"))
                say(f"streamer: error: {path}: not in the catalogue, nothing removed")
            removed += count
    print(f"{args.db}: {removed} entries removed")
    return batch_summary(len(args.paths), missing, noun="paths")


def run_tag(args: argparse.Namespace) -> int:
    from streamer.features import live_thread_limits
    from streamer.model import GenreModel
    from streamer.progress import progress_bar, say
    from streamer.tagging import tag_file

    formats = export_formats(args)
    model = GenreModel(args.model)
    failed: list[tuple[Path, str]] = []
    with progress_bar(show=args.progress) as bar, live_thread_limits():
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
                if timeline.invalid_samples:
                    say(f"streamer: warning: {path}: {timeline.invalid_samples} samples were "
                        "NaN, infinite or beyond ±1000 and were analysed as silence")  # fmt: skip
                written = write_outputs(timeline, formats, args)
            except Exception as error:  # one file's failure, whatever it is, is that file's
                reason = failure_reason(error, path)
                failed.append((path, reason))
                bar.update(task, rate="[red]failed")
                say(f"streamer: error: {path}: {reason}")
                continue
            music = [s for s in timeline.segments if s.state == "music"]
            say(
                f"{path}: {len(music)} music segments, {len(timeline.segments) - len(music)} "
                f"silent; wrote {', '.join(str(p) for p in written)}"
            )
    return batch_summary(len(args.files), failed)


def failure_reason(error: Exception, path: Path) -> str:
    """Why one file of a batch failed, in a line: a `StreamerError` says it itself; anything
    else (a decoder giving up in the middle, a bug) is named with its type."""
    import soundfile

    if isinstance(error, StreamerError):
        return str(error).removeprefix(f"{path}: ")
    if isinstance(error, soundfile.LibsndfileError):  # opening was checked: a read failed
        return f"the decoder gave up partway ({error.error_string.rstrip('.')}): a damaged file?"
    detail = str(error).strip().splitlines()
    return f"could not be analysed ({type(error).__name__}{': ' + detail[0] if detail else ''})"


def batch_summary(total: int, failed: list[tuple[Path, str]], *, noun: str = "files") -> int:
    """The closing line of a batch that lost files, and its exit status: 1 if any failed."""
    if not failed:
        return 0
    from streamer.progress import say

    listed = "; ".join(f"{path} ({reason})" for path, reason in failed)
    say(f"streamer: {len(failed)} of {total} {noun} failed: {listed}")
    return 1


def run_export(args: argparse.Namespace) -> int:
    from streamer.exports import record_sessions

    sessions = record_sessions(args.record)
    if args.session is not None:
        if args.session > len(sessions):
            raise StreamerError(
                f"{args.record} holds {len(sessions)} session(s): choose --session 1 to "
                f"{len(sessions)}"
            )
        sessions = [sessions[args.session - 1]]
    for timeline in sessions:
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
    from websockets.exceptions import ConnectionClosed, WebSocketException

    from streamer.progress import say
    from streamer.view import GenreView

    view = GenreView(title=f"streamer watch: {args.url}")

    async def follow() -> str:
        """Connect, then show the messages until the connection ends; say how it ended."""
        try:
            connection = await connect(args.url)
        except (OSError, WebSocketException) as error:
            raise StreamerError(
                f"cannot follow {args.url} ({error}): is `streamer listen` running there? "
                "check the host and --port"
            ) from None
        async with connection:
            drawn = nullcontext() if args.no_view else Live(view, refresh_per_second=4)
            with drawn, suppress(ConnectionClosed):  # closed without a close frame: said below
                async for text in connection:
                    try:
                        message = json.loads(text)
                    except ValueError:
                        raise StreamerError(
                            f"{args.url} sent a message that is not JSON: give the "
                            "websocket of a `streamer listen`"
                        ) from None
                    if args.no_view:
                        print(json.dumps(message), flush=True)
                    view.handle(message)
        code, reason = connection.close_code, connection.close_reason
        return f"{args.url} stopped: the connection closed ({code}{' ' + reason if reason else ''})"

    async def main() -> str | None:
        try:
            return await asyncio.wait_for(follow(), timeout=args.duration)
        except TimeoutError:  # --duration ran out
            return None

    ended = asyncio.run(main())
    if ended is None:
        return 0
    say(f"streamer: {ended}")
    return 1
