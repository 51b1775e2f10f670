"""What every command shares: the help layout, the argument types that check a value when
it is parsed, and the options several commands take, each declared once."""

from __future__ import annotations

import argparse
import functools
import json
import math
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit

from streamer.analysis.model import DEFAULT_MODEL, metadata_path
from streamer.errors import StreamerError
from streamer.files import default_catalogue_path
from streamer.offline.exports import FORMATS as EXPORT_FORMATS
from streamer.outlets.access import MAX_MESSAGE_BYTES
from streamer.outlets.server import DEFAULT_HOST, DEFAULT_PORT
from streamer.segments import SegmentConfig
from streamer.tracking import DEFAULT_SMOOTHING, SmoothingConfig

if TYPE_CHECKING:  # the library and the exports load only for the commands that use them
    from streamer.analysis.model import GenreModel
    from streamer.batch import Engine
    from streamer.chain import GenreChain
    from streamer.library.recommend import Filters, Library, LibraryTrack
    from streamer.offline.exports import Timeline
    from streamer.outlets.access import AccessPolicy

# What add_subparsers returns, to add commands to (a private class, so named here once).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


DEFAULT_EXPORTS = ("json", "csv", "cue")


MIN_HOP_SECONDS = 0.025
"""A feature frame is 23 ms: a shorter hop analyses the same patch again."""


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


def add_model_option(parser: argparse.ArgumentParser) -> None:
    """``--model``, the same for every command that runs the model."""
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, metavar="ONNX",
        help="genre model: an ONNX file with its .json metadata beside it (default: the "
        "shipped model); the library remembers which model indexed it",
    )  # fmt: skip


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
        help="smoothing: hops a new genre must lead before the tag changes, once the music "
        f"has changed (within a steady track: {smoothing.steady_confirm_hops}, or N if more; "
        "default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--silence-dbfs", type=number(at_least=-200, at_most=0),
        default=smoothing.silence_dbfs, metavar="DB",
        help="input level below which audio counts as silence (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--min-track", type=number(at_least=0, at_most=3600),
        default=SegmentConfig().min_track_seconds, metavar="SECONDS",
        help="segments: the shortest track a change of music may end; lower it for sets "
        "that cut tracks short (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--no-tagger", dest="tagger", action="store_false",
        help="the genre CNN alone: no musicnn tags, no genre it lacks (electronic), a "
        "decision tuned on synthetic music only; about three times less CPU",
    )  # fmt: skip


def default_analysis(*, tagger: bool = True) -> argparse.Namespace:
    """The analysis options `streamer tag` runs with when none is given (``--no-tagger``
    if not `tagger`): for tools that build its chain (`streamer-train calibrate-shown`)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_analysis_options(parser)
    return parser.parse_args([] if tagger else ["--no-tagger"])


def build_chain(model: GenreModel, args: argparse.Namespace) -> GenreChain:
    """The chain of `streamer listen` and `streamer tag` (see `chain_maker`)."""
    return chain_maker(model, args)()


def chain_maker(model: GenreModel, args: argparse.Namespace) -> Callable[[], GenreChain]:
    """Chains from the options of `streamer listen`, `tag` and `monitor`: the genre CNN
    with musicnn's shipped taggers and the shipped decision, unless ``--no-tagger``. The
    networks are loaded once and shared by every chain made (`streamer monitor` runs them
    for all its streams in one call). The decision was chosen for the shipped CNN's
    labels: with a ``--model`` of other labels, that model's genre is the decision and the
    tags are shown beside it. The not-music detector was fitted on the shipped CNN's
    outputs: another model goes without it (every loud hop is music)."""
    from streamer.analysis.fusion import shipped_fusion
    from streamer.analysis.notmusic import NotMusicDetector, shipped_not_music_path
    from streamer.analysis.tagger import TagModel, shipped_tagger_paths
    from streamer.chain import GenreChain

    detector = NotMusicDetector.load(shipped_not_music_path())
    common: dict[str, Any] = {
        "hop_seconds": args.hop,
        "smoothing": smoothing_config(args),
        "segments": SegmentConfig(min_track_seconds=args.min_track),
        "not_music": detector if detector.fits(model.info) else None,
    }
    if args.tagger:
        common["taggers"] = [TagModel(path) for path in shipped_tagger_paths()]
        common["fusion"] = shipped_fusion(model.labels)
    return functools.partial(GenreChain, model, **common)


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Where the websocket listens and whom it lets in: `streamer listen` and `monitor`."""
    parser.add_argument(
        "--host", default=DEFAULT_HOST,
        help="websocket address to bind (default: %(default)s, this machine only)",
    )  # fmt: skip
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT,
        help="websocket port; 0 picks a free one (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--token", type=non_empty,
        help="clients must present this token (?token=... in the URL); made up and printed "
        "when --host is not loopback and none is given",
    )  # fmt: skip
    parser.add_argument(
        "--allow-origin", type=origin, action="append", default=[], metavar="ORIGIN",
        help="let browser pages from ORIGIN connect, e.g. https://overlay.example (repeat); "
        "pages served by streamer itself always may",
    )  # fmt: skip
    parser.add_argument(
        "--max-clients", type=positive_int, default=1000, metavar="N",
        help="refuse websocket clients beyond N (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--max-message-bytes", type=positive_int, default=MAX_MESSAGE_BYTES, metavar="N",
        help="close a client that sends a message over N bytes (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--max-message-rate", type=positive_float, default=10.0, metavar="PER_SECOND",
        help="answer a client's messages beyond this rate with an error, in bursts of up to "
        "twice it (default: %(default)s)",
    )  # fmt: skip


