"""Segments that are tracks: `streamer tag`'s chain scored on mixes with known answers.

Each mix is a WAV with its truth beside it (``NAME.json``, written by `training.mixes`:
tracks, the true changes, speech, tones, silence). The chain is `streamer tag`'s
(`build_chain` with its defaults: the shipped CNN, musicnn's taggers and the fused
decision; ``--no-tagger`` for the CNN alone), run by `tag_file`. Per folder of mixes:

- segments: the fraction of mixes whose music segments number N +- 1 for N tracks (and
  exactly N); speech, tone and silence segments are counted apart.
- boundaries: each true change matched to the nearest segment boundary: the fraction within
  10 s and the median error; boundaries more than 10 s from every true change are extra.
- genre: each music segment's genre against the track it overlaps most (by count and by
  time), beside the model's track-level accuracy on the same tracks (the majority of the
  decision's top genre over the track's hops, before smoothing).
- not-music: the fraction of hops whose patch lies inside speech (or a tone, or silence)
  whose state is not "music" (what the display shows), and the share of the speech's (or
  tone's) time that segments without a genre cover (what the tracklist says); the
  fraction of hops of a DJ talking over a track still music.
- live display: changes of the displayed genre (`TrackerUpdate.top`, no genre included)
  per minute within steady tracks (hops more than 10 s from every true change; the first
  genre a stream shows is a claim, not a change), and the delay from a change to
  a track of another genre until the display first shows that genre, against the target
  of the patch length plus 3 hops: from the crossfade's midpoint (where the truth changes),
  and from where the new track plays alone (the end of the crossfade: a patch can hold
  nothing but the new track only from there, as after a cut, which is what the target's
  patch length stands for; 0 when the display was there before). Beside them, the same delay
  of the decision itself (its top genre on two hops in a row, before any smoothing): what
  no display rule can beat.
- shown confidence: over the hops that show a genre (but over a real track of none of our
  genres), the mean `confidence` shown, how often the shown genre is one playing
  (`training.mixes.playing`), and the expected calibration error between the two
  (`training.calibrate.binned_error`).

And on the real development set's single-track excerpts (30 s): segments per excerpt (mean,
max), excerpts with more than one, segments shorter than ``--min-seconds``, and the share
of their time in not-music segments (real music lost to the not-music detector).

Mixes made with cuts for crossfades (``python -m training.mixes DIR --side test --fades 0
0``) time the display from the one instant of each change, as the target's patch length
assumes.

With ``--evidence DIR`` the first run records, per file, what the networks gave the
tracker (`streamer.chain.TrackedHop.evidence`, keyed by the networks, the hop and the
file), and later runs replay the tracker alone on it (`GenreChain.show`): the figures of a
run through the whole chain, for other smoothing or segment options, in seconds instead of
minutes (tests/test_chain.py checks that a replay shows what the chain shows).

    .venv/bin/python bench/bench_segments.py --mixes /work/mixes/train --mixes /work/mixes/test \\
        --mixes /work/mixes/real --realset /work/realset [--no-tagger] [--json OUT] \\
        [--evidence /work/evidence [--confirm-hops N ...]]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamer.analysis.features import live_thread_limits
from streamer.analysis.model import DEFAULT_MODEL, GenreModel
from streamer.chain import GenreChain, TrackedHop
from streamer.cli.options import add_analysis_options, build_chain
from streamer.offline.tagging import tag_file
from streamer.tracking import Evidence, Segment, TrackerUpdate
from training.calibrate import binned_error
from training.mixes import judged, mix_files, playing

TOLERANCE = 10.0  # seconds: a boundary this close to a true change finds it
STEADY_MARGIN = 10.0  # seconds around each true change left out of "steady"


@dataclass
class Run:
    """One file through the chain: its segments and, per hop, what was decided and shown."""

    labels: tuple[str, ...]  # the chain's genres
    segments: list[Segment]
    times: np.ndarray
    decided: list[str]  # the decision's top genre, before smoothing
    shown: list[str | None]  # update.top
    confidence: list[float]  # update.confidence
    states: list[str]
    window: float
    hop: float
    seconds: float


def run_chain(path: Path, chain: GenreChain, *, evidence: Path | None = None) -> Run:
    """`streamer tag`'s chain on one file. With an `evidence` folder, what the networks
    gave the tracker is recorded there the first time, and later runs replay the tracker
    alone on it (`replay`)."""
    record = None if evidence is None else evidence / f"{evidence_key(chain, path)}.npz"
    if record is not None and record.exists():
        return replay(record, chain)
    hops: list[TrackedHop] = []
    started = time.monotonic()
    timeline = tag_file(path, chain=chain, on_hop=hops.append)
    if record is not None:
        recorded = [h.evidence for h in hops if h.evidence is not None]
        record.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            record, end=timeline.duration,
            time=[e.time for e in recorded], level_dbfs=[e.level_dbfs for e in recorded],
            probabilities=[e.probabilities for e in recorded],
            not_music=[e.not_music for e in recorded],
            features=[e.features for e in recorded],
            calibrated=[h.probabilities for h in hops],
        )  # fmt: skip
    times, calibrated = [h.hop.time for h in hops], [h.probabilities for h in hops]
    updates = [h.update for h in hops]
    return chain_run(chain, times, calibrated, updates, timeline.segments, started=started)


def chain_run(
    chain: GenreChain,
    times: list[float],
    calibrated: list[np.ndarray],
    updates: list[TrackerUpdate],
    segments: list[Segment],
    *,
    started: float,
) -> Run:
    labels = tuple(chain.labels)
    return Run(
        labels=labels,
        segments=list(segments),
        times=np.array(times),
        decided=[labels[int(np.argmax(p))] for p in calibrated],
        shown=[u.top for u in updates],
        confidence=[u.confidence for u in updates],
        states=[str(u.state) for u in updates],
        window=chain.analyzer.window_seconds,
        hop=chain.analyzer.hop_seconds,
        seconds=time.monotonic() - started,
    )


def evidence_key(chain: GenreChain, path: Path) -> str:
    """What a file's recorded evidence depends on: the networks, the decision and its
    calibration, the hop, and the file (its path, size and time); not the tracker's
    smoothing or segment options, which a replay varies."""
    described = chain.description()
    described["calibration"].pop("shown", None)  # the tracker's output, not its input
    stat = path.resolve().stat()
    key = [described, chain.analyzer.model.info.sha256, chain.analyzer.hop_seconds,
           str(path.resolve()), stat.st_size, stat.st_mtime_ns]  # fmt: skip
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def replay(record: Path, chain: GenreChain) -> Run:
    """The tracker alone (`GenreChain.show`) on a file's recorded evidence: the same
    `Run` as the whole chain gives, under the chain's own smoothing and segments."""
    started = time.monotonic()
    stored = np.load(record)
    chain.reset()
    updates = [
        chain.show(
            Evidence(
                time=float(moment), probabilities=probabilities, level_dbfs=float(level),
                not_music=bool(not_music), features=features,
            )
        )
        for moment, probabilities, level, not_music, features in zip(
            stored["time"], stored["probabilities"], stored["level_dbfs"], stored["not_music"],
            stored["features"], strict=True,
        )
    ]  # fmt: skip
    chain.tracker.finish(time=float(stored["end"]))
    times, calibrated = stored["time"].tolist(), list(stored["calibrated"])
    return chain_run(chain, times, calibrated, updates, chain.segments, started=started)


