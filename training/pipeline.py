"""Fit, evaluate and export: the steps of training, each leaving its results in a run folder.

A run folder holds everything a later step needs: ``config.json``, ``split.json``,
``spec.json`` (the FeatureSpec with the training set's normalisation), ``model.keras``,
``history.json``, then ``metrics.json`` and the plots. So `evaluate` and `export` can be
re-run alone, and a run is a record of how a model was made.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from streamer.analysis.features import FeatureSpec
from streamer.analysis.model import model_input
from streamer.capture.file import read_audio
from streamer.errors import StreamerError
from streamer.progress import console, progress_bar
from training.data import (
    Dataset,
    FeatureCache,
    Skipped,
    Split,
    Track,
    cut_patches,
    load_dataset,
    read_split_file,
    split_by_group,
)
from training.model import CNNConfig


@dataclass
class FitConfig:
    """Everything that decides a training run (saved as ``config.json``)."""

    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    train_hop_frames: int = 65  # 50 % overlap between training patches
    room_variants: int = 2  # room-simulated copies of every training track
    valid_fraction: float = 0.15
    test_fraction: float = 0.2
    test_only: tuple[str, str] | None = None
    split_file: str | None = None
    split_by_track: bool = False
    workers: int = 2
    max_minutes: float | None = None
    cnn: CNNConfig = field(default_factory=CNNConfig)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cnn": self.cnn.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitConfig:
        """The config of a ``config.json`` (keys it does not know, like "data", ignored)."""
        known = {f.name for f in fields(cls)} - {"cnn", "test_only"}
        test_only = data.get("test_only")
        return cls(
            **{k: v for k, v in data.items() if k in known},
            test_only=tuple(test_only) if test_only else None,
            cnn=CNNConfig.from_dict(data.get("cnn", {})),
        )


# --- features for many tracks, in parallel -----------------------------------------------


def _variant_transform(variant: str, spec: FeatureSpec) -> Any:
    from training import augment

    if variant == "clean":
        return None
    if variant == "eval-room":
        return partial(augment.evaluation_room, sample_rate=spec.sample_rate)
    seed = int(variant.removeprefix("room"))
    return partial(_seeded_room, sample_rate=spec.sample_rate, seed=seed)


def _seeded_room(y: np.ndarray, *, sample_rate: int, seed: int) -> np.ndarray:
    from training import augment

    return augment.random_room(y, sample_rate=sample_rate, rng=np.random.default_rng(seed))


def _extract_one(job: tuple[Path, str], *, cache_root: Path, spec: FeatureSpec) -> np.ndarray | str:
    """Worker: frames of one (file, variant), or the reason it failed."""
    path, variant = job
    try:
        cache = FeatureCache(cache_root, spec)
        return cache.logmel(path, variant=variant, transform=_variant_transform(variant, spec))
    except StreamerError as error:
        return str(error)


def extract_features(
    jobs: list[tuple[Track, str]], *, cache_root: Path, spec: FeatureSpec, workers: int
) -> tuple[dict[tuple[str, str], np.ndarray], list[Skipped]]:
    """Frames for each (track, variant); bad files are skipped with their reason."""
    frames: dict[tuple[str, str], np.ndarray] = {}
    skipped: list[Skipped] = []
    work = partial(_extract_one, cache_root=cache_root, spec=spec)
    with progress_bar() as bar, ProcessPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task("features", total=len(jobs), rate="")
        results = pool.map(work, [(t.path, v) for t, v in jobs], chunksize=4)
        for (track, variant), result in zip(jobs, results, strict=True):
            if isinstance(result, str):
                if variant == "clean":
                    skipped.append(Skipped(track.key, result))
            elif result.shape[0] < spec.patch_frames:
                if variant == "clean":
                    seconds = spec.patch_seconds
                    skipped.append(Skipped(track.key, f"shorter than one patch ({seconds:.1f} s)"))
            else:
                frames[(track.key, variant)] = result
            bar.advance(task)
    return frames, skipped


@dataclass
class Patches:
    """Patches of one side with the label index and the track of each patch."""

    x: np.ndarray  # (n, patch_frames, n_mels), not normalised
    y: np.ndarray  # (n,) label indices
    track: np.ndarray  # (n,) track keys


def gather_patches(
    tracks: list[Track],
    frames: dict[tuple[str, str], np.ndarray],
    *,
    variants: list[str],
    labels: list[str],
    spec: FeatureSpec,
    hop_frames: int,
) -> Patches:
    items = [
        (track.key, track.label, frames[(track.key, variant)])
        for track in tracks
        for variant in variants
        if (track.key, variant) in frames
    ]
    return cut_all(items, labels=labels, spec=spec, hop_frames=hop_frames)


def cut_all(
    items: Iterable[tuple[str, str, np.ndarray]],
    *,
    labels: list[str],
    spec: FeatureSpec,
    hop_frames: int,
) -> Patches:
    """Patches of (track key, label, frames) items, labelled and traced to their track."""
    xs, ys, keys = [], [], []
    for key, label, logmel in items:
        patches = cut_patches(logmel, patch_frames=spec.patch_frames, hop_frames=hop_frames)
        xs.append(patches)
        ys += [labels.index(label)] * len(patches)
        keys += [key] * len(patches)
    if not xs:
        raise StreamerError("no usable patches: every file was skipped or too short")
    return Patches(np.concatenate(xs), np.asarray(ys), np.asarray(keys))


def make_split(dataset: Dataset, config: FitConfig) -> Split:
    if config.split_file:
        return read_split_file(config.split_file, dataset.tracks)
    return split_by_group(
        dataset.tracks,
        valid_fraction=config.valid_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
        test_only=config.test_only,
        by_track=config.split_by_track,
    )


def package_versions() -> dict[str, str]:
    names = ("numpy", "librosa", "tensorflow-cpu", "keras", "tf2onnx", "onnx", "onnxruntime")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def training_device() -> str:
    """What the Keras backend trains on, e.g. "NVIDIA H200" or "cpu"."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    if keras.backend.backend() == "tensorflow":
        import tensorflow

        gpus = tensorflow.config.list_physical_devices("GPU")
        return "GPU" if gpus else "cpu"
    return keras.backend.backend()