def access_policy(args: argparse.Namespace) -> AccessPolicy:
    """Who may connect, from `add_server_options`' options: off loopback, a token is made
    up when none was given."""
    from streamer.outlets.access import AccessPolicy, is_loopback, new_token

    token = args.token
    if token is None and not is_loopback(args.host):
        token = new_token()
    return AccessPolicy(
        token=token,
        origins=frozenset(args.allow_origin),
        max_clients=args.max_clients,
        max_message_bytes=args.max_message_bytes,
        max_message_rate=args.max_message_rate,
    )


def smoothing_config(args: argparse.Namespace) -> SmoothingConfig:
    steady = max(DEFAULT_SMOOTHING.steady_confirm_hops, args.confirm_hops)
    return SmoothingConfig(
        stay_probability=args.stay_probability,
        confirm_hops=args.confirm_hops,
        steady_confirm_hops=steady,  # within a track, never quicker than after a change
        silence_dbfs=args.silence_dbfs,
    )


def add_export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", dest="formats", type=export_format_list, action="append",
        metavar="FORMAT[,FORMAT]",
        help=f"what to write: {', '.join(EXPORT_FORMATS)}; repeat or separate with commas "
        f"(default: {','.join(DEFAULT_EXPORTS)}; layouts: "
        "`python -m pydoc streamer.offline.exports`)",
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


def add_engine_options(parser: argparse.ArgumentParser, *, workers_default: str) -> None:
    """``--engine``, ``--address`` and ``--workers``: where a batch of files is analysed
    (`streamer.batch`); `engine_choice` reads them."""
    from streamer.batch import ENGINES

    parser.add_argument(
        "--engine", choices=ENGINES, default=ENGINES[0],
        help="where the files are analysed: local, processes on this machine; ray, Ray "
        "actors, on a local Ray cluster started for the run or on the cluster of --address "
        "(needs the extra: pip install 'streamer[cluster]') (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--address", metavar="HOST:PORT",
        help="with --engine ray: join this running Ray cluster (`ray start --head` prints "
        "it; `auto`: the one started on this machine) instead of starting one; every node "
        "must see the files at the same paths",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=positive_int, metavar="N",
        help=f"files analysed in parallel, one model load each (default: {workers_default})",
    )  # fmt: skip


def engine_choice(args: argparse.Namespace) -> Engine:
    """The `Engine` of ``--engine``, ``--address``, ``--workers``, checked now (Ray
    installed, an address only with Ray)."""
    from streamer.batch import Engine, check

    engine = Engine(name=args.engine, workers=args.workers, address=args.address)
    check(engine)
    return engine


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
) -> Callable[[str], float]:
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


def stream_url(text: str) -> str:
    """An http(s) URL of an internet radio stream (``--url``)."""
    from streamer.capture.stream import is_stream_url

    if not is_stream_url(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http:// or https:// URL with a host (and a valid port): give "
            "the stream's own address (an Icecast or Shoutcast mount, e.g. "
            "http://radio.example:8000/live)"
        )
    return text


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


@functools.cache
def model_labels(model: Path) -> tuple[str, ...] | None:
    """The genres of a model: its metadata's labels (no check, no onnxruntime: cheap enough
    for parsing), or the shipped decision's where it was made for them; None where the
    metadata cannot be read (the command then says why)."""
    try:
        labels = json.loads(metadata_path(model).read_text())["labels"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(labels, list):
        return None
    from streamer.analysis.fusion import shipped_fusion

    try:  # the shipped CNN's genres are the decision's, which adds electronic
        fusion = shipped_fusion([str(label) for label in labels])
    except StreamerError:
        fusion = None
    return tuple(str(label) for label in (labels if fusion is None else fusion.labels))


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


def write_playlist(tracks: list[LibraryTrack], library: Library, *, path: Path) -> None:
    """`tracks` as an M3U8 playlist at `path` (`streamer.library.playlist`)."""
    from streamer.library.playlist import PlaylistEntry, write_m3u8
    from streamer.progress import say

    entries = [
        PlaylistEntry(
            path=track.path,
            seconds=library.records[track.id].duration,
            artist=track.artist,
            title=track.title,
        )
        for track in tracks
    ]
    write_m3u8(entries, path=path)
    say(f"{path}: playlist of {len(entries)} tracks")


def recommendation_filters(args: argparse.Namespace) -> Filters:
    from streamer.library.recommend import Filters

    return Filters(genres=frozenset(args.genre), tempo=args.tempo, harmonic=args.harmonic)


def batch_summary(total: int, failed: list[tuple[Path, str]], *, noun: str = "files") -> int:
    """The closing line of a batch that lost files, and its exit status: 1 if any failed."""
    if not failed:
        return 0
    from streamer.progress import say

    listed = "; ".join(f"{path} ({reason})" for path, reason in failed)
    say(f"streamer: {len(failed)} of {total} {noun} failed: {listed}")
    return 1


def write_outputs(timeline: Timeline, formats: list[str], args: argparse.Namespace) -> list[Path]:
    from streamer.offline.exports import export, output_path

    written = export(timeline, formats, out_dir=args.out)
    if args.plot:
        from streamer.offline.plot import plot_timeline

        written.append(plot_timeline(timeline, output_path(timeline, ".png", out_dir=args.out)))
    return written
