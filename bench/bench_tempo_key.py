"""Tempo and key against ground truth: the library's estimators and plain librosa, one run.

The synthetic corpus knows the tempo and the key of every clip (manifest columns ``tempo``
and ``key``: the MMA chart's, or the score's for classical). Each clip is measured clean and
through the fixed evaluation room (`training.augment.evaluation_room`, its own fixed seed),
by two estimators on the same audio:

- ours: `streamer.analysis.describe.describe` (its ``tempo_bpm`` and ``key``), as the
  indexer and the live recommender run it;
- baseline: plain librosa, ``librosa.beat.beat_track`` for the tempo and Krumhansl-Schmuckler
  (the Krumhansl-Kessler profiles) on the mean of ``librosa.feature.chroma_stft``, defaults.

Scores, per genre and overall: tempo Acc1 (within 4 % of the truth), Acc2 (within 4 % of the
truth, half or double it), key exact, and the MIREX weighted key score (same key 1.0, a
perfect fifth above in the same mode 0.5, relative 0.3, parallel 0.2; mir_eval's default, no
descending fifth). Speed: seconds per clip of each side, on one thread per worker, and their
ratio (ours / baseline), never asserted.

The key of a chord chart is its tonic with the mode of its tonic chord (`chart_key`):
manifests written before `training.progressions.is_minor` followed that rule called every
chart that starts on a minor chord minor, "ii7 V7 Imaj7" included (63 of the 418 held-out
clips), and are read right here.

``--split even`` and ``--split odd`` take every other clip of the manifest: the estimators'
constants were tuned on the even half, so the odd half is the honest figure.

    .venv/bin/python bench/bench_tempo_key.py [--folder /work/heldout] [--limit N]
        [--room both|on|off] [--split all|even|odd] [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from streamer.analysis.describe import (
    KRUMHANSL_KESSLER,
    describe,
    estimate_key,
    parse_key,
)
from streamer.capture.file import read_audio
from streamer.errors import StreamerError
from streamer.progress import progress_bar, say
from training.augment import evaluation_room
from training.progressions import is_minor

RATE = 22050
TOLERANCE = 0.04  # Acc1 and Acc2: relative tempo error allowed
SIDES = ("baseline", "ours")


@dataclass(frozen=True)
class Estimate:
    """One side's answer for one clip in one condition."""

    tempo: float | None
    key: str | None
    seconds: float  # time the estimate took


@dataclass(frozen=True)
class Clip:
    path: str
    genre: str
    tempo: float
    key: str


def baseline(y: np.ndarray) -> Estimate:
    """Plain librosa: beat_track's tempo, Krumhansl-Schmuckler on the mean chroma."""
    import librosa

    start = time.perf_counter()
    tempo, _ = librosa.beat.beat_track(y=y, sr=RATE)
    chroma = librosa.feature.chroma_stft(y=y, sr=RATE).mean(axis=1)
    key, _ = estimate_key(chroma, profiles=KRUMHANSL_KESSLER)
    return Estimate(float(np.atleast_1d(tempo)[0]), key, time.perf_counter() - start)


def ours(y: np.ndarray) -> Estimate:
    """The library's descriptors of the clip, as the indexer computes them."""
    start = time.perf_counter()
    d = describe(y, sample_rate=RATE)
    return Estimate(d.tempo_bpm, d.key, time.perf_counter() - start)


def _start_worker() -> None:
    """One thread per worker; librosa's first calls (numba) paid before any timing."""
    threadpool_limits(1)
    y = (0.1 * np.sin(2 * np.pi * 440 * np.arange(3 * RATE) / RATE)).astype(np.float32)
    baseline(y)
    ours(y)


def measure(
    clip: Clip, folder: Path, conditions: tuple[str, ...]
) -> dict[str, dict[str, Estimate]] | str:
    """{condition: {side: Estimate}} for one clip, or why it cannot be read."""
    try:
        clean = read_audio(folder / clip.path, sample_rate=RATE)
    except StreamerError as error:
        return str(error)
    result = {}
    for condition in conditions:
        y = clean if condition == "clean" else evaluation_room(clean, sample_rate=RATE)
        y = np.ascontiguousarray(y, dtype=np.float32)
        result[condition] = {"baseline": baseline(y), "ours": ours(y)}
    return result


def tempo_scores(estimate: float | None, truth: float) -> tuple[float, float]:
    """(Acc1, Acc2) of one estimate: within `TOLERANCE`, and also at half or double."""
    if estimate is None:
        return 0.0, 0.0
    hits = [abs(estimate - factor * truth) <= TOLERANCE * factor * truth for factor in (1, 2, 0.5)]
    return float(hits[0]), float(any(hits))


def key_scores(estimate: str | None, truth: str) -> tuple[float, float]:
    """(exact, MIREX weighted) of one estimate."""
    if estimate is None:
        return 0.0, 0.0
    (est, est_mode), (ref, ref_mode) = parse_key(estimate), parse_key(truth)
    step = (est - ref) % 12
    if est_mode == ref_mode:
        return (1.0, 1.0) if step == 0 else (0.0, 0.5 if step == 7 else 0.0)
    relative = 9 if ref_mode == "major" else 3
    return 0.0, 0.3 if step == relative else 0.2 if step == 0 else 0.0


METRICS = ("acc1", "acc2", "key", "mirex")


def scores(estimate: Estimate, clip: Clip) -> dict[str, float]:
    acc1, acc2 = tempo_scores(estimate.tempo, clip.tempo)
    exact, mirex = key_scores(estimate.key, clip.key)
    return {"acc1": acc1, "acc2": acc2, "key": exact, "mirex": mirex}


