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


INPUT_LEVELS = 128
"""Levels of the input of `quantize_front_end`'s convolutions: 7 bits, so that on a CPU
without VNNI, where onnxruntime adds the products of unsigned 8-bit inputs and signed 8-bit
weights in pairs in 16 bits, no pair overflows (2 x 127 x 127 < 32768; with 255 levels it
could). On musicnn's taggers the outputs move as little as with 256 levels."""


def quantize_front_end(proto: Any, patches: np.ndarray) -> Any:
    """`proto` (an ONNX ModelProto after `pool_before_affine`, changed in place and
    returned) with each ``Conv -> MaxPool`` whose filters span more than one column of the
    input (musicnn's timbral filters: 7 frames by 38 and by 67 mel bands) run in 8 bits,
    ``QuantizeLinear -> QLinearConv -> MaxPool -> DequantizeLinear``, scaled on `patches`
    (the model's input, a batch of them).

    Not exact: the input these filters read is rounded to `INPUT_LEVELS` levels of its
    range on `patches`, each filter's weights to 255 levels of its largest (signed, per
    filter), and the pooled output to 256 levels of its range. Only the pooled maximum over
    frequency leaves the block, so rounding the convolution's output to the pooled range is
    all the clipping there is below it. On musicnn's taggers onnxruntime runs those two
    convolutions in integer arithmetic (VNNI here) about 2.4 times faster than in float:
    a tagger's patch in half the time (bench/bench_inference.py). Filters one column wide
    (musicnn's temporal ones, n frames by 1 band) were 4 to 6 times slower in 8 bits and
    stay in float; so would a signed 8-bit input (s8s8: 9 times slower). How far the
    outputs move is checked on real patches by `training.musicnn`.
    """
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    constants, users = constants_and_users(graph)
    blocks = []
    for conv in graph.node:
        following = users.get(conv.output[0], [])
        weights = [constants.get(name) for name in conv.input[1:]]
        if conv.op_type != "Conv" or len(following) != 1 or following[0].op_type != "MaxPool":
            continue
        if len(weights) == 2 and None not in weights and weights[0].dims[3] > 1:
            blocks.append((conv, following[0]))
    if len({conv.input[0] for conv, _ in blocks}) != 1:
        raise ValueError("quantize_front_end: no wide filters reading one input to quantize")
    source = blocks[0][0].input[0]

    probe = type(proto).FromString(proto.SerializeToString())  # the ranges, in float
    watched = [source, *(pool.output[0] for _, pool in blocks)]
    probe.graph.output.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in watched
    )
    session = onnxruntime.InferenceSession(
        probe.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    runs = [
        session.run(watched, {graph.input[0].name: patches[i : i + 64]})
        for i in range(0, len(patches), 64)
    ]
    ranges = {
        name: (min(0.0, min(float(r[k].min()) for r in runs)), max(float(r[k].max()) for r in runs))
        for k, name in enumerate(watched)
    }

    def constant(name: str, value: np.ndarray) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def scale(name: str, levels: int = 256) -> tuple[np.float32, np.uint8]:
        low, high = ranges[name]
        step = np.float32(max(high - low, 1e-12) / (levels - 1))
        return step, np.uint8(np.clip(np.round(-low / step), 0, levels - 1))

    input_step, input_zero = scale(source, INPUT_LEVELS)
    quantized = source + "/uint8"
    step_name = constant(quantized + "/scale", input_step)
    zero_name = constant(quantized + "/zero", input_zero)
    bounds = [  # the levels' range, so that louder input than `patches` stays in 7 bits
        constant(quantized + "/" + end, np.float32(input_step * (level - int(input_zero))))
        for end, level in (("low", 0), ("high", INPUT_LEVELS - 1))
    ]
    pools = {id(pool): conv for conv, pool in blocks}
    nodes, unused = [], set()
    for node in graph.node:
        if node is blocks[0][0]:
            nodes += [
                helper.make_node("Clip", [source, *bounds], [quantized + "/clipped"],
                                 name=quantized + "/clip"),
                helper.make_node("QuantizeLinear", [quantized + "/clipped", step_name, zero_name],
                                 [quantized], name=quantized),
            ]  # fmt: skip
        if any(node is conv for conv, _ in blocks):
            continue
        if id(node) not in pools:
            nodes.append(node)
            continue
        conv, pool = pools[id(node)], node
        weight, bias = (numpy_helper.to_array(constants[n]) for n in conv.input[1:])
        filters = weight.shape[0]
        largest = np.abs(weight.reshape(filters, -1)).max(axis=1)
        # 255 levels of the largest weight, coarser where the bias would overflow 32 bits
        weight_step = np.maximum(largest / 127, np.abs(bias) / (input_step * 2.0**30))
        weight_step = np.where(weight_step > 0, weight_step, 1.0).astype(np.float32)
        output_step, output_zero = scale(pool.output[0])
        integers = np.round(weight / weight_step.reshape(-1, *[1] * (weight.ndim - 1)))
        name = conv.name + "/int8"
        conv_inputs = [
            quantized, step_name, zero_name,
            constant(name + "/weight", integers.astype(np.int8)),
            constant(name + "/weight_scale", weight_step),
            constant(name + "/weight_zero", np.zeros(filters, np.int8)),
            constant(name + "/output_scale", output_step),
            constant(name + "/output_zero", output_zero),
            constant(name + "/bias", np.round(bias / (input_step * weight_step)).astype(np.int32)),
        ]  # fmt: skip
        attributes = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        nodes += [
            helper.make_node("QLinearConv", conv_inputs, [name + "/conv"], name=name + "/conv",
                             **attributes),
            helper.make_node("MaxPool", [name + "/conv"], [name + "/max"], name=name + "/max",
                             **{a.name: helper.get_attribute_value(a) for a in pool.attribute}),
            helper.make_node("DequantizeLinear", [name + "/max", conv_inputs[6], conv_inputs[7]],
                             [pool.output[0]], name=name + "/float"),
        ]  # fmt: skip
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
