"""Batch-1 inference latency: onnxruntime on one thread vs Keras, same model, same run.

Uses the shipped model (models/genre.onnx) when it exists, else a fresh default-size CNN
(bench/_models.py). Needs the `train` extra (Keras baseline). Then musicnn's shipped taggers
against the same checkpoints as tf2onnx writes them, converted in the run (the baseline of
`training.export.pool_before_affine`).

    .venv/bin/python bench/bench_inference.py [--runs 300]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
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
    for name, shipped_ms, plain_ms in tagger_latencies(args.runs // 3):
        print(f"musicnn {name} tagger, batch 1, 1 thread: {shipped_ms:6.2f} ms shipped, "
              f"{plain_ms:6.2f} ms as tf2onnx writes it (baseline): "
              f"{plain_ms / shipped_ms:.2f}x")  # fmt: skip


def tagger_latencies(runs: int) -> list[tuple[str, float, float]]:
    """(name, shipped ms, tf2onnx's graph ms) per musicnn tagger, one patch of generated
    signals each call, both run as the chain runs a tagger (`TagModel.predict`)."""
    from streamer.analysis.tagger import TagModel, shipped_tagger_paths
    from training import musicnn
    from training.export import write_model

    patch = musicnn.parity_patches([])[0][:1]
    rows = []
    with tempfile.TemporaryDirectory(prefix="taggers-") as folder:
        for path in shipped_tagger_paths():
            shipped = TagModel(path, threads=1)
            checkpoint = musicnn.package_folder() / musicnn.TAGGERS[shipped.name].folder
            plain_path = Path(folder) / path.name
            write_model(
                plain_path, musicnn.to_onnx(musicnn.frozen_graph(checkpoint), pool_first=False),
                labels=shipped.labels, spec=shipped.spec,
                embedding_size=shipped.info.embedding_size, extra=dict(shipped.info.extra),
            )  # fmt: skip
            plain = TagModel(plain_path, threads=1)
            shipped_ms = median_ms(functools.partial(shipped.predict, patch), runs)
            plain_ms = median_ms(functools.partial(plain.predict, patch), runs)
            rows.append((shipped.name, shipped_ms, plain_ms))
    return rows


if __name__ == "__main__":
    main()
