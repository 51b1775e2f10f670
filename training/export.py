"""Export a trained Keras model to ONNX, checked against Keras, with its metadata.

The ONNX file is written only if onnxruntime reproduces Keras on the check batch within
`MAX_DIFFERENCE`; the metadata (labels, FeatureSpec, metrics, provenance, sha256 of the ONNX
bytes) is written beside it, and the runtime refuses the pair if either is altered.
`check_parity` and `write_model` serve every converted model (musicnn's taggers too).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamer.analysis.features import FeatureSpec
from streamer.analysis.model import (
    EMBEDDING,
    INPUT_NAME,
    PROBABILITIES,
    ModelInfo,
    file_sha256,
    metadata_path,
)
from streamer.errors import StreamerError
from streamer.files import write_atomically

ONNX_OPSET = 17  # tf2onnx 1.17 supports opsets up to 18 (shared/NOTES.md)
MAX_DIFFERENCE = 1e-4


def constants_and_users(graph: Any) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """An ONNX graph's initializers by name, and the nodes that read each tensor."""
    constants = {init.name: init for init in graph.initializer}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return constants, users


def replace_nodes(graph: Any, nodes: list[Any], *, unused: set[str]) -> None:
    """Give `graph` the `nodes` (in order), and drop the initializers of `unused` that none
    of them reads any more."""
    del graph.node[:]
    graph.node.extend(nodes)
    dropped = unused - {name for node in nodes for name in node.input}
    kept = [init for init in graph.initializer if init.name not in dropped]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def affine_as_depthwise(proto: Any) -> Any:
    """`proto` (an ONNX ModelProto, changed in place and returned) with every per-channel
    affine step, a ``Mul`` by a ``(1, C, 1, 1)`` constant followed by an ``Add`` of one (a
    BatchNormalization after a ReLU, as tf2onnx writes it), as one depthwise 1x1 ``Conv``
    with bias.

    Why: onnxruntime runs the convolutions in its blocked NCHWc layout, which a depthwise
    convolution keeps, while an ``Add`` of a per-channel constant has each activation
    converted out of it and back. For the seed CNN that was a third of its time per patch
    (1.01 -> 0.66 ms at a batch of 8 on this machine), with the outputs equal bit for bit.
    """
    from onnx import helper, numpy_helper

    graph = proto.graph
    constants, users = constants_and_users(graph)

    def channel_constant(node: Any) -> np.ndarray | None:
        if len(node.input) != 2 or node.input[1] not in constants:
            return None
        value = numpy_helper.to_array(constants[node.input[1]])
        shape = value.shape
        return value if len(shape) == 4 and shape[0] == shape[2] == shape[3] == 1 else None

    nodes, replaced, unused = [], set(), set()
    for node in graph.node:
        if id(node) in replaced:
            continue
        following = users.get(node.output[0], []) if node.op_type == "Mul" else []
        add = following[0] if len(following) == 1 and following[0].op_type == "Add" else None
        scale = channel_constant(node)
        shift = None if add is None else channel_constant(add)
        if scale is None or shift is None or add is None or scale.shape != shift.shape:
            nodes.append(node)
            continue
        channels = scale.shape[1]
        weight = numpy_helper.from_array(
            scale.reshape(channels, 1, 1, 1).astype(np.float32), node.name + "/depthwise_scale"
        )
        bias = numpy_helper.from_array(
            shift.reshape(channels).astype(np.float32), node.name + "/depthwise_shift"
        )
        graph.initializer.extend([weight, bias])
        nodes.append(
            helper.make_node(
                "Conv", [node.input[0], weight.name, bias.name], [add.output[0]],
                name=node.name + "/depthwise", group=channels, kernel_shape=[1, 1],
            )
        )  # fmt: skip
        replaced.add(id(add))
        unused.update((node.input[1], add.input[1]))
    replace_nodes(graph, nodes, unused=unused)
    return proto


NCHWC_BLOCK = 16
"""onnxruntime's blocked layout on this CPU (AVX-512): channels in multiples of it stay in it."""


