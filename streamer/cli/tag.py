"""`streamer tag` and `streamer export`: a recording, or a live record, into the exports."""

from __future__ import annotations

import argparse
import functools
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from streamer.cli.options import (
    Commands,
    add_analysis_options,
    add_engine_options,
    add_export_options,
    add_model_option,
    add_progress_option,
    batch_summary,
    build_chain,
    engine_choice,
    export_formats,
    positive_int,
    write_outputs,
)
from streamer.errors import StreamerError, failure_reason
from streamer.files import default_catalogue_path

if TYPE_CHECKING:
    from rich.progress import TaskID

    from streamer.batch import Engine
    from streamer.offline.exports import Timeline

Failed: TypeAlias = "tuple[Path, str]"  # a file, and why it failed


def add_parsers(commands: Commands) -> None:
    tag = commands.add_parser(
        "tag",
        help="tag recordings offline: genre segments, exports, a picture of the set",
        description="Tag each recording as fast as the machine allows, with the same "
        "analysis, smoothing and segmentation as `streamer listen` (a file tags exactly as "
        "it would have sounded live), in bounded memory whatever its length. Writes the "
        "chosen exports beside each file or into --out. A file that cannot be read is "
        "reported and the others are still tagged. Many files go faster in parallel: "
        "--workers N analyses N at once on this machine, --engine ray on Ray actors (a "
        "local Ray cluster, or the cluster of --address); the exports are the same, "
        "written here.",
        epilog="examples:\n  streamer tag set.flac\n"
        "  streamer tag *.mp3 --format cue,tracklist --plot --out tagged/\n"
        "  streamer tag set.flac --library --format cue,tracklist,rekordbox-xml\n"
        "  streamer tag sets/*.flac --workers 2 --out tagged/\n"
        "  streamer tag /shared/sets/*.flac --engine ray --address head-node:6379",
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
    add_engine_options(
        tag, workers_default="the files one after the other in this process, or one per "
        "CPU core of the Ray cluster with --engine ray",
    )  # fmt: skip
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


@dataclass(frozen=True)
class TagSetup:
    """How a file is tagged: the chain of --model and the analysis options, with the
    library of --library to name tracks; set up once, here or in each batch worker
    (`streamer.batch`), so that a file tags the same wherever it is analysed."""

    model: Path
    options: argparse.Namespace
    library: Path | None

    def __call__(self) -> functools.partial[Timeline]:
        from streamer.analysis.model import GenreModel
        from streamer.offline.tagging import tag_file

        chain = build_chain(GenreModel(self.model), self.options)
        library = None
        if self.library is not None:
            from streamer.library.recommend import Library

            library = Library.open(self.library, labels=chain.labels)
        return functools.partial(tag_file, chain=chain, library=library)


def run_tag(args: argparse.Namespace) -> int:
    engine = engine_choice(args)
    options = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "files"})
    setup = TagSetup(model=args.model, options=options, library=args.library)
    if engine.name == "local" and engine.workers is None:
        failed = tag_here(args.files, setup=setup, args=args)
    else:
        failed = tag_in_workers(args.files, setup=setup, engine=engine, args=args)
    order = {path: place for place, path in enumerate(args.files)}
    failed.sort(key=lambda failure: order[failure[0]])  # as given, however they finished
    return batch_summary(len(args.files), failed)


def tag_here(files: list[Path], *, setup: TagSetup, args: argparse.Namespace) -> list[Failed]:
    """Tag `files` one after the other in this process, a bar for each; the failures."""
    from streamer.analysis.features import live_thread_limits
    from streamer.progress import progress_bar

    tag = setup()
    failed: list[Failed] = []
    with progress_bar(show=args.progress) as bar, live_thread_limits():
        for path in files:
            task = bar.add_task(path.name, total=None, rate="")
            started = time.monotonic()

            def progress(
                done: float, total: float, task: TaskID = task, t0: float = started
            ) -> None:
                speed = done / max(time.monotonic() - t0, 1e-9)
                bar.update(task, completed=done, total=total, rate=f"{speed:.0f}x real time")

            try:
                finish_file(path, tag(path, progress=progress), args=args)
            except Exception as error:  # one file's failure, whatever it is, is that file's
                failed.append(file_failed(path, failure_reason(error, path)))
                bar.update(task, rate="[red]failed")
    return failed


def tag_in_workers(
    files: list[Path], *, setup: TagSetup, engine: Engine, args: argparse.Namespace
) -> list[Failed]:
    """Tag `files` in batch workers (`streamer.batch`), the exports written here as each
    file comes back, one bar for them all; the failures."""
    from streamer import batch
    from streamer.progress import progress_bar

    failed: list[Failed] = []
    audio = 0.0
    with progress_bar(show=args.progress) as bar:
        task = bar.add_task("tagging", total=len(files), rate="")
        started = time.monotonic()
        with closing(batch.results(files, setup=setup, engine=engine)) as results:
            for path, result in results:
                try:
                    if isinstance(result, batch.Failure):
                        raise StreamerError(result.reason)
                    finish_file(path, result, args=args)
                    audio += result.duration
                except Exception as error:
                    failed.append(file_failed(path, failure_reason(error, path)))
                speed = audio / max(time.monotonic() - started, 1e-9)
                bar.update(task, advance=1, rate=f"{speed:.0f}x real time")
    return failed


def finish_file(path: Path, timeline: Timeline, *, args: argparse.Namespace) -> None:
    """What the user gets of a tagged file: its exports, and a line that sums it up."""
    from streamer.progress import say

    if timeline.invalid_samples:
        say(f"streamer: warning: {path}: {timeline.invalid_samples} samples were "
            "NaN, infinite or beyond ±1000 and were analysed as silence")  # fmt: skip
    written = write_outputs(timeline, export_formats(args), args)
    states = [segment.state for segment in timeline.segments]
    named = f" ({len(timeline.names)} named from the library)" if args.library else ""
    say(
        f"{path}: {states.count('music')} tracks{named}, "
        f"{states.count('silence')} silences, "
        f"{states.count('not-music')} not music; wrote {', '.join(str(p) for p in written)}"
    )


def file_failed(path: Path, reason: str) -> Failed:
    from streamer.progress import say

    say(f"streamer: error: {path}: {reason}")
    return path, reason


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
