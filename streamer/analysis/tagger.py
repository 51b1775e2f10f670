"""musicnn's taggers at run time: what a network trained on real recordings hears.

The genre CNN has only heard General MIDI renderings. musicnn's taggers (Pons and Serra,
2019; ISC licence, see ``models/MUSICNN-LICENSE.txt``) were trained on real music: the
Million Song Dataset's 50 Last.fm tags and MagnaTagATune's 50. `streamer-train musicnn`
converts their checkpoints to ONNX; here they run with onnxruntime, no TensorFlow.

`TagAnalyzer` is the chain's second analysis stage, beside `HopAnalyzer`: it resamples the
stream to the taggers' 16 kHz in the stream (soxr, whose streamed output equals its
one-shot output), computes their own features (the second FeatureSpec: 96 mel bands,
``log10(1 + 10000 x)``) and runs every tagger once per `cadence` on the latest 187-frame
patch (3 s). Tag hops are fixed in 16 kHz frames from the start of the stream, so they do
not depend on how the audio was cut into blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamer.analysis.features import StreamingExtractor
from streamer.analysis.inference import Inference, Steps, run_inline
from streamer.analysis.model import OnnxModel
from streamer.errors import StreamerError

TAGS_OUTPUT = "tags"
EMBEDDING_OUTPUT = "embedding"
INPUT_NAME = "mel"


def shipped_tagger_paths() -> tuple[Path, ...]:
    """The converted taggers shipped beside the genre model (MSD first, then MTT)."""
    from streamer.analysis.model import shipped_model_path

    folder = shipped_model_path().parent
    return tuple(folder / f"musicnn-{name}.onnx" for name in ("msd", "mtt"))


DESCRIPTORS: dict[str, str] = {
    "female vocals": "msd/female vocalists",
    "male vocals": "msd/male vocalists",
    "instrumental": "msd/instrumental",
    "acoustic": "msd/acoustic",
    "electronic": "msd/electronic",
    "mellow": "msd/Mellow",
    "chill": "msd/chill",
    "party": "msd/party",
    "happy": "msd/happy",
    "sad": "msd/sad",
    "beautiful": "msd/beautiful",
    "catchy": "msd/catchy",
    "60s": "msd/60s",
    "70s": "msd/70s",
    "80s": "msd/80s",
    "90s": "msd/90s",
    "00s": "msd/00s",
    "oldies": "msd/oldies",
    "fast": "mtt/fast",
    "slow": "mtt/slow",
}
"""The tags people read beside a genre (vocals, sound, mood, era, pace), by display name,
each one tagger's output ("model/tag"). Genre tags are left out: the genre decision uses
them (`streamer.analysis.fusion`)."""


class TagModel(OnnxModel):
    """One converted musicnn tagger: sigmoid tag probabilities and its 200-value embedding.

    Its metadata says ``kind: tagger``; its name (``msd``, ``mtt``) comes from the file name.
    It takes one patch a call (`batch_size`): batched, its outputs differ in their last
    bits from those of each patch alone, and a stream would depend on the others.
    """

    batch_size = 1

    def __init__(self, onnx_path: str | Path, *, threads: int = 1) -> None:
        super().__init__(onnx_path, threads=threads)
        if self.info.extra.get("kind") != "tagger":
            raise StreamerError(f"{self.path}: not a tagger (its metadata lacks kind: tagger)")
        self.name = self.path.stem.removeprefix("musicnn-")

    def predict(self, patches: np.ndarray, *, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Tag probabilities ``(n, n_tags)`` and embeddings ``(n, 200)`` of time-major
        patches ``(n, patch_frames, n_mels)``, in calls of at most `batch` patches."""
        inputs = np.ascontiguousarray(patches, dtype=np.float32)
        return self.run_batches(INPUT_NAME, inputs, [TAGS_OUTPUT, EMBEDDING_OUTPUT], batch=batch)


@dataclass(frozen=True)
class TagHop:
    """Every tagger's output for the patch whose audio ends at `time` (stream seconds)."""

    index: int
    time: float
    tags: np.ndarray  # (n_labels,), in `TagAnalyzer.labels` order
    embedding: np.ndarray  # the taggers' embeddings, concatenated in the same order


