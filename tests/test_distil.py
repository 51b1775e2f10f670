"""Distillation: the student starts as the shipped CNN, learns the teacher's view, and its
lessons are what the chain saw (`training.distil`, `training.unlabelled`)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile

from streamer.analysis.fusion import GenreFusion, shipped_fusion_path
from streamer.analysis.model import GenreModel, shipped_model_path
from tests.conftest import render_genre

pytest.importorskip("keras")


def test_the_student_rebuilt_from_onnx_is_the_shipped_cnn() -> None:
    from training.distil import keras_from_onnx

    model = GenreModel(shipped_model_path())
    student = keras_from_onnx(shipped_model_path(), labels=model.labels)
    inputs = np.random.default_rng(0).normal(0.0, 1.0, (4, 128, 130, 1)).astype(np.float32)
    probabilities, embedding = model.run_batches(
        "mel", inputs, ["probabilities", "embedding"], batch=4
    )
    ours = student.predict_on_batch(inputs)
    assert np.abs(np.asarray(ours[0]) - probabilities).max() < 1e-4
    assert np.abs(np.asarray(ours[1]) - embedding).max() < 1e-4


def test_the_student_learns_what_the_teacher_decides() -> None:
    """Made-up lessons on which the tags say classical while the CNN hesitates: the student,
    which starts by calling these noise patches something else, comes to call them classical."""
    from training.distil import LabelledClips, Lessons, fit_student, teacher_targets

    fusion = GenreFusion.load(shipped_fusion_path())
    rng = np.random.default_rng(1)
    n = 96
    inputs = rng.normal(0.0, 1.0, (n, 128, 130, 1)).astype(np.float16)
    cnn = np.full((n, len(fusion.cnn_labels)), 1 / len(fusion.cnn_labels))
    tags = np.zeros((n, len(fusion.tag_labels)))
    tags[:, [fusion.tag_labels.index(t) for t in fusion.mapping["classical"]]] = 0.9
    assert (
        teacher_targets(fusion, cnn, tags).argmax(axis=1) == fusion.labels.index("classical")
    ).all()
    real = Lessons(inputs, cnn, tags, np.arange(n) // 4)
    synthetic = LabelledClips(
        Lessons(inputs[:8], cnn[:8], tags[:8], np.zeros(8, int)),
        np.eye(len(fusion.labels), dtype=np.float32)[np.zeros(8, int)],
        ["blues"] * 8,
    )
    student, log = fit_student(
        real=real, tracks=[f"track {c // 2}" for c in range(n // 4)], synthetic=synthetic,
        held_out=synthetic, fusion=fusion, model=shipped_model_path(), synthetic_weight=0.1,
        epochs=3, learning_rate=3e-3,
    )  # fmt: skip
    assert log[0]["agreement_kept_out_tracks"] < 0.5
    assert log[-1]["agreement_kept_out_tracks"] == 1.0
    probabilities = np.asarray(student.predict_on_batch(inputs.astype(np.float32))[0])
    assert probabilities.argmax(axis=1).tolist() == [fusion.labels.index("classical")] * n


def test_lessons_are_the_patches_the_chain_gave_its_cnn(tmp_path: Path) -> None:
    from training.distil import collect_lessons

    rng = np.random.default_rng(2)
    with (tmp_path / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["file"])
        writer.writeheader()
        for k, genre in enumerate(("tones", "noise")):
            audio = np.concatenate([render_genre(genre, rng) for _ in range(3)])  # 9 s
            soundfile.write(tmp_path / f"{k}.wav", audio, 22050)
            writer.writerow({"file": f"{k}.wav"})
    every = collect_lessons(tmp_path / "manifest.csv", model=shipped_model_path(), every=1,
                            with_tags=False)  # fmt: skip
    tagged = collect_lessons(tmp_path / "manifest.csv", model=shipped_model_path(), every=2,
                             with_tags=True)  # fmt: skip
    model = GenreModel(shipped_model_path())
    probabilities, _ = model.run_batches(
        "mel", every.inputs.astype(np.float32), ["probabilities", "embedding"], batch=64
    )
    # float16 inputs: the CNN's view of them is its view of the chain's patches, to rounding
    assert np.abs(probabilities - every.cnn).max() < 1e-2
    assert (probabilities.argmax(axis=1) == every.cnn.argmax(axis=1)).mean() > 0.95
    assert np.isnan(every.tags).all()
    hops_per_clip = np.bincount(every.clip)
    assert hops_per_clip.tolist() == [hops_per_clip[0]] * 2 and hops_per_clip[0] >= 12
    # with the taggers: only hops with a tag hop (from 3 s on), every second one
    assert 0 < np.bincount(tagged.clip)[0] < hops_per_clip[0] / 2
    assert not np.isnan(tagged.tags).any()


def test_unlabelled_excerpts_are_cut_from_whole_tracks(tmp_path: Path) -> None:
    from training.unlabelled import cut_excerpts

    rate = 44100
    t = np.arange(95 * rate) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    tone[56 * rate :] = 0.0  # the third excerpt (56.25 s to 86.25 s) is silent
    stereo = np.stack([tone, tone], axis=1)
    soundfile.write(
        tmp_path / "song.flac", stereo, rate
    )  # libsndfile's Vorbis encoder crashes on long writes
    (tmp_path / "clips").mkdir()
    rows = cut_excerpts(tmp_path / "song.flac", tmp_path, name="pkg__0", track="pkg/song.flac")
    assert [r["file"] for r in rows] == ["clips/pkg__0__0.wav", "clips/pkg__0__1.wav"]
    assert {r["source"] for r in rows} == {"pkg"}
    audio, got_rate = soundfile.read(tmp_path / rows[0]["file"])
    assert got_rate == 22050 and audio.ndim == 1 and len(audio) == 30 * 22050
    (tmp_path / "broken.ogg").write_bytes(b"OggS not really")
    assert cut_excerpts(tmp_path / "broken.ogg", tmp_path, name="x", track="pkg/broken.ogg") == []