@dataclass
class MixScores:
    """The figures of one mix, pooled over a folder by `summarise`."""

    tracks: int
    music_segments: int
    other_segments: int
    change_errors: list[float]
    extra_boundaries: int
    segment_right: list[tuple[bool, float]]  # (right, seconds) per music segment
    track_right: list[bool]
    inside: dict[str, list[bool]] = field(default_factory=dict)  # kind -> hop not music?
    covered: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # in segments
    talkover_music: list[bool] = field(default_factory=list)
    display_changes: int = 0
    steady_seconds: float = 0.0
    delays: list[float] = field(default_factory=list)  # inf: never shown before the next
    delays_alone: list[float] = field(default_factory=list)  # the same, from the fade's end
    delays_decided: list[float] = field(default_factory=list)  # the decision's, from midpoint
    shown_confidence: list[tuple[float, bool]] = field(default_factory=list)  # (said, right)
    window: float = 0.0
    hop: float = 0.0


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def score_mix(run: Run, truth: dict[str, Any]) -> MixScores:
    changes = [float(c) for c in truth["changes"]]
    music = [s for s in run.segments if s.state == "music"]
    boundaries = np.array([s.start for s in run.segments[1:]])
    errors = [float(np.min(np.abs(boundaries - c))) if boundaries.size else np.inf for c in changes]
    extra = sum(
        1 for b in boundaries if not changes or min(abs(b - c) for c in changes) > TOLERANCE
    )
    true_music = [s for s in truth["segments"] if s["state"] == "music"]

    def truth_genre(span: tuple[float, float]) -> str | None:
        best = max(true_music, key=lambda s: overlap(span, (s["start"], s["end"])), default=None)
        return None if best is None else best["genre"]

    segment_right = [(s.genre == truth_genre((s.start, s.end)), s.end - s.start) for s in music]
    t = run.times
    track_right = []
    for s in true_music:
        inside = [
            d for d, time in zip(run.decided, t, strict=True) if s["start"] <= time < s["end"]
        ]
        if inside:
            majority = Counter(inside).most_common(1)[0][0]  # a tie: the first heard
            track_right.append(majority == s["genre"])
    scores = MixScores(
        tracks=len(truth["tracks"]), music_segments=len(music),
        other_segments=len(run.segments) - len(music), change_errors=errors,
        extra_boundaries=extra, segment_right=segment_right, track_right=track_right,
        window=run.window, hop=run.hop,
    )  # fmt: skip
    not_music = np.array([state != "music" for state in run.states])
    for kind in ("speech", "tones", "silence"):
        for stretch in truth.get(kind, []):
            whole = (t - run.window >= stretch["start"]) & (t <= stretch["end"])
            scores.inside.setdefault(kind, []).extend(not_music[whole].tolist())
            span = (stretch["start"], stretch["end"])
            without = sum(overlap(span, (g.start, g.end)) for g in run.segments if g.genre is None)
            scores.covered.setdefault(kind, []).append((without, span[1] - span[0]))
    for stretch in truth.get("talkover", []):
        whole = (t - run.window >= stretch["start"]) & (t <= stretch["end"])
        scores.talkover_music += (~not_music[whole]).tolist()
    near = np.zeros(t.size, dtype=bool)
    for c in changes:
        near |= np.abs(t - c) <= STEADY_MARGIN
    in_music = np.zeros(t.size, dtype=bool)
    for s in true_music:
        in_music |= (t >= s["start"]) & (t < s["end"])
    steady = in_music & ~near
    pairs = steady[1:] & steady[:-1]
    claim = next((i for i, top in enumerate(run.shown) if top is not None), -1)
    scores.display_changes = sum(
        1 for i in np.flatnonzero(pairs) if run.shown[i + 1] != run.shown[i] and i + 1 != claim
    )  # the stream's first genre is a claim, not a change
    scores.steady_seconds = float(pairs.sum()) * run.hop
    segments = truth["segments"]
    for i, after in enumerate(segments[1:], start=1):
        previous = next((s["genre"] for s in segments[i - 1 :: -1] if s["state"] == "music"), None)
        if after["state"] != "music" or previous == after["genre"]:
            continue  # not music, or a change of track only: nothing new to show
        until = segments[i + 1]["start"] if i + 1 < len(segments) else np.inf
        shown = [
            time for time, top in zip(t, run.shown, strict=True)
            if after["start"] <= time < until and top == after["genre"]
        ]  # fmt: skip
        alone = max(
            [after["start"]]
            + [track["end"] for track in truth["tracks"] if track["end"] < after["end"]]
        )  # the end of the fade: no earlier track's audio is left
        successive = zip(t[:-1], run.decided[:-1], run.decided[1:], strict=True)
        decided = [
            time for time, top, following in successive
            if after["start"] <= time < until and top == following == after["genre"]
        ]  # fmt: skip
        scores.delays.append(shown[0] - after["start"] if shown else np.inf)
        scores.delays_decided.append(decided[0] - after["start"] if decided else np.inf)
        scores.delays_alone.append(max(0.0, shown[0] - alone) if shown else np.inf)
    scores.shown_confidence = [
        (confidence, top in genres)
        for top, confidence, genres in zip(run.shown, run.confidence, playing(truth, t),
                                           strict=True)
        if top is not None and judged(genres, run.labels)
    ]  # fmt: skip
    return scores


