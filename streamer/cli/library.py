"""`streamer index`, `recommend` and `library`: your music, analysed and searched."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamer.cli.options import (
    Commands,
    add_db_option,
    add_engine_options,
    add_model_option,
    add_progress_option,
    add_recommendation_options,
    batch_summary,
    engine_choice,
    existing_path,
    positive_int,
    recommendation_filters,
    tempo_range,
    write_playlist,
)
from streamer.errors import StreamerError
from streamer.files import write_output

if TYPE_CHECKING:
    from streamer.library.catalogue import Catalogue, TrackRecord
    from streamer.library.recommend import Library, LibraryTrack


def add_parsers(commands: Commands) -> None:
    index = commands.add_parser(
        "index",
        help="analyse the audio files of folders into the library catalogue",
        description="Analyse every audio file under the folders (genre distribution and "
        "embedding from the model, tempo, key, timbre; tags from the file) into a SQLite "
        "catalogue. Run it again after changes: unchanged files are not decoded again "
        "(another --model analyses every track again), "
        "moved files are followed, deleted ones removed. A file that cannot be read is "
        "listed with its reason and skipped; Ctrl-C keeps every finished track. The files "
        "are analysed by worker processes on this machine, or with --engine ray by Ray "
        "actors, on this machine or across a Ray cluster (--address); either way this "
        "command alone writes the catalogue, and a worker that dies has its files analysed "
        "again (a file that kills its worker twice is listed as failed).",
        epilog="examples:\n  streamer index ~/Music\n"
        "  streamer index ~/Music /mnt/usb/crates --db crates.sqlite --workers 4\n"
        "  streamer index ~/Music --engine ray                  # a local Ray cluster\n"
        "  streamer index /shared/music --engine ray --address head-node:6379\n"
        "      # an existing cluster: every node sees /shared/music; the catalogue (--db)\n"
        "      # stays on this machine's disk (SQLite does not work over NFS)",
    )
    index.add_argument("folders", nargs="+", type=existing_path, metavar="FOLDER_OR_FILE")
    add_db_option(index)
    add_model_option(index)
    add_engine_options(index, workers_default="one per CPU core, of the Ray cluster with ray")
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
    recommend.add_argument(
        "--playlist", type=Path, metavar="FILE.m3u8",
        help="also write the recommendations as an M3U8 playlist (paths relative to it)",
    )  # fmt: skip
    recommend.set_defaults(run=run_recommend)

    library = commands.add_parser(
        "library",
        help="browse the library catalogue, tag its files, export it; remove entries",
        description="`list`: the tracks, filtered and sorted, as a table, JSON or an M3U8 "
        "playlist. `stats`: tracks, hours, genres (by the model and by the files' tags) "
        "and the files that failed, with why. `write-tags`: genre, BPM and key into the "
        "files' own tags, for DJ software (and --undo). `export`: the catalogue as a "
        "rekordbox collection. `remove`: forget files or whole folders.",
        epilog="examples:\n  streamer library list --genre disco --bpm 120-128 --key 8A\n"
        "  streamer library write-tags --dry-run ~/Music/crate\n"
        "  streamer library export --format rekordbox-xml --output collection.xml",
    )
    library_commands = library.add_subparsers(dest="library_command", required=True)
    add_list_parser(library_commands)
    stats = library_commands.add_parser("stats", help="counts, genres and failures")
    add_db_option(stats)
    stats.set_defaults(run=run_library_stats)
    add_write_tags_parser(library_commands)
    export = library_commands.add_parser(
        "export",
        help="the catalogue in a DJ program's format (rekordbox XML)",
        description="Write every track of the catalogue as a rekordbox collection (File > "
        "Import Collection in rekordbox): location, title, artist, album, genre, BPM, key, "
        "duration.",
        epilog="example:\n  streamer library export --format rekordbox-xml --output rb.xml",
    )
    export.add_argument(
        "--format", choices=LIBRARY_EXPORTS, default=LIBRARY_EXPORTS[0],
        help="what to write (default: %(default)s)",
    )  # fmt: skip
    export.add_argument("--output", type=Path, required=True, metavar="FILE")
    add_db_option(export)
    export.set_defaults(run=run_library_export)
    remove = library_commands.add_parser("remove", help="forget files or folders")
    remove.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add_db_option(remove)
    remove.set_defaults(run=run_library_remove)


LIBRARY_EXPORTS = ("rekordbox-xml",)
LIST_FORMATS = ("table", "json", "m3u8")
SORTS = ("added", "artist", "bpm", "duration", "genre", "key", "title")
GENRE_WIDTH = 12  # a longer genre is cut in the table (JSON has it whole)


def key_name(text: str) -> str:
    """An argparse type: a key in any notation (8A, 1m, Am, A minor) -> its Camelot code."""
    from streamer.library.tags import camelot_of

    try:
        return camelot_of(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a key such as 8A (Camelot), 1m (Open Key), Am or 'A minor'"
        ) from None


def add_list_parser(library_commands: Commands) -> None:
    browse = library_commands.add_parser(
        "list",
        help="the tracks, filtered and sorted: a table, JSON or an M3U8 playlist",
        description="The catalogue's tracks with their ids (for `streamer recommend ID`), "
        "genre, BPM, key and duration. Filters combine: --genre (repeat for several), "
        "--bpm (half and double time count: 60-64 finds a track at 124), --key (the key "
        "and its Camelot neighbours: the keys that mix with it), --text (in title, "
        "artist or file name).",
        epilog="examples:\n  streamer library list --sort bpm\n"
        "  streamer library list --genre disco --bpm 120-128 --key 8A\n"
        "  streamer library list --text daft --format json\n"
        "  streamer library list --genre jazz --format m3u8 --output jazz.m3u8",
    )
    browse.add_argument(
        "--genre", dest="genres", action="append", default=[], metavar="GENRE",
        help="only tracks of this genre (the model's top genre; repeat for several)",
    )  # fmt: skip
    browse.add_argument(
        "--bpm", type=tempo_range, metavar="MIN-MAX",
        help="only tracks in this BPM range, at their tempo, half or double it",
    )  # fmt: skip
    browse.add_argument(
        "--key", type=key_name, metavar="KEY",
        help="only tracks that mix with this key: the same, its relative major or minor, "
        "one step round the Camelot wheel (8A, 1m, Am, 'A minor')",
    )  # fmt: skip
    browse.add_argument(
        "--text", metavar="TEXT", help="only tracks with TEXT in title, artist or file name"
    )
    browse.add_argument(
        "--sort", choices=SORTS, default="added",
        help="order (default: %(default)s, the catalogue's ids); unknown values last",
    )  # fmt: skip
    browse.add_argument("--reverse", action="store_true", help="the order reversed")
    browse.add_argument("-n", "--limit", type=positive_int, metavar="N", help="at most N tracks")
    browse.add_argument(
        "--format", choices=LIST_FORMATS, default="table",
        help="a table that fits the terminal, JSON, or an M3U8 playlist (default: %(default)s)",
    )  # fmt: skip
    browse.add_argument(
        "--output", type=Path, metavar="FILE",
        help="write the JSON or the playlist to FILE (default for JSON: standard output; "
        "a playlist needs it: its paths are relative to it)",
    )  # fmt: skip
    add_db_option(browse)
    browse.set_defaults(run=run_library_list)


def add_write_tags_parser(library_commands: Commands) -> None:
    from streamer.library.tags import KEY_FORMATS

    write = library_commands.add_parser(
        "write-tags",
        help="genre, BPM and key into the files' own tags, for DJ software (or --undo)",
        description="Write the catalogue's genre, BPM and key into the tags of the files "
        "(ID3 TCON/TBPM/TKEY in MP3, WAV and AIFF; GENRE/BPM/INITIALKEY in FLAC and Ogg; "
        "MP4 atoms in M4A), which rekordbox, Serato, Traktor, Mixxx and Engine DJ read. "
        "Without --genre, --bpm or --key, all three. The audio is never touched, only the "
        "tags; the values they had are kept in the catalogue, and --undo puts them back "
        "(a tag that had none is removed again). A file that cannot be written is reported "
        "and skipped. Genre: the model's top genre (Rock, Hip-Hop); BPM: the whole number "
        "nearest the tempo; key: Camelot (8A), Open Key (1m) or standard (Am). "
        "`streamer index` does not analyse a file again because streamer wrote its tags.",
        epilog="examples:\n  streamer library write-tags --dry-run\n"
        "  streamer library write-tags --key open-key ~/Music/crate\n"
        "  streamer library write-tags --bpm --key standard song.mp3\n"
        "  streamer library write-tags --undo ~/Music/crate",
    )
    write.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH",
        help="files or folders of the catalogue (default: every track)",
    )  # fmt: skip
    write.add_argument(
        "--genre", dest="fields", action="append_const", const="genre",
        help="write the genre",
    )  # fmt: skip
    write.add_argument(
        "--bpm", dest="fields", action="append_const", const="bpm", help="write the BPM"
    )
    write.add_argument(
        "--key", dest="key_notation", nargs="?", const="camelot", choices=KEY_FORMATS,
        help="write the key, in this notation (default: camelot)",
    )  # fmt: skip
    write.add_argument(
        "--dry-run", action="store_true",
        help="show what would change (old -> new), write nothing",
    )  # fmt: skip
    write.add_argument(
        "--undo", action="store_true",
        help="put back the tags the files had before streamer wrote them (the fields "
        "given, or all)",
    )  # fmt: skip
    add_db_option(write)
    write.set_defaults(run=run_write_tags)


def run_index(args: argparse.Namespace) -> int:
    from streamer.analysis.model import read_model_info
    from streamer.library.catalogue import Catalogue
    from streamer.library.indexer import index
    from streamer.library.recommend import refresh_vector_index
    from streamer.library.vectorindex import index_path
    from streamer.progress import say

    read_model_info(args.model)  # a bad model is one line, before a catalogue is made
    engine = engine_choice(args)
    with Catalogue(args.db) as catalogue:
        report = index(args.folders, catalogue=catalogue, model_path=args.model,
                       engine=engine, progress=args.progress)  # fmt: skip
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
    if not report.interrupted and refresh_vector_index(args.db):
        say(f"{args.db}: its vector index is up to date ({index_path(args.db)})")
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
    from streamer.library.recommend import Basis, Library, confident_descriptors, percent

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
    console = Console()
    tempo = "BPM unknown" if basis.tempo is None else f"{basis.tempo:.0f} BPM"
    key = "key unknown" if basis.key is None else f"{basis.key} ({camelot(basis.key)})"
    console.print(f"{title}: {tempo}, {key}", highlight=False, markup=False)
    table = Table()
    for column in ("#", "id", "track", "genre", "BPM", "key", "match", "why"):
        table.add_column(
            column, justify="right" if column in ("#", "id", "BPM", "match") else "left"
        )
    for rank, result in enumerate(results, 1):
        track = result.track
        table.add_row(
            str(rank), str(track.id), track.name, track.genre,
            "" if track.tempo is None else f"{track.tempo:.0f}",
            "" if track.key is None else f"{track.key} ({camelot(track.key)})",
            f"{percent(result.similarity):.0f} %", "; ".join(result.reasons[1:]),
        )  # fmt: skip
    console.print(table)
    if not results:
        print("no track passes the filters", file=sys.stderr)
    if args.playlist is not None:
        write_playlist([result.track for result in results], library, path=args.playlist)
    return 0


def run_library_list(args: argparse.Namespace) -> int:
    import numpy as np

    from streamer.library.catalogue import Catalogue
    from streamer.library.recommend import Basis, Filters, Library

    if args.format == "m3u8" and args.output is None:
        raise StreamerError("a playlist needs --output FILE.m3u8 (its paths are relative to it)")
    if args.format == "table" and args.output is not None:
        raise StreamerError("--output writes JSON or a playlist: add --format json or m3u8")
    with Catalogue(args.db, readonly=True) as catalogue:
        library = Library(catalogue.tracks(sections=False))
    by_name = {label.lower(): label for label in library.labels}
    unknown = [genre for genre in args.genres if genre.strip().lower() not in by_name]
    if unknown:
        raise StreamerError(
            f"--genre {unknown[0]!r}: not a genre of this library: choose from "
            f"{', '.join(library.labels)}"
        )
    filters = Filters(
        genres=frozenset(by_name[genre.strip().lower()] for genre in args.genres),
        tempo=args.bpm,
        harmonic=args.key is not None,
    )
    allowed = filters.mask(library.columns, Basis(key=args.key))
    if args.key is not None:
        allowed &= library.columns.keys != ""  # a track of unknown key is no match
    tracks = [library.tracks[int(i)] for i in library.ids[np.flatnonzero(allowed)]]
    if args.text:
        wanted = args.text.casefold()
        tracks = [
            t for t in tracks
            if any(wanted in (text or "").casefold() for text in (t.title, t.artist, t.path.name))
        ]  # fmt: skip
    tracks = sorted_tracks(tracks, library, by=args.sort, reverse=args.reverse)[: args.limit]
    if args.format == "m3u8":
        write_playlist(tracks, library, path=args.output)
    elif args.format == "json":
        text = json.dumps([track_document(t, library) for t in tracks], indent=1) + "\n"
        if args.output is None:
            sys.stdout.write(text)
        else:
            write_output(args.output, text.encode("utf-8"), advice="give another --output")
    else:
        print_tracks(tracks, library)
    if not tracks:
        print("no track passes the filters", file=sys.stderr)
    return 0


def sorted_tracks(
    tracks: list[LibraryTrack], library: Library, *, by: str, reverse: bool
) -> list[LibraryTrack]:
    """`tracks` in the order of one of `SORTS`; those without the value last, in id order."""
    from streamer.analysis.describe import camelot

    def value(track: LibraryTrack) -> Any:
        if by == "added":  # ids are given in order and never reused
            return track.id
        if by == "bpm":
            return track.tempo
        if by == "duration":
            return library.records[track.id].duration
        if by == "key":
            code = camelot(track.key) if track.key else None
            return None if code is None else (int(code[:-1]), code[-1])
        if by == "genre":
            return None if track.genre is None else (track.genre, track.name.casefold())
        if by == "artist":
            return None if not track.artist else (track.artist.casefold(), track.name.casefold())
        return (track.title or track.path.name).casefold()

    known = [track for track in tracks if value(track) is not None]
    known.sort(key=value, reverse=reverse)
    return known + [track for track in tracks if value(track) is None]


def track_document(track: LibraryTrack, library: Library) -> dict[str, Any]:
    """A track as `library list --format json` gives it."""
    from streamer.analysis.describe import camelot

    record = library.records[track.id]
    return {
        "id": track.id,
        "path": str(track.path),
        "title": track.title,
        "artist": track.artist,
        "album": track.album,
        "genre": track.genre,
        "genre_share": round(track.genre_share, 4),
        "genre_tag": record.genre_tag,
        "bpm": None if track.tempo is None else round(track.tempo, 2),
        "key": track.key,
        "camelot": camelot(track.key) if track.key else None,
        "seconds": round(record.duration, 3),
    }


def print_tracks(tracks: list[LibraryTrack], library: Library) -> None:
    """The tracks as a table, one line each, as wide as the terminal (80 columns off one):
    the track's name is cut to fit."""
    from rich.console import Console
    from rich.table import Table

    from streamer.analysis.describe import camelot
    from streamer.library.tags import key_text

    console = Console()
    rows = []
    for track in tracks:
        seconds = round(library.records[track.id].duration)
        key = track.key and f"{camelot(track.key)} {key_text(track.key, notation='standard')}"
        rows.append((
            str(track.id), track.name, (track.genre or "no music")[:GENRE_WIDTH],
            "" if track.tempo is None else f"{track.tempo:.0f}",
            key or "", f"{seconds // 60}:{seconds % 60:02d}",
        ))  # fmt: skip
    headers = ("id", "track", "genre", "BPM", "key", "time")
    widths = [
        max([len(header)] + [len(row[i]) for row in rows]) for i, header in enumerate(headers)
    ]
    # The track's name takes what the others leave (two spaces between columns): one line each.
    room = console.width - (sum(widths) - widths[1]) - 2 * (len(headers) - 1)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header in headers:
        table.add_column(
            header, justify="right" if header in ("id", "BPM", "time") else "left",
            no_wrap=True, overflow="ellipsis",
            max_width=max(room, 8) if header == "track" else None,
        )  # fmt: skip
    for row in rows:
        table.add_row(*row)
    console.print(table)


