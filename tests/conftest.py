"""Shared fixtures and helpers: generated audio, a real PulseAudio input device, small
models, protocol messages and their reception."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from websockets.asyncio.client import ClientConnection

from streamer.analysis.features import FeatureSpec
from streamer.outlets import protocol

sys.path.insert(0, str(Path(__file__).parent))

import pulse


def write_sine(
    path: Path, *, freq: float, seconds: float, rate: int, amplitude: float = 0.5
) -> Path:
    """Write a mono 16-bit sine wave file and return its path."""
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, amplitude * np.sin(2 * np.pi * freq * t), rate, subtype="PCM_16")
    return path


def dominant_frequency(y: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.fft.rfftfreq(y.size, 1 / rate)[np.argmax(spectrum)])


@pytest.fixture(scope="session")
def sine_44k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three seconds of a 440 Hz sine at amplitude 0.5, 44.1 kHz."""
    folder = tmp_path_factory.mktemp("audio")
    return write_sine(folder / "sine440.wav", freq=440.0, seconds=3.0, rate=44100)


@pytest.fixture(scope="session")
def pulse_device() -> Iterator[dict[str, str]]:
    """A private PulseAudio daemon whose null-sink monitor is the default input.

    The variables are exported to this process too, and PortAudio is re-initialised so
    that it enumerates the daemon's devices even if sounddevice was imported before.
    """
    with pulse.null_sink_daemon() as env:
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        if "sounddevice" in sys.modules:
            sd = sys.modules["sounddevice"]
            sd._terminate()
            sd._initialize()
        try:
            yield env
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained three-label CNN with small 1 s patches, exported with its metadata.

    Its weights are random: good for checking the plumbing (same inputs, same outputs),
    not for genre accuracy.
    """
    import keras

    from training.export import export_model
    from training.model import CNNConfig, build_cnn

    keras.utils.set_random_seed(0)
    spec = FeatureSpec(n_mels=40, n_mfcc=13, patch_frames=43)
    spec = spec.with_normalization(np.full(40, -50.0), np.full(40, 20.0))
    model = build_cnn(
        n_mels=40, patch_frames=43, n_classes=3, config=CNNConfig(filters=(4, 8), embedding_size=8)
    )
    path = tmp_path_factory.mktemp("model") / "small.onnx"
    check = np.random.default_rng(0).standard_normal((4, 40, 43, 1))
    export_model(model, path, labels=["a", "b", "c"], spec=spec, check_inputs=check, extra={})
    return path


TRAIN_RATE = 22050
TINY_SPEC = FeatureSpec(n_mels=40, n_mfcc=13, patch_frames=43)  # 1 s patches: quick to train


def render_genre(genre: str, rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    """Three "genres" a tiny CNN tells apart: harmonic tones, noise bursts, click trains."""
    t = np.arange(int(seconds * TRAIN_RATE)) / TRAIN_RATE
    if genre == "tones":
        f = rng.uniform(100, 300)
        return sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 2, 3)) * 0.3
    if genre == "noise":
        # Bursts over a noise floor: every 1 s window holds noise, so none looks like a gap
        envelope = 0.3 + 0.7 * (np.sin(2 * np.pi * rng.uniform(1, 3) * t) > 0)
        return rng.standard_normal(t.size) * 0.2 * envelope
    clicks = np.zeros(t.size)
    clicks[:: int(TRAIN_RATE / rng.uniform(4, 10))] = 0.9
    return clicks


BOUNDARY = 4.0  # seconds of tones in `two_genres`, then noise


@pytest.fixture(scope="session")
def two_genres(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`BOUNDARY` seconds of "tones", then 4 s of "noise": a change of genre to follow live."""
    rng = np.random.default_rng(5)
    y = np.concatenate([render_genre("tones", rng, BOUNDARY), render_genre("noise", rng, 4.0)])
    path = tmp_path_factory.mktemp("live") / "tones-then-noise.wav"
    soundfile.write(path, y, TRAIN_RATE)
    return path


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    rng = np.random.default_rng(0)
    for genre in ("tones", "noise", "clicks"):
        (root / genre).mkdir()
        for index in range(6):
            soundfile.write(root / genre / f"{index}.wav", render_genre(genre, rng), TRAIN_RATE)
    bad = root / "noise"
    (bad / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(40)))
    (bad / "text.wav").write_text("this is a text file named .wav\n")
    (bad / "empty.wav").write_bytes(b"")
    soundfile.write(bad / "one-sample.wav", np.zeros(1), TRAIN_RATE)
    (bad / "readme.txt").write_text("not audio")
    return root


@pytest.fixture(scope="session")
def trained(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny CNN fitted, evaluated and exported on `dataset` (about 40 s on 2 cores)."""
    from training import pipeline
    from training.model import CNNConfig

    work = tmp_path_factory.mktemp("run")
    run, cache, onnx = work / "run", work / "cache", work / "model" / "genre.onnx"
    config = pipeline.FitConfig(
        epochs=8, batch_size=16, room_variants=1, workers=2, train_hop_frames=8, test_fraction=0.34,
        valid_fraction=0.17, cnn=CNNConfig(filters=(8, 16), embedding_size=16),
    )  # fmt: skip
    pipeline.fit(dataset, run, config=config, cache_root=cache, spec=TINY_SPEC)
    pipeline.evaluate(run, cache_root=cache)
    pipeline.export(run, onnx)
    pipeline.publish_card(run, onnx)
    return {"run": run, "cache": cache, "onnx": onnx}


# --- protocol messages, as a server broadcasts them ----------------------------------------

LABELS = ("blues", "jazz", "rock")
TIMEOUT = 5.0  # seconds any single wait may take before the test fails


def make_hello() -> dict[str, Any]:
    return protocol.hello_message(
        labels=LABELS,
        model={"name": "genre", "sha256": "ab" * 32, "corpus": "synthetic"},
        features=FeatureSpec().to_dict(),
        hop_seconds=0.5,
        window_seconds=3.0,
        segment_lag_seconds=21.5,
    )


def update(index: int, *, labels: tuple[str, ...] = LABELS) -> dict[str, Any]:
    """Update number `index`: its time is ``index / 2``, so a client can tell which it got."""
    return protocol.update_message(
        time=index / 2,
        probabilities=dict.fromkeys(labels, 1 / len(labels)),
        top=labels[0],
        confidence=1 / len(labels),
        state="music",
        level_dbfs=-18.0,
        segment_start=0.0,
    )


async def receive(client: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(client.recv(), TIMEOUT))