def fraction(values: list[bool]) -> float:
    return float(np.mean(values)) if values else float("nan")


def summarise(mixes: list[MixScores]) -> dict[str, float]:
    errors = [e for m in mixes for e in m.change_errors]
    right = [r for m in mixes for r in m.segment_right]
    seconds = sum(s for _, s in right)
    delays = [d for m in mixes for d in m.delays]
    target = mixes[0].window + 3 * mixes[0].hop if mixes else float("nan")
    finite = [d for d in delays if np.isfinite(d)]
    alone = [d for m in mixes for d in m.delays_alone if np.isfinite(d)]
    decided_all = [d for m in mixes for d in m.delays_decided]
    decided = [d for d in decided_all if np.isfinite(d)]

    def inside(kind: str) -> float:
        return fraction([v for m in mixes for v in m.inside.get(kind, [])])

    def covered(kind: str) -> float:
        pairs = [pair for m in mixes for pair in m.covered.get(kind, [])]
        return sum(c for c, _ in pairs) / sum(t for _, t in pairs) if pairs else float("nan")

    said = np.array([pair for m in mixes for pair in m.shown_confidence]).reshape(-1, 2)
    steady = sum(m.steady_seconds for m in mixes)
    nan = float("nan")
    changes = sum(m.display_changes for m in mixes)
    return {
        "mixes": len(mixes),
        "tracks": sum(m.tracks for m in mixes),
        "music segments": sum(m.music_segments for m in mixes),
        "other segments": sum(m.other_segments for m in mixes),
        "N+-1 segments": fraction([abs(m.music_segments - m.tracks) <= 1 for m in mixes]),
        "exactly N": fraction([m.music_segments == m.tracks for m in mixes]),
        "changes": len(errors),
        "change within 10 s": fraction([e <= TOLERANCE for e in errors]),
        "median change error s": float(np.median(errors)) if errors else float("nan"),
        "extra boundaries": sum(m.extra_boundaries for m in mixes),
        "segment genre right": fraction([r for r, _ in right]),
        "segment genre right (time)": sum(s for r, s in right if r) / seconds if right else nan,
        "track-level accuracy": fraction([r for m in mixes for r in m.track_right]),
        "speech hops no genre": inside("speech"),
        "tone hops no genre": inside("tones"),
        "silence hops no genre": inside("silence"),
        "speech time in no-genre segments": covered("speech"),
        "tone time in no-genre segments": covered("tones"),
        "talk-over hops music": fraction([v for m in mixes for v in m.talkover_music]),
        "display changes/min": 60 * changes / steady if steady else nan,
        "genre changes": len(delays),
        "delay median s": float(np.median(finite)) if finite else float("nan"),
        f"shown within {target:.1f} s": fraction([d <= target for d in delays]),
        "never shown": sum(1 for d in delays if not np.isfinite(d)),
        "decision's delay median s": float(np.median(decided)) if decided else nan,
        f"decision within {target:.1f} s": fraction([d <= target for d in decided_all]),
        "delay after fade median s": float(np.median(alone)) if alone else nan,
        f"of those shown, within {target:.1f} s after fade": fraction([d <= target for d in alone]),
        "shown confidence mean": float(said[:, 0].mean()) if len(said) else nan,
        "shown genre playing": float(said[:, 1].mean()) if len(said) else nan,
        "shown confidence ECE": binned_error(said[:, 0], said[:, 1] > 0) if len(said) else nan,
    }  # fmt: skip