def command_line() -> str:
    program = Path(sys.argv[0]).name
    if program in ("cli.py", "__main__.py"):  # python -m training.cli
        program = "streamer-train"
    return " ".join([program, *sys.argv[1:]])


# --- fit ---------------------------------------------------------------------------------


def room_variants(config: FitConfig) -> list[str]:
    return [f"room{config.seed * 1000 + k}" for k in range(config.room_variants)]


def fit(
    data: Path,
    run: Path,
    *,
    config: FitConfig,
    cache_root: Path,
    spec: FeatureSpec | None = None,
) -> dict[str, Any]:
    """`prepare` the run folder, then `train` in it."""
    prepare(data, run, config=config, cache_root=cache_root, spec=spec)
    return train(run)


def prepare(
    data: Path,
    run: Path,
    *,
    config: FitConfig,
    cache_root: Path,
    spec: FeatureSpec | None = None,
) -> None:
    """Split, extract (with room-simulated copies of the training tracks), normalise, and
    write everything training needs into the run folder, the frames included."""
    from training.frames import SUFFIX, FrameSet, save_frames

    spec = spec or FeatureSpec()
    run.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(data)
    split = make_split(dataset, config)
    labels = sorted({t.label for t in split.train})
    if len(labels) < 2:
        raise StreamerError(f"{data}: training needs at least two labels with tracks")
    rooms = room_variants(config)
    jobs = [(t, "clean") for tracks in split.sides().values() for t in tracks]
    jobs += [(t, room) for t in split.train for room in rooms]
    frames, skipped = extract_features(
        jobs, cache_root=cache_root, spec=spec, workers=config.workers
    )
    skipped = dataset.skipped + skipped
    for item in skipped:
        console.print(f"[yellow]skipped[/] {item.path}: {item.reason}")
    clean = [frames[(t.key, "clean")] for t in split.train if (t.key, "clean") in frames]
    all_frames = np.concatenate(clean)
    spec = spec.with_normalization(all_frames.mean(axis=0), all_frames.std(axis=0) + 1e-3)
    for stale in run.glob(f"*{SUFFIX}"):
        stale.unlink()
    sides = {"train": ["clean", *rooms], "valid": ["clean"]}
    for side, variants in sides.items():
        tracks = split.train if side == "train" else (split.valid or split.train)
        for variant in variants:
            kept = [t for t in tracks if (t.key, variant) in frames and t.label in labels]
            kept_frames = [frames[(t.key, variant)] for t in kept]
            frame_set = FrameSet([t.key for t in kept], [t.label for t in kept], kept_frames)
            if kept:
                save_frames(run / f"{side}-{variant}{SUFFIX}", frame_set)
    write_json(run / "config.json", {"data": str(Path(data).resolve()), **config.to_dict()})
    (run / "split.json").write_text(split.to_json() + "\n")
    write_json(run / "split-summary.json", split.summary())
    spec.save(run / "spec.json")
    write_json(
        run / "prepare.json",
        {"labels": labels, "skipped": [asdict(s) for s in skipped], "command": command_line()},
    )


