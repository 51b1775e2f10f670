"""Calibrated confidence: one temperature on the decision's log-probabilities.

A network's softmax, and a mixture of two of them, is not a probability a listener can take
at its word: the genre CNN says "classical, 99.99 %" of a sine tone. Temperature scaling
divides every log-probability by one number, ``T``, and renormalises:
``p_cal ∝ p ** (1 / T)``. ``T > 1`` flattens an over-confident decision, ``T < 1`` sharpens
a timid one; the order of the genres, so every argmax, vote and segment, is unchanged. ``T``
is fitted on a validation side by `streamer-train calibrate` (the negative log-likelihood
of each hop's decision against the clip's genre) and stored with what it calibrates: the
CNN-alone decision's in ``genre.json``, the fused decision's in ``fusion.json``, each as
``"calibration": {"temperature": T, ...}``. A file without it is not calibrated (``T = 1``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """The temperature of a decision (``1.0``: as the decision says).

    Examples
    --------
    >>> Calibration(2.0).apply(np.array([0.8, 0.2])).round(3).tolist()
    [0.667, 0.333]
    """

    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"a temperature must be finite and positive, not {self.temperature}")

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """The calibrated probabilities of one hop ``(k,)`` or of many ``(n, k)``, each row
        summing to 1. Computed on ``p / max(p)``, so no power underflows to a zero row."""
        p = np.asarray(probabilities, dtype=np.float64)
        if self.temperature == 1.0:
            renormalised: np.ndarray = p / p.sum(axis=-1, keepdims=True)
            return renormalised
        scaled = (p / p.max(axis=-1, keepdims=True)) ** (1.0 / self.temperature)
        calibrated: np.ndarray = scaled / scaled.sum(axis=-1, keepdims=True)
        return calibrated

    @classmethod
    def from_metadata(cls, data: Mapping[str, Any] | None) -> Calibration:
        """A model's or fusion file's ``"calibration"`` entry; absent (None): ``T = 1``.
        Raises ValueError for an entry without a finite, positive temperature."""
        if data is None:
            return cls()
        try:
            temperature = float(data["temperature"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"calibration needs a temperature ({error!r})") from None
        return cls(temperature)

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature}