def run_write_tags(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from streamer.library.catalogue import Catalogue
    from streamer.library.tags import FIELDS, Change, undo_tags, write_tags
    from streamer.progress import say

    if not args.db.is_file():  # no catalogue is made to tag nothing from
        raise StreamerError(f"{args.db}: no catalogue here: give the --db of `streamer index`")
    chosen = [*(args.fields or ()), *(["key"] if args.key_notation else [])]
    fields = [field for field in FIELDS if field in chosen] if chosen else list(FIELDS)
    verb = "restored" if args.undo else "written"
    table = Table(title=f"{'would be ' if args.dry_run else ''}{verb}", header_style="bold")
    for column in ("track", "tag", "now", verb):
        table.add_column(column, overflow="fold")
    failed: list[tuple[Path, str]] = []
    changed = 0
    with Catalogue(args.db) as catalogue:
        records, missing = chosen_tracks(catalogue, args.paths)
        for path in missing:
            say(f"streamer: error: {path}: not in the catalogue, skipped")
            failed.append((path, "not in the catalogue"))
        for record in records:
            foreign: list[Change] = []
            try:
                if args.undo:
                    changes, foreign = undo_tags(
                        catalogue, record, fields=fields, dry_run=args.dry_run
                    )
                else:
                    notation = args.key_notation or "camelot"
                    changes = write_tags(
                        catalogue, record, fields=fields, notation=notation, dry_run=args.dry_run
                    )
            except StreamerError as error:
                say(f"streamer: error: {error}")
                failed.append((record.path, str(error).removeprefix(f"{record.path}: ")))
                continue
            for change in foreign:
                say(
                    f"streamer: {record.path}: {change.field} is {shown(change.old)} now, "
                    "changed by another program since streamer wrote it: kept"
                )
            for change in changes:
                table.add_row(record.path.name, change.field, shown(change.old), shown(change.new))
            changed += bool(changes)
    if table.rows:
        Console().print(table)
    files = len(records) + len(missing)
    done = "would change" if args.dry_run else f"{verb}"
    say(
        f"{args.db}: {changed} of {files} files {done}"
        + ("; dry run: nothing written" if args.dry_run else "")
    )
    return batch_summary(files, failed)


def shown(values: list[str]) -> str:
    """A tag's values as the change table shows them."""
    return " / ".join(values) if values else "(none)"


def chosen_tracks(catalogue: Catalogue, paths: list[Path]) -> tuple[list[TrackRecord], list[Path]]:
    """The tracks at or under `paths` (all without), and the paths that hold none."""
    records = catalogue.tracks(sections=False)
    if not paths:
        return records, []
    chosen: dict[int, TrackRecord] = {}
    missing = []
    for path in paths:
        resolved = path.expanduser().resolve()
        found = [r for r in records if r.path == resolved or resolved in r.path.parents]
        if not found:
            missing.append(path)
        chosen.update((r.id or 0, r) for r in found)
    return sorted(chosen.values(), key=lambda r: r.id or 0), missing


def run_library_export(args: argparse.Namespace) -> int:
    from streamer.library.catalogue import Catalogue
    from streamer.offline.rekordbox import write_collection
    from streamer.progress import say

    with Catalogue(args.db, readonly=True) as catalogue:
        records = catalogue.tracks(sections=False)
    if not records:
        raise StreamerError(f"{args.db}: no tracks yet; run `streamer index DIR` first")
    write_collection(records, path=args.output)
    say(f"{args.output}: rekordbox collection of {len(records)} tracks")
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
