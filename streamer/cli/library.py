"""`streamer index`, `recommend` and `library`: your music, analysed and searched."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamer.cli.options import (
    Commands,
    add_db_option,
    add_model_option,
    add_progress_option,
    add_recommendation_options,
    batch_summary,
    existing_path,
    positive_int,
    recommendation_filters,
)
from streamer.errors import StreamerError


def add_parsers(commands: Commands) -> None:
    index = commands.add_parser(
        "index",
        help="analyse the audio files of folders into the library catalogue",
        description="Analyse every audio file under the folders (genre distribution and "
        "embedding from the model, tempo, key, timbre; tags from the file) into a SQLite "
        "catalogue. Run it again after changes: unchanged files are not decoded again "
        "(another --model analyses every track again), "
        "moved files are followed, deleted ones removed. A file that cannot be read is "
        "listed with its reason and skipped; Ctrl-C keeps every finished track.",
        epilog="examples:\n  streamer index ~/Music\n"
        "  streamer index ~/Music /mnt/usb/crates --db crates.sqlite --workers 4",
    )
    index.add_argument("folders", nargs="+", type=existing_path, metavar="FOLDER_OR_FILE")
    add_db_option(index)
    add_model_option(index)
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
        "or to any audio file (analysed now), with the reasons: genre, the descriptors both "
        "share (instrumental, electronic, fast, ...), tempo, key compatibility on the "
        "Camelot wheel, and overall similarity.",
        epilog="examples:\n  streamer recommend ~/Music/track.flac -k 5\n"
        "  streamer recommend 42 --harmonic --tempo 120-130",
    )
    recommend.add_argument("track", metavar="TRACK_OR_FILE", help="catalogue id or audio file")
    add_db_option(recommend)
    add_model_option(recommend)
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


def run_index(args: argparse.Namespace) -> int:
    from streamer.analysis.model import read_model_info
    from streamer.library.catalogue import Catalogue
    from streamer.library.indexer import index
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

    from streamer.analysis.describe import camelot
    from streamer.analysis.fusion import shipped_fusion
    from streamer.analysis.model import GenreModel
    from streamer.library.indexer import analyse_file, load_taggers
    from streamer.library.recommend import Basis, Library, confident_descriptors

    library = Library.open(args.db)
    found = library.lookup(args.track)
    if found is not None:
        query, exclude = library.vector(found.id), {found.id}
        basis = Basis(
            genre=found.genre, tempo=found.tempo, key=found.key, descriptors=found.descriptors
        )
        title = f"like {found.name} (library track {found.id})"
    elif Path(args.track).exists():  # a folder or a pipe too: opening it says what is wrong
        model = GenreModel(args.model)
        fusion = shipped_fusion(model.labels)
        if list(model.labels if fusion is None else fusion.labels) != library.labels:
            raise StreamerError(f"{args.db}: indexed with another model than {args.model}")
        audio = Path(args.track).resolve()
        record = analyse_file(audio, model, taggers=load_taggers(), fusion=fusion)
        query = library.query(
            record.embedding, record.probabilities, record.descriptor_vector,
            tag_embedding=record.tag_embedding, tag_labels=record.tag_labels,
        )  # fmt: skip
        top = int(record.probabilities.argmax())
        genre = library.labels[top] if record.has_music else None
        described = confident_descriptors(record.tags, record.tag_labels)
        basis = Basis(genre=genre, tempo=record.tempo, key=record.key, descriptors=described)
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

    from streamer.library.catalogue import Catalogue

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
    from streamer.library.catalogue import Catalogue
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
