"""Live recommendations: the engine's view of a `Session`, computed on a thread of its own.

The engine thread only copies: each block of audio into a preallocated ring of the last
`context_seconds`, each hop's embedding and probabilities into preallocated rows, and,
every `every_seconds` of music, a snapshot of both onto a queue (a few megabytes copied,
never a wait). The recommender thread describes the snapshot's audio (key, tempo,
descriptors: about 0.15 s of one core for 15 s of audio, so 1.5 % of a core at one list
every 10 s), queries the library and leaves the finished
``recommendations`` message for the engine to emit with its own messages, so every sink
still sees messages from one thread only. Feedback from websocket clients goes onto the
same queue and is answered with a fresh list at once. When the session ends,
`LiveRecommender.playlist` is what it leaves: the tracks played, then the last list.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.analysis.describe import describe
from streamer.analysis.tagger import TagHop
from streamer.chain import TrackedHop
from streamer.library.indexer import pooled
from streamer.library.recommend import (
    Basis,
    LibraryTrack,
    Recommendation,
    Session,
    confident_descriptors,
    percent,
)
from streamer.outlets import protocol
from streamer.tracking import DEFAULT_SMOOTHING, SmoothingConfig

MIN_AUDIO_SECONDS = 5.0  # less audio gives no usable key or tempo: no recommendation yet
"""The first list waits for this and for a whole `embedding_seconds` window: recognising the
track playing from 5 s left it open to being recommended in 7 of the 24 first lists of the
measurement in `streamer.library.recommend` (1 of 24 from 10 s)."""


@dataclass(frozen=True)
class _Snapshot:
    time: float
    audio: np.ndarray
    embedding: np.ndarray
    probabilities: np.ndarray
    genre: str | None
    tag_hops: tuple[TagHop, ...]  # musicnn's recent music patches (for its embedding, tags)


class LiveRecommender:
    """Recommendations that follow what plays, for `Engine` (see the module doc).

    Parameters
    ----------
    session : Session
        The library and the session's memory; used on the recommender thread only.
    sample_rate : int
        Of the audio the engine passes to `audio`.
    hop_seconds : float
        The engine's hop, to size the rolling embedding rows.
    every_seconds : float
        Stream seconds between two lists while music plays.
    context_seconds : float
        Audio described for the key, tempo and descriptors of "now".
    embedding_seconds : float
        Hops averaged into the embedding of "now" (shorter follows changes faster; longer
        is steadier within a track).
    smoothing : SmoothingConfig
        The tracker's settings, whose silence threshold (``--silence-dbfs``) tells the music
        hops from the pauses here too.
    """

    def __init__(
        self,
        session: Session,
        *,
        sample_rate: int,
        hop_seconds: float,
        every_seconds: float = 10.0,
        context_seconds: float = 15.0,
        embedding_seconds: float = 10.0,
        smoothing: SmoothingConfig = DEFAULT_SMOOTHING,
        tag_labels: Sequence[str] = (),
    ) -> None:
        self.session = session
        self.tag_labels = tuple(tag_labels)
        self.embedding_seconds = embedding_seconds
        self._tag_hops: collections.deque[TagHop] = collections.deque()
        self.smoothing = smoothing
        self.sample_rate = sample_rate
        self.every_seconds = every_seconds
        self._ring = np.zeros(round(context_seconds * sample_rate), dtype=np.float32)
        self._written = 0
        rows = max(1, round(embedding_seconds / hop_seconds))
        labels = len(session.library.labels)
        self._embeddings = np.zeros((rows, session.library.embedding_size), dtype=np.float32)
        self._probabilities = np.zeros((rows, labels), dtype=np.float32)
        self._hops = 0
        self._next_due = 0.0
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=256)
        self._finished: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._last: _Snapshot | None = None
        self._found: list[Recommendation] = []  # the last list
        self.dropped_jobs = 0  # queue full: the thread fell behind (counted, never waited for)
        self.failures = 0
        self.last_failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="recommender", daemon=True)

    # --- engine thread -------------------------------------------------------------------

    def audio(self, samples: np.ndarray) -> None:
        """Keep the latest `context_seconds` of audio."""
        samples = samples[-len(self._ring) :]
        start = self._written % len(self._ring)
        head = min(len(samples), len(self._ring) - start)
        self._ring[start : start + head] = samples[:head]
        self._ring[: len(samples) - head] = samples[head:]
        self._written += len(samples)

    def hop(self, tracked: TrackedHop) -> None:
        """Take a hop of the chain; start a list when one is due.

        Only music hops are kept for "now": the model's guess on a quiet one (a pause) is
        no evidence, as for the tracker and the library. "Now" is the CNN's embedding and
        the decision's mixture (as the library's tracks are described), and the tag hops
        of the last `embedding_seconds`.
        """
        hop, update, tags = tracked.hop, tracked.update, tracked.tags
        if not self.smoothing.quiet(hop.level_dbfs):
            row = self._hops % len(self._embeddings)
            self._embeddings[row] = hop.embedding
            self._probabilities[row] = tracked.probabilities
            self._hops += 1
            if tags is not None and (not self._tag_hops or self._tag_hops[-1].index != tags.index):
                self._tag_hops.append(tags)
                while self._tag_hops[0].time <= tags.time - self.embedding_seconds:
                    self._tag_hops.popleft()
        heard = self._written / self.sample_rate
        if (
            update.state != "music"
            or not self._hops
            or heard < max(MIN_AUDIO_SECONDS, self.embedding_seconds)
            or update.time < self._next_due
        ):
            return
        self._next_due = update.time + self.every_seconds
        filled = min(self._hops, len(self._embeddings))
        snapshot = _Snapshot(
            time=update.time,
            audio=self._recent_audio(),
            embedding=self._embeddings[:filled].mean(axis=0),
            probabilities=self._probabilities[:filled].mean(axis=0),
            genre=update.top,
            tag_hops=tuple(self._tag_hops),
        )
        self._offer(lambda: self._recommend(snapshot))

    def ready(self) -> list[dict[str, Any]]:
        """Finished ``recommendations`` messages, for the engine to emit."""
        done = []
        while True:
            try:
                done.append(self._finished.get_nowait())
            except queue.Empty:
                return done

    def _recent_audio(self) -> np.ndarray:
        size = min(self._written, len(self._ring))
        start = self._written % len(self._ring)
        return np.roll(self._ring, -start)[len(self._ring) - size :]

    # --- any thread ----------------------------------------------------------------------

    def feedback(self, message: dict[str, Any]) -> None:
        """A client's feedback (already parsed): checked here, applied on the thread."""
        track, action = message["track"], message["action"]
        if track not in self.session.library.tracks:
            raise ValueError(f"no track {track} in the library")

        def apply() -> None:
            self.session.feedback(track, action)
            if self._last is not None:
                self._recommend(self._last, recognise=False)

        try:
            self._jobs.put_nowait(apply)
        except queue.Full:
            raise ValueError("the recommender is busy: try again in a moment") from None

    def playlist(self) -> list[LibraryTrack]:
        """What the session leaves, once `stop` returned: the tracks played (recognised,
        or said so by a client), in the order they were, then the last list's tracks,
        best first: the set so far and what fits after it."""
        tracks = self.session.library.tracks
        return [tracks[i] for i in self.session.played] + [r.track for r in self._found]

    def start(self) -> LiveRecommender:
        self._thread.start()
        return self

    def stop(self, *, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout)

    def _offer(self, job: Callable[[], None]) -> None:
        """Queue a job from the engine thread, which never waits: a full queue drops it."""
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.dropped_jobs += 1

    # --- recommender thread --------------------------------------------------------------

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception as error:  # one bad snapshot must not end recommendations
                self.failures += 1
                self.last_failure = f"{type(error).__name__}: {error}"

    def _recommend(self, snapshot: _Snapshot, *, recognise: bool = True) -> None:
        self._last = snapshot
        described = describe(snapshot.audio, sample_rate=self.sample_rate)
        tag_embedding, tags = None, None
        if snapshot.tag_hops and self.tag_labels:
            embeddings = [t.embedding for t in snapshot.tag_hops]
            tag_embedding = pooled(embeddings, width=len(embeddings[0]))
            tags = np.mean([t.tags for t in snapshot.tag_hops], axis=0)
        basis = Basis(
            genre=snapshot.genre, tempo=described.tempo_bpm, key=described.key,
            descriptors=confident_descriptors(tags, self.tag_labels or None),
        )  # fmt: skip
        found, playing = self.session.recommend(
            snapshot.embedding,
            snapshot.probabilities,
            descriptor_vector=described.vector(),
            tag_embedding=tag_embedding,
            tag_labels=self.tag_labels or None,
            basis=basis,
            recognise=recognise,
        )
        self._found = found
        now_playing = None
        if playing is not None:
            now_playing = {**playing[0].to_message(), "similarity": percent(playing[1])}
        self._finished.put(
            protocol.recommendations_message(
                time=snapshot.time,
                basis={
                    "genre": basis.genre,
                    "tempo": None if described.tempo_bpm is None else round(described.tempo_bpm, 1),
                    "key": described.key,
                    "camelot": described.camelot,
                },
                now_playing=now_playing,
                tracks=[r.to_message() for r in found],
            )
        )
