"""Calibrated confidence: a temperature, and for a mixture a map of its top probability.

A network's softmax, and a mixture of two of them, is not a probability a listener can take
at its word: the genre CNN says "classical, 99.99 %" of a sine tone. Two documented maps
turn a decision into one whose top-1 probability is right that often:

* Temperature scaling divides every log-probability by one number, ``T``, and
  renormalises: ``p_cal ∝ p ** (1 / T)``. ``T > 1`` flattens an over-confident decision,
  ``T < 1`` sharpens a timid one. One number suits a softmax (the CNN alone).
* Top-label calibration (Gupta and Ramdas, 2022), after the temperature, maps the top
  genre's probability through an increasing curve, knots ``(tempered, calibrated)``
  joined by straight lines (an isotonic regression of "the top genre is right" on it), and
  scales the other genres to share the rest in their own proportions. A mixture of the
  CNN and the tags' view needs it: its top probability ranks how often it is right, but no
  power of it says how often (a temperature fitted on its own validation hops leaves an
  expected calibration error of 0.11 there; with the curve after it, 0.001).

Either way the order of the genres, so every argmax, vote and segment, is unchanged. The
tracker smooths `Calibration.evidence`, the temperature's output alone. The map is fitted
on a validation side by `streamer-train calibrate` and stored with what it calibrates: the
CNN-alone decision's in ``genre.json``, the fused decision's in ``fusion.json``, each as
``"calibration": {"temperature": T, "top_label": [[tempered, calibrated], ...]}``
(``top_label`` absent: none). A file without the entry is not calibrated.

What the display shows is another number: the tracker's filtered probability of the genre
it displays, which piles up the evidence of many hops and is surer than it is right (on
generated mixes of held-out grooves, 0.83 on average while the shown genre is the one
playing on 65 % of the hops). `ShownCalibration` restates it through one more increasing
curve, fitted on generated mixes by `streamer-train calibrate-shown` for one set of the
tracker's parameters, and stored beside the decision's map as ``"shown": {"knots": ...,
"smoothing": {...}}``; the chain applies it only with those parameters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.tracking import SmoothingConfig


@dataclass(frozen=True)
class Calibration:
    """The calibration of a decision: a temperature, then a top-label curve, if any.

    Parameters
    ----------
    temperature : float
        ``1.0``: as the decision says.
    top_label : sequence of (float, float)
        Knots of the top-label curve, tempered and calibrated top probability, increasing
        (non-decreasing for the calibrated); empty: no curve. Outside the knots the curve
        is flat.
    shown : ShownCalibration, optional
        The map of what the display shows for this decision (see the module notes).

    Examples
    --------
    >>> Calibration(2.0).apply(np.array([0.8, 0.2])).round(3).tolist()
    [0.667, 0.333]
    >>> curve = Calibration(top_label=((0.2, 0.3), (0.6, 0.9)))
    >>> curve.apply(np.array([0.4, 0.3, 0.3])).round(3).tolist()  # 0.4 -> 0.6, rest halved
    [0.6, 0.2, 0.2]
    """

    temperature: float = 1.0
    top_label: tuple[tuple[float, float], ...] = ()
    shown: ShownCalibration | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"a temperature must be finite and positive, not {self.temperature}")
        object.__setattr__(self, "top_label", _curve(self.top_label, "a top-label curve"))

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """The calibrated probabilities of one hop ``(k,)`` or of many ``(n, k)``, each row
        summing to 1: the temperature, then the curve."""
        return self.curve(self.evidence(probabilities))

    def evidence(self, probabilities: np.ndarray) -> np.ndarray:
        """The probabilities after the temperature alone: what the tracker's filter reads
        as likelihoods (`streamer.tracking`). The curve only re-states how often the top
        genre is right; it lifts a timid hop and tames a sure one, which would let a
        flickering decision move the filter (on generated mixes, 0.3 changes of the shown
        genre a minute within a track became 1.2). Computed on ``p / max(p)``, so no power
        underflows to a zero row."""
        p = np.asarray(probabilities, dtype=np.float64)
        if self.temperature == 1.0:
            renormalised: np.ndarray = p / p.sum(axis=-1, keepdims=True)
            return renormalised
        scaled = (p / p.max(axis=-1, keepdims=True)) ** (1.0 / self.temperature)
        tempered: np.ndarray = scaled / scaled.sum(axis=-1, keepdims=True)
        return tempered

    def curve(self, tempered: np.ndarray) -> np.ndarray:
        """`evidence`'s output calibrated: the top genre's probability through the curve,
        the others scaled to the rest (as it is without a curve). The top stays on top: it
        is mapped at least a hair above the share that would tie it with the second
        (``second / (1 - top + second)``)."""
        p = np.asarray(tempered, dtype=np.float64)
        if not self.top_label:
            return p
        rows = np.atleast_2d(p)
        top = rows.argmax(axis=1)
        raw = rows[np.arange(len(rows)), top]
        second = np.sort(rows, axis=1)[:, -2] if rows.shape[1] > 1 else np.zeros(len(rows))
        knots = np.array(self.top_label)
        mapped = np.interp(raw, knots[:, 0], knots[:, 1])
        tie = second / np.maximum(1.0 - raw + second, 1e-300)
        mapped = np.maximum(mapped, np.minimum(tie + 1e-9, 1.0))
        calibrated: np.ndarray = _give(rows, top, mapped).reshape(p.shape)
        return calibrated

    @classmethod
    def from_metadata(cls, data: Mapping[str, Any] | None) -> Calibration:
        """A model's or fusion file's ``"calibration"`` entry; absent (None): as decided.
        Raises ValueError for an entry without a finite, positive temperature or with a
        malformed curve."""
        if data is None:
            return cls()
        try:
            temperature = float(data["temperature"])
            knots: Sequence[Sequence[float]] = data.get("top_label", ())
            curve = tuple((float(x), float(y)) for x, y in knots)
            shown = data.get("shown")
            if shown is not None:
                shown = ShownCalibration(
                    tuple((float(x), float(y)) for x, y in shown["knots"]),
                    SmoothingConfig(**shown["smoothing"]),
                )
        except (KeyError, TypeError, ValueError) as error:
            problem = f"calibration needs a temperature and (x, y) knots ({error!r})"
            raise ValueError(problem) from None
        return cls(temperature, curve, shown)

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"temperature": self.temperature}
        if self.top_label:
            entry["top_label"] = [list(knot) for knot in self.top_label]
        if self.shown is not None:
            entry["shown"] = self.shown.to_dict()
        return entry


@dataclass(frozen=True)
class ShownCalibration:
    """How often the displayed genre is right, from the tracker's probability of it.

    Parameters
    ----------
    knots : sequence of (float, float)
        The curve: the tracker's filtered probability of the displayed genre, and the
        fraction of such hops on which it was the genre playing (an isotonic regression,
        linear between knots, flat outside them).
    smoothing : SmoothingConfig
        The tracker's parameters it was fitted with; with others it does not hold.

    Examples
    --------
    >>> shown = ShownCalibration(((0.5, 0.4), (1.0, 0.8)), SmoothingConfig())
    >>> shown.restate(np.array([0.1, 0.9, 0.0]), genre=1).round(3).tolist()
    [0.28, 0.72, 0.0]
    """

    knots: tuple[tuple[float, float], ...]
    smoothing: SmoothingConfig

    def __post_init__(self) -> None:
        object.__setattr__(self, "knots", _curve(self.knots, "a shown-genre curve"))
        if not self.knots:
            raise ValueError("a shown-genre curve needs knots")

    def restate(self, probabilities: np.ndarray, *, genre: int) -> np.ndarray:
        """The tracker's filtered probabilities ``(k,)`` with the displayed `genre`'s
        through the curve and the others scaled to share the rest."""
        rows = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
        index = np.full(len(rows), genre)
        restated: np.ndarray = _give(rows, index, self.confidence(rows[:, genre]))
        shaped: np.ndarray = restated.reshape(np.shape(probabilities))
        return shaped

    def confidence(self, stated: np.ndarray) -> np.ndarray:
        """The tracker's probabilities of the shown genre, through the curve."""
        knots = np.array(self.knots)
        mapped: np.ndarray = np.interp(stated, knots[:, 0], knots[:, 1])
        return mapped

    def to_dict(self) -> dict[str, Any]:
        return {"knots": [list(k) for k in self.knots], "smoothing": self.smoothing.to_dict()}


