"""Training end to end on generated audio: fit, evaluate, export, load in the runtime.

The `trained` fixture (conftest.py) trains a tiny CNN on three generated "genres" with the
bad files a real dataset folder holds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from streamer.analysis.model import GenreModel, metadata_path, model_input
from streamer.errors import StreamerError
from training import pipeline
from training.card import render_card


def test_bad_files_are_reported_and_skipped(trained: dict[str, Path]) -> None:
    skipped = {
        item["path"]: item["reason"]
        for item in json.loads((trained["run"] / "fit.json").read_text())["skipped"]
    }
    assert skipped.keys() >= {"noise/readme.txt"}
    # The others are reported only if their split side was extracted: all sides are.
    for name in ("corrupt.wav", "text.wav", "empty.wav", "one-sample.wav"):
        assert f"noise/{name}" in skipped, skipped
    assert "shorter than one patch" in skipped["noise/one-sample.wav"]
    assert "empty" in skipped["noise/empty.wav"]


def test_run_folder_holds_metrics_and_plots(trained: dict[str, Path]) -> None:
    run = trained["run"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) >= {"clean", "room", "baseline", "room_chain"}
    assert metrics["clean"]["track"]["accuracy"] >= 2 / 3  # three easy classes
    assert 0 <= metrics["baseline"]["clean"] <= 1
    for name in ("confusion-clean.png", "confusion-room.png", "training-curves.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    split = json.loads((run / "split.json").read_text())
    assert not set(split["train"]) & set(split["test"])


def test_exported_model_matches_keras_in_the_runtime(trained: dict[str, Path]) -> None:
    run = pipeline.Run.load(trained["run"])
    model = GenreModel(trained["onnx"])
    assert list(model.labels) == run.labels == ["clicks", "noise", "tones"]
    assert model.spec == run.spec and model.spec.norm_mean
    patches = np.random.default_rng(1).normal(-40, 15, (5, run.spec.patch_frames, run.spec.n_mels))
    probabilities, embedding = model.predict(patches)
    keras_probabilities, keras_embedding = run.keras_model().predict_on_batch(
        model_input(patches, run.spec)
    )
    assert np.abs(probabilities - np.asarray(keras_probabilities)).max() < 1e-4
    assert np.abs(embedding - np.asarray(keras_embedding)).max() < 1e-4
    assert embedding.shape == (5, 16)
    info = json.loads(metadata_path(trained["onnx"]).read_text())
    assert info["export"]["max_abs_difference"] <= 1e-4
    assert {"metrics", "split", "training", "versions", "corpus"} <= info.keys()


def test_the_affine_steps_run_as_depthwise_convolutions_with_equal_outputs(
    trained: dict[str, Path],
) -> None:
    """The exported CNN has no per-channel Mul/Add left (BatchNormalization after a ReLU)
    and computes what tf2onnx's own graph computes, bit for bit."""
    import onnx
    import onnxruntime

    from training.export import affine_as_depthwise, keras_to_onnx

    run = pipeline.Run.load(trained["run"])
    spec = run.spec
    plain = keras_to_onnx(run.keras_model(), spec)
    plain_ops = [node.op_type for node in plain.graph.node]
    rewritten = affine_as_depthwise(onnx.load(str(trained["onnx"])))
    ops = [node.op_type for node in rewritten.graph.node]
    assert plain_ops.count("Mul") >= 2 and "Mul" not in ops, "the BatchNormalizations"
    assert ops.count("Conv") == plain_ops.count("Conv") + plain_ops.count("Mul")
    shipped = onnx.load(str(trained["onnx"]))
    assert [node.op_type for node in shipped.graph.node] == ops, "export rewrote it already"
    x = np.random.default_rng(2).standard_normal((6, spec.n_mels, spec.patch_frames, 1))
    outputs = [
        onnxruntime.InferenceSession(graph.SerializeToString()).run(None, {"mel": x.astype("f4")})
        for graph in (plain, shipped)
    ]
    for before, after in zip(*outputs, strict=True):
        assert np.array_equal(before, after)


