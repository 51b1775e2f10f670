"""The `streamer` command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Any

from streamer import __version__
from streamer.errors import StreamerError, run_command
from streamer.model import DEFAULT_MODEL
from streamer.server import DEFAULT_HOST, DEFAULT_PORT
from streamer.smoothing import SmoothingConfig

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
        "the open segment, flushes --record and closes the clients.",
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
        "--fast", action="store_true", help="with --file: do not pace the file in real time"
    )
    listen.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this much audio"
    )
    listen.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, metavar="ONNX",
        help="genre model with its .json metadata beside it (default: the shipped model)",
    )  # fmt: skip
    listen.add_argument(
        "--hop", type=float, default=0.5, metavar="SECONDS",
        help="seconds of audio between two analyses (default: %(default)s)",
    )  # fmt: skip
    smoothing = SmoothingConfig()
    listen.add_argument(
        "--stay-probability", type=float, default=smoothing.stay_probability, metavar="P",
        help="smoothing: chance per hop that the genre stays; higher is steadier, slower "
        "to follow a change (default: %(default)s)",
    )  # fmt: skip
    listen.add_argument(
        "--confirm-hops", type=int, default=smoothing.confirm_hops, metavar="N",
        help="smoothing: hops a new genre must lead before the tag changes "
        "(default: %(default)s)",
    )  # fmt: skip
    listen.add_argument(
        "--silence-dbfs", type=float, default=smoothing.silence_dbfs, metavar="DB",
        help="input level below which audio counts as silence (default: %(default)s)",
    )  # fmt: skip
    listen.add_argument(
        "--host", default=DEFAULT_HOST,
        help="websocket address to bind (default: %(default)s, this machine only)",
    )  # fmt: skip
    listen.add_argument(
        "--port", type=int, default=DEFAULT_PORT,
        help="websocket port; 0 picks a free one (default: %(default)s)",
    )  # fmt: skip
    listen.add_argument(
        "--record", type=Path, metavar="FILE",
        help="append each closed segment to FILE as a JSON line, on disk at once",
    )  # fmt: skip
    listen.add_argument(
        "--no-view", action="store_true",
        help="no terminal view: print every protocol message as a JSON line on stdout",
    )  # fmt: skip
    listen.set_defaults(run=run_listen)

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
    config = SmoothingConfig(
        stay_probability=args.stay_probability,
        confirm_hops=args.confirm_hops,
        silence_dbfs=args.silence_dbfs,
    )
    tracker = GenreTracker(model.labels, config=config)

    def hello() -> dict[str, Any]:
        return protocol.hello_message(
            labels=model.labels,
            model={"name": model.path.name, "sha256": model.info.sha256},
            features=model.spec.to_dict(),
            hop_seconds=analyzer.hop_seconds,
            window_seconds=analyzer.window_seconds,
        )

    server = BroadcastServer(host=args.host, port=args.port, hello=hello)
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

    running = ServerThread(server).start()
    print(f"streamer: websocket on {server.url}", file=sys.stderr)
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
        for writer in writers:
            writer.close()
    if failure:
        raise failure[0]
    return 0


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
