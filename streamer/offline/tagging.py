"""`streamer tag`: a recording tagged offline, with the live engine's own code path.

The file is decoded in blocks (`FileSource`, unpaced) and pushed through the same
`GenreChain` as `streamer listen`; only the block size differs, and the chain's outputs do
not depend on it. So a set tags exactly as it would have sounded
live, and memory stays bounded by one block whatever the length of the set: the hops
kept are a few numbers each (two hours at 0.5 s: 14 400 hops, about 1 MB; with a library
their 64-value embeddings too, 4 MB more).

Large blocks keep the per-call overheads of decoding and feature extraction small; the
patches still go to onnxruntime one at a time (`streamer.analysis.model.INFERENCE_BATCH`).

With a library, each music segment is named by the library track heard in it
(`name_segments`), the way a live session recognises what plays now
(`streamer.library.recommend.Library.now_playing`): the mean CNN embedding of the last
`RECOGNITION_SECONDS` of music hops, as live takes it, matched against every indexed 30 s
section. Offline the whole segment is known, so it is judged by many such windows: every
`RECOGNITION_STEP_SECONDS` of the segment, each window inside it (so that the tail of the
track before does not leak in), and the track recognised in at least
`MIN_RECOGNISED_SHARE` of them names it. A crossfade's windows match neither track well,
so they abstain rather than vote for the wrong one (on the generated four-track set of
``tests/test_tagging.py``: cosine 0.76 to 0.95 in the crossfades, 0.968 to 0.999 where a
track plays alone, against the threshold of 0.97).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from streamer.capture.file import FileSource
from streamer.chain import GenreChain, TrackedHop
from streamer.offline.exports import Timeline, TrackName
from streamer.segments import Segment

if TYPE_CHECKING:  # the library loads only when one is given
    from streamer.library.recommend import Library

BLOCK_SECONDS = 30.0
"""Audio decoded and analysed at once: 60 patches at a 0.5 s hop, and a few megabytes of
samples."""
RECOGNITION_SECONDS = 10.0
"""Music averaged into one query: the live recommender's "now" (`embedding_seconds`)."""
RECOGNITION_STEP_SECONDS = 1.0  # between two windows of a segment
MIN_RECOGNISED_SHARE = 0.5
"""Share of a segment's windows that must recognise one track for it to name the segment."""


def tag_file(
    path: Path,
    *,
    chain: GenreChain,
    library: Library | None = None,
    progress: Callable[[float, float], None] = lambda done, total: None,
    on_hop: Callable[[TrackedHop], None] = lambda tracked: None,
) -> Timeline:
    """Tag one recording with `chain` (reset first); `progress` gets seconds done and in
    all after each block, `on_hop` every hop as the chain gives it. With `library`, the
    music segments where a library track is recognised are named by it (`name_segments`).

    NaN, infinite or absurd (beyond ±1000) samples are analysed as zeros and counted in
    the timeline's `invalid_samples`, for the caller to report. Raises `StreamerError`
    (one line) for a file that cannot be decoded or holds less than one patch of audio.
    """
    chain.reset()
    model = chain.analyzer.model
    times: list[float] = []
    probabilities: list[np.ndarray] = []
    levels: list[float] = []
    embeddings: list[np.ndarray] = []  # kept only to recognise library tracks
    with FileSource(
        path, sample_rate=model.spec.sample_rate, block_seconds=BLOCK_SECONDS
    ) as source:
        while (block := source.read()) is not None:
            for tracked in chain.push(block):
                times.append(tracked.hop.time)
                probabilities.append(tracked.probabilities)
                levels.append(tracked.hop.level_dbfs)
                if library is not None:
                    embeddings.append(tracked.hop.embedding)
                on_hop(tracked)
            progress(chain.seconds, source.duration)
    if not times:  # not one patch heard: nothing to tag, which the user must hear
        raise chain.analyzer.too_short(path, seconds=chain.seconds)
    chain.finish()
    quiet = chain.tracker.config.quiet(np.asarray(levels, dtype=np.float64))
    segments = list(chain.segments)
    names = {}
    if library is not None:
        names = name_segments(
            segments,
            times=np.asarray(times, dtype=np.float64)[~quiet],
            embeddings=np.stack(embeddings)[~quiet],
            library=library,
            hop_seconds=chain.analyzer.hop_seconds,
        )
    return Timeline(
        source=str(path),
        labels=list(chain.labels),
        duration=chain.seconds,
        segments=segments,
        hop_seconds=chain.analyzer.hop_seconds,
        times=np.asarray(times, dtype=np.float64),
        probabilities=np.stack(probabilities),
        model={"name": model.path.name, "sha256": model.info.sha256, **chain.description()},
        levels_dbfs=np.asarray(levels, dtype=np.float64),
        silent=quiet,
        invalid_samples=source.invalid_samples,
        names=names,
    )


def name_segments(
    segments: Sequence[Segment],
    *,
    times: np.ndarray,
    embeddings: np.ndarray,
    library: Library,
    hop_seconds: float,
) -> dict[int, TrackName]:
    """The library track recognised in each music segment, by segment index (module notes).

    `times` and `embeddings` are the stream times and CNN embeddings of the music hops, in
    order: quiet hops are left out, as live leaves them out of "now".
    """
    width = max(1, round(RECOGNITION_SECONDS / hop_seconds))  # hops in a full window
    step = max(1, round(RECOGNITION_STEP_SECONDS / hop_seconds))
    names: dict[int, TrackName] = {}
    for segment in segments:
        inside = (segment.start < times) & (times <= segment.end)
        if segment.state != "music" or not inside.any():
            continue
        heard = embeddings[inside]
        sums = np.concatenate([np.zeros((1, heard.shape[1])), np.cumsum(heard, axis=0)])
        ends = np.arange(min(width, len(heard)), len(heard) + 1, step)  # a short one: whole
        scores: dict[int, list[float]] = {}  # the windows that recognised each track
        for end in ends:
            begin = max(0, end - width)
            found = library.now_playing((sums[end] - sums[begin]) / (end - begin))
            if found is not None:
                scores.setdefault(found[0].id, []).append(found[1])
        best = max(scores, key=lambda track_id: len(scores[track_id]), default=None)
        if best is not None and len(scores[best]) >= MIN_RECOGNISED_SHARE * len(ends):
            track = library.tracks[best]
            names[segment.index] = TrackName(
                id=track.id,
                title=track.title or track.path.stem,
                artist=track.artist,
                path=str(track.path),
                similarity=float(np.mean(scores[best])),
            )
    return names