def test_runtime_refuses_a_corrupt_or_mismatched_model(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    onnx = tmp_path / "genre.onnx"
    shutil.copy(trained["onnx"], onnx)
    meta = metadata_path(onnx)
    original = json.loads(metadata_path(trained["onnx"]).read_text())

    with pytest.raises(StreamerError, match=r"metadata genre\.json is missing"):
        GenreModel(onnx)
    meta.write_text("{not json")
    with pytest.raises(StreamerError, match="invalid model metadata"):
        GenreModel(onnx)
    meta.write_text(json.dumps({**original, "labels": ["a", "b"]}))
    with pytest.raises(StreamerError, match="should have 2 classes"):
        GenreModel(onnx)
    spec = {**original["feature_spec"], "n_mels": 64, "norm_mean": [], "norm_std": []}
    meta.write_text(json.dumps({**original, "feature_spec": spec}))
    with pytest.raises(StreamerError, match="input 'mel' should be"):
        GenreModel(onnx)
    meta.write_text(json.dumps(original))
    GenreModel(onnx)  # the intact pair loads
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(StreamerError, match="does not match its metadata"):
        GenreModel(onnx)


def test_model_card_states_the_metadata_figures(trained: dict[str, Path]) -> None:
    card = (trained["onnx"].parent / "README.md").read_text()
    info = json.loads(metadata_path(trained["onnx"]).read_text())
    clean = info["metrics"]["clean"]["track"]["accuracy"]
    assert f"| clean | {100 * clean:.1f} %" in card
    assert "| tones |" in card and "## Limits" in card
    for name in pipeline.PLOTS:
        assert f"]({name})" in card and (trained["onnx"].parent / name).is_file()


def test_prepared_frames_round_trip_within_half_a_step(tmp_path: Path) -> None:
    from training.frames import STEP_DB, FrameSet, load_frames, save_frames

    rng = np.random.default_rng(3)
    frames = [rng.uniform(-100, 40, size=(n, 16)).astype(np.float32) for n in (5, 1, 40)]
    save_frames(tmp_path / "f.frames.xz", FrameSet(["a", "b", "c"], ["x", "y", "x"], frames))
    loaded = load_frames(tmp_path / "f.frames.xz")
    assert loaded.keys == ["a", "b", "c"] and loaded.labels == ["x", "y", "x"]
    for original, back in zip(frames, loaded.frames, strict=True):
        assert back.shape == original.shape
        assert np.max(np.abs(back - original)) <= STEP_DB / 2 + 1e-4

    (tmp_path / "bad.frames.xz").write_bytes(b"not xz")
    with pytest.raises(StreamerError, match="not a prepared frames file"):
        load_frames(tmp_path / "bad.frames.xz")


def test_a_prepared_run_trains_from_its_folder_alone(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    """`train` needs neither the dataset nor the feature cache: only the run folder."""
    run = copied_run(trained["run"], tmp_path / "moved", epochs=1, data=str(tmp_path / "nowhere"))
    (run / "model.keras").unlink()
    summary = pipeline.train(run)
    assert summary["epochs_run"] == 1
    assert (
        summary["train_patches"]
        == json.loads((trained["run"] / "fit.json").read_text())["train_patches"]
    )
    assert (run / "model.keras").is_file()

    with pytest.raises(StreamerError, match="not a prepared run folder"):
        pipeline.train(tmp_path / "empty")


def test_train_can_start_from_an_earlier_runs_weights(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    """A warm start copies every weight; with a zero learning rate the kernels stay put."""
    import keras

    run = copied_run(trained["run"], tmp_path / "warm", epochs=1, learning_rate=0.0)
    summary = pipeline.train(run, init_from=trained["run"])
    assert summary["init_from"]["run"] == str(trained["run"])
    earlier = json.loads((trained["run"] / "fit.json").read_text())
    assert summary["init_from"]["command"] == earlier["command"]

    def kernel(folder: Path) -> np.ndarray:
        model = keras.saving.load_model(folder / "model.keras", compile=False)
        return np.asarray(model.get_layer("conv0").kernel)

    np.testing.assert_array_equal(kernel(run), kernel(trained["run"]))
    onnx = tmp_path / "model" / "genre.onnx"
    pipeline.export(run, onnx)
    assert (
        f"starting from the weights of a model trained {earlier['epochs_run']} epochs"
        in render_card(onnx, images=[])
    )

    # A third stage keeps the whole chain: its card names both earlier models.
    third = copied_run(run, tmp_path / "third", epochs=1, learning_rate=0.0)
    assert pipeline.train(third, init_from=run)["init_from"]["init_from"] == summary["init_from"]
    pipeline.export(third, onnx)
    assert render_card(onnx, images=[]).count("starting from the weights") == 2

    config = json.loads((run / "config.json").read_text())
    copied_run(
        run, tmp_path / "wider", cnn={**config["cnn"], "filters": [*config["cnn"]["filters"], 8]}
    )
    with pytest.raises(StreamerError, match="other sizes"):
        pipeline.train(tmp_path / "wider", init_from=trained["run"])


def copied_run(run: Path, to: Path, **config_changes: object) -> Path:
    """A copy of a run folder with some of its config.json changed."""
    shutil.copytree(run, to)
    config = json.loads((to / "config.json").read_text())
    (to / "config.json").write_text(json.dumps({**config, **config_changes}))
    return to
