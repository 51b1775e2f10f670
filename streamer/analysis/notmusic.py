"""Is a hop music at all? A small detector on what the genre CNN already computed.

Speech, noise, tones and sweeps, applause and crowds, room tone: the genre CNN gives each
of them a genre anyway (a sine is "classical" at 99.99 %). The detector reads a hop's
64-d embedding, its genre probabilities and how its spectrum moves (the modulation
spectrum of `streamer.analysis.features.modulation`: talk has its syllables at about 4 Hz
and pauses between words, which the CNN's embedding hardly tells once a room has smeared
them), all of them in `streamer.analysis.hops.Hop`, so it costs no extra network
inference: a standardisation, then a few matrix products (ReLU hidden layers, none for a
logistic regression) and a sigmoid. `streamer-train not-music` fits
it on generated material and writes ``models/not-music.json`` with the sha256 of the
genre model it read, because another model's embedding means something else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamer.analysis.model import ModelInfo
from streamer.errors import StreamerError
from streamer.files import deciding_sha256, read_document, reading_document

NOT_MUSIC_FORMAT = "streamer-not-music"
NOT_MUSIC_VERSION = 2
"""Version 2 reads the modulation features too; a version 1 file is refused."""
THRESHOLD = 0.5
PROBABILITY_FLOOR = 1e-7
"""The CNN probabilities enter as logarithms, floored here: a softmax's 1e-12 and 1e-20
mean the same "no" and must not look far apart."""


def shipped_not_music_path() -> Path:
    """The shipped detector, ``not-music.json`` beside the shipped genre model."""
    from streamer.analysis.model import shipped_model_path

    return shipped_model_path().parent / "not-music.json"


def detector_features(
    embeddings: np.ndarray, cnn_probabilities: np.ndarray, modulation: np.ndarray
) -> np.ndarray:
    """The detector's input ``(n, embedding + labels + modulation)``: the embedding, the log
    of the CNN probabilities, then the modulation features; training and the runtime both
    call this."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    logs = np.log(np.maximum(np.asarray(cnn_probabilities, dtype=np.float64), PROBABILITY_FLOOR))
    moving = np.asarray(modulation, dtype=np.float64)
    n = len(embeddings)
    columns = [embeddings.reshape(n, -1), logs.reshape(n, -1), moving.reshape(n, -1)]
    return np.concatenate(columns, axis=1)


@dataclass(frozen=True)
class NotMusicDetector:
    """Standardise, ReLU hidden layers, one sigmoid output: P(not music) per hop.

    A hop is not music when its probability is at least `THRESHOLD`; any other operating
    point is folded into the last bias when the detector is fitted, so callers need no
    threshold of their own.

    Parameters
    ----------
    genre_model_sha256 : str
        The genre model (ONNX file) whose outputs the detector was fitted on.
    mean, scale : numpy.ndarray
        The standardisation of `detector_features`.
    layers : tuple of (weights, bias)
        Weights ``(inputs, outputs)``; the last layer has one output.
    provenance : dict
        How it was made and measured (kept for the model card; not used to decide).
    """

    genre_model_sha256: str
    mean: np.ndarray
    scale: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    provenance: dict[str, object] | None = None

    @property
    def sha256(self) -> str:
        """A digest of what decides (the numbers and the genre model, not the provenance),
        for the hello and the exports."""
        return deciding_sha256(self.to_dict())

    def to_dict(self) -> dict[str, object]:
        """The detector file's content (`load` reads it back)."""
        return {
            "format": NOT_MUSIC_FORMAT,
            "format_version": NOT_MUSIC_VERSION,
            "genre_model_sha256": self.genre_model_sha256,
            "features": "standardised [embedding, log(max(CNN probabilities, 1e-7)), modulation]",
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "layers": [{"weights": w.tolist(), "bias": b.tolist()} for w, b in self.layers],
            "threshold": THRESHOLD,
            "provenance": self.provenance or {},
        }

    @classmethod
    def load(cls, path: str | Path) -> NotMusicDetector:
        """Read a detector file; a one-line error if it is missing or wrong."""
        path = Path(path)
        redo = "run `streamer-train not-music` again"
        with reading_document(path, kind="not-music detector", redo=redo):
            data = read_document(path, format=NOT_MUSIC_FORMAT, version=NOT_MUSIC_VERSION)
            layers = tuple(
                (np.asarray(layer["weights"], dtype=np.float64),
                 np.asarray(layer["bias"], dtype=np.float64))
                for layer in data["layers"]
            )  # fmt: skip
            detector = cls(
                genre_model_sha256=str(data["genre_model_sha256"]),
                mean=np.asarray(data["mean"], dtype=np.float64),
                scale=np.asarray(data["scale"], dtype=np.float64),
                layers=layers,
                provenance=data.get("provenance"),
            )
            detector._check_shapes()
            return detector

    def _check_shapes(self) -> None:
        inputs = self.mean.shape
        if self.mean.ndim != 1 or self.scale.shape != inputs or not self.layers:
            raise ValueError("mean and scale must be one vector each, with at least one layer")
        width = inputs[0]
        for weights, bias in self.layers:
            if weights.ndim != 2 or weights.shape[0] != width or bias.shape != weights.shape[1:]:
                raise ValueError(f"a layer of shape {weights.shape} does not take {width} inputs")
            width = weights.shape[1]
        if width != 1:
            raise ValueError("the last layer must have one output")
        if not np.all(self.scale > 0):
            raise ValueError("scale must be positive")

    def fits(self, info: ModelInfo) -> bool:
        """Whether the detector was fitted on this genre model's outputs."""
        return info.sha256 == self.genre_model_sha256

    def check(self, info: ModelInfo) -> None:
        """Refuse a genre model the detector was not fitted on: its embedding differs."""
        if not self.fits(info):
            raise StreamerError(
                "the not-music detector was fitted on another genre model (sha256 differs): "
                "run `streamer-train not-music` for this model"
            )

    def probabilities(
        self, embeddings: np.ndarray, cnn_probabilities: np.ndarray, modulation: np.ndarray
    ) -> np.ndarray:
        """P(not music) for each hop, shape ``(n,)``, from embeddings ``(n, 64)``, the
        CNN's probabilities ``(n, labels)`` and the modulation features ``(n, 67)``."""
        logits = self.logits(embeddings, cnn_probabilities, modulation)
        result: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * logits))  # a sigmoid that never overflows
        return result

    def logits(
        self, embeddings: np.ndarray, cnn_probabilities: np.ndarray, modulation: np.ndarray
    ) -> np.ndarray:
        """The output before the sigmoid, shape ``(n,)``: 0 is the threshold."""
        x = detector_features(embeddings, cnn_probabilities, modulation)
        x = (x - self.mean) / self.scale
        for weights, bias in self.layers[:-1]:
            x = np.maximum(x @ weights + bias, 0.0)
        weights, bias = self.layers[-1]
        result: np.ndarray = (x @ weights + bias)[:, 0]
        return result
