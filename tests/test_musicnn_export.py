"""musicnn's taggers as ONNX: checked against musicnn's own graph, refused when they differ,
and the shipped files are what the code makes.

One conversion (MSD, on the generated signals) serves the module; the refusals reuse its
ONNX bytes so that only the freezing and TensorFlow's reference run are repeated.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from musicnn import configuration

from streamer.analysis.model import read_model_info
from training import musicnn
from training.export import ExportMismatchError

SHIPPED = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("musicnn")
    musicnn.export_musicnn(out, models=["msd"])
    return out


@pytest.fixture(scope="module")
def patches() -> np.ndarray:
    return musicnn.parity_patches([])[0]


def test_conversion_matches_musicnn_graph_and_the_shipped_file(
    converted: Path, patches: np.ndarray
) -> None:
    onnx_path = converted / "musicnn-msd.onnx"
    assert sorted(p.name for p in converted.iterdir()) == [
        "MUSICNN-LICENSE.txt", "musicnn-msd.json", "musicnn-msd.onnx",
    ]  # fmt: skip
    info = read_model_info(onnx_path)
    assert info.labels == tuple(configuration.MSD_LABELS)
    assert info.spec == musicnn.SPEC and info.embedding_size == 200
    export = info.extra["export"]
    assert set(export["max_abs_difference"]) == {"tags", "embedding"}
    assert max(export["max_abs_difference"].values()) < 1e-4  # the float graph: converted
    assert export["parity"]["source"].startswith("generated") and export["parity"]["patches"] == 8
    assert info.extra["provenance"]["checkpoint"] == "MSD_musicnn"
    eight_bit = export["eight_bit"]  # the file: its timbral filters in 8 bits
    assert 1e-4 < eight_bit["max_abs_difference"]["tags"] <= musicnn.MAX_QUANTIZED_DIFFERENCE
    assert 0 < eight_bit["embedding_relative_change"] <= musicnn.MAX_QUANTIZED_DIFFERENCE

    # The shipped file was scaled on recordings, this one on generated signals: each is
    # within the limit of the same float graph, so of the other within twice that.
    made = musicnn.run_onnx(onnx_path.read_bytes(), patches)
    shipped = musicnn.run_onnx((SHIPPED / "musicnn-msd.onnx").read_bytes(), patches)
    np.testing.assert_allclose(made[0], shipped[0], rtol=0, atol=musicnn.MAX_QUANTIZED_DIFFERENCE)
    change = np.linalg.norm(made[1] - shipped[1]) / np.linalg.norm(shipped[1])
    assert change <= 2 * musicnn.MAX_QUANTIZED_DIFFERENCE
    # Batch normalisation in inference mode: a patch's outputs do not depend on its batch.
    alone = musicnn.run_onnx(onnx_path.read_bytes(), patches[:1])
    np.testing.assert_allclose(alone[0], made[0][:1], rtol=0, atol=1e-6)
    assert made[0].std(axis=0).max() > 0.05  # tags that vary with the sound


@pytest.mark.parametrize("case", ["tiny limit", "wrong model"])
def test_a_mismatch_refuses_and_writes_nothing(
    case: str, converted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = (converted / "musicnn-msd.onnx").read_bytes()
    if case == "wrong model":  # MTT's network in place of MSD's: same shapes, other weights
        kept = (SHIPPED / "musicnn-mtt.onnx").read_bytes()
    monkeypatch.setattr(musicnn, "to_onnx", lambda graph: kept)
    out = tmp_path / "out"
    limit = 1e-12 if case == "tiny limit" else musicnn.MAX_DIFFERENCE
    with pytest.raises(ExportMismatchError, match=r"MSD_musicnn graph.*the model was not written"):
        musicnn.export_musicnn(out, models=["msd"], max_difference=limit)
    assert not out.exists()


def test_shipped_files_carry_musicnn_tags_figures_and_licence() -> None:
    for name, labels in (("msd", configuration.MSD_LABELS), ("mtt", configuration.MTT_LABELS)):
        info = read_model_info(SHIPPED / f"musicnn-{name}.onnx")
        assert info.labels == tuple(labels)
        assert info.extra["kind"] == "tagger" and "MUSICNN-LICENSE.txt" in info.extra["licence"]
        parity = info.extra["export"]["parity"]
        assert parity["source"] == "recordings" and parity["patches"] >= 4
        assert max(info.extra["export"]["max_abs_difference"].values()) < 1e-4
        eight_bit = info.extra["export"]["eight_bit"]
        assert eight_bit["max_abs_difference"]["tags"] <= musicnn.MAX_QUANTIZED_DIFFERENCE
        assert eight_bit["embedding_relative_change"] <= musicnn.MAX_QUANTIZED_DIFFERENCE
    notice = metadata.distribution("musicnn").read_text("LICENSE.md")
    assert notice and notice.strip() in (SHIPPED / "MUSICNN-LICENSE.txt").read_text()


def test_pooling_before_the_normalisation_computes_what_the_graph_computed() -> None:
    """musicnn's front end (Conv, ReLU, BatchNormalization with scales of both signs, a
    max over frequency) reordered by `pool_before_affine`: the same outputs, the pooling
    straight after the convolution, the shipped taggers already rewritten."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from training.export import pool_before_affine

    rng = np.random.default_rng(7)
    channels = 20  # not a multiple of onnxruntime's block of 16
    gamma = rng.standard_normal(channels).astype(np.float32)
    assert (gamma < 0).sum() >= 5 and (gamma > 0).sum() >= 5
    values = {
        "w": rng.standard_normal((channels, 1, 3, 4)), "b": rng.standard_normal(channels),
        "gamma": gamma, "beta": rng.standard_normal(channels),
        "mean": rng.standard_normal(channels), "var": rng.uniform(0.5, 2.0, channels),
    }  # fmt: skip
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["z"], kernel_shape=[3, 4], pads=[1, 0] * 2),
            helper.make_node("Relu", ["z"], ["r"]),
            helper.make_node("BatchNormalization", ["r", "gamma", "beta", "mean", "var"], ["n"]),
            helper.make_node("MaxPool", ["n"], ["y"], kernel_shape=[1, 7], strides=[1, 7]),
        ],
        "front",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 12, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", channels, 12, 1])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in values.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rewritten = pool_before_affine(onnx.ModelProto.FromString(model.SerializeToString()))
    onnx.checker.check_model(rewritten)
    ops = [node.op_type for node in rewritten.graph.node]
    assert ops == ["Conv", "MaxPool", "Slice", "Mul", "Relu", "BatchNormalization"]
    x = {"x": rng.standard_normal((3, 1, 12, 10)).astype(np.float32)}
    before, after = (
        onnxruntime.InferenceSession(m.SerializeToString()).run(None, x)[0]
        for m in (model, rewritten)
    )
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-5)

    for name in ("msd", "mtt"):  # the timbral filters' pooling is in 8 bits there
        shipped = onnx.load(str(SHIPPED / f"musicnn-{name}.onnx")).graph
        made_by = {output: node.op_type for node in shipped.node for output in node.output}
        pooled = [made_by[node.input[0]] for node in shipped.node if node.op_type == "MaxPool"]
        assert sorted(pooled) == ["Conv"] * 3 + ["QLinearConv"] * 2, name


