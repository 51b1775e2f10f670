"""Export a trained Keras model to ONNX, checked against Keras, with its metadata.

The ONNX file is written only if onnxruntime reproduces Keras on the check batch within
`MAX_DIFFERENCE`; the metadata (labels, FeatureSpec, metrics, provenance, sha256 of the ONNX
bytes) is written beside it, and the runtime refuses the pair if either is altered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from streamer.analysis.features import FeatureSpec
from streamer.analysis.model import INPUT_NAME, ModelInfo, file_sha256, metadata_path
from streamer.files import write_atomically

ONNX_OPSET = 17  # tf2onnx 1.17 supports opsets up to 18 (shared/NOTES.md)
MAX_DIFFERENCE = 1e-4


class ExportMismatchError(RuntimeError):
    """onnxruntime and Keras disagree: the ONNX file would not be the trained model."""


def export_model(
    model: Any,
    onnx_path: str | Path,
    *,
    labels: list[str],
    spec: FeatureSpec,
    check_inputs: np.ndarray,
    extra: dict[str, Any],
) -> float:
    """Convert `model` (outputs: probabilities, embedding), verify it, write ONNX + JSON.

    Returns the largest absolute difference between Keras and onnxruntime over both outputs
    on `check_inputs` (shape ``(n, n_mels, patch_frames, 1)``).
    """
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    signature = (
        tf.TensorSpec((None, spec.n_mels, spec.patch_frames, 1), tf.float32, name=INPUT_NAME),
    )
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=ONNX_OPSET)
    onnx_bytes = proto.SerializeToString()
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    check_inputs = np.asarray(check_inputs, dtype=np.float32)
    onnx_outputs = session.run(None, {INPUT_NAME: check_inputs})
    keras_outputs = model.predict_on_batch(check_inputs)
    difference = max(
        float(np.max(np.abs(np.asarray(k) - o)))
        for k, o in zip(keras_outputs, onnx_outputs, strict=True)
    )
    if not difference <= MAX_DIFFERENCE:
        raise ExportMismatchError(
            f"onnxruntime differs from Keras by {difference:.3g} (limit {MAX_DIFFERENCE}): "
            "the model was not written"
        )
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(onnx_path, onnx_bytes)
    info = ModelInfo(
        labels=tuple(labels),
        spec=spec,
        embedding_size=int(onnx_outputs[1].shape[-1]),
        sha256=file_sha256(onnx_path),
        extra={**extra, "export": {"opset": ONNX_OPSET, "max_abs_difference": difference}},
    )
    text = json.dumps(info.to_dict(), indent=2) + "\n"
    write_atomically(metadata_path(onnx_path), text.encode())
    return difference
