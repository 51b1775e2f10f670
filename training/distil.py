"""`streamer-train distil`: the fused decision taught to a student of the seed CNN's shape.

The fused decision (the CNN and musicnn's taggers, `streamer.analysis.fusion`) is the best
judgement of real recordings the chain has, but the taggers cost four times the CNN, and
offline tagging with them runs 50x real time on one core against the CNN's 247x
(bench_tag, December 2026; 38x before their front end pooled first). A student
with the CNN's architecture and cost that hears what the decision hears would keep both.

1. Lessons: clips go through `streamer tag`'s chain (the shipped CNN and taggers); every
   `every`-th hop keeps the patch the CNN read (its exact input), the CNN's probabilities
   and the tag hop's tags. Unlabelled real excerpts (`training.unlabelled`: none from the
   real development set) and clips of a synthetic corpus (labelled).
2. Targets: on real audio, the shipped decision (`GenreFusion.fuse_hops`, sharpened by its
   calibration's temperature); on synthetic clips, their label, weighing
   `synthetic_weight` times the real lessons in all, so the synthetic corpus guards what
   the CNN knew without overruling what the teacher hears.
3. The student starts from the shipped CNN's weights (`keras_from_onnx`; its BatchNorms,
   folded into affine maps at export, stay frozen) with an output added for each genre
   the CNN lacks (``electronic``), and learns by cross-entropy against the soft targets.
   A seventh of the unlabelled tracks is kept out to measure its agreement with the
   teacher.
4. Scored on the synthetic held-out split (track accuracy: the guard) and on the real
   development set (the clip vote, first and first two, per genre, with an interval over
   tracks); nothing is chosen on the real set. Exported to ``RUN/student.onnx``, so that
   ``streamer tag --model RUN/student.onnx --no-tagger`` runs it.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamer.analysis.fusion import GenreFusion
from streamer.analysis.model import GenreModel, read_model_info
from streamer.files import write_atomically

VALIDATION_SHARE = 1 / 7
BATCH = 64
LESSON_KEYS = ("inputs", "cnn", "tags", "clip")


@dataclass
class Lessons:
    """What the chain saw at the kept hops of some clips: ``inputs`` (n, n_mels, frames, 1)
    float16, the CNN's ``cnn`` (n, n_cnn_labels), the tag hop's ``tags`` (n, n_tags; NaN
    without taggers), and the clip's row in its manifest, ``clip`` (n,)."""

    inputs: np.ndarray
    cnn: np.ndarray
    tags: np.ndarray
    clip: np.ndarray

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, **{key: getattr(self, key) for key in LESSON_KEYS})

    @classmethod
    def load(cls, path: Path) -> Lessons:
        with np.load(path) as stored:
            return cls(**{key: stored[key] for key in LESSON_KEYS})

    @classmethod
    def join(cls, parts: Sequence[Lessons]) -> Lessons:
        return cls(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in LESSON_KEYS})


class _RecordingModel(GenreModel):
    """The genre CNN, keeping every input it is given (in the order of the hops)."""

    seen: list[np.ndarray]

    def predict(self, logmel_patches: np.ndarray, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        self.seen.append(self.model_input(logmel_patches).astype(np.float16))
        return super().predict(logmel_patches, **kwargs)


def collect_lessons(
    manifest: Path,
    *,
    model: Path,
    every: int,
    with_tags: bool,
    shard: int = 0,
    shards: int = 1,
) -> Lessons:
    """The lessons of the manifest's rows ``shard::shards`` (column ``file`` or ``path``);
    without `with_tags` the chain runs the CNN alone, every hop is kept as it comes, and
    ``tags`` is NaN."""
    from threadpoolctl import threadpool_limits

    from streamer.analysis.tagger import TagModel, shipped_tagger_paths
    from streamer.chain import GenreChain, TrackedHop
    from streamer.offline.tagging import tag_file

    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    recording = _RecordingModel(model)
    taggers = [TagModel(p) for p in shipped_tagger_paths()] if with_tags else []
    chain = GenreChain(recording, taggers=taggers)
    n_tags = len(chain.tagger.labels) if chain.tagger else 1
    kept: dict[str, list[np.ndarray]] = {key: [] for key in LESSON_KEYS}
    with threadpool_limits(1):
        for index in range(shard, len(rows), shards):
            recording.seen = []
            hops: list[TrackedHop] = []
            row = rows[index]
            tag_file(manifest.parent / (row.get("file") or row["path"]), chain=chain,
                     on_hop=hops.append)  # fmt: skip
            inputs = np.concatenate(recording.seen) if recording.seen else None
            for i in range(0, len(hops), every):
                tags = hops[i].tags
                if with_tags and tags is None:
                    continue  # before the first tag patch the teacher is the CNN alone
                assert inputs is not None
                kept["inputs"].append(inputs[i])
                kept["cnn"].append(hops[i].hop.probabilities)
                kept["tags"].append(np.full(n_tags, np.nan) if tags is None else tags.tags)
                kept["clip"].append(np.asarray(index))
    return Lessons(**{key: np.stack(values) for key, values in kept.items()})


def collect_parallel(
    manifest: Path, out: Path, *, model: Path, every: int, with_tags: bool, workers: int
) -> Lessons:
    """`collect_lessons` in `workers` processes, cached in `out` (written once)."""
    if not out.is_file():
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_collect_shard, [(manifest, model, every, with_tags, k,
                                                    workers) for k in range(workers)]))  # fmt: skip
        joined = Lessons.join(parts)
        order = np.argsort(joined.clip, kind="stable")
        Lessons(**{k: getattr(joined, k)[order] for k in LESSON_KEYS}).save(out)
    return Lessons.load(out)


