"""The model card: `models/README.md` written from the model's own metadata.

Every figure on the card is read from the metadata JSON that the export wrote beside the
ONNX file, so the card cannot drift from the model it describes. The prose around the
figures (limits, intended use) is fixed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamer.analysis.model import metadata_path, read_model_info

LIMITS = """\
- **Synthetic training data.** Every clip is General MIDI rendered from MMA grooves and
  music21 scores: no vocals, no real recordings, no production effects beyond what the room
  augmentation simulates. Real music, above all vocal pop, hip-hop and anything produced,
  will score lower than the figures above; treat them as an upper bound.
- **Held-out grooves still share material.** Drum-only groove families get bass and chord
  parts from a small per-genre pool, so a held-out family can share those parts with
  training; MMA's arrangements of reggae, hip-hop and metal are mostly drum patterns.
- **Ten GTZAN genre names**, one label per 3 s patch: a blend or an unlisted genre gets the
  nearest of the ten, with a lower confidence.
- **Room figures** use one fixed simulated room; real rooms, microphones and PA systems vary
  far more."""


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _accuracy_row(name: str, metrics: dict[str, Any], baseline: float) -> str:
    interval = metrics["track_accuracy_interval"]
    return (
        f"| {name} | {_pct(metrics['track']['accuracy'])} "
        f"({_pct(interval['low'])} to {_pct(interval['high'])}) "
        f"| {_pct(metrics['segment']['accuracy'])} | {_pct(baseline)} |"
    )


def _describe_corpus(corpus: dict[str, Any]) -> str:
    text = f"{corpus['tracks']} clips of {corpus['labels']} labels in {corpus['groups']} groups"
    for column, values in corpus.get("columns", {}).items():
        text += f"; {column}: {', '.join(values)}"
    return text + f" (`{corpus['source']}`)."


def render_card(onnx_path: Path, *, images: list[str]) -> str:
    """The card's Markdown for the model at `onnx_path`."""
    info = read_model_info(onnx_path)
    extra = info.extra
    metrics, split, training = extra["metrics"], extra["split"], extra["training"]
    clean, room, baseline = metrics["clean"], metrics["room"], metrics["baseline"]
    spec = info.spec
    interval = clean["track_accuracy_interval"]
    lines = [
        "# streamer default genre model",
        "",
        f"`{onnx_path.name}`: a small CNN that tags 3 s of audio with one of "
        f"{len(info.labels)} genres ({', '.join(info.labels)}) and gives a "
        f"{info.embedding_size}-value embedding for recommendations. ONNX opset "
        f"{extra['export']['opset']}, {onnx_path.stat().st_size / 1e6:.2f} MB; onnxruntime "
        f"reproduces Keras within {extra['export']['max_abs_difference']:.1g}. "
        "Metadata (labels, features, metrics, provenance, sha256): "
        f"`{metadata_path(onnx_path).name}`.",
        "",
        "What `streamer listen` and `streamer tag` show by default is not this model alone but "
        "one decision from it and musicnn's taggers, which were trained on real recordings: "
        "`fusion.md` gives that decision's figures on real recordings beside the synthetic "
        "ones below.",
        "",
        "## Figures on the held-out test split",
        "",
        f"Test side: {split['test_tracks']} clips of {split['test_groups']} groups "
        "(groove families) that training never saw"
        + (
            f", selected by `{'='.join(split['test_only'])}`: rendered only with a soundfont "
            "that training never heard. "
            if split["test_only"]
            else ". "
        )
        + "Track accuracy is the "
        "vote of a clip's patches (mean probability); the interval is a "
        f"{interval['confidence']:.0%} bootstrap over {interval['n_units']} "
        f"{interval['unit']}s, because whole grooves pass or fail together.",
        "",
        "| condition | track accuracy (interval) | segment accuracy | baseline (track) |",
        "| --- | --- | --- | --- |",
        _accuracy_row("clean", clean, baseline["clean"]),
        _accuracy_row("room chain", room, baseline["room"]),
        "",
        f"Baseline: {baseline['method']}, same split. Room chain: "
        + ", ".join(f"{k}={v}" for k, v in metrics["room_chain"].items())
        + ".",
        "",
        "Per-class F1 (track level):",
        "",
        "| genre | F1 clean | F1 room | test clips |",
        "| --- | --- | --- | --- |",
    ]
    for label in info.labels:
        c, r = clean["track"]["per_class"][label], room["track"]["per_class"][label]
        lines.append(f"| {label} | {c['f1']:.2f} | {r['f1']:.2f} | {c['support']} |")
    lines += ["", *[f"![{name}]({name})" for name in images], ""]
    lines += [
        "## Features and model",
        "",
        f"Log-mel at {spec.sample_rate} Hz, n_fft {spec.n_fft}, hop {spec.hop_length}, "
        f"{spec.n_mels} mel bands, patches of {spec.patch_frames} frames "
        f"({spec.patch_seconds:.2f} s), decibels against a fixed reference, per-band "
        "standardisation with the training set's statistics (stored in the metadata). CNN: "
        f"Conv2D 3x3 + ReLU, BatchNormalization, MaxPooling2D 2x2, Dropout blocks with "
        f"filters {training['config']['cnn']['filters']}, Flatten, a "
        f"{info.embedding_size}-unit embedding layer, Dense softmax.",
        "",
        "## Training",
        "",
        f"Data: {_describe_corpus(extra['corpus'])}",
        "",
        f"Split: {split['train_tracks']} training clips ({split['train_groups']} families), "
        f"{split['valid_tracks']} validation clips ({split['valid_groups']} families); "
        f"{training['train_patches']} training patches per epoch including room-simulated "
        "copies, with spectrogram augmentation (gain, shift, mixing, a random EQ curve, "
        f"masks); {_epochs(training)}{_trained_on(training)}{_started_from(training)}.",
        *(["", training["note"]] if "note" in training else []),
        "",
        f"Command: `{training['command']}`. The whole model is reproduced from a clean clone "
        "by `scripts/train-default-model.sh` (corpus, fit, evaluate, export, this card).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in extra["versions"].items()) + ".",
        "",
        "## Limits",
        "",
        LIMITS,
        "",
    ]
    return "\n".join(lines)


def _epochs(training: dict) -> str:
    """How long it trained: a time budget may stop a run before its planned epochs."""
    planned, run = training.get("epochs"), training.get("epochs_run", training.get("epochs"))
    return f"{run} epochs" if run == planned else (
        f"{run} of {planned} planned epochs (stopped by its time budget)"
    )  # fmt: skip


def _started_from(training: dict) -> str:
    """The chain of warm starts behind a model, earliest last."""
    if "init_from" not in training:
        return ""
    earlier = training["init_from"]
    return (
        f", starting from the weights of a model trained {earlier['epochs_run']} epochs"
        f"{_trained_on(earlier)} by `{earlier['command']}`{_started_from(earlier)}"
    )


def _trained_on(training: dict) -> str:
    if "device" not in training:
        return ""
    minutes = training.get("train_minutes")
    took = f" in {minutes:g} minutes" if minutes is not None else ""
    return f", trained with Keras ({training['backend']}) on {training['device']}{took}"


def write_card(onnx_path: Path, *, images: list[str]) -> Path:
    """Write ``README.md`` beside the model and return its path."""
    path = onnx_path.parent / "README.md"
    path.write_text(render_card(onnx_path, images=images))
    return path
