"""Prepared training frames: a compact, self-contained file per split side and variant.

`streamer-train fit` writes the log-mel frames it will train on into the run folder, so that
`streamer-train train` can run later or elsewhere (a GPU machine without the corpus, the
soundfonts or librosa) from the run folder alone. Frames are stored in steps of
`STEP_DB` decibels as uint8, delta-coded along time and xz-compressed: about 40 kB for 15 s
of audio instead of 330 kB, and the rounding (at most half a step) is far below the gain,
EQ and noise that augmentation adds to every patch.
"""

from __future__ import annotations

import io
import lzma
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamer.errors import StreamerError
from streamer.files import write_atomically

STEP_DB = 1.0
SUFFIX = ".frames.xz"


@dataclass
class FrameSet:
    """Frames ``(n_frames, n_mels)`` in dB of tracks with one label each."""

    keys: list[str]
    labels: list[str]
    frames: list[np.ndarray]


def save_frames(path: Path, frame_set: FrameSet) -> None:
    """Write `frame_set` quantised to `STEP_DB` (values clip to 255 steps above the lowest)."""
    if not frame_set.frames:
        raise StreamerError(f"{path}: no frames to save")
    low = float(min(f.min() for f in frame_set.frames))
    coded = []
    for frames in frame_set.frames:
        steps = np.clip(np.rint((frames - low) / STEP_DB), 0, 255).astype(np.uint8)
        coded.append(np.diff(steps, axis=0, prepend=np.zeros_like(steps[:1])))  # mod 256
    buffer = io.BytesIO()
    np.savez(
        buffer,
        keys=np.asarray(frame_set.keys),
        labels=np.asarray(frame_set.labels),
        lengths=np.asarray([len(c) for c in coded]),
        data=np.concatenate(coded),
        low=np.float64(low),
        step=np.float64(STEP_DB),
    )
    write_atomically(path, lzma.compress(buffer.getvalue(), preset=1))  # 8x faster than 6, +10 %


def load_frames(path: Path) -> FrameSet:
    """The frames of a file written by `save_frames`, as float32 dB."""
    try:
        stored = np.load(io.BytesIO(lzma.decompress(path.read_bytes())))
    except (OSError, lzma.LZMAError, ValueError) as error:
        message = f"{path}: not a prepared frames file ({error}): run `streamer-train fit` again"
        raise StreamerError(message) from None
    bounds = np.cumsum(stored["lengths"])[:-1]
    frames = [
        (np.cumsum(coded, axis=0, dtype=np.uint8) * stored["step"] + stored["low"]).astype(
            np.float32
        )
        for coded in np.split(stored["data"], bounds)
    ]
    return FrameSet(list(stored["keys"]), list(stored["labels"]), frames)