def test_the_wide_filters_in_8_bits_compute_nearly_what_the_float_graph_computed() -> None:
    """`quantize_front_end` on a front end like musicnn's after `pool_before_affine`: the
    filters wider than one column (its timbral ones) become an 8-bit convolution pooled in
    8 bits, within a few levels of the float output's range; the one-column filters (its
    temporal ones) stay exactly as they were."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from training.export import quantize_front_end

    rng = np.random.default_rng(3)
    values = {
        "wide": rng.standard_normal((32, 1, 3, 4)), "wide_bias": rng.standard_normal(32),
        "narrow": rng.standard_normal((16, 1, 5, 1)), "narrow_bias": rng.standard_normal(16),
    }  # fmt: skip
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "wide", "wide_bias"], ["a"], kernel_shape=[3, 4],
                             pads=[1, 0, 1, 0]),
            helper.make_node("MaxPool", ["a"], ["timbral"], kernel_shape=[1, 7], strides=[1, 7]),
            helper.make_node("Conv", ["x", "narrow", "narrow_bias"], ["b"], kernel_shape=[5, 1],
                             pads=[2, 0, 2, 0]),
            helper.make_node("MaxPool", ["b"], ["temporal"], kernel_shape=[1, 10],
                             strides=[1, 10]),
        ],
        "front",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 12, 10])],
        [helper.make_tensor_value_info("timbral", TensorProto.FLOAT, ["batch", 32, 12, 1]),
         helper.make_tensor_value_info("temporal", TensorProto.FLOAT, ["batch", 16, 12, 1])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in values.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    scaled_on = rng.standard_normal((16, 1, 12, 10)).astype(np.float32)
    rewritten = quantize_front_end(onnx.ModelProto.FromString(model.SerializeToString()), scaled_on)
    onnx.checker.check_model(rewritten)
    ops = [node.op_type for node in rewritten.graph.node]
    assert ops == ["Clip", "QuantizeLinear", "QLinearConv", "MaxPool", "DequantizeLinear",
                   "Conv", "MaxPool"]  # fmt: skip
    x = {"x": np.clip(rng.standard_normal((8, 1, 12, 10)), -2, 2).astype(np.float32)}
    (timbral, temporal), (timbral_8, temporal_8) = (
        onnxruntime.InferenceSession(m.SerializeToString()).run(None, x) for m in (model, rewritten)
    )
    np.testing.assert_array_equal(temporal_8, temporal)
    spread = timbral.max() - timbral.min()
    levels = np.abs(timbral_8 - timbral) / (spread / 255)  # the output's 8-bit steps
    assert 0 < levels.mean() < 0.85 and levels.max() < 5  # a bias 5 % off: 0.97 on average