class TagAnalyzer:
    """Samples at the chain's rate in; every `cadence_frames`, every tagger's view.

    A `streamer.chain.Processor`. The first tag hop comes when one patch of 16 kHz frames
    is complete (2.99 s into the stream), the next ones every `cadence_frames` frames
    (187 by default: the patches do not overlap, 2.99 s apart).

    Parameters
    ----------
    taggers : sequence of TagModel
        Taggers sharing one FeatureSpec; their labels are joined as ``"name/tag"``.
    input_rate : int
        Sample rate of the pushed audio.
    cadence_frames : int, optional
        Frames between two tag hops; the patch length when not given.
    """

    def __init__(
        self,
        taggers: Sequence[TagModel],
        *,
        input_rate: int,
        cadence_frames: int | None = None,
    ) -> None:
        if not taggers:
            raise ValueError("TagAnalyzer needs one tagger or more")
        spec = taggers[0].spec
        if any(tagger.spec != spec for tagger in taggers):
            raise StreamerError("the taggers must share one FeatureSpec")
        self.taggers = tuple(taggers)
        self.spec = spec
        self.input_rate = input_rate
        self.cadence_frames = cadence_frames or spec.patch_frames
        self.labels = tuple(f"{t.name}/{label}" for t in self.taggers for label in t.labels)
        index = {label: i for i, label in enumerate(self.labels)}
        self.descriptors = {name: index[tag] for name, tag in DESCRIPTORS.items() if tag in index}
        """Display name -> position in `TagHop.tags`, for the taggers that are loaded."""
        self._extractor = StreamingExtractor(spec)
        self._frames = np.empty((2 * spec.patch_frames, spec.n_mels), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next `push` begins a new one."""
        import soxr

        self._resampler = soxr.ResampleStream(self.input_rate, self.spec.sample_rate, 1)
        self._extractor.reset()
        self._filled = 0
        self._frames_seen = 0
        self._next_patch = self.spec.patch_frames
        self._hops = 0
        self.resampled = 0
        """Samples at the taggers' rate produced so far (behind the input by soxr's delay)."""

    def push(self, samples: np.ndarray) -> list[TagHop]:
        """Add samples at `input_rate`; return the tag hops they complete."""
        return run_inline(self.steps(samples))

    def steps(self, samples: np.ndarray) -> Steps[list[TagHop]]:
        """`push` as requests to the taggers (`streamer.analysis.inference`)."""
        block = np.asarray(samples, dtype=np.float32).reshape(-1)
        resampled = self._resampler.resample_chunk(block)
        self.resampled += len(resampled)
        patches: list[np.ndarray] = []
        ends: list[int] = []
        for frame in self._extractor.push(resampled):
            self._append(frame)
            if self._frames_seen == self._next_patch:
                latest = self._frames[self._filled - self.spec.patch_frames : self._filled]
                patches.append(latest.copy())
                ends.append(self._frames_seen - 1)
                self._next_patch += self.cadence_frames
        if not patches:
            return []
        batch = np.stack(patches)
        outputs = []
        for tagger in self.taggers:
            outputs.append((yield Inference(tagger, batch)))
        tags = np.concatenate([t for t, _ in outputs], axis=1)
        embeddings = np.concatenate([e for _, e in outputs], axis=1)
        hops = []
        for last_frame, row, embedding in zip(ends, tags, embeddings, strict=True):
            hops.append(TagHop(self._hops, self.frame_end_seconds(last_frame), row, embedding))
            self._hops += 1
        return hops

    def finish(self) -> list[TagHop]:
        """End the stream; return no hop: a patch is tagged only when it is complete."""
        return []

    def frame_end_seconds(self, frame: int) -> float:
        """Stream time at which `frame` is complete (its window's last sample)."""
        spec = self.spec
        return (frame * spec.hop_length + spec.n_fft - spec.n_fft // 2) / spec.sample_rate

    @property
    def heard_seconds(self) -> float:
        """Stream time up to which the taggers' features have seen the audio."""
        return self.resampled / self.spec.sample_rate

    def describe(self, tags: np.ndarray) -> dict[str, float]:
        """The `DESCRIPTORS` of one tag hop, by display name."""
        return {name: float(tags[i]) for name, i in self.descriptors.items()}

    def _append(self, frame: np.ndarray) -> None:
        if self._filled == len(self._frames):  # keep the latest patch_frames - 1 frames
            keep = self.spec.patch_frames - 1
            self._frames[:keep] = self._frames[self._filled - keep : self._filled]
            self._filled = keep
        self._frames[self._filled] = frame
        self._filled += 1
        self._frames_seen += 1