def chart_key(key: str, progression: str) -> str:
    """The key a chord chart is in: the manifest's tonic, with the mode of the chart's tonic
    chord (`training.progressions.is_minor`). Manifests written before that rule took the
    mode from the first chord ("ii7 V7 Imaj7" in C was "C minor"); this reads them right.
    Scores (no chart) keep the manifest's key."""
    if not progression.strip():
        return key
    return f"{key.split()[0]} {'minor' if is_minor(progression) else 'major'}"


def read_manifest(folder: Path, *, split: str, limit: int | None) -> list[Clip]:
    """The clips with a tempo and a key, in manifest order, every other one for a split."""
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        sys.exit(f"error: no manifest.csv in {folder}: give a corpus folder (--folder)")
    with manifest.open(newline="") as f:
        rows = [row for row in csv.DictReader(f) if row.get("tempo") and row.get("key")]
    if split != "all":
        rows = rows[split == "odd" :: 2]
    clips = [
        Clip(
            r["path"], r["label"], float(r["tempo"]), chart_key(r["key"], r.get("progression", ""))
        )
        for r in rows
    ]
    return clips[:limit]


def run(
    clips: list[Clip], folder: Path, *, conditions: tuple[str, ...], workers: int
) -> Iterator[tuple[Clip, dict[str, dict[str, Estimate]]]]:
    with (
        ProcessPoolExecutor(max_workers=workers, initializer=_start_worker) as pool,
        progress_bar() as bar,
    ):
        task = bar.add_task("clips", total=len(clips), rate="")
        futures = [pool.submit(measure, clip, folder, conditions) for clip in clips]
        for clip, future in zip(clips, futures, strict=True):
            measured = future.result()
            bar.advance(task)
            if isinstance(measured, str):
                say(f"skipped {measured}")
            else:
                yield clip, measured


def summarise(
    results: list[tuple[Clip, dict[str, dict[str, Estimate]]]], conditions: tuple[str, ...]
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """{condition: {genre or "all": {side: {metric: mean, "n": clips, "seconds": mean}}}}."""
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for condition in conditions:
        groups: dict[str, list[tuple[Clip, dict[str, Estimate]]]] = defaultdict(list)
        for clip, measured in results:
            groups[clip.genre].append((clip, measured[condition]))
            groups["all"].append((clip, measured[condition]))
        table[condition] = {}
        for genre in [*sorted(set(groups) - {"all"}), "all"]:
            table[condition][genre] = {}
            for side in SIDES:
                rows = [scores(m[side], clip) for clip, m in groups[genre]]
                summary = {metric: float(np.mean([r[metric] for r in rows])) for metric in METRICS}
                summary["n"] = len(rows)
                summary["seconds"] = float(np.mean([m[side].seconds for _, m in groups[genre]]))
                table[condition][genre][side] = summary
    return table


def print_table(table: dict[str, dict[str, dict[str, dict[str, float]]]]) -> None:
    header = "  ".join(f"{m:>11}" for m in ("Acc1", "Acc2", "key exact", "MIREX"))
    for condition, genres in table.items():
        print(f"\n{condition}: baseline -> ours (percent)")
        print(f"{'genre':<10} {'n':>4}  {header}")
        for genre, sides in genres.items():
            cells = "  ".join(
                f"{100 * sides['baseline'][m]:5.1f}>{100 * sides['ours'][m]:5.1f}" for m in METRICS
            )
            print(f"{genre:<10} {sides['ours']['n']:>4.0f}  {cells}")
        every = genres["all"]
        base, own = every["baseline"]["seconds"], every["ours"]["seconds"]
        print(
            f"seconds per clip: baseline {base:.3f}, ours {own:.3f} "
            f"(ours / baseline {own / base:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  bench/bench_tempo_key.py --split odd --json /tmp/tempo_key.json\n"
        "  bench/bench_tempo_key.py --limit 40 --room off",
    )
    parser.add_argument(
        "--folder",
        type=Path,
        default=Path("/work/heldout"),
        help="a corpus folder with manifest.csv (tempo and key columns); default %(default)s",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N clips only")
    parser.add_argument(
        "--room",
        choices=("both", "on", "off"),
        default="both",
        help="clean, through the evaluation room, or both (default)",
    )
    parser.add_argument(
        "--split",
        choices=("all", "even", "odd"),
        default="all",
        help="every other clip: the estimators were tuned on 'even', 'odd' is held out",
    )
    parser.add_argument(
        "--workers", type=int, choices=(1, 2), default=2, help="processes (default 2)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the table and clips here")
    args = parser.parse_args()
    conditions = {"both": ("clean", "room"), "on": ("room",), "off": ("clean",)}[args.room]
    clips = read_manifest(args.folder, split=args.split, limit=args.limit)
    results = list(run(clips, args.folder, conditions=conditions, workers=args.workers))
    if not results:
        sys.exit(f"error: no clip of {args.folder} could be read")
    table = summarise(results, conditions)
    print(f"{len(results)} clips of {args.folder} (split {args.split})")
    print_table(table)
    if args.json is not None:
        clips_out = [
            {
                **asdict(clip),
                **{c: {s: asdict(e) for s, e in m.items()} for c, m in measured.items()},
            }
            for clip, measured in results
        ]
        args.json.write_text(json.dumps({"table": table, "clips": clips_out}, indent=1))


if __name__ == "__main__":
    main()
