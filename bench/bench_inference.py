"""Batch-1 inference latency: onnxruntime on one thread vs Keras, same model, same run.

Uses the shipped model (models/genre.onnx) when it exists, else a fresh default-size CNN
(bench/_models.py). Needs the `train` extra (Keras baseline).

    .venv/bin/python bench/bench_inference.py [--runs 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from streamer.analysis.model import GenreModel

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _models import bench_model, keras_twin


def median_ms(call, runs: int) -> float:
    for _ in range(10):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    with bench_model() as chosen:
        model = GenreModel(chosen.path, threads=1)
        spec = model.spec
        patch = np.random.default_rng(0).normal(-40, 15, (1, spec.patch_frames, spec.n_mels))
        onnx_ms = median_ms(lambda: model.predict(patch), args.runs)
        twin = keras_twin(model)
        x = model.model_input(patch)
        keras_ms = median_ms(lambda: twin.predict_on_batch(x), max(20, args.runs // 10))
        size_mb = chosen.path.stat().st_size / 1e6
    print(f"model: {chosen.description}")
    print(f"onnxruntime, batch 1, 1 thread: {onnx_ms:6.2f} ms (median of {args.runs})")
    print(f"Keras predict_on_batch, same architecture (baseline): {keras_ms:6.2f} ms")
    print(f"ratio Keras / onnxruntime: {keras_ms / onnx_ms:.1f}x")
    print(f"ONNX file size: {size_mb:.2f} MB")


if __name__ == "__main__":
    main()