def prepared_patches(
    run: Path, side: str, *, labels: list[str], spec: FeatureSpec, hop_frames: int
) -> Patches:
    """Patches of one side ("train" or "valid") from the frames files `prepare` wrote."""
    from training.frames import SUFFIX, load_frames

    files = sorted(run.glob(f"{side}-*{SUFFIX}"))
    if not files:
        raise StreamerError(f"{run}: no prepared {side} frames: run `streamer-train fit` first")
    sets = [load_frames(path) for path in files]
    items = (item for s in sets for item in zip(s.keys, s.labels, s.frames, strict=True))
    return cut_all(items, labels=labels, spec=spec, hop_frames=hop_frames)


def train(run: Path, *, init_from: Path | None = None) -> dict[str, Any]:
    """Train the CNN on the frames `prepare` left in the run folder, with its config.

    Needs only the run folder and Keras with any backend (``KERAS_BACKEND=jax`` trains on a
    GPU without TensorFlow); the model saved is the epoch with the best validation accuracy.
    """
    if not (run / "prepare.json").is_file():
        raise StreamerError(
            f"{run}: not a prepared run folder: run `streamer-train fit DATA --run {run} "
            "--prepare-only` first (or `fit` without it to prepare and train at once)"
        )
    import keras

    from training.batches import KeepBest, PatchBatches, RichEpochs
    from training.model import build_cnn, classifier

    config_data = json.loads((run / "config.json").read_text())
    config = FitConfig.from_dict(config_data)
    prepared = json.loads((run / "prepare.json").read_text())
    labels, spec = prepared["labels"], FeatureSpec.load(run / "spec.json")
    train = prepared_patches(
        run, "train", labels=labels, spec=spec, hop_frames=config.train_hop_frames
    )
    valid = prepared_patches(run, "valid", labels=labels, spec=spec, hop_frames=spec.patch_frames)

    keras.utils.set_random_seed(config.seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow

        tensorflow.config.experimental.enable_op_determinism()  # a run is reproducible
    model = build_cnn(
        n_mels=spec.n_mels, patch_frames=spec.patch_frames, n_classes=len(labels),
        config=config.cnn,
    )  # fmt: skip
    earlier = start_from(model, init_from, labels=labels) if init_from is not None else None
    trainer = classifier(model)
    train_data = PatchBatches(train, spec, batch_size=config.batch_size, seed=config.seed)
    # Cosine decay to 5 % over the planned steps: the last epochs settle instead of
    # bouncing at the initial rate (the 12-epoch model's validation accuracy still swung by
    # 3 points between epochs).
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * len(train_data), alpha=0.05
    )
    trainer.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    started = time.monotonic()
    history = trainer.fit(
        train_data,
        validation_data=(model_input(valid.x, spec), valid.y),
        epochs=config.epochs,
        verbose=0,
        callbacks=[
            RichEpochs(config.epochs, len(train_data), max_minutes=config.max_minutes),
            KeepBest(run / "classifier-best.weights.h5"),
        ],
    ).history  # fmt: skip
    trainer.load_weights(run / "classifier-best.weights.h5")
    model.save(run / "model.keras")
    history = {k: [float(v) for v in values] for k, values in history.items()}
    summary = {
        "labels": labels,
        "train_patches": len(train.y),
        "valid_patches": len(valid.y),
        "skipped": prepared["skipped"],
        "best_val_accuracy": max(history.get("val_accuracy", [0.0])),
        "epochs": config.epochs,
        "epochs_run": len(history.get("loss", [])),
        "backend": keras.backend.backend(),
        "device": training_device(),
        "train_minutes": round((time.monotonic() - started) / 60, 1),
        **({"init_from": earlier} if earlier is not None else {}),
    }
    trained_by = command_line()
    command = prepared["command"]
    if trained_by != command:  # prepared by `fit --prepare-only`, then trained here
        command = f"{command}; {trained_by}"
    write_json(run / "history.json", history)
    write_json(run / "fit.json", {**summary, "command": command})
    return summary


