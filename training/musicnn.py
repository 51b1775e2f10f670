"""musicnn's trained taggers as ONNX: the runtime gets real-music knowledge without TensorFlow.

The musicnn wheel (0.1.0, ISC) holds TF1 checkpoints of two taggers, trained on the Million
Song Dataset and on MagnaTagATune. Their graph is cut down to the tags and the penultimate
layer, frozen (variables become constants, ``is_training`` becomes False) and converted with
tf2onnx; the ONNX file is written only if onnxruntime reproduces that frozen graph, run by
TensorFlow on real patches (or generated ones), within `MAX_DIFFERENCE`. The file written
then has its timbral filters in 8 bits (`training.export.quantize_front_end`, scaled on the
same patches): half the cost of a patch, and written only if its outputs stay within
`MAX_QUANTIZED_DIFFERENCE` of the float graph's. musicnn's extractor module is never
imported: it disables eager execution for the whole process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from streamer.analysis.features import BatchExtractor, FeatureSpec
from streamer.analysis.tagger import EMBEDDING_OUTPUT, INPUT_NAME, TAGS_OUTPUT
from streamer.capture.file import read_audio
from streamer.errors import StreamerError
from streamer.files import write_atomically
from training.export import (
    MAX_DIFFERENCE,
    ONNX_OPSET,
    ExportMismatchError,
    check_parity,
    pool_before_affine,
    quantize_front_end,
    write_model,
)

SPEC = FeatureSpec(
    sample_rate=16000, n_fft=512, hop_length=256, n_mels=96,
    compression="log10_1p_10000", patch_frames=187,
)  # fmt: skip
"""musicnn's features (its configuration.py and checkpoint config.json): librosa's defaults
otherwise, no normalisation."""
GRAPH_INPUT = "model/Placeholder"  # (batch, 187, 96) log-compressed mel, time-major
IS_TRAINING = "model/Placeholder_2"
GRAPH_OUTPUTS = {
    TAGS_OUTPUT: "model/Sigmoid",
    EMBEDDING_OUTPUT: "model/batch_normalization_10/batchnorm/add_1",
}
LICENCE_FILE = "MUSICNN-LICENSE.txt"
LICENCE = "ISC, Music Technology Group, Universitat Pompeu Fabra 2019; see " + LICENCE_FILE
URL = "https://github.com/jordipons/musicnn"
PREPROCESSING_NOTE = (
    "log10(1 + 10000 x) of the float32 mel; musicnn 0.1.0's own code rounds the mel to "
    "float16 first, which overflows under numpy 2: not reproduced"
)
MAX_QUANTIZED_DIFFERENCE = 0.1
"""The most a tag (a probability) may move from the float graph's when the timbral filters
run in 8 bits, and the most the embedding may, as the norm of its change over its own norm
(what a cosine similarity sees). Measured on 920 patches of the real development set's
excerpts at 25 % and 75 % of each track, scaled on those at 50 %: tags at most 0.041 (MSD)
and 0.025 (MTT) apart, 0.0007 on average, the top tag the same on 98 % and 99 % of the
patches; the embedding 3.3 % and 1.5 %."""


@dataclass(frozen=True)
class Tagger:
    """One of musicnn's checkpoints and what the metadata says of it."""

    folder: str
    dataset: str
    labels: str  # the name of its tag list in musicnn.configuration
    readme_roc_auc: float  # musicnn's README, if the folder does not say


TAGGERS = {
    "msd": Tagger("MSD_musicnn", "Million Song Dataset", "MSD_LABELS", 0.880),
    "mtt": Tagger("MTT_musicnn", "MagnaTagATune", "MTT_LABELS", 0.907),
}


@dataclass(frozen=True)
class Converted:
    """A checked conversion, not yet written."""

    path: Path
    onnx_bytes: bytes
    labels: tuple[str, ...]
    embedding_size: int
    differences: dict[str, float]
    extra: dict[str, Any]


def output_path(out: Path, name: str) -> Path:
    return out / f"musicnn-{name}.onnx"


def package_folder() -> Path:
    """The installed musicnn package, or a one-line error that says how to install it."""
    try:
        import musicnn
    except ImportError:
        raise StreamerError(
            'musicnn is not installed: pip install --no-deps "musicnn==0.1.0" '
            "(scripts/setup.sh does it)"
        ) from None
    return Path(musicnn.__file__).parent


