"""`streamer-train`: fit, evaluate and export the genre model (needs the `train` extra)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from streamer.analysis.model import DEFAULT_MODEL
from streamer.cli.options import Parser, number, positive_float, positive_int
from streamer.errors import StreamerError, run_command

EPILOG = """\
examples:
  streamer-train fit ~/gtzan --run runs/gtzan              train on root/<genre>/<file>
  streamer-train corpus corpus/ --held-out-soundfont /usr/share/sounds/sf2/TimGM6mb.sf2
  streamer-train fit corpus/manifest.csv --run runs/synth --test-only held_out=1
  streamer-train fit ~/gtzan --run runs/ff --split-file splits/   fixed train/valid/test lists
  streamer-train fit corpus/manifest.csv --run runs/gpu --prepare-only   then, on a GPU machine:
  KERAS_BACKEND=jax streamer-train train --run runs/gpu     needs the run folder alone
  streamer-train evaluate --run runs/gtzan                 test split: clean and room chain
  streamer-train export --run runs/gtzan --card              runs/gtzan/export/genre.onnx
  streamer-train export --run runs/gtzan --out models/genre.onnx   replace the shipped model
  streamer-train musicnn --out models/ --audio clips/*.wav   musicnn's taggers as ONNX
  streamer-train calibrate --validation valid/manifest.csv --held-out heldout/manifest.csv
                                                           calibrations, ECE, reliability PNGs
  streamer-train calibrate-shown --mixes mixes/validation --held-out mixes/test
                                                           the shown genre's confidence
  streamer-train not-music --out models/ --realset ../shared/realset   speech, noise, tones...
  streamer-train unlabelled unlabelled/ --realset realset/   real excerpts with no label
  streamer-train distil --run runs/student --unlabelled unlabelled/ --synthetic synth/manifest.csv \
      --held-out heldout/manifest.csv --realset realset/   the decision taught to a student CNN

A run folder keeps the config, the split, the FeatureSpec, the Keras model, the metrics and
the plots (confusion matrices, training curves), so each step can be repeated alone.
Features are cached under --cache, keyed by the FeatureSpec and each file's content.
"""


def build_parser() -> argparse.ArgumentParser:
    from training import corpus, notmusic
    from training.model import CNNConfig
    from training.musicnn import TAGGERS
    from training.pipeline import FitConfig

    defaults, cnn = FitConfig(), CNNConfig()
    parser = Parser(
        prog="streamer-train",
        description="Train, evaluate and export streamer's genre CNN.",
        epilog=EPILOG,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate = commands.add_parser(
        "corpus", help="generate the synthetic genre corpus (MMA, soundfonts)"
    )
    corpus.build_parser(generate)
    generate.set_defaults(command_parser=generate)

    def with_run(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--run", type=Path, required=True, help="run folder")
        sub.add_argument(
            "--cache", type=Path, default=Path("cache/features"),
            help="feature cache folder (default: %(default)s)",
        )  # fmt: skip

    fit = commands.add_parser(
        "fit", help="split a dataset, extract features, train the CNN",
        description="Split DATA by group (or by --split-file), cut patches after the split, "
        "add room-simulated copies of the training tracks, and train.",
    )  # fmt: skip
    fit.add_argument("data", type=Path, help="folder root/<genre>/<file>, or a .csv/.json manifest")
    with_run(fit)
    fit.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    fit.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    fit.add_argument("--learning-rate", type=positive_float, default=defaults.learning_rate)
    fit.add_argument("--seed", type=number(whole=True, at_least=0), default=defaults.seed)
    fit.add_argument(
        "--room-variants", type=number(whole=True, at_least=0), default=defaults.room_variants,
        help="room-simulated copies of each training track (default: %(default)s)",
    )  # fmt: skip
    fit.add_argument(
        "--filters", type=positive_int, nargs="+", default=list(cnn.filters),
        help="filters of each Conv2D block (default: %(default)s)",
    )  # fmt: skip
    fit.add_argument("--embedding-size", type=positive_int, default=cnn.embedding_size)
    fraction = number(at_least=0, below=1)
    fit.add_argument("--test-fraction", type=fraction, default=defaults.test_fraction)
    fit.add_argument("--valid-fraction", type=fraction, default=defaults.valid_fraction)
    fit.add_argument(
        "--test-only", metavar="COLUMN=VALUE",
        help="a manifest condition never seen in training, only in test (e.g. soundfont=X)",
    )  # fmt: skip
    fit.add_argument(
        "--split-file", type=Path,
        help="fixed split: JSON of train/valid/test keys, or a folder of train/valid/test*.txt",
    )  # fmt: skip
    fit.add_argument(
        "--split-by-track", action="store_true",
        help="a random clip split that ignores groups, to report beside the grouped figure "
        "how much knowing a groove (or an artist) is worth",
    )  # fmt: skip
    fit.add_argument("--workers", type=positive_int, default=defaults.workers)
    fit.add_argument(
        "--train-hop", type=positive_int, default=defaults.train_hop_frames, metavar="FRAMES",
        help="frames between two training patches (default: %(default)s)",
    )  # fmt: skip
    fit.add_argument(
        "--max-minutes", type=positive_float,
        help="stop after the epoch that passes this much training time (best epoch is kept)",
    )  # fmt: skip
    fit.add_argument(
        "--prepare-only", action="store_true",
        help="stop before training: the run folder then holds all that `train` needs",
    )  # fmt: skip

    train = commands.add_parser(
        "train", help="train in a run folder prepared by `fit --prepare-only`",
        description="Train the CNN of a prepared run folder with its config.json. Needs only "
        "that folder and Keras: with KERAS_BACKEND=jax it trains on a GPU machine that has "
        "neither the corpus nor TensorFlow.",
    )  # fmt: skip
    train.add_argument("--run", type=Path, required=True, help="run folder")
    train.add_argument(
        "--init-from", type=Path, metavar="RUN",
        help="start from the weights of an earlier run's model (same CNN sizes): continue "
        "training on a broader corpus without starting over",
    )  # fmt: skip

    evaluate = commands.add_parser(
        "evaluate", help="test-split metrics, clean and through the room chain, and a baseline"
    )
    with_run(evaluate)

    export = commands.add_parser("export", help="write ONNX and metadata, checked against Keras")
    with_run(export)
    export.add_argument(
        "--out", type=Path, metavar="ONNX",
        help="where to write the model (default: RUN/export/genre.onnx; the shipped model, "
        "models/genre.onnx, is replaced only when named here)",
    )  # fmt: skip
    export.add_argument(
        "--card", action="store_true",
        help="also copy the plots beside the model and write its card (README.md) there",
    )  # fmt: skip

    musicnn = commands.add_parser(
        "musicnn", help="convert musicnn's trained taggers (MSD, MTT) to ONNX, checked",
        description="Convert the MSD_musicnn and MTT_musicnn checkpoints of the installed "
        "musicnn package to OUT/musicnn-NAME.onnx with metadata, and copy musicnn's licence "
        "beside them. Nothing is written unless onnxruntime reproduces musicnn's own graph "
        "(run by TensorFlow) on patches of the --audio files, or of generated signals, and "
        "the file written, its timbral filters in 8 bits (half the cost), stays within 0.1 "
        "of it there. Give real recordings: the 8-bit scales are taken on them.",
    )  # fmt: skip
    musicnn.add_argument("--out", type=Path, required=True, help="folder (e.g. models/)")
    musicnn.add_argument(
        "--audio", type=Path, nargs="+", default=[], metavar="FILE",
        help="recordings whose patches the checks and the 8-bit scales use (default: "
        "generated signals)",
    )  # fmt: skip
    musicnn.add_argument(
        "--models", nargs="+", choices=list(TAGGERS), default=list(TAGGERS),
        help="which taggers (default: both)",
    )  # fmt: skip

    fusion = commands.add_parser(
        "fusion", help="choose the genre decision from the CNN and the tags, on real audio",
        description="Run every clip of the real development set and of a synthetic held-out "
        "manifest through streamer tag's chain (the genre CNN and musicnn's shipped taggers), "
        "choose the decision's few numbers by cross-validation over the real set's tracks, "
        "guarded by the synthetic split, and write them with their figures.",
    )  # fmt: skip
    fusion.add_argument(
        "--realset", type=Path, required=True, metavar="DIR",
        help="the folder ../shared/realset/build.sh made (manifest.csv, clips/)",
    )  # fmt: skip
    fusion.add_argument(
        "--synthetic", type=Path, required=True, metavar="MANIFEST",
        help="a corpus manifest of held-out clips (streamer-train corpus ... held_out=1)",
    )  # fmt: skip
    fusion.add_argument(
        "--out", type=Path, default=Path("models/fusion.json"),
        help="the fusion file (default: %(default)s)",
    )  # fmt: skip
    fusion.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, help="the genre CNN (default: shipped)"
    )
    fusion.add_argument("--folds", type=positive_int, default=5, help="default: %(default)s")
    fusion.add_argument("--seed", type=int, default=0, help="folds' seed (default: 0)")

    not_music = commands.add_parser(
        "not-music", help="fit the not-music detector on generated speech, noise, tones, crowds",
        description="Generate speech (espeak-ng), noises, tones and sweeps, applause and crowds, "
        "room tone, and music (corpus clips, clean, through rooms, with speech over them); run "
        "them through the genre CNN as streamer does; fit a detector on its embeddings, "
        "probabilities and the patches' modulation spectra; measure it on held-out voices, "
        "seeds and music; write OUT/not-music.json.",
    )  # fmt: skip
    not_music.add_argument("--out", type=Path, required=True, help="folder (e.g. models/)")
    not_music.add_argument(
        "--seconds", type=positive_float, default=1600.0,
        help="seconds of each not-music kind on the training side (default: %(default)s)",
    )  # fmt: skip
    not_music.add_argument("--seed", type=number(whole=True, at_least=0), default=7)
    not_music.add_argument(
        "--work", type=Path, default=Path("cache/not-music"),
        help="rendered music and cached hop features (default: %(default)s)",
    )  # fmt: skip
    not_music.add_argument(
        "--heldout", type=Path, metavar="MANIFEST",
        help="held-out corpus clips for the music figures (default: render the split here)",
    )  # fmt: skip
    not_music.add_argument(
        "--realset", type=Path, metavar="DIR",
        help="real music (DIR/manifest.csv, DIR/clips/) to train on too, measured out of fold "
        "by track",
    )  # fmt: skip
    not_music.add_argument(
        "--hidden", type=positive_int, nargs="*", default=[], metavar="UNITS",
        help="hidden layers of an MLP (default: none, a logistic regression)",
    )  # fmt: skip
    not_music.add_argument(
        "--music-loss", type=number(at_least=0, at_most=1), default=notmusic.MUSIC_LOSS,
        metavar="SHARE",
        help="operating point: the share of left-out training music hops the detector may "
        "call not-music, before the chain's vote and minimum runs (default: %(default)s)",
    )  # fmt: skip
    not_music.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, help="the genre CNN (default: shipped)"
    )

    unlabelled = commands.add_parser(
        "unlabelled", help="fetch unlabelled real music (Debian game soundtracks) to distil on",
        description="Download recorded game soundtracks from Debian (apt-get download, no "
        "install), none of them a source of the real development set, and cut them into 30 s "
        "excerpts: OUT/clips/*.wav and OUT/manifest.csv (file, source, track).",
    )  # fmt: skip
    unlabelled.add_argument("out", type=Path, help="output folder")
    unlabelled.add_argument(
        "--realset", type=Path, metavar="DIR",
        help="the real development set: refuse any package among its sources",
    )  # fmt: skip

    distil = commands.add_parser(
        "distil", help="teach the fused decision to a student CNN of the seed's cost",
        description="Run unlabelled real excerpts and a synthetic corpus through streamer tag's "
        "chain, train a student of the shipped CNN's architecture (from its weights) on the "
        "fused decision's view of the real audio and the corpus labels, score it on the "
        "synthetic held-out split and the real development set, and export RUN/student.onnx "
        "with RUN/report.json. Nothing is chosen on the real set.",
    )  # fmt: skip
    distil.add_argument("--run", type=Path, required=True, help="run folder (lessons, model)")
    for name, what in (
        ("--unlabelled", "folder of `streamer-train unlabelled` (manifest.csv, clips/)"),
        ("--synthetic", "corpus manifest of training families (labels), for the guard term"),
        ("--held-out", "corpus manifest of the held-out split, for the guard figure"),
        ("--realset", "the real development set (../shared/realset/build.sh), scored only"),
    ):
        distil.add_argument(name, type=Path, required=True, help=what)
    distil.add_argument(
        "--synthetic-weight", type=number(at_least=0), default=0.5,
        help="the synthetic lessons' weight in all against the real ones (default: %(default)s)",
    )  # fmt: skip
    distil.add_argument("--epochs", type=positive_int, default=8, help="default: %(default)s")
    distil.add_argument(
        "--learning-rate", type=positive_float, default=5e-4,
        help="Adam's, cosine-decayed over the epochs (default: %(default)s)",
    )  # fmt: skip
    distil.add_argument(
        "--every", type=positive_int, default=2, help="keep every Nth hop (default: %(default)s)"
    )
    distil.add_argument("--workers", type=positive_int, default=2, help="default: %(default)s")
    distil.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, help="the CNN to start from (default: shipped)"
    )

    calibrate = commands.add_parser(
        "calibrate", help="fit the decisions' calibrations; ECE and reliability diagrams",
        description="Run a validation manifest and a held-out manifest (clean, and through the "
        "fixed room chain) through streamer tag's chain, fit a temperature and a top-label "
        "curve for the fused decision and a temperature for the CNN alone on the validation "
        "hops, write them into OUT/fusion.json and OUT/genre.json with their expected "
        "calibration errors, and draw OUT/reliability-clean.png and OUT/reliability-room.png. "
        "Run it after `export` and `fusion`: they write those files anew, uncalibrated. It "
        "drops the shown genre's curves (they belong to the old calibration): run "
        "`calibrate-shown` after it.",
    )  # fmt: skip
    calibrate.add_argument(
        "--validation", type=Path, required=True, metavar="MANIFEST",
        help="corpus manifest of new clips (another seed) of the groove families the fit kept "
        "for validation, with training soundfonts: as hard as the held-out split "
        "(`streamer-train corpus --groups ...`, see models/README.md)",
    )  # fmt: skip
    calibrate.add_argument(
        "--held-out", type=Path, required=True, metavar="MANIFEST",
        help="corpus manifest of the held-out split (streamer-train corpus ... held_out=1)",
    )  # fmt: skip
    calibrate.add_argument(
        "--out", type=Path, default=Path("models"),
        help="folder of genre.onnx, genre.json and fusion.json (default: %(default)s)",
    )  # fmt: skip
    calibrate.add_argument(
        "--cache", type=Path, default=Path("cache/calibration"),
        help="per-hop evidence and room copies (default: %(default)s)",
    )  # fmt: skip
    calibrate.add_argument(
        "--every", type=positive_int, default=1, metavar="N",
        help="measure on every Nth held-out clip only (default: all)",
    )  # fmt: skip
    calibrate.add_argument(
        "--realset", type=Path, metavar="MANIFEST",
        help="also measure on the real development set (../shared/realset; its manifest.csv)",
    )  # fmt: skip
    shown = commands.add_parser(
        "calibrate-shown", help="fit what the display shows: the shown genre's confidence",
        description="Run generated mixes of the validation families through streamer tag's "
        "chain with its default options, fit how often the shown genre is the one playing as "
        "a curve of the tracker's confidence, for the fused decision and for the CNN alone, "
        "measure it on mixes of the held-out families, and add it to the shipped "
        "models/fusion.json and the model's metadata, with models/reliability-shown.png. Run "
        "it after `calibrate` (which drops it) and again whenever the tracker's defaults "
        "change: the chain applies it only with the smoothing it was fitted with.",
    )  # fmt: skip
    shown.add_argument(
        "--mixes", type=Path, required=True, action="append", metavar="DIR",
        help="a folder of generated mixes of the validation families, repeatable "
        "(python -m training.mixes DIR --side validation [--seed N])",
    )  # fmt: skip
    shown.add_argument(
        "--held-out", type=Path, required=True, action="append", metavar="DIR",
        help="a folder of generated mixes of the held-out families, repeatable "
        "(python -m training.mixes DIR --side test)",
    )  # fmt: skip
    shown.add_argument(
        "--real", type=Path, action="append", default=[], metavar="DIR",
        help="also measure on mixes of the real development set, repeatable "
        "(python -m training.mixes DIR --realset ../shared/realset build)",
    )  # fmt: skip
    shown.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, help="the genre CNN (default: shipped)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "corpus" and args.out is None and not args.list:
        args.command_parser.error("give the output folder (out), or --list")
    return run_command("streamer-train", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    from training import pipeline
    from training.model import CNNConfig

    if args.command == "corpus":
        from training import corpus

        return corpus.run(args)
    if args.command == "fit":
        test_only = None
        if args.test_only:
            column, _, value = args.test_only.partition("=")
            if not value:
                raise StreamerError("--test-only takes COLUMN=VALUE, e.g. soundfont=TimGM6mb")
            test_only = (column, value)
        config = pipeline.FitConfig(
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
            seed=args.seed, room_variants=args.room_variants, test_fraction=args.test_fraction,
            valid_fraction=args.valid_fraction, test_only=test_only,
            split_file=str(args.split_file) if args.split_file else None,
            split_by_track=args.split_by_track, workers=args.workers,
            train_hop_frames=args.train_hop, max_minutes=args.max_minutes,
            cnn=CNNConfig(filters=tuple(args.filters), embedding_size=args.embedding_size),
        )  # fmt: skip
        if args.prepare_only:
            pipeline.prepare(args.data, args.run, config=config, cache_root=args.cache)
        else:
            pipeline.fit(args.data, args.run, config=config, cache_root=args.cache)
    elif args.command == "train":
        pipeline.train(args.run, init_from=args.init_from)
    elif args.command == "evaluate":
        pipeline.evaluate(args.run, cache_root=args.cache)
    elif args.command == "musicnn":
        report_musicnn(args)
    elif args.command == "fusion":
        report_fusion(args)
    elif args.command == "calibrate":
        report_calibrate(args)
    elif args.command == "calibrate-shown":
        report_calibrate_shown(args)
    elif args.command == "not-music":
        report_not_music(args)
    elif args.command == "unlabelled":
        from streamer.progress import progress_bar
        from training.unlabelled import fetch_unlabelled

        with progress_bar(show=None) as bar:
            progress = stage_bars(bar)
            rows = fetch_unlabelled(args.out, realset=args.realset,
                                    progress=lambda d, t: progress("track", d, t))  # fmt: skip
        tracks = len({row["track"] for row in rows})
        print(f"wrote {args.out / 'manifest.csv'}: {len(rows)} excerpts of {tracks} tracks")
    elif args.command == "distil":
        report_distil(args)
    else:
        out = args.out or args.run / "export" / "genre.onnx"
        difference = pipeline.export(args.run, out)
        print(f"wrote {out} (onnxruntime vs Keras: max abs difference {difference:.2g})")
        if args.card:
            print(f"wrote {pipeline.publish_card(args.run, out)}")
    return 0


def report_musicnn(args: argparse.Namespace) -> None:
    import time

    from training.musicnn import LICENCE_FILE, export_musicnn

    started = time.perf_counter()
    converted = export_musicnn(args.out, models=args.models, audio=args.audio)
    seconds = time.perf_counter() - started
    for model in converted:
        parity, eight_bit = model.extra["export"]["parity"], model.extra["export"]["eight_bit"]
        figures = ", ".join(f"{name} {value:.2g}" for name, value in model.differences.items())
        print(
            f"wrote {model.path} ({len(model.onnx_bytes) / 1e6:.1f} MB; onnxruntime vs "
            f"musicnn's graph on {parity['patches']} patches of {parity['source']}: "
            f"max abs difference {figures}; in 8 bits, tags "
            f"{eight_bit['max_abs_difference']['tags']:.2g} off at most, the embedding "
            f"{eight_bit['embedding_relative_change']:.1%})"
        )
    print(f"wrote {args.out / LICENCE_FILE} ({seconds:.1f} s in all)")


def stage_bars(bar: Any) -> Callable[[str, int, int], None]:
    """A progress callback (stage, clips done, clips) that gives each stage its own bar."""
    tasks: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(f"{stage} clips", total=total, rate="")
        bar.update(tasks[stage], completed=done)

    return progress


def report_fusion(args: argparse.Namespace) -> None:
    from streamer.progress import progress_bar
    from training.fusion import run_fusion

    with progress_bar(show=None) as bar:
        progress = stage_bars(bar)
        fusion, figures = run_fusion(
            realset=args.realset, synthetic=args.synthetic, out=args.out, model=args.model,
            folds=args.folds, seed=args.seed, progress=progress,
        )  # fmt: skip
    real, guard = figures["real"], figures["synthetic"]
    low, high = real["nested_top1_interval"]
    print(
        f"wrote {args.out}: cnn_weight {fusion.cnn_weight}, sharpness {fusion.sharpness}, "
        f"missing_cnn {fusion.missing_cnn}, missing_tags {fusion.missing_tags}\n"
        f"real set ({real['clips']} clips of {real['tracks']} tracks, {real['folds']}-fold "
        f"nested cross-validation over tracks): top-1 {real['nested_top1']:.1%} "
        f"({low:.1%} to {high:.1%}), top-2 {real['nested_top2']:.1%}; the CNN alone "
        f"{real['cnn_alone_top1']:.1%} / {real['cnn_alone_top2']:.1%}\n"
        f"synthetic held-out ({guard['clips']} clips): {guard['fused_track_accuracy']:.1%}, "
        f"the CNN alone {guard['cnn_alone_track_accuracy']:.1%}"
    )
    for genre, (right, clips) in real["nested_per_genre"].items():
        print(f"  {genre:16} {right:3} of {clips:3}")


def report_not_music(args: argparse.Namespace) -> None:
    from training.notmusic import run_not_music

    path, metrics = run_not_music(
        args.out, seconds=args.seconds, seed=args.seed, work=args.work, model=args.model,
        heldout=args.heldout, realset=args.realset, hidden=args.hidden,
        music_loss=args.music_loss,
        progress=lambda stage: print(f"hops of {stage}", flush=True),
    )  # fmt: skip
    print(f"wrote {path}; held-out figures (share of hops):")
    real = {"real_music_out_of_fold": metrics["real_music_out_of_fold"]} if args.realset else {}
    for name, figures in {**real, **metrics["test"]}.items():
        if "no_genre" in figures:
            print(f"  {name:20} {figures['hops']:6} hops, no genre {figures['no_genre']:.1%}")
        else:
            print(
                f"  {name:20} {figures['hops']:6} hops, lost to not-music "
                f"{figures['lost_to_not_music']:.1%}"
            )


def report_distil(args: argparse.Namespace) -> None:
    from training.distil import run_distil

    figures = run_distil(
        run=args.run, unlabelled=args.unlabelled, synthetic=args.synthetic,
        held_out=args.held_out, realset=args.realset, model=args.model,
        synthetic_weight=args.synthetic_weight, epochs=args.epochs,
        learning_rate=args.learning_rate, every=args.every, workers=args.workers,
    )  # fmt: skip
    for name in ("student", "cnn_alone"):
        real = figures[f"realset_{name}"]
        low, high = real["top1_interval"]
        print(
            f"{name.replace('_', ' ')}: real set ({real['clips']} excerpts) first "
            f"{real['top1']:.1%} ({low:.1%} to {high:.1%}), first two {real['top2']:.1%}; "
            f"synthetic held-out track accuracy {figures[f'held_out_{name}']:.1%}"
        )
    print(f"wrote {figures['student']} and {args.run / 'report.json'}")


def report_calibrate(args: argparse.Namespace) -> None:
    from streamer.analysis.calibration import Calibration
    from streamer.progress import progress_bar
    from training.calibrate import describe, run_calibrate

    with progress_bar(show=None) as bar:
        progress = stage_bars(bar)
        figures = run_calibrate(
            validation=args.validation, held_out=args.held_out, out=args.out,
            cache=args.cache, every=args.every, realset=args.realset, progress=progress,
        )  # fmt: skip
    for decision, file in (("fused", "fusion.json"), ("cnn", "genre.json")):
        ece = figures[decision]["ece"]
        print(
            f"wrote {args.out / file}: {describe(Calibration.from_metadata(figures[decision]))}; "
            "ECE raw -> calibrated: "
            + ", ".join(
                f"{name} {ece[name]['raw']:.3f} -> {ece[name]['calibrated']:.3f}"
                for name in ("validation", "clean", "room", "real")
                if name in ece
            )
        )
    print(f"wrote {args.out / 'reliability-clean.png'}, {args.out / 'reliability-room.png'}")
    print("the shown genre's curves are gone with the old calibration: run calibrate-shown")


def report_calibrate_shown(args: argparse.Namespace) -> None:
    from streamer.analysis.model import metadata_path
    from streamer.progress import progress_bar
    from training.calibrate import SHOWN_PNG, run_calibrate_shown

    with progress_bar(show=None) as bar:
        figures = run_calibrate_shown(
            mixes=args.mixes, held_out=args.held_out, real=args.real, model=args.model,
            progress=stage_bars(bar),
        )  # fmt: skip
    for decision, file in (("fused", "fusion.json"), ("cnn", metadata_path(args.model).name)):
        ece = figures[decision]["ece"]
        print(
            f"{file}: shown genre's curve of {len(figures[decision]['knots'])} knots; ECE "
            "tracker's -> restated: "
            + ", ".join(
                f"{name} {ece[name]['raw']:.3f} -> {ece[name]['shown']:.3f} "
                f"({ece[name]['hops']} hops, {ece[name]['right']:.0%} right)"
                for name in ("validation", "held_out", "real")
                if name in ece
            )
        )
    print(f"wrote {args.model.parent / SHOWN_PNG}")


if __name__ == "__main__":
    raise SystemExit(main())
