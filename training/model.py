"""The seed CNN: stacked Conv2D 3x3 + ReLU, BatchNormalization, MaxPooling2D 2x2, Dropout,
then Flatten, a named embedding layer and a Dense softmax.

The embedding layer (before the softmax) is a second output: the runtime uses it to compare
what plays with the tracks of a library.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from streamer.analysis.model import EMBEDDING, INPUT_NAME, PROBABILITIES


@dataclass(frozen=True)
class CNNConfig:
    """Sizes of the CNN.

    ``bn_momentum`` is 0.9, not Keras's 0.99: with 0.99 the moving statistics lag so far
    behind on small training sets that validation accuracy stayed near chance for the
    first epochs (measured, shared/NOTES.md).
    """

    filters: tuple[int, ...] = (16, 32, 64, 64)
    embedding_size: int = 64
    conv_dropout: float = 0.1
    dense_dropout: float = 0.3
    bn_momentum: float = 0.9

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "filters": list(self.filters)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CNNConfig:
        return cls(**{**data, "filters": tuple(data.get("filters", cls.filters))})


def build_cnn(*, n_mels: int, patch_frames: int, n_classes: int, config: CNNConfig) -> Any:
    """A Keras model ``mel (batch, n_mels, patch_frames, 1) -> [probabilities, embedding]``."""
    import keras
    from keras import layers

    inputs = keras.Input((n_mels, patch_frames, 1), name=INPUT_NAME)
    x = inputs
    for index, filters in enumerate(config.filters):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{index}")(x)
        x = layers.BatchNormalization(momentum=config.bn_momentum, name=f"bn{index}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{index}")(x)
        x = layers.Dropout(config.conv_dropout, name=f"drop{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    embedding = layers.Dense(config.embedding_size, activation="relu", name=EMBEDDING)(x)
    x = layers.Dropout(config.dense_dropout, name="drop_dense")(embedding)
    probabilities = layers.Dense(n_classes, activation="softmax", name=PROBABILITIES)(x)
    return keras.Model(inputs, [probabilities, embedding], name="genre_cnn")


def classifier(model: Any) -> Any:
    """The same layers with the probabilities as the only output, for training."""
    import keras

    return keras.Model(model.inputs, model.outputs[0], name="genre_classifier")
