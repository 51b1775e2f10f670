"""Cost of live features: the incremental extractor vs recomputing the window each hop.

The live engine needs a 3 s log-mel window every 0.5 s. The naive way recomputes the whole
window with librosa at every hop; the streaming extractor computes each frame once, on one
BLAS thread as the live path runs it. Both run here on the same audio; the ratio is printed.

    .venv/bin/python bench/bench_features.py [--seconds 120]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from streamer.analysis.features import (
    BatchExtractor,
    FeatureSpec,
    StreamingExtractor,
    live_thread_limits,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="audio to process")
    parser.add_argument("--hop", type=float, default=0.5, help="seconds between two windows")
    parser.add_argument("--window", type=float, default=3.0, help="window length in seconds")
    args = parser.parse_args()

    spec = FeatureSpec()
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(int(args.seconds * spec.sample_rate))).astype(np.float32)
    hop = int(args.hop * spec.sample_rate)
    window = int(args.window * spec.sample_rate)
    batch = BatchExtractor(spec)

    started = time.perf_counter()
    batch.logmel(y[:window])  # librosa's first call pays imports and JIT: report it apart
    first_call = time.perf_counter() - started

    started = time.perf_counter()
    stream = StreamingExtractor(spec)
    setup = time.perf_counter() - started

    started = time.perf_counter()
    with live_thread_limits():  # as `streamer listen` runs it
        for start in range(0, y.size - hop + 1, hop):
            stream.push(y[start : start + hop])
    streaming = time.perf_counter() - started

    started = time.perf_counter()
    for end in range(window, y.size + 1, hop):
        batch.logmel(y[end - window : end])
    naive = time.perf_counter() - started

    print(f"audio: {args.seconds:g} s, hop {args.hop:g} s, window {args.window:g} s")
    print(f"librosa first call (imports, JIT): {first_call:.2f} s; streaming set-up {setup:.3f} s")
    print(f"streaming extractor: {1e3 * streaming / args.seconds:.2f} ms per second of audio")
    print(f"librosa window per hop (baseline): {1e3 * naive / args.seconds:.2f} ms per second")
    print(f"ratio baseline / streaming: {naive / streaming:.1f}x")


if __name__ == "__main__":
    main()