def frozen_graph(checkpoint: Path) -> Any:
    """The checkpoint's graph from input to tags and embedding, its variables constants.

    The ``.meta`` graph is not imported whole (its ``_output_shapes`` attributes no longer
    import), and nothing of musicnn's model code runs (it needs tf-keras today).
    """
    import tensorflow as tf
    from tensorflow.core.framework import node_def_pb2
    from tensorflow.core.protobuf import meta_graph_pb2

    meta = meta_graph_pb2.MetaGraphDef()
    meta.ParseFromString((checkpoint / ".meta").read_bytes())
    reader = tf.compat.v1.train.NewCheckpointReader(str(checkpoint) + "/")
    graph = tf.compat.v1.graph_util.extract_sub_graph(meta.graph_def, list(GRAPH_OUTPUTS.values()))

    def constant(node_name: str, value: Any) -> Any:
        tensor = tf.make_tensor_proto(value)
        node = node_def_pb2.NodeDef(name=node_name, op="Const")
        node.attr["dtype"].type = tensor.dtype
        node.attr["value"].tensor.CopyFrom(tensor)
        return node

    frozen = tf.compat.v1.GraphDef()
    for node in graph.node:
        node.attr.pop("_output_shapes", None)
        if node.op in ("VariableV2", "Variable"):
            node = constant(node.name, reader.get_tensor(node.name))
        elif node.name == IS_TRAINING:
            node = constant(node.name, False)
        frozen.node.append(node)
    return frozen


def run_graph(graph: Any, patches: np.ndarray) -> list[np.ndarray]:
    """The frozen graph's tags and embedding of `patches`, computed by TensorFlow."""
    import tensorflow as tf

    with tf.Graph().as_default() as session_graph:
        tf.compat.v1.import_graph_def(graph, name="")
        with tf.compat.v1.Session(graph=session_graph) as session:
            outputs: list[np.ndarray] = session.run(
                [name + ":0" for name in GRAPH_OUTPUTS.values()], {GRAPH_INPUT + ":0": patches}
            )
    return outputs


