"""Evaluation of the genre model: patch and track metrics, plots, a hand-crafted baseline.

The CNN scores ~3 s patches, but a listener judges tracks, so every metric is reported at
both levels: *segment* (one row per patch) and *track* (one vote per track). The track
accuracy carries a bootstrap interval over the units that were held out together: the
training side holds out whole groove families, and the tracks of one family share
arrangement and sound, so they tend to pass or fail together. Resampling single tracks would
treat them as independent and understate the uncertainty; resampling families does not.

The baseline (MFCC and spectral statistics per track, standardised, RBF SVM) is the number
the CNN has to beat: if it does not, the network has learned nothing the classic GTZAN
descriptors do not already capture.

Plots use matplotlib's `Figure` with the Agg canvas directly, never `pyplot`, so no global
backend state is touched and nothing needs a display.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import librosa
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from rich.table import Table
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

Level = Literal["segment", "track"]


@dataclass(frozen=True)
class LevelMetrics:
    """Metrics at one level (patches or tracks); arrays are indexed by class.

    Attributes
    ----------
    accuracy : float
        Fraction of items whose predicted class is the true one.
    precision, recall, f1 : np.ndarray
        Per class; 0 where undefined (no prediction of, or no item in, the class), so a
        class the model never predicts shows up as 0 rather than disappearing as NaN.
    support : np.ndarray
        Items per true class.
    confusion : np.ndarray
        Counts, rows = true class, columns = predicted class.
    """

    accuracy: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    confusion: np.ndarray

    @classmethod
    def from_predictions(
        cls, *, true: np.ndarray, predicted: np.ndarray, n_classes: int
    ) -> LevelMetrics:
        """Compute every metric over the full class list, present in the data or not."""
        classes = np.arange(n_classes)
        precision, recall, f1, support = precision_recall_fscore_support(
            true, predicted, labels=classes, zero_division=0
        )
        return cls(
            accuracy=float(accuracy_score(true, predicted)),
            precision=precision,
            recall=recall,
            f1=f1,
            support=support,
            confusion=confusion_matrix(true, predicted, labels=classes),
        )

    @property
    def count(self) -> int:
        """Number of items evaluated."""
        return int(self.support.sum())

    @property
    def normalized_confusion(self) -> np.ndarray:
        """Rows divided by their support (recall on the diagonal); empty rows stay 0."""
        totals = self.confusion.sum(axis=1, keepdims=True)
        return np.divide(
            self.confusion, totals, out=np.zeros(self.confusion.shape), where=totals > 0
        )

    def to_dict(self, labels: Sequence[str]) -> dict[str, Any]:
        """JSON-ready form, per-class metrics keyed by label."""
        return {
            "accuracy": self.accuracy,
            "count": self.count,
            "per_class": {
                label: {
                    "precision": float(self.precision[i]),
                    "recall": float(self.recall[i]),
                    "f1": float(self.f1[i]),
                    "support": int(self.support[i]),
                }
                for i, label in enumerate(labels)
            },
            "confusion": self.confusion.astype(int).tolist(),
        }


@dataclass(frozen=True)
class BootstrapInterval:
    """Percentile bootstrap interval of the track accuracy.

    Attributes
    ----------
    low, high : float
        Interval bounds.
    confidence : float
        Nominal coverage, e.g. 0.95.
    unit : {"group", "track"}
        What was resampled with replacement.
    n_units : int
        Distinct units available; with one unit the interval has zero width.
    n_resamples, seed : int
        Bootstrap size and the seed that makes the interval reproducible.
    """

    low: float
    high: float
    confidence: float
    unit: Literal["group", "track"]
    n_units: int
    n_resamples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "unit": self.unit,
            "n_units": self.n_units,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Evaluation:
    """Everything `evaluate_predictions` measured, in one object for reports and plots.

    Attributes
    ----------
    labels : tuple of str
        Class names; class ``i`` is ``labels[i]``.
    segment, track : LevelMetrics
        Patch-level and track-level metrics.
    track_interval : BootstrapInterval
        Uncertainty of ``track.accuracy``.
    track_ids : np.ndarray
        Sorted distinct track ids; ``track_true`` and ``track_predicted`` follow this order.
    track_true, track_predicted : np.ndarray
        Class index per track, true and by vote.
    n_patches : int
        Patches evaluated.
    """

    labels: tuple[str, ...]
    segment: LevelMetrics
    track: LevelMetrics
    track_interval: BootstrapInterval
    track_ids: np.ndarray
    track_true: np.ndarray
    track_predicted: np.ndarray
    n_patches: int

    def level(self, name: Level) -> LevelMetrics:
        """The metrics of level ``"segment"`` or ``"track"``."""
        if name not in ("segment", "track"):
            raise ValueError(f"level must be 'segment' or 'track', not {name!r}")
        return self.segment if name == "segment" else self.track

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: plain dicts, lists, str, int and float only."""
        return {
            "labels": list(self.labels),
            "counts": {
                "patches": self.n_patches,
                "tracks": len(self.track_ids),
                "bootstrap_units": self.track_interval.n_units,
            },
            "segment": self.segment.to_dict(self.labels),
            "track": self.track.to_dict(self.labels),
            "track_accuracy_interval": self.track_interval.to_dict(),
            "tracks": [
                {
                    "track": _plain(track),
                    "true": self.labels[true],
                    "predicted": self.labels[predicted],
                }
                for track, true, predicted in zip(
                    self.track_ids, self.track_true, self.track_predicted, strict=True
                )
            ],
        }