def _collect_shard(job: tuple[Path, Path, int, bool, int, int]) -> Lessons:
    manifest, model, every, with_tags, shard, shards = job
    return collect_lessons(manifest, model=model, every=every, with_tags=with_tags, shard=shard,
                           shards=shards)  # fmt: skip


def teacher_targets(fusion: GenreFusion, cnn: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """The decision's probabilities over `fusion.labels` for each hop, sharpened by its
    calibration's temperature (``p ** (1 / T)``, renormalised): what the chain decides,
    before the top-label curve, which only restates the top genre's confidence.

    Examples
    --------
    >>> fusion = GenreFusion(labels=("a", "b", "c"), cnn_labels=("a", "b"),
    ...     tag_labels=("t/c",), mapping={"c": ["t/c"]}, cnn_weight=0.5, sharpness=1.0,
    ...     missing_cnn=0.0, missing_tags=0.0)
    >>> teacher_targets(fusion, np.array([[0.5, 0.5]]), np.array([[1.0]])).round(2).tolist()
    [[0.25, 0.25, 0.5]]
    """
    decided = fusion.fuse_hops(cnn, tags) ** (1.0 / fusion.calibration.temperature)
    return (decided / decided.sum(axis=1, keepdims=True)).astype(np.float32)


def keras_from_onnx(onnx_path: Path, *, labels: Sequence[str]) -> Any:
    """The shipped CNN (`training.model.build_cnn`'s layers) with the ONNX file's weights,
    and an output for each of `labels` past the CNN's own (which come first), with no
    weights yet and the least bias.
    The folded BatchNorms come back as frozen affine maps (mean 0, variance 1 - epsilon)."""
    import onnx
    from onnx import numpy_helper

    from training.model import CNNConfig, build_cnn

    proto = onnx.load(str(onnx_path))
    weights = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    convs, affines, dense = [], [], []
    for node in proto.graph.node:
        values = [weights[name] for name in node.input if name in weights]
        if node.op_type == "Conv" and values[0].shape[1:] == (1, 1, 1):  # depthwise affine
            affines.append((values[0].reshape(-1), values[1]))
        elif node.op_type == "Conv":
            convs.append((values[0].transpose(2, 3, 1, 0), values[1]))  # OIHW -> HWIO
        elif node.op_type == "MatMul":
            dense.append([values[0]])
        elif node.op_type == "Add" and values and dense and len(dense[-1]) == 1:
            dense[-1].append(values[0])
    info = read_model_info(onnx_path)
    config = CNNConfig(filters=tuple(w.shape[3] for w, _ in convs),
                       embedding_size=info.embedding_size)  # fmt: skip
    model = build_cnn(n_mels=info.spec.n_mels, patch_frames=info.spec.patch_frames,
                      n_classes=len(labels), config=config)  # fmt: skip
    for index, ((kernel, bias), (scale, shift)) in enumerate(zip(convs, affines, strict=True)):
        model.get_layer(f"conv{index}").set_weights([kernel, bias])
        norm = model.get_layer(f"bn{index}")
        norm.set_weights(
            [scale, shift, np.zeros_like(scale), np.full_like(scale, 1 - norm.epsilon)]
        )
        norm.trainable = False
    (embedding, embedding_bias), (output, output_bias) = dense
    model.get_layer("embedding").set_weights([embedding, embedding_bias])
    added = len(labels) - output.shape[1]  # new genres start silent: no weight, least bias
    kernel = np.concatenate([output, np.zeros((output.shape[0], added))], axis=1)
    bias = np.concatenate([output_bias, np.full(added, output_bias.min() - 1.0)])
    model.get_layer("probabilities").set_weights(
        [kernel.astype(np.float32), bias.astype(np.float32)]
    )
    return model


@dataclass(frozen=True)
class LabelledClips:
    """Clips with a label each (a corpus manifest's ``label``), as one-hot rows."""

    lessons: Lessons
    targets: np.ndarray  # (n, n_labels)
    labels: list[str]  # per hop


def labelled(lessons: Lessons, manifest: Path, labels: Sequence[str]) -> LabelledClips:
    with manifest.open(newline="") as handle:
        names = [row["label"] for row in csv.DictReader(handle)]
    per_hop = [names[c] for c in lessons.clip]
    targets = np.zeros((len(per_hop), len(labels)), np.float32)
    targets[np.arange(len(per_hop)), [list(labels).index(n) for n in per_hop]] = 1.0
    return LabelledClips(lessons, targets, per_hop)


def widened(cnn: np.ndarray, n_labels: int) -> np.ndarray:
    """The CNN's probabilities with 0 for each genre it lacks, to vote as the student."""
    return np.concatenate([cnn, np.zeros((len(cnn), n_labels - cnn.shape[1]))], axis=1)


def clip_votes(probabilities: np.ndarray, clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The clips in order and each one's mean of its hops' probabilities, as `streamer tag`
    votes."""
    clips = np.unique(clip)
    return clips, np.stack([probabilities[clip == c].mean(axis=0) for c in clips])


def track_accuracy(probabilities: np.ndarray, clips: LabelledClips, labels: Sequence[str]) -> float:
    """The share of clips whose vote is their label."""
    names, votes = clip_votes(probabilities, clips.lessons.clip)
    first = {c: label for c, label in zip(clips.lessons.clip, clips.labels, strict=True)}
    return float(
        np.mean([labels[v.argmax()] == first[c] for c, v in zip(names, votes, strict=True)])
    )


def fit_student(
    *,
    real: Lessons,
    tracks: Sequence[str],
    synthetic: LabelledClips,
    held_out: LabelledClips,
    fusion: GenreFusion,
    model: Path,
    synthetic_weight: float,
    epochs: int,
    learning_rate: float,
    seed: int = 0,
    report: Callable[[dict[str, Any]], None] = lambda line: None,
) -> tuple[Any, list[dict[str, Any]]]:
    """Train the student (see the module docstring); `tracks` names the track of each row
    of the real lessons' manifest. Returns the Keras model and one line per epoch."""
    import keras

    from training.model import classifier

    keras.utils.set_random_seed(seed)
    targets = teacher_targets(fusion, real.cnn, real.tags)
    names = sorted(set(tracks))
    rng = np.random.default_rng(seed)
    kept_out = set(rng.choice(names, size=max(1, round(len(names) * VALIDATION_SHARE)),
                              replace=False))  # fmt: skip
    validation = np.array([tracks[c] in kept_out for c in real.clip])
    train = ~validation
    inputs = np.concatenate([real.inputs[train], synthetic.lessons.inputs]).astype(np.float32)
    answers = np.concatenate([targets[train], synthetic.targets])
    weights = np.concatenate([
        np.ones(int(train.sum()), np.float32),
        np.full(len(synthetic.targets), synthetic_weight * train.sum() / len(synthetic.targets),
                np.float32),
    ])  # fmt: skip
    student = keras_from_onnx(model, labels=fusion.labels)
    net = classifier(student)
    steps = epochs * int(np.ceil(len(inputs) / BATCH))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.05)
    net.compile(optimizer=keras.optimizers.Adam(schedule), loss="categorical_crossentropy")
    labels = list(fusion.labels)
    held_inputs = held_out.lessons.inputs.astype(np.float32)
    valid_inputs = real.inputs[validation].astype(np.float32)

    def measure(epoch: int, seconds: float) -> dict[str, Any]:
        agree = net.predict(valid_inputs, batch_size=256, verbose=0).argmax(axis=1)
        held = net.predict(held_inputs, batch_size=256, verbose=0)
        line = {
            "epoch": epoch,
            "seconds": round(seconds, 1),
            "agreement_kept_out_tracks": float(np.mean(agree == targets[validation].argmax(1))),
            "held_out_track_accuracy": track_accuracy(held, held_out, labels),
        }
        report(line)
        return line

    log = [measure(0, 0.0)]
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        net.fit(inputs, answers, sample_weight=weights, batch_size=BATCH, epochs=1,
                shuffle=True, verbose=0)  # fmt: skip
        log.append(measure(epoch, time.perf_counter() - started))
    return student, log


def score_real(
    probabilities: np.ndarray, lessons: Lessons, manifest: Path, labels: Sequence[str]
) -> dict[str, Any]:
    """First choice and first two of each scored excerpt's vote on the real development
    set, per genre, with 95 % intervals over tracks (`training.fusion`'s rules)."""
    from training.fusion import hits, per_genre, read_clips, track_interval

    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    clips, votes = clip_votes(probabilities, lessons.clip)
    scored = [i for i, c in enumerate(clips) if rows[c]["expected"] != "other"]
    expected = {str(path.name): (genres, track) for path, genres, track in read_clips(manifest)}
    excerpts = [
        _Excerpt(*expected[Path(rows[clips[i]]["file"]).name]) for i in scored
    ]  # fmt: skip
    right = hits(votes[scored], labels, excerpts)
    return {
        "clips": len(excerpts),
        "tracks": len({e.track for e in excerpts}),
        "top1": float(right[:, 0].mean()),
        "top2": float(right[:, 1].mean()),
        "top1_interval": track_interval(right[:, 0], excerpts, seed=0),
        "per_genre": per_genre(right[:, 0], excerpts),
    }


@dataclass(frozen=True)
class _Excerpt:
    """A real-set excerpt as `training.fusion`'s scoring reads it (`training.fusion.Scored`)."""

    expected: frozenset[str]
    track: str


def run_distil(
    *,
    run: Path,
    unlabelled: Path,
    synthetic: Path,
    held_out: Path,
    realset: Path,
    model: Path,
    synthetic_weight: float,
    epochs: int,
    learning_rate: float,
    every: int,
    workers: int,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Collect the lessons (cached in `run`), train, score, export; write
    ``run/report.json`` and return it."""
    from streamer.analysis.fusion import shipped_fusion_path
    from training.export import export_model

    run.mkdir(parents=True, exist_ok=True)
    fusion = GenreFusion.load(shipped_fusion_path())
    labels = list(fusion.labels)

    def lessons(name: str, manifest: Path, *, step: int, tags: bool) -> Lessons:
        report(f"lessons of {manifest} ({name})")
        return collect_parallel(manifest, run / f"lessons-{name}.npz", model=model, every=step,
                                with_tags=tags, workers=workers)  # fmt: skip

    unlabelled_manifest = unlabelled / "manifest.csv"
    real = lessons("unlabelled", unlabelled_manifest, step=every, tags=True)
    with unlabelled_manifest.open(newline="") as handle:
        tracks = [row["track"] for row in csv.DictReader(handle)]
    train_clips = labelled(lessons("synthetic", synthetic, step=every, tags=False), synthetic,
                           labels)  # fmt: skip
    held_clips = labelled(lessons("held-out", held_out, step=every, tags=False), held_out,
                          labels)  # fmt: skip
    student, log = fit_student(
        real=real, tracks=tracks, synthetic=train_clips, held_out=held_clips, fusion=fusion,
        model=model, synthetic_weight=synthetic_weight, epochs=epochs,
        learning_rate=learning_rate, report=lambda line: report(json.dumps(line)),
    )  # fmt: skip
    dev = lessons("realset", realset / "manifest.csv", step=1, tags=False)
    dev_inputs = dev.inputs.astype(np.float32)
    student_votes = np.asarray(student.predict(dev_inputs, batch_size=256, verbose=0)[0])
    spec = read_model_info(model).spec
    out = run / "student.onnx"
    export_model(
        student, out, labels=labels, spec=spec, check_inputs=dev_inputs[:8],
        extra={"distilled": {"teacher": fusion.sha256, "from": str(model),
                             "synthetic_weight": synthetic_weight, "epochs": epochs,
                             "learning_rate": learning_rate, "every": every}},
    )  # fmt: skip
    figures = {
        "lessons": {
            "unlabelled_hops": len(real.clip),
            "unlabelled_clips": len(np.unique(real.clip)),
            "synthetic_hops": len(train_clips.labels),
            "held_out_hops": len(held_clips.labels),
        },
        "epochs": log,
        "realset_student": score_real(student_votes, dev, realset / "manifest.csv", labels),
        "realset_cnn_alone": score_real(widened(dev.cnn, len(labels)), dev,
                                        realset / "manifest.csv", labels),
        "held_out_student": log[-1]["held_out_track_accuracy"],
        "held_out_cnn_alone": track_accuracy(widened(held_clips.lessons.cnn, len(labels)),
                                             held_clips, labels),
        "student": str(out),
    }  # fmt: skip
    write_atomically(run / "report.json", (json.dumps(figures, indent=1) + "\n").encode())
    return figures
