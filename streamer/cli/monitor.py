"""`streamer monitor`: many internet streams (or devices) in one process."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from streamer.cli.options import (
    Commands,
    access_policy,
    add_analysis_options,
    add_model_option,
    add_server_options,
    chain_maker,
    existing_path,
    positive_float,
)

DEFAULT_RECORDS = Path("monitor-records")


def add_parsers(commands: Commands) -> None:
    monitor = commands.add_parser(
        "monitor",
        help="analyse many internet radio streams at once, one process",
        description="Tag the genre of every stream in STREAMS live, in one process: each "
        "stream has its own capture, features, tracker and record, and the networks run "
        "for all of them in one call per hop. One websocket serves every stream: each "
        "update, segment and status names its stream, the hello lists them, and a client "
        "may subscribe to some (docs/protocol.md). A stream that fails (404, a stall, a "
        "server that goes away) is shown as lost, analysed as silence and retried with "
        "backoff; the others go on. Each closed segment is appended to RECORDS/NAME.jsonl, "
        "on disk before anyone is told of it. Ctrl-C or SIGTERM closes every open segment. "
        "STREAMS has one stream per line: its URL (http or https: an Icecast or Shoutcast "
        "mount, not a .pls/.m3u playlist) or device:INDEX|NAME, then an optional name; "
        "lines starting with # are comments. On a 2-core machine 100 MP3 streams keep up "
        "with --no-tagger, in under one core (see README.md, Internet radio).",
        epilog="example STREAMS file:\n"
        "  # url                                   name\n"
        "  http://radio.example:8000/jazz          Jazz FM\n"
        "  https://stream.example/rock.mp3         Rock 1\n"
        "  device:2                                studio line-in\n\n"
        "examples:\n  streamer monitor stations.txt\n"
        "  streamer monitor stations.txt --no-tagger --no-view --port 0 > all.jsonl",
    )
    monitor.add_argument(
        "streams", type=existing_path, metavar="STREAMS", help="the file of streams to monitor"
    )
    monitor.add_argument(
        "--records", type=Path, default=DEFAULT_RECORDS, metavar="DIR",
        help="folder of the records, one NAME.jsonl per stream, appended to "
        "(default: %(default)s)",
    )  # fmt: skip
    monitor.add_argument(
        "--no-view", action="store_true",
        help="no table: print every protocol message as a JSON line on stdout",
    )  # fmt: skip
    monitor.add_argument(
        "--duration", type=positive_float, metavar="SECONDS",
        help="stop after this much audio of each stream",
    )  # fmt: skip
    add_model_option(monitor)
    add_analysis_options(monitor)
    add_server_options(monitor)
    monitor.set_defaults(run=run_monitor)


def record_name(name: str) -> str:
    """A stream's name as a file name: what is not a letter, digit, ``.``, ``-`` or ``_``
    becomes ``_``.

    >>> record_name("Jazz FM / 24h")
    'Jazz_FM_24h.jsonl'
    """
    return re.sub(r"[^\w.-]+", "_", name).strip("_.") + ".jsonl"


def run_monitor(args: argparse.Namespace) -> int:
    from streamer.analysis.model import GenreModel
    from streamer.errors import StreamerError
    from streamer.live.monitor import open_source, read_stream_list
    from streamer.live.session import LiveInput, LiveSession

    entries = read_stream_list(args.streams)
    files = [record_name(entry.name) for entry in entries]
    if len(set(files)) != len(files):
        raise StreamerError(
            "two stream names give the same record file name: make them differ in their "
            "letters or digits"
        )
    model = GenreModel(args.model)
    sources = [open_source(entry, sample_rate=model.spec.sample_rate) for entry in entries]
    try:  # once every line has a source: a bad line leaves no folder behind
        args.records.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StreamerError(
            f"cannot make the records folder {args.records} ({error.strerror}): choose "
            "another one with --records"
        ) from None
    make_chain = chain_maker(model, args)
    inputs = [
        LiveInput(source=source, chain=make_chain(), record=args.records / file, name=entry.name)
        for entry, source, file in zip(entries, sources, files, strict=True)
    ]
    return LiveSession(
        model=model,
        inputs=inputs,
        access=access_policy(args),
        host=args.host,
        port=args.port,
        view=not args.no_view,
        duration=args.duration,
    ).run()
