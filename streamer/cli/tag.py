"""`streamer tag` and `streamer export`: a recording, or a live record, into the exports."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from streamer.cli.options import (
    Commands,
    add_analysis_options,
    add_export_options,
    add_model_option,
    add_progress_option,
    batch_summary,
    build_chain,
    export_formats,
    positive_int,
    write_outputs,
)
from streamer.errors import StreamerError, failure_reason
from streamer.files import default_catalogue_path

if TYPE_CHECKING:
    from rich.progress import TaskID


def add_parsers(commands: Commands) -> None:
    tag = commands.add_parser(
        "tag",
        help="tag recordings offline: genre segments, exports, a picture of the set",
        description="Tag each recording as fast as the machine allows, with the same "
        "analysis, smoothing and segmentation as `streamer listen` (a file tags exactly as "
        "it would have sounded live), in bounded memory whatever its length. Writes the "
        "chosen exports beside each file or into --out. A file that cannot be read is "
        "reported and the others are still tagged.",
        epilog="examples:\n  streamer tag set.flac\n"
        "  streamer tag *.mp3 --format cue,tracklist --plot --out tagged/\n"
        "  streamer tag set.flac --library --format cue,tracklist,rekordbox-xml",
    )
    tag.add_argument("files", nargs="+", type=Path, metavar="FILE")
    tag.add_argument(
        "--library", nargs="?", type=Path, const=default_catalogue_path(), metavar="PATH",
        help="name each track of the set that is in the library catalogue at PATH "
        "(default: %(const)s; index it with `streamer index`): the CUE, tracklist, labels and "
        "rekordbox exports carry its title and artist, the others the genre (without PATH, "
        "put it after the files: `--library set.flac` reads set.flac as the catalogue)",
    )  # fmt: skip
    add_model_option(tag)
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


def run_tag(args: argparse.Namespace) -> int:
    from streamer.analysis.features import live_thread_limits
    from streamer.analysis.model import GenreModel
    from streamer.offline.tagging import tag_file
    from streamer.progress import progress_bar, say

    formats = export_formats(args)
    chain = build_chain(GenreModel(args.model), args)
    library = None
    if args.library is not None:
        from streamer.library.recommend import Library

        library = Library.open(args.library, labels=chain.labels)
    failed: list[tuple[Path, str]] = []
    with progress_bar(show=args.progress) as bar, live_thread_limits():
        for path in args.files:
            task = bar.add_task(path.name, total=None, rate="")
            started = time.monotonic()

            def progress(
                done: float, total: float, task: TaskID = task, t0: float = started
            ) -> None:
                speed = done / max(time.monotonic() - t0, 1e-9)
                bar.update(task, completed=done, total=total, rate=f"{speed:.0f}x real time")

            try:
                timeline = tag_file(path, chain=chain, library=library, progress=progress)
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
            states = [segment.state for segment in timeline.segments]
            named = f" ({len(timeline.names)} named from the library)" if library else ""
            say(
                f"{path}: {states.count('music')} tracks{named}, "
                f"{states.count('silence')} silences, "
                f"{states.count('not-music')} not music; wrote {', '.join(str(p) for p in written)}"
            )
    return batch_summary(len(args.files), failed)


def run_export(args: argparse.Namespace) -> int:
    from streamer.offline.exports import record_sessions

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
