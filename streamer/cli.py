"""The `streamer` command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from streamer import __version__
from streamer.errors import StreamerError, run_command

EPILOG = """\
examples:
  streamer devices                       list inputs, pick one by index or name
  streamer listen                        analyse the default input (microphone, line-in)
  streamer listen --device "USB Audio"   analyse the input whose name contains "USB Audio"
  streamer listen --file set.flac        play a file through the engine, paced in real time
  streamer listen --no-view --duration 10 > levels.jsonl
                                         headless: one JSON line per update on stdout

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
        description="Capture audio and analyse it live. Without --device the default input "
        "is used; with --file a file is played through the same path, paced like a line-in.",
        epilog="example: streamer listen --device 2 --duration 60",
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
        "--update", type=float, default=0.5, metavar="SECONDS",
        help="seconds of audio between two updates (default: %(default)s)",
    )  # fmt: skip
    listen.add_argument(
        "--no-view", action="store_true",
        help="no terminal view: print one JSON object per update on stdout",
    )  # fmt: skip
    listen.set_defaults(run=run_listen)
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
    import numpy as np

    from streamer.features import FeatureSpec, StreamingExtractor, live_thread_limits
    from streamer.sources import AudioSource, DeviceSource, FileSource

    spec = FeatureSpec()
    source: AudioSource
    if args.file:
        source = FileSource(args.file, sample_rate=spec.sample_rate, realtime=not args.fast)
    else:
        source = DeviceSource(
            sample_rate=spec.sample_rate, device=args.device, device_rate=args.device_rate
        )
    extractor = StreamingExtractor(spec)
    update_samples = max(1, int(args.update * spec.sample_rate))
    limit = None if args.duration is None else int(args.duration * spec.sample_rate)
    notice = (
        f"capturing {source.description}; no genre model is shipped yet, "
        "so this shows the input level and the feature frames only"
    )
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    report = _json_reporter() if args.no_view else _live_reporter(notice)
    if args.no_view:
        print(f"streamer: {notice}", file=sys.stderr)
    heard = 0  # the stream clock, in samples at the feature rate
    sum_squares, counted = 0.0, 0

    def update() -> None:
        rms = np.sqrt(sum_squares / counted)
        report(
            {
                "time": round(heard / spec.sample_rate, 3),
                "level_dbfs": round(20 * float(np.log10(max(rms, 1e-10))), 1),
                "frames": extractor.frames_emitted,
                "overflow_samples": source.overflow_samples,
                "overflow_events": source.overflow_events,
            }
        )

    with source, live_thread_limits():
        try:
            while limit is None or heard < limit:
                chunk = source.read(timeout=0.1)
                if chunk is None:
                    extractor.finish()
                    break
                if limit is not None:
                    chunk = chunk[: limit - heard]
                extractor.push(chunk)
                # Split at update boundaries so each update covers exactly --update seconds.
                while chunk.size:
                    piece = chunk[: update_samples - counted]
                    chunk = chunk[piece.size :]
                    sum_squares += float(np.dot(piece, piece))
                    counted += piece.size
                    heard += piece.size
                    if counted == update_samples:
                        update()
                        sum_squares, counted = 0.0, 0
            if counted:
                update()
        except KeyboardInterrupt:
            pass
        finally:
            report(None)
    return 0


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _json_reporter() -> Callable[[dict[str, Any] | None], None]:
    def report(update: dict[str, Any] | None) -> None:
        if update is not None:
            print(json.dumps(update), flush=True)

    return report


def _live_reporter(notice: str) -> Callable[[dict[str, Any] | None], None]:
    from rich.console import Group
    from rich.live import Live
    from rich.progress_bar import ProgressBar
    from rich.text import Text

    live = Live(Text("waiting for audio..."), refresh_per_second=8, transient=False)
    live.start()

    def report(update: dict[str, Any] | None) -> None:
        if update is None:
            live.stop()
            return
        level = update["level_dbfs"]
        live.update(
            Group(
                Text(notice, style="dim"),
                Text(f"time {update['time']:8.1f} s   frames {update['frames']}"),
                Text(f"input level {level:6.1f} dBFS"),
                ProgressBar(total=60, completed=max(0.0, 60 + level), width=60),
                Text(
                    f"overflows {update['overflow_events']} "
                    f"({update['overflow_samples']} samples lost)"
                ),
            )
        )

    return report