def pool_before_affine(proto: Any) -> Any:
    """`proto` (an ONNX ModelProto, changed in place and returned) with every ``Conv ->
    Relu -> BatchNormalization -> MaxPool`` (musicnn's front end: a batch normalisation
    after the ReLU, then a max over the frequency axis) reordered so that the pooling comes
    first and the ReLU and normalisation run on the pooled, 30 to 96 times smaller, tensor.

    Exact: a per-channel affine map ``a x + b`` and the ReLU are monotonic, so the max of
    their outputs is their output of the max where ``a > 0``, and of the min where ``a <
    0``. Those channels' filters and bias are negated (a max of ``-z`` is minus the min of
    ``z``) and a sign restores them after the pooling: ``relu(s * maxpool(s * z))`` with
    ``s = sign(a)``. The filters are padded with zeros to a multiple of `NCHWC_BLOCK` and
    the pooled channels sliced back, so that onnxruntime pools in its blocked layout rather
    than converting the whole activation out of it. On musicnn's taggers: 1.3x faster per
    patch on one core (bench/bench_inference.py), outputs within 3e-6 of the graph before.
    """
    from onnx import helper, numpy_helper

    graph = proto.graph
    constants, users = constants_and_users(graph)

    def only_user(node: Any, op_type: str) -> Any:
        following = users.get(node.output[0], [])
        return following[0] if len(following) == 1 and following[0].op_type == op_type else None

    def attributes(node: Any) -> dict[str, Any]:
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def constant(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    nodes = []
    replaced: set[int] = set()
    unused: set[str] = set()  # the original filters and biases
    for conv in graph.node:
        if id(conv) in replaced:
            continue
        relu = only_user(conv, "Relu") if conv.op_type == "Conv" else None
        norm = relu and only_user(relu, "BatchNormalization")
        pool = norm and only_user(norm, "MaxPool")
        weights = [constants.get(name) for name in conv.input[1:]]
        # a pooling with no pads, dilations or ceil mode, and a convolution of constants
        plain_pool = pool is not None and not set(attributes(pool)) - {"kernel_shape", "strides"}
        if not plain_pool or len(weights) != 2 or None in weights:
            nodes.append(conv)
            continue
        weight, bias = (numpy_helper.to_array(w) for w in weights)
        gamma = numpy_helper.to_array(constants[norm.input[1]])
        sign = np.where(gamma < 0, -1.0, 1.0).astype(np.float32)  # of a: gamma / sqrt(var + eps)
        channels = len(sign)
        padded = -(-channels // NCHWC_BLOCK) * NCHWC_BLOCK
        signed_weight = np.zeros((padded, *weight.shape[1:]), dtype=np.float32)
        signed_weight[:channels] = weight * sign.reshape(-1, *[1] * (weight.ndim - 1))
        signed_bias = np.zeros(padded, dtype=np.float32)
        signed_bias[:channels] = bias * sign
        name = conv.name + "/pooled_first"
        nodes += [
            helper.make_node(
                "Conv",
                [conv.input[0], constant(name + "/weight", signed_weight),
                 constant(name + "/bias", signed_bias)],
                [name + "/signed"], name=name + "/conv", **attributes(conv),
            ),
            helper.make_node(
                "MaxPool", [name + "/signed"], [name + "/max"], name=name + "/max",
                **attributes(pool),
            ),
            helper.make_node(
                "Slice",
                [name + "/max", constant(name + "/from", np.array([0])),
                 constant(name + "/to", np.array([channels])),
                 constant(name + "/axis", np.array([1]))],
                [name + "/sliced"], name=name + "/slice",
            ),
            helper.make_node(
                "Mul", [name + "/sliced", constant(name + "/sign", sign.reshape(1, -1, 1, 1))],
                [name + "/unsigned"], name=name + "/unsign",
            ),
            helper.make_node("Relu", [name + "/unsigned"], [name + "/relu"], name=name + "/relu"),
            helper.make_node(
                "BatchNormalization", [name + "/relu", *norm.input[1:]], [pool.output[0]],
                name=name + "/norm", **attributes(norm),
            ),
        ]  # fmt: skip
        replaced.update((id(relu), id(norm), id(pool)))
        unused.update(conv.input[1:])
    replace_nodes(graph, nodes, unused=unused)
    return proto


class ExportMismatchError(StreamerError):
    """onnxruntime and the original model disagree: the ONNX file would not be that model."""


def check_parity(
    reference: Sequence[np.ndarray],
    converted: Sequence[np.ndarray],
    *,
    names: Sequence[str],
    against: str,
    limit: float = MAX_DIFFERENCE,
) -> dict[str, float]:
    """The largest absolute difference of each output (by `names`) between the `reference`
    outputs and onnxruntime's `converted` ones; raise `ExportMismatchError` above `limit`."""
    differences = {
        name: float(np.max(np.abs(np.asarray(r, dtype=np.float64) - c)))
        for name, r, c in zip(names, reference, converted, strict=True)
    }
    worst = max(differences, key=lambda name: differences[name])
    if not differences[worst] <= limit:  # NaN fails too
        raise ExportMismatchError(
            f"onnxruntime differs from {against} by {differences[worst]:.3g} on {worst!r} "
            f"(limit {limit:g}): the model was not written"
        )
    return differences


def write_model(
    onnx_path: Path,
    onnx_bytes: bytes,
    *,
    labels: Sequence[str],
    spec: FeatureSpec,
    embedding_size: int,
    extra: dict[str, Any],
) -> None:
    """Write the ONNX bytes, then their metadata (with the sha256 of what was written)."""
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(onnx_path, onnx_bytes)
    info = ModelInfo(
        labels=tuple(labels),
        spec=spec,
        embedding_size=embedding_size,
        sha256=file_sha256(onnx_path),
        extra=extra,
    )
    text = json.dumps(info.to_dict(), indent=2) + "\n"
    write_atomically(metadata_path(onnx_path), text.encode())


def keras_to_onnx(model: Any, spec: FeatureSpec) -> Any:
    """tf2onnx's conversion of a genre CNN (input ``(n, n_mels, patch_frames, 1)``), as it
    writes it: an ONNX ModelProto."""
    import tensorflow as tf
    import tf2onnx

    signature = (
        tf.TensorSpec((None, spec.n_mels, spec.patch_frames, 1), tf.float32, name=INPUT_NAME),
    )
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=ONNX_OPSET)
    return proto


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

    onnx_bytes = affine_as_depthwise(keras_to_onnx(model, spec)).SerializeToString()
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    check_inputs = np.asarray(check_inputs, dtype=np.float32)
    onnx_outputs = session.run(None, {INPUT_NAME: check_inputs})
    keras_outputs = model.predict_on_batch(check_inputs)
    differences = check_parity(
        keras_outputs, onnx_outputs, names=[PROBABILITIES, EMBEDDING], against="Keras"
    )
    difference = max(differences.values())
    write_model(
        Path(onnx_path),
        onnx_bytes,
        labels=labels,
        spec=spec,
        embedding_size=int(onnx_outputs[1].shape[-1]),
        extra={**extra, "export": {"opset": ONNX_OPSET, "max_abs_difference": difference}},
    )
    return difference
