"""Batch-1 inference latency: onnxruntime on one thread vs Keras, same model, same run.

Uses the shipped model when it exists (models/genre.onnx), else a freshly built CNN of the
default size exported to a temporary folder. Needs the `train` extra (Keras baseline).

    .venv/bin/python bench/bench_inference.py [--runs 300]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from streamer.features import FeatureSpec
from streamer.model import DEFAULT_MODEL, GenreModel


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

    import keras

    from training.export import export_model
    from training.model import CNNConfig, build_cnn

    with tempfile.TemporaryDirectory() as folder:
        if DEFAULT_MODEL.is_file():
            path = DEFAULT_MODEL
            spec = GenreModel(path).spec
            keras_model = None
        else:
            spec = FeatureSpec()
            keras_model = build_cnn(
                n_mels=spec.n_mels, patch_frames=spec.patch_frames, n_classes=10,
                config=CNNConfig(),
            )  # fmt: skip
            path = Path(folder) / "genre.onnx"
            check = np.zeros((2, spec.n_mels, spec.patch_frames, 1), dtype=np.float32)
            labels = [f"g{i}" for i in range(10)]
            export_model(keras_model, path, labels=labels, spec=spec, check_inputs=check, extra={})
        model = GenreModel(path, threads=1)
        patch = np.random.default_rng(0).normal(-40, 15, (1, spec.patch_frames, spec.n_mels))
        onnx_ms = median_ms(lambda: model.predict(patch), args.runs)
        if keras_model is None:
            keras_model = build_cnn(
                n_mels=spec.n_mels, patch_frames=spec.patch_frames,
                n_classes=len(model.labels), config=CNNConfig(),
            )  # fmt: skip
        x = model.model_input(patch)
        keras_ms = median_ms(lambda: keras_model.predict_on_batch(x), max(20, args.runs // 10))
    size_mb = path.stat().st_size / 1e6 if path == DEFAULT_MODEL else float("nan")
    print(f"model: {path.name if path == DEFAULT_MODEL else 'fresh default-size CNN'}")
    print(f"onnxruntime, batch 1, 1 thread: {onnx_ms:6.2f} ms (median of {args.runs})")
    print(f"Keras predict_on_batch (baseline): {keras_ms:6.2f} ms")
    print(f"ratio Keras / onnxruntime: {keras_ms / onnx_ms:.1f}x")
    if path == DEFAULT_MODEL:
        print(f"ONNX file size: {size_mb:.2f} MB")
    keras.backend.clear_session()


if __name__ == "__main__":
    main()
