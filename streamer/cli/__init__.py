"""The `streamer` command line: a module per command, what they share in `options`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from streamer import __version__
from streamer.cli import devices, library, listen, monitor, tag, watch
from streamer.cli.options import Parser, check_genres
from streamer.errors import run_command

EPILOG = """\
examples:
  streamer devices                       list inputs, pick one by index or name
  streamer listen                        analyse the default input (microphone, line-in)
  streamer listen --device "USB Audio"   analyse the input whose name contains "USB Audio"
  streamer listen --file set.flac        play a file through the engine, paced in real time
  streamer listen --record set.jsonl     also append every closed segment to set.jsonl
  streamer listen --url http://radio.example:8000/live
                                         an internet radio stream, with its titles
  streamer monitor stations.txt          many streams at once, a table and one websocket
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
    parser = Parser(
        prog="streamer",
        description="Real-time music genre analyzer for a microphone, a line-in, a file or "
        "internet radio.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"streamer {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (devices, listen, monitor, library, tag, watch):
        command.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if "genre" in args:
        check_genres(args.command_parser, args)
    run: Callable[[argparse.Namespace], int] = args.run
    return run_command("streamer", lambda: run(args))
