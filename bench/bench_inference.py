"""Batch-1 inference latency: onnxruntime on one thread vs Keras, same model, same run.

Uses the shipped model (models/genre.onnx) when it exists, else a fresh default-size CNN
(bench/_models.py). Needs the `train` extra (Keras baseline). Then musicnn's shipped taggers
(their timbral filters in 8 bits) against the same checkpoints converted in the run: in
float with the front end pooled first (`training.export.pool_before_affine`), and as
tf2onnx writes them (the baseline).

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
    for name, shipped_ms, float_ms, plain_ms in tagger_latencies(args.runs // 3):
        print(f"musicnn {name} tagger, batch 1, 1 thread: {shipped_ms:6.2f} ms shipped, "
              f"{float_ms:6.2f} ms in float pooled first, {plain_ms:6.2f} ms as tf2onnx "
              f"writes it (baseline): {plain_ms / shipped_ms:.2f}x "
              f"({plain_ms / float_ms:.2f}x in float)")  # fmt: skip


def tagger_latencies(runs: int) -> list[tuple[str, float, float, float]]:
    """(name, shipped ms, float pooled-first ms, tf2onnx's graph ms) per musicnn tagger,
    one patch of generated signals each call, all run as the chain runs a tagger
    (`TagModel.predict`)."""
    from streamer.analysis.tagger import TagModel, shipped_tagger_paths
    from training import musicnn
    from training.export import write_model

    patch = musicnn.parity_patches([])[0][:1]
    rows = []
    with tempfile.TemporaryDirectory(prefix="taggers-") as folder:
        for path in shipped_tagger_paths():
            shipped = TagModel(path, threads=1)
            graph = musicnn.frozen_graph(
                musicnn.package_folder() / musicnn.TAGGERS[shipped.name].folder
            )
            timed = [shipped]
            for pool_first in (True, False):
                converted = Path(folder) / ("pooled" if pool_first else "plain") / path.name
                write_model(
                    converted, musicnn.to_onnx(graph, pool_first=pool_first),
                    labels=shipped.labels, spec=shipped.spec,
                    embedding_size=shipped.info.embedding_size, extra=dict(shipped.info.extra),
                )  # fmt: skip
                timed.append(TagModel(converted, threads=1))
            shipped_ms, float_ms, plain_ms = (
                median_ms(functools.partial(tagger.predict, patch), runs) for tagger in timed
            )
            rows.append((shipped.name, shipped_ms, float_ms, plain_ms))
    return rows


if __name__ == "__main__":
    main()
