"""The model the benchmarks run: the shipped one if it exists, else a fresh default-size CNN.

The fresh CNN has random weights (timing does not depend on them) and the architecture of
the shipped model (filters 16-32-32-64); it is exported with `export_model` to a temporary
folder that lives as long as the context. Exporting it needs the `train` extra.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamer.analysis.features import FeatureSpec
from streamer.analysis.model import DEFAULT_MODEL, GenreModel

BENCH_CNN_FILTERS = (16, 32, 32, 64)
BENCH_CLASSES = 10


@dataclass(frozen=True)
class BenchModel:
    """An ONNX model with its metadata, and what it is, for the report."""

    path: Path
    description: str
    shipped: bool


def cnn_config(model: GenreModel) -> Any:
    """The `CNNConfig` the model was trained with (from its metadata), else the bench one."""
    from training.model import CNNConfig

    training = model.info.extra.get("training", {})
    cnn = training.get("config", {}).get("cnn") if isinstance(training, dict) else None
    if not isinstance(cnn, dict):
        return CNNConfig(filters=BENCH_CNN_FILTERS)
    return CNNConfig(
        filters=tuple(cnn.get("filters", BENCH_CNN_FILTERS)),
        embedding_size=int(cnn.get("embedding_size", CNNConfig().embedding_size)),
    )


def keras_twin(model: GenreModel) -> Any:
    """A Keras model with the architecture of `model` (random weights): the naive baseline."""
    from training.model import build_cnn

    spec = model.spec
    return build_cnn(
        n_mels=spec.n_mels,
        patch_frames=spec.patch_frames,
        n_classes=len(model.labels),
        config=cnn_config(model),
    )


@contextmanager
def bench_model() -> Iterator[BenchModel]:
    """Yield models/genre.onnx if it exists, else a fresh default-size CNN exported to a
    temporary folder (removed afterwards)."""
    if DEFAULT_MODEL.is_file() and DEFAULT_MODEL.with_suffix(".json").is_file():
        yield BenchModel(DEFAULT_MODEL, f"shipped model {DEFAULT_MODEL.name}", shipped=True)
        return
    import keras

    from training.export import export_model
    from training.model import CNNConfig, build_cnn

    keras.utils.set_random_seed(0)
    spec = FeatureSpec()
    # Flat normalisation statistics, as a fitted spec would carry: the runtime path is the same.
    spec = spec.with_normalization(np.full(spec.n_mels, -50.0), np.full(spec.n_mels, 20.0))
    network = build_cnn(
        n_mels=spec.n_mels,
        patch_frames=spec.patch_frames,
        n_classes=BENCH_CLASSES,
        config=CNNConfig(filters=BENCH_CNN_FILTERS),
    )
    check = np.random.default_rng(0).standard_normal((2, spec.n_mels, spec.patch_frames, 1))
    labels = [f"genre{i}" for i in range(BENCH_CLASSES)]
    with tempfile.TemporaryDirectory(prefix="streamer-bench-") as folder:
        path = Path(folder) / "genre.onnx"
        export_model(network, path, labels=labels, spec=spec, check_inputs=check, extra={})
        filters = "-".join(map(str, BENCH_CNN_FILTERS))
        yield BenchModel(path, f"fresh CNN {filters}, random weights", shipped=False)
