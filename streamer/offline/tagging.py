"""`streamer tag`: a recording tagged offline, with the live engine's own code path.

The file is decoded in blocks (`FileSource`, unpaced) and pushed through the same
`GenreChain` as `streamer listen`; only the block size differs, and the chain's outputs do
not depend on it. So a set tags exactly as it would have sounded
live, and memory stays bounded by one block whatever the length of the set: the hops
kept are a few numbers each (two hours at 0.5 s: 14 400 hops, about 1 MB).

Large blocks keep the per-call overheads of decoding and feature extraction small; the
patches still go to onnxruntime one at a time (`streamer.analysis.model.INFERENCE_BATCH`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from streamer.capture.file import FileSource
from streamer.chain import GenreChain, TrackedHop
from streamer.offline.exports import Timeline

BLOCK_SECONDS = 30.0
"""Audio decoded and analysed at once: 60 patches at a 0.5 s hop, and a few megabytes of
samples."""


def tag_file(
    path: Path,
    *,
    chain: GenreChain,
    progress: Callable[[float, float], None] = lambda done, total: None,
    on_hop: Callable[[TrackedHop], None] = lambda tracked: None,
) -> Timeline:
    """Tag one recording with `chain` (reset first); `progress` gets seconds done and in
    all after each block, `on_hop` every hop as the chain gives it.

    NaN, infinite or absurd (beyond ±1000) samples are analysed as zeros and counted in
    the timeline's `invalid_samples`, for the caller to report. Raises `StreamerError`
    (one line) for a file that cannot be decoded or holds less than one patch of audio.
    """
    chain.reset()
    model = chain.analyzer.model
    times: list[float] = []
    probabilities: list[np.ndarray] = []
    levels: list[float] = []
    with FileSource(
        path, sample_rate=model.spec.sample_rate, block_seconds=BLOCK_SECONDS
    ) as source:
        while (block := source.read()) is not None:
            for tracked in chain.push(block):
                times.append(tracked.hop.time)
                probabilities.append(tracked.probabilities)
                levels.append(tracked.hop.level_dbfs)
                on_hop(tracked)
            progress(chain.seconds, source.duration)
    if not times:  # not one patch heard: nothing to tag, which the user must hear
        raise chain.analyzer.too_short(path, seconds=chain.seconds)
    chain.finish()
    quiet = chain.tracker.config.quiet(np.asarray(levels, dtype=np.float64))
    return Timeline(
        source=str(path),
        labels=list(chain.labels),
        duration=chain.seconds,
        segments=list(chain.segments),
        hop_seconds=chain.analyzer.hop_seconds,
        times=np.asarray(times, dtype=np.float64),
        probabilities=np.stack(probabilities),
        model={"name": model.path.name, "sha256": model.info.sha256, **chain.description()},
        levels_dbfs=np.asarray(levels, dtype=np.float64),
        silent=quiet,
        invalid_samples=source.invalid_samples,
    )
