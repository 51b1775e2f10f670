"""The genre model at run time: an ONNX file plus the metadata JSON that describes it.

The metadata carries the labels, the exact `FeatureSpec` the model was trained on and the
sha256 of the ONNX file. The runtime refuses a model whose metadata is missing, corrupt or
does not match the file, because a model fed features it was not trained on gives
confident nonsense rather than an error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamer.analysis.calibration import Calibration
from streamer.analysis.features import FeatureSpec
from streamer.errors import StreamerError

METADATA_FORMAT = "streamer-model"
METADATA_VERSION = 1
INPUT_NAME = "mel"
PROBABILITIES = "probabilities"
EMBEDDING = "embedding"
INFERENCE_BATCH = 1
"""Patches per onnxruntime call of one stream. Larger batches are slower per patch on one
thread: with the shipped model, 3.1 ms at 60 patches against 1.5-1.7 ms at 1 to 4
(measured on a 2-core EPYC; 60 patches' first-layer activations, 64 MB, do not stay in
cache). At 1, too, a recording's patches go through exactly the computation of the live
path.
"""
MONITOR_BATCH = 8
"""Patches per call when many streams are due at once (`streamer monitor`): 0.62 ms a
patch at 4 against 0.66 at 1, but 0.85-0.98 at 16 to 32 (measured on this 2-core
machine); each patch comes out bit for bit as alone (tests/test_inference.py)."""


def shipped_model_path() -> Path:
    """The default model: inside the installed package (``streamer/models/``, where a wheel
    puts the repository's top-level ``models/`` folder, see pyproject.toml), or in that
    folder itself when streamer runs from a checkout (an editable install)."""
    package = Path(__file__).resolve().parents[1]  # streamer/
    installed = package / "models" / "genre.onnx"
    return installed if installed.is_file() else package.parent / "models" / "genre.onnx"


DEFAULT_MODEL = shipped_model_path()


def metadata_path(onnx_path: str | Path) -> Path:
    """Where the metadata of `onnx_path` lives: the same name with ``.json``."""
    return Path(onnx_path).with_suffix(".json")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    """The checked metadata of a model."""

    labels: tuple[str, ...]
    spec: FeatureSpec
    embedding_size: int
    sha256: str
    extra: dict[str, Any]

    @property
    def calibration(self) -> Calibration:
        """The calibration of the model's own decision (its ``"calibration"``; none without)."""
        return Calibration.from_metadata(self.extra.get("calibration"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": METADATA_FORMAT,
            "format_version": METADATA_VERSION,
            "labels": list(self.labels),
            "feature_spec": self.spec.to_dict(),
            "embedding_size": self.embedding_size,
            "onnx_sha256": self.sha256,
            **self.extra,
        }


def read_model_info(onnx_path: str | Path) -> ModelInfo:
    """Load and check the metadata beside `onnx_path`; raise a one-line error if it is wrong."""
    onnx_path = Path(onnx_path)
    meta_path = metadata_path(onnx_path)
    retrain = "re-export the model with `streamer-train export`"
    if not onnx_path.is_file():
        raise StreamerError(f"{onnx_path}: no such model file: give --model PATH to an .onnx file")
    if not meta_path.is_file():
        raise StreamerError(f"{onnx_path}: its metadata {meta_path.name} is missing: {retrain}")
    try:
        data = json.loads(meta_path.read_text())
        if data.get("format") != METADATA_FORMAT or data.get("format_version") != 1:
            raise ValueError(f"not {METADATA_FORMAT} metadata version {METADATA_VERSION}")
        labels = tuple(str(label) for label in data["labels"])
        spec = FeatureSpec.from_dict(data["feature_spec"])
        embedding_size = int(data["embedding_size"])
        sha256 = str(data["onnx_sha256"])
        Calibration.from_metadata(data.get("calibration"))  # a bad one fails here, at load
    except (ValueError, KeyError, TypeError) as error:
        raise StreamerError(f"{meta_path}: invalid model metadata ({error}): {retrain}") from None
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise StreamerError(f"{meta_path}: labels must be two or more distinct names: {retrain}")
    if file_sha256(onnx_path) != sha256:
        raise StreamerError(
            f"{onnx_path}: the file does not match its metadata (sha256 differs): "
            f"it was changed or corrupted; {retrain}"
        )
    known = {"format", "format_version", "labels", "feature_spec", "embedding_size", "onnx_sha256"}
    extra = {key: value for key, value in data.items() if key not in known}
    return ModelInfo(labels, spec, embedding_size, sha256, extra)


def model_input(logmel_patches: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Normalised model input ``(n, n_mels, patch_frames, 1)`` float32 from time-major dB
    patches ``(n, patch_frames, n_mels)`` as the extractors emit them; training and the
    runtime both use it, so the model sees the same numbers in both."""
    normalized = spec.normalize(np.asarray(logmel_patches, dtype=np.float64))
    return np.ascontiguousarray(normalized.transpose(0, 2, 1)[..., None], dtype=np.float32)


class OnnxModel:
    """An ONNX file with its checked metadata and an onnxruntime session on the CPU.

    Parameters
    ----------
    onnx_path : str or Path
        The model; its metadata JSON must sit beside it.
    threads : int
        onnxruntime intra-op threads. One is fastest for batch-1 live inference on a small
        CNN (more threads cost synchronisation and compete with capture).
    """

    def __init__(self, onnx_path: str | Path, *, threads: int = 1) -> None:
        import onnxruntime

        self.path = Path(onnx_path)
        self.info = read_model_info(self.path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own untyped errors
            reason = str(error).splitlines()[0]
            raise StreamerError(f"{self.path}: onnxruntime cannot load it ({reason})") from None

    def run_batches(
        self, input_name: str, inputs: np.ndarray, output_names: list[str], *, batch: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The two outputs `output_names` for `inputs`, in calls of at most `batch` rows."""
        chunks = [inputs[start : start + batch] for start in range(0, len(inputs), batch)]
        outputs = [self._session.run(output_names, {input_name: chunk}) for chunk in chunks]
        if not outputs:
            outputs = [self._session.run(output_names, {input_name: inputs})]
        first = np.concatenate([np.asarray(out[0]) for out in outputs])
        second = np.concatenate([np.asarray(out[1]) for out in outputs])
        return first, second

    @property
    def labels(self) -> tuple[str, ...]:
        return self.info.labels

    @property
    def spec(self) -> FeatureSpec:
        return self.info.spec


class GenreModel(OnnxModel):
    """The genre CNN: class probabilities and an embedding of log-mel patches."""

    batch_size = MONITOR_BATCH

    def __init__(self, onnx_path: str | Path = DEFAULT_MODEL, *, threads: int = 1) -> None:
        super().__init__(onnx_path, threads=threads)
        self._check_signature()

    @property
    def calibration(self) -> Calibration:
        """The calibration of the CNN-alone decision (`ModelInfo.calibration`)."""
        return self.info.calibration

    def _check_signature(self) -> None:
        spec = self.spec
        inputs = {i.name: i.shape for i in self._session.get_inputs()}
        outputs = {o.name: o.shape for o in self._session.get_outputs()}
        expected_input = [spec.n_mels, spec.patch_frames, 1]
        problems = []
        if list(inputs.get(INPUT_NAME, [None])[1:]) != expected_input:
            problems.append(f"input {INPUT_NAME!r} should be (batch, {expected_input})")
        if outputs.get(PROBABILITIES, [None, None])[-1] != len(self.labels):
            problems.append(f"output {PROBABILITIES!r} should have {len(self.labels)} classes")
        if outputs.get(EMBEDDING, [None, None])[-1] != self.info.embedding_size:
            problems.append(f"output {EMBEDDING!r} should have {self.info.embedding_size} values")
        if problems:
            raise StreamerError(
                f"{self.path}: the model does not match its metadata ({'; '.join(problems)})"
            )

    def model_input(self, logmel_patches: np.ndarray) -> np.ndarray:
        """This model's input from time-major patches (see `model_input`)."""
        return model_input(logmel_patches, self.spec)

    def predict(
        self, logmel_patches: np.ndarray, *, batch: int = INFERENCE_BATCH
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities ``(n, n_labels)`` and embeddings ``(n, embedding_size)``, in
        onnxruntime calls of at most `batch` patches."""
        return self.run_batches(
            INPUT_NAME, self.model_input(logmel_patches), [PROBABILITIES, EMBEDDING], batch=batch
        )