def _plain(value: Any) -> Any:
    """A numpy scalar as the matching Python scalar, for JSON and dict look-ups."""
    return value.item() if isinstance(value, np.generic) else value


def evaluate_predictions(
    *,
    probabilities: np.ndarray,
    patch_labels: np.ndarray,
    patch_tracks: np.ndarray,
    labels: Sequence[str],
    track_groups: Mapping[Any, str] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Evaluation:
    """Score per-patch class probabilities at patch and track level.

    Track vote: the track's patch probabilities are averaged and the argmax of the mean is
    the track's prediction (ties go to the lower class index, as `np.argmax`). Averaging
    lets a few confident patches outweigh many hesitant ones, unlike a majority of patch
    argmaxes, and it is what the live analyser's smoothing approximates.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_patches, n_classes)
        Model output per patch (softmax rows).
    patch_labels : np.ndarray of int, shape (n_patches,)
        True class index per patch; all patches of a track must agree.
    patch_tracks : np.ndarray, shape (n_patches,)
        Track id per patch (str or int).
    labels : sequence of str
        Class names, ``n_classes`` of them, distinct.
    track_groups : mapping, optional
        Track id -> group (groove family). Given, the interval resamples whole groups,
        because tracks of one family are not independent; otherwise it resamples tracks.
    confidence : float
        Coverage of the percentile bootstrap interval.
    n_resamples, seed : int
        Bootstrap size and seed; the same inputs always give the same interval.

    Returns
    -------
    Evaluation
    """
    probabilities = np.asarray(probabilities, dtype=float)
    patch_labels = np.asarray(patch_labels)
    patch_tracks = np.asarray(patch_tracks)
    labels = tuple(labels)
    n_classes = len(labels)
    _check_inputs(probabilities, patch_labels, patch_tracks, labels)

    track_ids, track_of_patch = np.unique(patch_tracks, return_inverse=True)
    track_true = np.zeros(len(track_ids), dtype=int)
    track_true[track_of_patch] = patch_labels  # any patch's label; checked next
    mixed = track_true[track_of_patch] != patch_labels
    if mixed.any():
        raise ValueError(f"track {_plain(patch_tracks[mixed][0])!r} has patches of two classes")

    sums = np.zeros((len(track_ids), n_classes))
    np.add.at(sums, track_of_patch, probabilities)
    track_predicted = np.argmax(sums / np.bincount(track_of_patch)[:, None], axis=1)

    if track_groups is None:
        unit, unit_of_track = "track", np.arange(len(track_ids))
    else:
        missing = [_plain(t) for t in track_ids if _plain(t) not in track_groups]
        if missing:
            raise ValueError(f"track_groups has no group for tracks {missing[:5]}")
        groups = np.asarray([track_groups[_plain(t)] for t in track_ids])
        unit, unit_of_track = "group", np.unique(groups, return_inverse=True)[1]
    low, high = _cluster_bootstrap(
        track_true == track_predicted,
        unit_of_track,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )
    return Evaluation(
        labels=labels,
        segment=LevelMetrics.from_predictions(
            true=patch_labels, predicted=np.argmax(probabilities, axis=1), n_classes=n_classes
        ),
        track=LevelMetrics.from_predictions(
            true=track_true, predicted=track_predicted, n_classes=n_classes
        ),
        track_interval=BootstrapInterval(
            low=low,
            high=high,
            confidence=confidence,
            unit=unit,
            n_units=int(unit_of_track.max()) + 1,
            n_resamples=n_resamples,
            seed=seed,
        ),
        track_ids=track_ids,
        track_true=track_true,
        track_predicted=track_predicted,
        n_patches=len(patch_labels),
    )


def _check_inputs(
    probabilities: np.ndarray,
    patch_labels: np.ndarray,
    patch_tracks: np.ndarray,
    labels: tuple[str, ...],
) -> None:
    """Reject shapes and values that would otherwise give silently wrong metrics."""
    if probabilities.ndim != 2 or probabilities.shape[1] != len(labels):
        raise ValueError(
            f"probabilities must be (n_patches, {len(labels)}), not {probabilities.shape}"
        )
    if len(probabilities) == 0:
        raise ValueError("no patches to evaluate")
    if not np.isfinite(probabilities).all():
        raise ValueError("probabilities contain NaN or infinity")
    if patch_labels.shape != (len(probabilities),) or patch_tracks.shape != patch_labels.shape:
        raise ValueError("patch_labels and patch_tracks need one entry per probability row")
    if not np.issubdtype(patch_labels.dtype, np.integer):
        raise ValueError("patch_labels must be integer class indices")
    if patch_labels.min() < 0 or patch_labels.max() >= len(labels):
        raise ValueError(f"patch_labels must lie in [0, {len(labels)})")
    if len(set(labels)) != len(labels):
        raise ValueError("labels must be distinct")


def _cluster_bootstrap(
    correct: np.ndarray,
    unit_of_track: np.ndarray,
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, float]:
    """Percentile interval of the accuracy, resampling whole units with replacement.

    Each resample draws ``n_units`` units; its accuracy is its correct tracks over its
    tracks, so large groups weigh by their size, as in the point estimate.
    """
    n_units = int(unit_of_track.max()) + 1
    unit_correct = np.bincount(unit_of_track, weights=correct, minlength=n_units)
    unit_size = np.bincount(unit_of_track, minlength=n_units)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_units, np.full(n_units, 1 / n_units), size=n_resamples)
    accuracies = (draws @ unit_correct) / (draws @ unit_size)
    tail = (1 - confidence) / 2
    low, high = np.quantile(accuracies, [tail, 1 - tail])
    return float(low), float(high)