def start_from(model: Any, earlier_run: Path, *, labels: list[str]) -> dict[str, Any]:
    """Copy the weights of an earlier run's model into ``model`` (a warm start); return how
    that model was trained (and, nested, what it started from), for the provenance of this
    one."""
    import keras

    source = earlier_run / "model.keras"
    if not source.is_file():
        raise StreamerError(f"--init-from {earlier_run}: no model.keras there: train it first")
    trained = json.loads((earlier_run / "fit.json").read_text())
    if trained["labels"] != labels:
        raise StreamerError(
            f"--init-from {earlier_run}: its labels {trained['labels']} differ from this "
            f"run's {labels}: warm starts need the same labels"
        )
    weights = keras.saving.load_model(source, compile=False).get_weights()
    if [w.shape for w in weights] != [w.shape for w in model.get_weights()]:
        raise StreamerError(
            f"--init-from {earlier_run}: its CNN has other sizes (see its config.json): "
            "prepare this run with the same --filters and --embedding-size"
        )
    model.set_weights(weights)
    kept = (
        "command", "epochs_run", "backend", "device", "train_minutes", "best_val_accuracy",
        "init_from",
    )  # fmt: skip
    return {"run": str(earlier_run), **{k: trained[k] for k in kept if k in trained}}


# --- evaluate ----------------------------------------------------------------------------


@dataclass
class Run:
    """What a fit left in its run folder."""

    folder: Path
    config: dict[str, Any]
    spec: FeatureSpec
    labels: list[str]
    split: Split

    @classmethod
    def load(cls, folder: Path) -> Run:
        if not (folder / "model.keras").is_file():
            raise StreamerError(f"{folder}: no trained model here: run `streamer-train fit` first")
        config = json.loads((folder / "config.json").read_text())
        dataset = load_dataset(config["data"])
        return cls(
            folder=folder,
            config=config,
            spec=FeatureSpec.load(folder / "spec.json"),
            labels=json.loads((folder / "fit.json").read_text())["labels"],
            split=read_split_file(folder / "split.json", dataset.tracks),
        )

    def keras_model(self) -> Any:
        import keras

        return keras.saving.load_model(self.folder / "model.keras", compile=False)


def evaluate(run_folder: Path, *, cache_root: Path, workers: int = 2) -> dict[str, Any]:
    """Test-split metrics, clean and through the fixed room chain, and the baseline."""
    from training import augment
    from training.evaluate import (
        baseline_accuracy,
        evaluate_predictions,
        fit_baseline,
        format_summary,
        save_confusion_matrix,
        save_training_curves,
    )

    run = Run.load(run_folder)
    spec, labels, test = run.spec, run.labels, [t for t in run.split.test if t.label in run.labels]
    if not test:
        raise StreamerError(f"{run_folder}: the test split is empty: nothing to evaluate")
    jobs = [(t, variant) for t in test for variant in ("clean", "eval-room")]
    frames, _ = extract_features(jobs, cache_root=cache_root, spec=spec, workers=workers)
    model = run.keras_model()
    groups = {t.key: t.group for t in test}
    metrics: dict[str, Any] = {}
    for condition, variant in (("clean", "clean"), ("room", "eval-room")):
        patches = gather_patches(
            test, frames, variants=[variant], labels=labels, spec=spec,
            hop_frames=spec.patch_frames,
        )  # fmt: skip
        probabilities = np.asarray(
            model.predict(model_input(patches.x, spec), batch_size=64, verbose=0)[0]
        )
        evaluation = evaluate_predictions(
            probabilities=probabilities, patch_labels=patches.y, patch_tracks=patches.track,
            labels=labels, track_groups=groups, seed=run.config["seed"],
        )  # fmt: skip
        metrics[condition] = evaluation.to_dict()
        save_confusion_matrix(
            evaluation,
            path_png=run_folder / f"confusion-{condition}.png",
            path_json=run_folder / f"confusion-{condition}.json",
        )
        console.print(f"[bold]test split, {condition}[/]")
        console.print(format_summary(evaluation))
    train = [t for t in run.split.train if t.label in labels]
    room = partial(augment.evaluation_room, sample_rate=spec.sample_rate)
    baseline_sets = {"train": (train, None), "clean": (test, None), "room": (test, room)}
    described = {}
    with progress_bar() as bar:
        task = bar.add_task("baseline", total=2 * len(test) + len(train), rate="")
        for name, (tracks, transform) in baseline_sets.items():
            described[name] = describe_tracks(tracks, spec=spec, transform=transform)
            bar.advance(task, len(tracks))
    baseline = fit_baseline(*described["train"])
    metrics["baseline"] = {
        "method": "MFCC and spectral statistics per track, standardised, RBF SVM",
        **{name: baseline_accuracy(baseline, *described[name]) for name in ("clean", "room")},
    }
    metrics["room_chain"] = asdict(augment.EVALUATION_ROOM)
    save_training_curves(
        json.loads((run_folder / "history.json").read_text()),
        path_png=run_folder / "training-curves.png",
    )
    write_json(run_folder / "metrics.json", metrics)
    return metrics


