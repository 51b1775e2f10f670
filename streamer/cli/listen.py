"""`streamer listen`: a live session from an input device or a file."""

from __future__ import annotations

import argparse
from pathlib import Path

from streamer.cli.options import (
    Commands,
    access_policy,
    add_analysis_options,
    add_db_option,
    add_model_option,
    add_recommendation_options,
    add_server_options,
    build_chain,
    number,
    positive_float,
    recommendation_filters,
    smoothing_config,
    stream_url,
    write_playlist,
)
from streamer.errors import StreamerError
from streamer.live.session import EXIT_INPUT_LOST


def add_parsers(commands: Commands) -> None:
    listen = commands.add_parser(
        "listen",
        help="analyse live audio from an input device or a file",
        description="Capture audio and tag its genre live: every hop the model sees the "
        "last patch of audio, a smoother keeps the tag stable within a track and follows a "
        "real change, and every update goes to the terminal view and to websocket clients "
        "(docs/protocol.md). Without --device the default input is used; with --file a file "
        "is played through the same path, paced like a line-in; with --url an internet "
        "radio stream (many streams at once: `streamer monitor`). Ctrl-C or SIGTERM closes "
        "the open segment, flushes --record and closes the clients. If the input device "
        "goes away (unplugged, or the sound server stops), the view and the clients are "
        "told at once; see --on-device-loss. Exit status: 0 when stopped, 2 on an error, "
        f"{EXIT_INPUT_LOST} when the input was lost with --on-device-loss exit.",
        epilog="examples:\n  streamer listen --device 2 --record set.jsonl\n"
        "  streamer listen --file mix.flac --no-view --port 0 > updates.jsonl\n"
        "  streamer listen --library --harmonic --playlist tonight.m3u8\n"
        "  streamer listen --url http://radio.example:8000/live --record radio.jsonl",
    )
    source = listen.add_mutually_exclusive_group()
    source.add_argument(
        "--device", metavar="INDEX|NAME", help="input device: index or part of its name"
    )
    source.add_argument("--file", metavar="PATH", help="analyse an audio file instead of a device")
    source.add_argument(
        "--url", type=stream_url, metavar="URL",
        help="analyse an internet radio stream (Icecast or Shoutcast over http/https: MP3, "
        "AAC, Ogg); its titles go with every update; a dropped connection is retried with "
        "backoff while the session goes on, as for an unplugged device",
    )  # fmt: skip
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
    add_model_option(listen)
    add_analysis_options(listen)
    add_server_options(listen)
    listen.add_argument(
        "--record", type=Path, metavar="FILE",
        help="append each closed segment to FILE as a JSON line, on disk at once",
    )  # fmt: skip
    listen.add_argument(
        "--no-view", action="store_true",
        help="no terminal view: print every protocol message as a JSON line on stdout",
    )  # fmt: skip
    listen.add_argument(
        "--library", action="store_true",
        help="recommend tracks from the library catalogue (--db) while listening",
    )  # fmt: skip
    listen.add_argument(
        "--playlist", type=Path, metavar="FILE.m3u8",
        help="with --library: when the session ends, write the library tracks played "
        "(recognised, or marked played by a client) in their order, then the last list of "
        "recommendations, as an M3U8 playlist (paths relative to it)",
    )  # fmt: skip
    add_db_option(listen)
    add_recommendation_options(listen)
    listen.set_defaults(run=run_listen)


def run_listen(args: argparse.Namespace) -> int:
    from streamer.analysis.model import GenreModel
    from streamer.capture.device import DeviceSource
    from streamer.capture.file import FileSource
    from streamer.capture.source import AudioSource
    from streamer.live.session import LiveInput, LiveSession

    if args.playlist is not None and not args.library:
        raise StreamerError("--playlist lists library tracks: add --library")
    model = GenreModel(args.model)
    rate = model.spec.sample_rate
    chain = build_chain(model, args)
    source: AudioSource
    if args.url:
        from streamer.capture.stream import StreamSource

        source = StreamSource(args.url, sample_rate=rate)
    elif args.file:
        source = FileSource(args.file, sample_rate=rate, realtime=not args.fast)
        if source.duration < chain.analyzer.first_hop_seconds:
            raise chain.analyzer.too_short(args.file, seconds=source.duration)
    else:
        source = DeviceSource(sample_rate=rate, device=args.device, device_rate=args.device_rate)
    recommender = None
    if args.library:
        from streamer.library.recommend import Library, Session
        from streamer.live.recommend import LiveRecommender

        library = Library.open(args.db, labels=chain.labels)
        session = Session(library, k=args.k, filters=recommendation_filters(args))
        recommender = LiveRecommender(
            session, sample_rate=rate, hop_seconds=chain.analyzer.hop_seconds,
            smoothing=smoothing_config(args),
            tag_labels=() if chain.tagger is None else chain.tagger.labels,
        )  # fmt: skip
    status = LiveSession(
        model=model,
        inputs=[LiveInput(source=source, chain=chain, record=args.record)],
        access=access_policy(args),
        host=args.host,
        port=args.port,
        view=not args.no_view,
        recommender=recommender,
        on_input_loss=args.on_device_loss,
        duration=args.duration,
    ).run()
    if recommender is not None and args.playlist is not None:  # the session has ended
        write_playlist(recommender.playlist(), recommender.session.library, path=args.playlist)
    return status