def save_confusion_matrix(
    evaluation: Evaluation,
    *,
    path_png: str | Path,
    path_json: str | Path,
    level: Level = "track",
) -> None:
    """Write one level's confusion matrix as JSON and as a PNG plot.

    The JSON holds ``labels``, ``level``, ``accuracy``, ``matrix`` (counts, rows = true)
    and ``normalized`` (rows divided by their support). The plot colours cells by the
    row-normalised value, so small classes read as clearly as large ones, and prints the
    count and percentage in each non-empty cell.
    """
    metrics = evaluation.level(level)
    normalized = metrics.normalized_confusion
    Path(path_json).write_text(
        json.dumps(
            {
                "labels": list(evaluation.labels),
                "level": level,
                "accuracy": metrics.accuracy,
                "matrix": metrics.confusion.astype(int).tolist(),
                "normalized": normalized.tolist(),
            },
            indent=2,
        )
    )

    n = len(evaluation.labels)
    side = max(4.0, 0.7 * n + 2.5)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(normalized, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of true class")
    for (row, col), count in np.ndenumerate(metrics.confusion):
        if count == 0:
            continue  # blank cells keep the errors that do occur easy to spot
        ax.text(
            col,
            row,
            f"{count}\n{normalized[row, col]:.0%}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if normalized[row, col] > 0.5 else "black",
        )
    ax.set_xticks(range(n), evaluation.labels, rotation=45, ha="right")
    ax.set_yticks(range(n), evaluation.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(_accuracy_text(evaluation, level))
    fig.savefig(path_png, dpi=100)


def _accuracy_text(evaluation: Evaluation, level: Level) -> str:
    """Accuracy and count; for tracks, the bootstrap interval on a second line."""
    metrics = evaluation.level(level)
    text = f"{level} accuracy {metrics.accuracy:.1%} of {metrics.count}"
    if level == "track":
        ci = evaluation.track_interval
        text += (
            f"\n{ci.confidence:.0%} CI {ci.low:.1%}-{ci.high:.1%} "
            f"(bootstrap over {ci.n_units} {ci.unit}s)"
        )
    return text


_CURVE_PANELS = (
    ("loss", ("loss", "val_loss")),
    ("accuracy", ("accuracy", "val_accuracy")),
)


def save_training_curves(history: Mapping[str, Sequence[float]], *, path_png: str | Path) -> None:
    """Plot a Keras ``History.history`` as two panels, loss and accuracy, per epoch.

    Any subset of ``loss``, ``val_loss``, ``accuracy`` and ``val_accuracy`` is drawn (other
    keys are ignored); a panel with none of its series says so instead of vanishing, so
    the figure always has the same layout.
    """
    if not any(history.get(key) for _, keys in _CURVE_PANELS for key in keys):
        raise ValueError("history has none of loss, val_loss, accuracy, val_accuracy")
    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (title, keys) in zip(fig.subplots(1, 2), _CURVE_PANELS, strict=True):
        drawn = [key for key in keys if history.get(key)]
        for key in drawn:
            values = history[key]
            ax.plot(range(1, len(values) + 1), values, marker=".", label=key)
        if drawn:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.savefig(path_png, dpi=100)


def track_descriptors(
    y: np.ndarray, *, sample_rate: int, n_mfcc: int = 20, n_fft: int = 2048, hop_length: int = 512
) -> np.ndarray:
    """Classic per-track descriptor vector (Tzanetakis-style) for the baseline.

    Mean and standard deviation over frames of: MFCCs, spectral centroid, bandwidth,
    rolloff, flatness, the 7 spectral-contrast bands, zero-crossing rate and RMS. All come
    from one magnitude STFT, so the vector is cheap and its length, ``2 * (n_mfcc + 13)``,
    depends only on ``n_mfcc``.

    Parameters
    ----------
    y : np.ndarray
        Mono signal.
    sample_rate : int
        Its rate in Hz.
    n_mfcc, n_fft, hop_length : int
        Analysis settings; keep them fixed across a comparison.

    Returns
    -------
    np.ndarray of float64, shape (2 * (n_mfcc + 13),)
    """
    y = np.asarray(y, dtype=np.float32)
    magnitude = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length))
    mel = librosa.feature.melspectrogram(S=magnitude**2, sr=sample_rate)
    frames = np.vstack(
        [
            librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=n_mfcc),
            librosa.feature.spectral_centroid(S=magnitude, sr=sample_rate),
            librosa.feature.spectral_bandwidth(S=magnitude, sr=sample_rate),
            librosa.feature.spectral_rolloff(S=magnitude, sr=sample_rate),
            librosa.feature.spectral_flatness(S=magnitude),
            librosa.feature.spectral_contrast(S=magnitude, sr=sample_rate),
            librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop_length),
            librosa.feature.rms(S=magnitude, frame_length=n_fft),
        ]
    ).astype(np.float64)
    return np.concatenate([frames.mean(axis=1), frames.std(axis=1)])