def to_onnx(graph: Any, *, pool_first: bool = True) -> bytes:
    """tf2onnx's conversion, with the tensors named as the runtime knows them and, unless
    `pool_first` is false (bench/bench_inference.py's baseline), the front end's pooling
    before its normalisation (`pool_before_affine`)."""
    import tf2onnx

    proto, _ = tf2onnx.convert.from_graph_def(
        graph,
        input_names=[GRAPH_INPUT + ":0"],
        output_names=[name + ":0" for name in GRAPH_OUTPUTS.values()],
        opset=ONNX_OPSET,
    )
    renamed = {GRAPH_INPUT + ":0": INPUT_NAME}
    renamed.update({tensor + ":0": name for name, tensor in GRAPH_OUTPUTS.items()})
    onnx_graph = proto.graph
    for value in [*onnx_graph.input, *onnx_graph.output, *onnx_graph.value_info]:
        value.name = renamed.get(value.name, value.name)
    for node in onnx_graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    for value in [*onnx_graph.input, *onnx_graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    data: bytes = (pool_before_affine(proto) if pool_first else proto).SerializeToString()
    return data


def eight_bit_front_end(onnx_bytes: bytes, patches: np.ndarray) -> bytes:
    """The converted tagger with its timbral filters in 8 bits, scaled on `patches`."""
    import onnx

    data: bytes = quantize_front_end(onnx.load_from_string(onnx_bytes), patches).SerializeToString()
    return data


def run_onnx(onnx_bytes: bytes, patches: np.ndarray) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    outputs: list[np.ndarray] = session.run(list(GRAPH_OUTPUTS), {INPUT_NAME: patches})
    return outputs


def generated_signals(*, seconds: float = 6.0) -> dict[str, np.ndarray]:
    """Four deterministic signals at musicnn's rate (two patches each), for a check with no
    recordings at hand: a melody of harmonic tones, beating noise, a drum-like pulse, a sweep."""
    from scipy.signal import chirp

    rate = SPEC.sample_rate
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    notes = 110.0 * 2 ** (rng.integers(0, 24, size=12) / 12)
    phase = 2 * np.pi * np.cumsum(np.repeat(notes, -(-t.size // notes.size))[: t.size]) / rate
    since_beat = t % 0.5
    return {
        "tones": 0.2 * sum(np.sin(k * phase) / k for k in (1, 2, 3, 4)),
        "noise": 0.1 * rng.standard_normal(t.size) * (1 + np.sin(2 * np.pi * 1.5 * t)),
        "pulse": 0.6 * np.sin(2 * np.pi * 60 * t) * np.exp(-since_beat / 0.08)
        + 0.05 * rng.standard_normal(t.size) * (since_beat > 0.25),
        "sweep": 0.3 * chirp(t, 50, seconds, 7000, method="logarithmic"),
    }


def parity_patches(audio: Sequence[Path]) -> tuple[np.ndarray, dict[str, Any]]:
    """Non-overlapping patches of musicnn's features of `audio` (read and resampled as the
    runtime does), or of `generated_signals` when none is given; and where they came from."""
    from training.data import cut_patches

    extractor = BatchExtractor(SPEC)
    if audio:
        signals = {path.name: read_audio(path, sample_rate=SPEC.sample_rate) for path in audio}
        source: dict[str, Any] = {"source": "recordings", "files": sorted(signals)}
    else:
        signals = generated_signals()
        source = {"source": "generated signals (seed 0)", "signals": list(signals)}
    patches = np.concatenate([
        cut_patches(
            extractor.logmel(y), patch_frames=SPEC.patch_frames, hop_frames=SPEC.patch_frames
        )
        for y in signals.values()
    ]).astype(np.float32)  # fmt: skip
    if not len(patches):
        raise StreamerError(
            f"no {SPEC.patch_seconds:.1f} s patch in the audio given: give longer files"
        )
    return patches, {"patches": len(patches), **source}


def roc_auc(tagger: Tagger, checkpoint: Path) -> tuple[float, str]:
    """The tagger's test ROC-AUC and where it is written: its ``experiment.result`` (MSD's
    says ``AUC:`` for ROC-AUC, then for PR-AUC), else musicnn's README."""
    result = checkpoint / "experiment.result"
    found = (
        re.search(r"(?:ROC-)?AUC:\s*([0-9.]+)", result.read_text()) if result.is_file() else None
    )
    if found:
        return round(float(found.group(1)), 4), f"{tagger.folder}/{result.name}"
    return tagger.readme_roc_auc, "musicnn's README"


def convert(
    name: str, patches: np.ndarray, parity: dict[str, Any], *, out: Path, max_difference: float
) -> Converted:
    """Freeze, convert and check one tagger; raise `ExportMismatchError` above the limit."""
    from musicnn import configuration

    from training.pipeline import package_versions

    tagger = TAGGERS[name]
    checkpoint = package_folder() / tagger.folder
    graph = frozen_graph(checkpoint)
    float_bytes = to_onnx(graph)
    outputs = run_onnx(float_bytes, patches)
    differences = check_parity(
        run_graph(graph, patches),
        outputs,
        names=list(GRAPH_OUTPUTS),
        against=f"musicnn's {tagger.folder} graph",
        limit=max_difference,
    )
    onnx_bytes = eight_bit_front_end(float_bytes, patches)
    eight_bit = run_onnx(onnx_bytes, patches)
    against = f"the float {tagger.folder} graph, the timbral filters in 8 bits"
    moved = check_parity(
        outputs[:1], eight_bit[:1], names=[TAGS_OUTPUT], against=against,
        limit=MAX_QUANTIZED_DIFFERENCE,
    )  # fmt: skip
    change = float(np.linalg.norm(eight_bit[1] - outputs[1]) / np.linalg.norm(outputs[1]))
    if not change <= MAX_QUANTIZED_DIFFERENCE:
        raise ExportMismatchError(
            f"onnxruntime differs from {against} by {change:.3g} of the embedding's norm "
            f"(limit {MAX_QUANTIZED_DIFFERENCE:g}): the model was not written"
        )
    auc, auc_source = roc_auc(tagger, checkpoint)
    extra = {
        "kind": "tagger",
        "provenance": {
            "package": f"musicnn {metadata.version('musicnn')}",
            "url": URL,
            "checkpoint": tagger.folder,
            "dataset": tagger.dataset,
            "roc_auc": auc,
            "roc_auc_source": auc_source,
            "graph": dict(GRAPH_OUTPUTS),
            "preprocessing": PREPROCESSING_NOTE,
        },
        "export": {
            "opset": ONNX_OPSET,
            "max_abs_difference": differences,
            "limit": max_difference,
            "reference": "the checkpoint's frozen graph run by TensorFlow",
            "rewritten": "the front end pools before its normalisation "
            "(training.export.pool_before_affine)",
            "eight_bit": {
                "what": "the timbral filters in 8 bits, scaled on the parity patches "
                "(training.export.quantize_front_end)",
                "max_abs_difference": moved,
                "embedding_relative_change": change,
                "limit": MAX_QUANTIZED_DIFFERENCE,
                "against": "the float graph above, on the parity patches",
            },
            "parity": parity,
            "packages": package_versions(),
        },
        "licence": LICENCE,
    }
    labels = tuple(getattr(configuration, tagger.labels))
    embedding_size = int(outputs[1].shape[-1])
    return Converted(output_path(out, name), onnx_bytes, labels, embedding_size, differences, extra)


def licence_text() -> str:
    """musicnn's licence, verbatim, under a line that says what it covers here."""
    notice = metadata.distribution("musicnn").read_text("LICENSE.md")
    if notice is None:
        raise StreamerError("the installed musicnn has no LICENSE.md: reinstall musicnn==0.1.0")
    return (
        "The files musicnn-*.onnx and musicnn-*.json beside this one are converted from the "
        f"trained models of musicnn {metadata.version('musicnn')} ({URL}), under its licence:\n\n"
        + notice.strip()
        + "\n"
    )


def export_musicnn(
    out: Path,
    *,
    models: Sequence[str] = tuple(TAGGERS),
    audio: Sequence[Path] = (),
    max_difference: float = MAX_DIFFERENCE,
) -> list[Converted]:
    """Convert and check every tagger in `models`, then write them all and the licence into
    `out`; if any one fails its check, nothing is written."""
    patches, parity = parity_patches(audio)
    converted = [
        convert(name, patches, parity, out=out, max_difference=max_difference) for name in models
    ]
    for model in converted:
        write_model(
            model.path,
            model.onnx_bytes,
            labels=model.labels,
            spec=SPEC,
            embedding_size=model.embedding_size,
            extra=model.extra,
        )
    write_atomically(out / LICENCE_FILE, licence_text().encode())
    return converted