def _curve(values: Sequence[Sequence[float]], what: str) -> tuple[tuple[float, float], ...]:
    """Validated knots of an increasing curve into [0, 1]; empty stays empty."""
    knots = tuple((float(x), float(y)) for x, y in values)
    if knots:
        raw, calibrated = np.array(knots).T
        if not (
            np.all(np.isfinite(raw + calibrated))
            and np.all(np.diff(raw) > 0)
            and np.all(np.diff(calibrated) >= 0)
            and calibrated.min() >= 0
            and calibrated.max() <= 1
        ):
            raise ValueError(
                f"{what} needs increasing raw knots and non-decreasing calibrated ones in [0, 1]"
            )
    return knots


def _give(rows: np.ndarray, genre: np.ndarray, mapped: np.ndarray) -> np.ndarray:
    """`rows` ``(n, k)`` with ``rows[i, genre[i]]`` set to ``mapped[i]`` and the others
    scaled to share the rest in their own proportions (evenly if they had none)."""
    index = np.arange(len(rows))
    rest = 1.0 - rows[index, genre]
    scale = np.divide(1.0 - mapped, rest, out=np.zeros_like(rest), where=rest > 0)
    out: np.ndarray = rows * scale[:, None]
    sure = rest <= 0  # all on one genre: the others share the rest evenly
    out[sure] = ((1.0 - mapped[sure]) / max(rows.shape[1] - 1, 1))[:, None]
    out[index, genre] = mapped
    return out
