"""Evaluation: exact metrics on hand-built cases, group bootstrap, plots, JSON, baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from rich.console import Console

from training.evaluate import (
    baseline_accuracy,
    evaluate_predictions,
    fit_baseline,
    format_summary,
    save_confusion_matrix,
    save_training_curves,
    track_descriptors,
)

LABELS = ["a", "b", "c"]

# Track t1 (a): 2 of 3 patches right, but the mean favours b -> wrong by vote.
# Track t2 (b): both patches right. Track t3 (c): 1 of 2 patches right, right by vote.
PROBABILITIES = np.array(
    [
        [0.6, 0.4, 0.0],
        [0.6, 0.4, 0.0],
        [0.0, 1.0, 0.0],
        [0.1, 0.8, 0.1],
        [0.2, 0.7, 0.1],
        [0.3, 0.0, 0.7],
        [0.6, 0.1, 0.3],
    ]
)
PATCH_LABELS = np.array([0, 0, 0, 1, 1, 2, 2])
PATCH_TRACKS = np.array(["t1", "t1", "t1", "t2", "t2", "t3", "t3"])


def hand_built(**kwargs: object):
    return evaluate_predictions(
        probabilities=PROBABILITIES,
        patch_labels=PATCH_LABELS,
        patch_tracks=PATCH_TRACKS,
        labels=LABELS,
        **kwargs,
    )


def test_hand_built_metrics_are_exact() -> None:
    ev = hand_built()
    assert ev.segment.accuracy == pytest.approx(5 / 7)
    assert ev.track.accuracy == pytest.approx(2 / 3)
    np.testing.assert_array_equal(ev.segment.confusion, [[2, 1, 0], [0, 2, 0], [1, 0, 1]])
    np.testing.assert_array_equal(ev.track.confusion, [[0, 1, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(ev.segment.precision, [2 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(ev.segment.recall, [2 / 3, 1.0, 0.5])
    np.testing.assert_allclose(ev.segment.f1, [2 / 3, 0.8, 2 / 3])
    # Class a is never predicted for a track: precision defined as 0, not NaN.
    np.testing.assert_allclose(ev.track.precision, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(ev.track.recall, [0.0, 1.0, 1.0])
    np.testing.assert_allclose(ev.track.f1, [0.0, 2 / 3, 1.0])
    np.testing.assert_array_equal(ev.segment.support, [3, 2, 2])
    np.testing.assert_array_equal(ev.track.support, [1, 1, 1])
    assert (ev.n_patches, ev.segment.count, ev.track.count) == (7, 7, 3)
    assert list(ev.track_ids) == ["t1", "t2", "t3"]
    np.testing.assert_array_equal(ev.track_predicted, [1, 1, 2])


def test_confusion_rows_sum_to_support() -> None:
    rng = np.random.default_rng(1)
    n, k = 200, 4
    labels_per_track = rng.integers(0, k, size=25)
    tracks = rng.integers(0, 25, size=n)
    ev = evaluate_predictions(
        probabilities=rng.dirichlet(np.ones(k), size=n),
        patch_labels=labels_per_track[tracks],
        patch_tracks=tracks,
        labels=[f"g{i}" for i in range(k)],
    )
    for metrics in (ev.segment, ev.track):
        np.testing.assert_array_equal(metrics.confusion.sum(axis=1), metrics.support)
        np.testing.assert_allclose(np.trace(metrics.confusion) / metrics.count, metrics.accuracy)
        rows = metrics.normalized_confusion.sum(axis=1)
        np.testing.assert_allclose(rows[metrics.support > 0], 1.0)
    assert ev.segment.count == n
    assert ev.track.count == len(np.unique(tracks))


def test_vote_is_mean_probability_not_patch_majority_and_ties_go_low() -> None:
    # Two patches mildly for class 0, one confident patch for class 1: the mean picks 1.
    # Second track: exact tie between classes 1 and 2 -> class 1.
    ev = evaluate_predictions(
        probabilities=[[0.55, 0.45], [0.55, 0.45], [0.0, 1.0], [0.5, 0.5]],
        patch_labels=np.array([1, 1, 1, 0]),
        patch_tracks=np.array([7, 7, 7, 8]),
        labels=["x", "y"],
    )
    np.testing.assert_array_equal(ev.track_predicted, [1, 0])
    assert ev.track.accuracy == 1.0
    assert ev.segment.accuracy == pytest.approx(2 / 4)


def test_patch_order_does_not_matter() -> None:
    order = np.random.default_rng(3).permutation(len(PATCH_LABELS))
    shuffled = evaluate_predictions(
        probabilities=PROBABILITIES[order],
        patch_labels=PATCH_LABELS[order],
        patch_tracks=PATCH_TRACKS[order],
        labels=LABELS,
    )
    assert shuffled.to_dict() == hand_built().to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"patch_labels": np.array([0, 0, 1, 1, 1, 2, 2])}, "two classes"),
        ({"labels": ["a", "b"]}, "probabilities must be"),
        ({"labels": ["a", "a", "c"]}, "distinct"),
        ({"patch_labels": np.array([0, 0, 0, 1, 1, 2, 3])}, r"\[0, 3\)"),
        ({"patch_tracks": PATCH_TRACKS[:-1]}, "one entry"),
        ({"track_groups": {"t1": "f", "t2": "f"}}, "no group"),
    ],
)
def test_invalid_inputs_are_rejected(change: dict, message: str) -> None:
    arguments = {
        "probabilities": PROBABILITIES,
        "patch_labels": PATCH_LABELS,
        "patch_tracks": PATCH_TRACKS,
        "labels": LABELS,
        **change,
    }
    with pytest.raises(ValueError, match=message):
        evaluate_predictions(**arguments)


def bootstrap_case(track_groups: dict[int, str] | None):
    """40 one-patch tracks in 8 families of 5; families 0-4 right, 5-7 wrong: 25/40."""
    correct = np.repeat(np.arange(8) < 5, 5)
    labels = np.zeros(40, dtype=int)
    probabilities = np.where(correct[:, None], [[0.9, 0.1]], [[0.1, 0.9]])
    return evaluate_predictions(
        probabilities=probabilities,
        patch_labels=labels,
        patch_tracks=np.arange(40),
        labels=["x", "y"],
        track_groups=track_groups,
    )


def test_group_bootstrap_is_wider_than_track_bootstrap() -> None:
    by_family = bootstrap_case({t: f"family{t // 5}" for t in range(40)})
    by_track = bootstrap_case(None)
    assert by_family.track.accuracy == by_track.track.accuracy == pytest.approx(25 / 40)
    for ev in (by_family, by_track):
        ci = ev.track_interval
        assert ci.low <= ev.track.accuracy <= ci.high
        assert ci.confidence == 0.95
    assert (by_family.track_interval.unit, by_family.track_interval.n_units) == ("group", 8)
    assert (by_track.track_interval.unit, by_track.track_interval.n_units) == ("track", 40)
    family_width = by_family.track_interval.high - by_family.track_interval.low
    track_width = by_track.track_interval.high - by_track.track_interval.low
    # Binomial 95% width for p=0.625, n=40 is about 0.30; 8 all-or-nothing families ~0.65.
    assert 0.2 < track_width < 0.4
    assert family_width > 1.5 * track_width


def test_bootstrap_is_seeded_and_one_track_per_group_equals_tracks() -> None:
    singletons = bootstrap_case({t: f"solo{t:02d}" for t in range(40)})
    assert singletons.track_interval.unit == "group"
    first, second = bootstrap_case(None), bootstrap_case(None)
    assert first.track_interval == second.track_interval
    lows_highs = (singletons.track_interval.low, singletons.track_interval.high)
    assert lows_highs == (first.track_interval.low, first.track_interval.high)


def test_to_dict_is_json_and_round_trips() -> None:
    ev = hand_built(track_groups={"t1": "f1", "t2": "f1", "t3": "f2"})
    data = ev.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["counts"] == {"patches": 7, "tracks": 3, "bootstrap_units": 2}
    assert data["track"]["per_class"]["b"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "support": 1,
    }
    assert data["segment"]["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert data["tracks"][0] == {"track": "t1", "true": "a", "predicted": "b"}
    assert data["track_accuracy_interval"]["unit"] == "group"


def assert_png(path: Path, *, min_width: int, min_height: int) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    height, width = image.shape[:2]
    assert width >= min_width and height >= min_height
    assert width < 3000 and height < 3000
    assert image[..., :3].std() > 0.01  # something was drawn


@pytest.mark.parametrize("level", ["track", "segment"])
def test_save_confusion_matrix(tmp_path: Path, level: str) -> None:
    ev = hand_built()
    png, js = tmp_path / "cm.png", tmp_path / "cm.json"
    save_confusion_matrix(ev, path_png=png, path_json=js, level=level)
    data = json.loads(js.read_text())
    metrics = ev.level(level)
    assert data["labels"] == LABELS
    assert data["level"] == level
    assert data["accuracy"] == pytest.approx(metrics.accuracy)
    np.testing.assert_array_equal(data["matrix"], metrics.confusion)
    np.testing.assert_allclose(data["normalized"], metrics.normalized_confusion)
    np.testing.assert_allclose(np.sum(data["normalized"], axis=1), 1.0)
    assert_png(png, min_width=300, min_height=300)


def test_save_confusion_matrix_rejects_unknown_level(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="level"):
        save_confusion_matrix(
            hand_built(), path_png=tmp_path / "x.png", path_json=tmp_path / "x.json", level="clip"
        )


@pytest.mark.parametrize(
    "history",
    [
        {
            "loss": [1.2, 0.8, 0.6],
            "val_loss": [1.3, 1.0, 0.9],
            "accuracy": [0.4, 0.6, 0.7],
            "val_accuracy": [0.35, 0.5, 0.55],
        },
        {"loss": [1.0, 0.5], "lr": [0.001, 0.001]},
    ],
)
def test_save_training_curves(tmp_path: Path, history: dict[str, list[float]]) -> None:
    path = tmp_path / "curves.png"
    save_training_curves(history, path_png=path)
    assert_png(path, min_width=600, min_height=250)


def test_save_training_curves_needs_a_known_series(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="none of"):
        save_training_curves({"lr": [0.1]}, path_png=tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_format_summary_lists_classes_and_accuracies() -> None:
    console = Console(record=True, width=160)
    console.print(format_summary(hand_built(), LABELS))
    text = console.export_text()
    for expected in ("a", "b", "c", "macro avg", "track accuracy 66.7% of 3", "71.4% of 7"):
        assert expected in text
    with pytest.raises(ValueError, match="labels"):
        format_summary(hand_built(), ["a", "b"])


RATE = 16000


def tone(rng: np.random.Generator) -> np.ndarray:
    """One second of a low sine (60-250 Hz) at a random level."""
    t = np.arange(RATE) / RATE
    return rng.uniform(0.1, 0.8) * np.sin(
        2 * np.pi * rng.uniform(60, 250) * t + rng.uniform(0, 2 * np.pi)
    )


def bursts(rng: np.random.Generator) -> np.ndarray:
    """One second of white-noise bursts gated on and off."""
    gate = np.repeat(rng.random(20) < 0.5, RATE // 20).astype(float)
    return rng.uniform(0.1, 0.8) * gate * rng.standard_normal(RATE)


def synthetic_set(seed: int, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    signals = [make(rng) for make in (tone, bursts) for _ in range(per_class)]
    features = np.stack([track_descriptors(y, sample_rate=RATE) for y in signals])
    return features, np.repeat([0, 1], per_class)


def test_baseline_separates_tones_from_noise() -> None:
    features, labels = synthetic_set(seed=10, per_class=9)
    pipeline = fit_baseline(features, labels, c_grid=(0.5, 5.0))
    assert pipeline.named_steps["svc"].C in (0.5, 5.0)
    test_features, test_labels = synthetic_set(seed=11, per_class=8)
    assert baseline_accuracy(pipeline, test_features, test_labels) >= 0.9
    # Deterministic: refitting gives the same predictions.
    again = fit_baseline(features, labels, c_grid=(0.5, 5.0))
    np.testing.assert_array_equal(again.predict(test_features), pipeline.predict(test_features))


def test_baseline_accuracy_counts_mistakes() -> None:
    # Two tracks per class: too few for the C search, so the default C is used.
    features, labels = synthetic_set(seed=12, per_class=2)
    pipeline = fit_baseline(features, labels)
    assert pipeline.named_steps["svc"].C == 1.0
    assert baseline_accuracy(pipeline, features, labels) == 1.0
    assert baseline_accuracy(pipeline, features, 1 - labels) == 0.0


def test_track_descriptors_shape_and_silence() -> None:
    rng = np.random.default_rng(0)
    y = rng.standard_normal(RATE).astype(np.float32)
    first = track_descriptors(y, sample_rate=RATE)
    assert first.shape == (2 * (20 + 13),)
    np.testing.assert_array_equal(first, track_descriptors(y, sample_rate=RATE))
    assert track_descriptors(y, sample_rate=RATE, n_mfcc=13).shape == (2 * (13 + 13),)
    assert np.isfinite(track_descriptors(np.zeros(RATE), sample_rate=RATE)).all()