def score_excerpts(runs: list[Run], *, min_seconds: float) -> dict[str, float]:
    counts = [len(r.segments) for r in runs]
    music = [sum(s.state == "music" for s in r.segments) for r in runs]
    lengths = [s.end - s.start for r in runs for s in r.segments]
    seconds = sum(lengths)
    not_music = sum(s.end - s.start for r in runs for s in r.segments if s.state == "not-music")
    return {
        "excerpts": len(runs),
        "segments": sum(counts),
        "segments/excerpt mean": float(np.mean(counts)),
        "segments/excerpt max": max(counts),
        "music segments/excerpt mean": float(np.mean(music)),
        "excerpts with >1": sum(c > 1 for c in counts),
        f"segments < {min_seconds:g} s": sum(length < min_seconds for length in lengths),
        "time in not-music": not_music / seconds if seconds else float("nan"),
    }


def table(columns: dict[str, dict[str, float]]) -> str:
    rows: list[str] = []
    for key in dict.fromkeys(k for c in columns.values() for k in c):
        rows.append(key)
    width = max(len(r) for r in rows) + 2
    cell = max([15, *(len(name) + 2 for name in columns)])
    lines = ["".ljust(width) + "".join(name.rjust(cell) for name in columns)]
    for key in rows:
        cells = []
        for figures in columns.values():
            value = figures.get(key)
            cells.append(
                "" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)
            )
        lines.append(key.ljust(width) + "".join(c.rjust(cell) for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mixes", type=Path, action="append", default=[], metavar="DIR",
                        help="a folder of NAME.wav + NAME.json mixes (repeatable)")  # fmt: skip
    parser.add_argument("--realset", type=Path, metavar="DIR",
                        help="the real development set: clips/*.wav, one track each")  # fmt: skip
    parser.add_argument("--min-seconds", type=float, default=3.0,
                        help="count real-set segments shorter than this (default 3)")  # fmt: skip
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--json", type=Path, help="also write the figures and per-mix counts here")
    parser.add_argument("--max-mixes", type=int, metavar="N", help="the first N of each folder")
    parser.add_argument("--verbose", action="store_true", help="a line per mix")
    parser.add_argument("--evidence", type=Path, metavar="DIR",
                        help="record what the networks give the tracker here; replay it "
                        "on later runs: other smoothing or segment options in seconds")  # fmt: skip
    add_analysis_options(parser)  # --no-tagger and the smoothing options, as streamer tag
    args = parser.parse_args(argv)
    if not args.mixes and args.realset is None:
        parser.error("give --mixes DIR and/or --realset DIR")
    chain = build_chain(GenreModel(args.model), args)
    columns: dict[str, dict[str, float]] = {}
    details: dict[str, list[dict[str, Any]]] = {}
    with live_thread_limits():
        for folder in args.mixes:
            scores, started = [], time.monotonic()
            for wav in mix_files(folder)[: args.max_mixes]:
                truth = json.loads(wav.with_suffix(".json").read_text())
                run = run_chain(wav, chain, evidence=args.evidence)
                scores.append(score_mix(run, truth))
                m = scores[-1]
                details.setdefault(str(folder), []).append(
                    {"mix": wav.name, "tracks": m.tracks, "music_segments": m.music_segments,
                     "other_segments": m.other_segments, "change_errors": m.change_errors}
                )  # fmt: skip
                if args.verbose:
                    errors = [round(e, 1) for e in m.change_errors]
                    print(f"{wav.name}: {m.tracks} tracks, {m.music_segments} music segments, "
                          f"{m.other_segments} other, errors {errors} ({run.seconds:.0f} s)",
                          file=sys.stderr, flush=True)  # fmt: skip
            columns[folder.name] = summarise(scores)
            columns[folder.name]["wall s"] = round(time.monotonic() - started)
        if args.realset is not None:
            clips = sorted((args.realset / "clips").glob("*.wav"))
            started = time.monotonic()
            runs = [run_chain(clip, chain, evidence=args.evidence) for clip in clips]
            columns["realset excerpts"] = score_excerpts(runs, min_seconds=args.min_seconds)
            columns["realset excerpts"]["wall s"] = round(time.monotonic() - started)
    decision = "cnn alone" if not args.tagger else "cnn + taggers, fused"
    print(f"streamer tag's chain ({decision}), tolerance {TOLERANCE:g} s")
    print(table(columns))
    if args.json is not None:
        args.json.write_text(json.dumps({"figures": columns, "mixes": details}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