def fit_baseline(
    features_train: np.ndarray,
    labels_train: np.ndarray,
    *,
    c_grid: Sequence[float] = (0.1, 1.0, 10.0, 100.0),
) -> Pipeline:
    """Fit the hand-crafted baseline: standardisation and an RBF SVM.

    ``C`` is chosen by 3-fold stratified cross-validation (unshuffled, so deterministic)
    over ``c_grid``; with fewer than 3 tracks in some class there is nothing to validate
    on and scikit-learn's default ``C=1`` is used. Classes are weighted by inverse frequency, as
    the genres are not equally represented in the synthetic corpus.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Fitted on all of ``features_train``.
    """
    pipeline = make_pipeline(StandardScaler(), SVC(kernel="rbf", class_weight="balanced"))
    if np.unique(labels_train, return_counts=True)[1].min() < 3:
        return pipeline.fit(features_train, labels_train)
    search = GridSearchCV(pipeline, {"svc__C": list(c_grid)}, cv=StratifiedKFold(n_splits=3))
    return search.fit(features_train, labels_train).best_estimator_


def baseline_accuracy(pipeline: Pipeline, features: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of tracks the fitted baseline classifies correctly."""
    return float(accuracy_score(labels, pipeline.predict(features)))


def format_summary(evaluation: Evaluation, labels: Sequence[str] | None = None) -> Table:
    """A rich table of per-class precision/recall/F1 at track and patch level.

    The caption holds the overall accuracies and the track interval; the last row is the
    macro average, which weighs rare genres like common ones. ``labels`` only overrides
    the display names (default: ``evaluation.labels``).
    """
    names = evaluation.labels if labels is None else tuple(labels)
    if len(names) != len(evaluation.labels):
        raise ValueError(f"{len(names)} labels for {len(evaluation.labels)} classes")
    caption = "\n".join(_accuracy_text(evaluation, level) for level in ("track", "segment"))
    table = Table(title="Genre evaluation", caption=caption)
    table.add_column("genre")
    for level in ("track", "patch"):
        for column in ("P", "R", "F1", "n"):
            table.add_column(f"{level} {column}", justify="right")

    def cells(metrics: LevelMetrics, index: int | slice) -> list[str]:
        scores = [np.mean(m[index]) for m in (metrics.precision, metrics.recall, metrics.f1)]
        return [f"{s:.2f}" for s in scores] + [str(int(np.sum(metrics.support[index])))]

    for i, name in enumerate(names):
        table.add_row(name, *cells(evaluation.track, i), *cells(evaluation.segment, i))
    table.add_section()
    everything = slice(None)
    table.add_row(
        "macro avg", *cells(evaluation.track, everything), *cells(evaluation.segment, everything)
    )
    return table