def describe_tracks(
    tracks: list[Track], *, spec: FeatureSpec, transform: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Baseline descriptors and labels of the tracks that decode (bad ones are skipped)."""
    from training.evaluate import track_descriptors

    rows, labels = [], []
    for track in tracks:
        try:
            y = read_audio(track.path, sample_rate=spec.sample_rate)
        except StreamerError:
            continue  # fit already reported it
        y = y if transform is None else transform(y)
        rows.append(track_descriptors(y, sample_rate=spec.sample_rate))
        labels.append(track.label)
    return np.stack(rows), np.array(labels)


# --- export ------------------------------------------------------------------------------


def export(run_folder: Path, onnx_path: Path) -> float:
    """Write the run's model as ONNX with metadata (metrics, split, provenance)."""
    from training.export import export_model

    run = Run.load(run_folder)
    metrics_file = run_folder / "metrics.json"
    if not metrics_file.is_file():
        raise StreamerError(f"{run_folder}: not evaluated yet: run `streamer-train evaluate`")
    rng = np.random.default_rng(0)
    check = rng.standard_normal((8, run.spec.n_mels, run.spec.patch_frames, 1))
    fit_info = json.loads((run_folder / "fit.json").read_text())
    return export_model(
        run.keras_model(),
        onnx_path,
        labels=run.labels,
        spec=run.spec,
        check_inputs=check,
        extra={
            "metrics": json.loads(metrics_file.read_text()),
            "split": json.loads((run_folder / "split-summary.json").read_text()),
            "training": {
                "config": run.config,
                "command": fit_info["command"],
                "train_patches": fit_info["train_patches"],
                "epochs": fit_info["epochs"],
                "epochs_run": fit_info.get("epochs_run", fit_info["epochs"]),
                **{
                    key: fit_info[key]
                    for key in ("backend", "device", "train_minutes", "init_from", "note")
                    if key in fit_info
                },
            },
            "corpus": describe_dataset(Path(run.config["data"])),
            "versions": package_versions(),
        },
    )


PLOTS = ("confusion-clean.png", "confusion-room.png", "training-curves.png")


def publish_card(run_folder: Path, onnx_path: Path) -> Path:
    """Copy the run's plots beside the model and write the model card there."""
    from training.card import write_card

    for name in PLOTS:
        shutil.copyfile(run_folder / name, onnx_path.parent / name)
    return write_card(onnx_path, images=list(PLOTS))


DESCRIBED_COLUMNS = ("soundfont", "library")  # manifest columns worth listing on the card


def describe_dataset(source: Path) -> dict[str, Any]:
    """What the model was trained on, in a few numbers, for its metadata and card."""
    dataset = load_dataset(source)
    columns = {
        column: sorted({t.meta[column] for t in dataset.tracks if column in t.meta})
        for column in DESCRIBED_COLUMNS
    }
    return {
        "source": source.name,
        "tracks": len(dataset.tracks),
        "labels": len(dataset.labels),
        "groups": len({t.group for t in dataset.tracks}),
        "per_label": dict(Counter(t.label for t in dataset.tracks)),
        "columns": {k: v for k, v in columns.items() if v},
    }
