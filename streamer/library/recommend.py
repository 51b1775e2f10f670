"""Recommendations from the user's library: for a track, and live for what plays now.

`Library` loads a catalogue for queries: one joined vector per track
(`streamer.library.similarity`), and the per-section embeddings that recognise a library
track while it plays. `Session` is the memory of one listening session: the track playing,
the tracks played, skipped and liked, and the filters (genre, tempo range, harmonic
compatibility with the key heard).

Each list is the best fits for what plays now: a track liked pulls later queries towards
it; a skipped or played one is never offered again, nor the one playing; a track shown
before is offered again as long as it fits (a list that rotated to new tracks would
rotate to worse ones). The track playing is recognised from the sections' embeddings
with a running score and hysteresis (`Session.recognise`), so it neither flickers in and
out of "now playing" nor slips into the list while the match is briefly weak; once
recognised it counts as played.

Similarities are cosines inside; every outlet shows them as `percent` (0 to 100).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamer.analysis.describe import camelot, keys_compatible
from streamer.analysis.tagger import DESCRIPTORS
from streamer.errors import StreamerError, first_line
from streamer.library.catalogue import Catalogue, TrackRecord
from streamer.library.similarity import (
    MUSICNN_TAGGERS,
    BruteForceIndex,
    LibraryScale,
    VectorIndex,
    combine,
    tagger_embeddings,
    unit_rows,
)
from streamer.library.vectorindex import EXACT_BELOW, HnswIndex, index_path
from streamer.progress import say

ACTIONS = ("like", "skip", "played")
NOW_PLAYING_SIMILARITY = 0.97
"""Cosine between an embedding and a section of a library track above which that track is
taken to be playing, from one window alone (`Library.now_playing`)."""
PLAYING_ENTER = 0.90
PLAYING_MARGIN = 0.03
PLAYING_LEAVE = 0.85
PLAYING_MAYBE = 0.75
PLAYING_WEIGHT = 0.5
"""Live recognition (`Session.recognise`): each list's best-section cosine of every track
enters a running score with weight `PLAYING_WEIGHT`; the top track is playing once its
score reaches `PLAYING_ENTER` with a lead of `PLAYING_MARGIN` over the next, and stays
playing until its score falls under `PLAYING_LEAVE` or another track qualifies. Between
the two, the tracks that score at least `PLAYING_MAYBE` and within `PLAYING_MARGIN` of
the best (the top track, or near twins sharing the top) may be playing: they are left out
of the list, but neither shown as playing nor counted as played. Chosen on
50 real tracks of 90 s (the real development set's three excerpts of each joined; 24 in
a catalogue, 26 outside it), one list every 10 s: the track playing is recognised in 83 %
of the lists (from the first list for 13 of 24, by the fifth for all but one), another
library track in 2 %, and a track outside the library taken for one in 3 %; a single
window against `NOW_PLAYING_SIMILARITY` recognised it in about half. With the first list
after a whole 10 s window (`streamer.live.recommend`) and `PLAYING_MAYBE`, the track playing
is neither playing nor maybe in 1 of 165 lists (0.85 and one lead: 8; from 5 s: 14 of
189); the price: during tracks outside the library, about one library track per list (189
over 193 lists) is left out as maybe playing, the one that sounds most like the music.
(`/tmp/live18`-style replay of the lists' section scores, issue 18.)"""
LIKE_WEIGHT = 0.3  # share of the liked tracks' mean in a live query
SHARED_DESCRIPTOR = 0.25
"""Mean tag probability over a track from which one of its `DESCRIPTORS` is named in a
reason ("also instrumental, fast") when both tracks have it. Means over a track are lower
than the values of single patches (the live view shows those from 0.4), and musicnn's MSD
tags are cautious: on the real development set's 136 excerpts of game soundtracks,
"instrumental" reaches 0.25 on 12 (its highest is 0.33), "electronic" on 47, "fast" on
24, "slow" on 14, the others on none."""


def confident_descriptors(
    tags: np.ndarray | None, labels: Iterable[str] | None, *, threshold: float = SHARED_DESCRIPTOR
) -> tuple[str, ...]:
    """The `DESCRIPTORS` whose tag reaches `threshold` in `tags` (labelled ``"msd/rock"``,
    ...), in their order; none without tags (a track indexed before the taggers)."""
    if tags is None or labels is None:
        return ()
    value = dict(zip(labels, np.asarray(tags).tolist(), strict=True))
    return tuple(name for name, tag in DESCRIPTORS.items() if value.get(tag, 0.0) >= threshold)


@dataclass(frozen=True)
class LibraryTrack:
    """What a recommendation shows of a catalogue track."""

    id: int
    path: Path
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None  # the model's top label over the track's music; None: no music
    genre_share: float  # its mean probability (0 without music)
    tempo: float | None
    key: str | None
    descriptors: tuple[str, ...] = ()  # its `confident_descriptors`

    @property
    def name(self) -> str:
        """ "Artist - Title" when tagged, else the file name."""
        if self.title:
            return f"{self.artist} - {self.title}" if self.artist else self.title
        return self.path.name

    def to_message(self) -> dict[str, object]:
        """The track as the protocol shows it: no full path (see docs/protocol.md)."""
        return {
            "id": self.id,
            "name": self.name,
            "file": self.path.name,
            "title": self.title,
            "artist": self.artist,
            "album": self.album,
            "genre": self.genre,
            "tempo": None if self.tempo is None else round(self.tempo, 1),
            "key": self.key,
            "camelot": camelot(self.key) if self.key else None,
        }


@dataclass(frozen=True)
class Basis:
    """What recommendations are measured against: the query track or the audio heard."""

    genre: str | None = None
    tempo: float | None = None
    key: str | None = None
    descriptors: tuple[str, ...] = ()  # `confident_descriptors` of the query


@dataclass(frozen=True)
class Filters:
    """Which tracks may be recommended at all.

    Parameters
    ----------
    genres : frozenset of str
        Allowed top genres; empty allows all.
    tempo : (float, float), optional
        BPM range. A track counts at its tempo, half or double it (DJs mix 70 into 140).
    harmonic : bool
        Only keys compatible with the basis key on the Camelot wheel (same, relative
        major/minor, one step round). Without a basis key, nothing is filtered.
    """

    genres: frozenset[str] = frozenset()
    tempo: tuple[float, float] | None = None
    harmonic: bool = False

    def mask(self, columns: TrackColumns, basis: Basis) -> np.ndarray:
        """Which rows of `columns` pass, as a boolean array (vectorised: genres and keys
        through their codes, so 1M tracks take a millisecond or two)."""
        allowed = np.ones(len(columns.genres), dtype=bool)
        if self.genres:
            allowed &= np.isin(columns.genre_names, list(self.genres))[columns.genre_codes]
        if self.tempo is not None:
            low, high = self.tempo
            tempo = columns.tempos[:, None] * np.array([0.5, 1.0, 2.0])
            allowed &= ((low <= tempo) & (tempo <= high)).any(axis=1)  # NaN tempo: never
        if self.harmonic and basis.key:
            fits = np.array(
                [not key or keys_compatible(basis.key, key) for key in columns.key_names]
            )  # an unknown key ("") passes
            allowed &= fits[columns.key_codes]
        return allowed


@dataclass(frozen=True)
class TrackColumns:
    """What filters look at, one array per property, rows in the index's order."""

    genres: np.ndarray  # str, "" for a track with no music
    tempos: np.ndarray  # float, NaN when unknown
    keys: np.ndarray  # str, "" when unknown
    genre_names: np.ndarray = field(init=False)  # the distinct genres, and each row's
    genre_codes: np.ndarray = field(init=False)  # place among them: a filter looks up
    key_names: np.ndarray = field(init=False)  # a few names, not a million strings
    key_codes: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        for column in ("genre", "key"):
            names, codes = np.unique(getattr(self, f"{column}s"), return_inverse=True)
            object.__setattr__(self, f"{column}_names", names)
            object.__setattr__(self, f"{column}_codes", codes.reshape(-1))

    @classmethod
    def of(cls, tracks: list[LibraryTrack]) -> TrackColumns:
        return cls(
            genres=np.array([t.genre or "" for t in tracks]),
            tempos=np.array([np.nan if t.tempo is None else t.tempo for t in tracks]),
            keys=np.array([t.key or "" for t in tracks]),
        )


@dataclass(frozen=True)
class Recommendation:
    track: LibraryTrack
    similarity: float
    reasons: tuple[str, ...]

    def to_message(self) -> dict[str, object]:
        return {
            **self.track.to_message(),
            "similarity": percent(self.similarity),
            "reasons": list(self.reasons),
        }


def percent(similarity: float) -> float:
    """A cosine as every outlet shows it: percent, 0 (unrelated or opposite) to 100.

    >>> percent(0.91234), percent(-0.2)
    (91.2, 0.0)
    """
    return round(100 * max(0.0, similarity), 1)


def reasons(track: LibraryTrack, basis: Basis, similarity: float) -> tuple[str, ...]:
    """Why a track fits, in words a DJ reads at a glance."""
    found = [f"sounds {percent(similarity):.0f}% alike"]
    if basis.genre is not None and track.genre is not None:
        same = "same genre" if track.genre == basis.genre else "genre"
        found.append(f"{same}: {track.genre} ({track.genre_share:.0%})")
    shared = [name for name in track.descriptors if name in basis.descriptors]
    if shared:
        found.append("also " + ", ".join(shared))
    if basis.tempo and track.tempo:
        found.append(f"tempo {track.tempo:.0f} BPM ({track.tempo - basis.tempo:+.0f})")
    if basis.key and track.key:
        fit = "compatible" if keys_compatible(basis.key, track.key) else "clashes"
        found.append(f"key {track.key} ({camelot(track.key)}, {fit} with {camelot(basis.key)})")
    return tuple(found)


class Library:
    """A catalogue loaded for similarity queries.

    Parameters
    ----------
    records : list of TrackRecord
        The analysed tracks; all from the same model (same labels).

    A track with no music (`TrackRecord.has_music`: silent throughout) has no genre, key,
    tempo or sections: it is never recommended, nor recognised as playing.
    """

    def __init__(self, records: list[TrackRecord], *, index_file: Path | None = None) -> None:
        if not records:
            raise StreamerError("the catalogue holds no tracks: run `streamer index DIR` first")
        labels = {tuple(r.labels) for r in records}
        if len(labels) > 1:
            raise StreamerError(
                "the catalogue mixes tracks of different models: run `streamer index` again"
            )
        self.labels = list(labels.pop())
        self.records = {r.id: r for r in records}
        self.tracks = {r.id: _library_track(r) for r in records}
        self.ids = np.array([r.id for r in records], dtype=np.int64)
        descriptors = np.stack([r.descriptor_vector for r in records])
        musicnn = musicnn_part(records)
        stored = None if index_file is None else _stored_index(index_file, len(records))
        if stored is not None and _has_scales(stored, descriptors, musicnn):
            self.scale, self.musicnn_scale = _scales(stored)
        else:
            stored = None  # built anew below, with the scales of the library as it is
            self.scale = LibraryScale.fit(descriptors)
            tagged = musicnn.any(axis=1)
            self.musicnn_scale = LibraryScale.fit(musicnn[tagged]) if tagged.any() else None
        """`musicnn_scale` is None when no track was indexed with the taggers: the part is
        left out. With an index file, both are those it was built with (`_stored_index`)."""
        self.vectors = combine(
            np.stack([r.embedding for r in records]),
            np.stack([r.probabilities for r in records]),
            descriptors,
            musicnn if self.musicnn_scale is not None else None,
            scale=self.scale,
            musicnn_scale=self.musicnn_scale,
        )
        self.columns = TrackColumns.of([self.tracks[int(i)] for i in self.ids])
        self.index: VectorIndex = (
            BruteForceIndex(self.ids, self.vectors)
            if index_file is None
            else self._synced_index(stored, index_file)
        )
        self._music = self.columns.genres != ""
        self._row = {int(i): row for row, i in enumerate(self.ids)}
        self._section_rows = np.array(
            [row for row, r in enumerate(records) for _ in r.sections or ()],
            dtype=np.int64,
        )  # the row in `ids` of each section's track
        self._sections = unit_rows(
            np.stack([e for r in records for _, e in r.sections or ()])
            if len(self._section_rows)
            else np.zeros((0, len(records[0].embedding)))
        )

    def _synced_index(self, stored: HnswIndex | None, index_file: Path) -> HnswIndex:
        """The stored index brought in step with the catalogue (or a new one), saved back
        when it changed; a folder it cannot be saved in costs a build at every open."""
        extra = _scale_arrays(self.scale, self.musicnn_scale)
        genres = self.columns.genres
        if stored is not None and stored.dimension != self.vectors.shape[1]:
            stored = None  # made with another model: of no use
        if stored is None:  # minutes for a million tracks: the user should know why
            say(f"streamer: building the vector index of {len(self.ids):,} tracks, once "
                f"(kept in {index_file})")  # fmt: skip
            index, changed = HnswIndex.build(self.ids, self.vectors, genres, extra=extra), True
        else:
            index, changed = stored, stored.sync(self.ids, self.vectors, genres)
        if changed:
            try:
                index.save(index_file)
            except OSError as error:
                say(f"streamer: warning: cannot save the vector index {index_file} "
                    f"({error.strerror}): it is built anew at each start")  # fmt: skip
        index.attach(self.ids, self.vectors)
        return index

    @classmethod
    def open(
        cls, path: Path, *, labels: Iterable[str] | None = None, exact_below: int = EXACT_BELOW
    ) -> Library:
        """Load the catalogue at `path` (read-only); `labels`: the model it must match.
        A catalogue of `exact_below` tracks or more is searched through its vector index
        (`streamer.library.vectorindex`), kept beside it."""
        with Catalogue(path, readonly=True) as catalogue:
            records = catalogue.tracks()
        large = len(records) >= exact_below
        library = cls(records, index_file=index_path(path) if large else None)
        if labels is not None and list(labels) != library.labels:
            raise StreamerError(
                f"{path}: the library was indexed with another model (labels "
                f"{library.labels}): run `streamer index` again with this model"
            )
        return library

    def __len__(self) -> int:
        return len(self.tracks)

    @property
    def embedding_size(self) -> int:
        return len(next(iter(self.records.values())).embedding)

    def lookup(self, text: str) -> LibraryTrack | None:
        """A track by catalogue id or by path."""
        if text.isdigit() and int(text) in self.tracks:
            return self.tracks[int(text)]
        path = Path(text).expanduser().resolve()
        return next((t for t in self.tracks.values() if t.path == path), None)

    def row(self, track_id: int) -> int:
        """The track's row in `ids` (and in `section_scores`)."""
        return self._row[track_id]

    def vector(self, track_id: int) -> np.ndarray:
        row: np.ndarray = self.vectors[self._row[track_id]]
        return row

    def query(
        self,
        embedding: np.ndarray,
        probabilities: np.ndarray,
        descriptor_vector: np.ndarray | None = None,
        *,
        tag_embedding: np.ndarray | None = None,
        tag_labels: Iterable[str] | None = None,
    ) -> np.ndarray:
        """A query vector for audio outside the catalogue (a file, or what plays now).

        `tag_embedding`: the taggers' pooled embeddings (mean then max, as
        `TrackRecord.tag_embedding`) with their `tag_labels`; without them (or when the
        library has no musicnn part) the ranking comes from the other parts.
        """
        descriptors = None if descriptor_vector is None else descriptor_vector[None, :]
        musicnn = None
        if tag_embedding is not None and tag_labels is not None and self.musicnn_scale is not None:
            musicnn = tagger_embeddings(
                tag_embedding[None, :], list(tag_labels), taggers=MUSICNN_TAGGERS
            )
        joined = combine(
            embedding[None, :],
            probabilities[None, :],
            descriptors,
            musicnn,
            scale=self.scale,
            musicnn_scale=self.musicnn_scale,
        )
        return np.asarray(joined[0])

    def recommend(
        self,
        query: np.ndarray,
        *,
        k: int,
        basis: Basis,
        exclude: Iterable[int] = (),
        filters: Filters = Filters(),
    ) -> list[Recommendation]:
        """The `k` tracks nearest to `query` that `filters` allow, not in `exclude`."""
        allowed = filters.mask(self.columns, basis) & self._music
        allowed[[self._row[i] for i in exclude if i in self._row]] = False
        found = self.index.search(query, k, allowed=allowed, genres=filters.genres or None)
        return [
            Recommendation(self.tracks[i], s, reasons(self.tracks[i], basis, s)) for i, s in found
        ]

    def section_scores(self, embedding: np.ndarray) -> np.ndarray:
        """Each track's best cosine between `embedding` (a CNN embedding) and one of its
        sections, in the order of `ids`; -1 for a track with no sections (no music)."""
        scores = np.full(len(self.ids), -1.0)
        np.maximum.at(scores, self._section_rows, self._sections @ unit_rows(embedding[None])[0])
        return scores

    def now_playing(
        self, embedding: np.ndarray, *, threshold: float = NOW_PLAYING_SIMILARITY
    ) -> tuple[LibraryTrack, float] | None:
        """The library track whose section best matches `embedding`, if close enough."""
        scores = self.section_scores(embedding)
        best = int(np.argmax(scores))
        if scores[best] < threshold:
            return None
        return self.tracks[int(self.ids[best])], float(scores[best])


def _library_track(record: TrackRecord) -> LibraryTrack:
    assert record.id is not None  # read from the catalogue
    return LibraryTrack(
        id=record.id,
        path=Path(record.path),
        title=record.title,
        artist=record.artist,
        album=record.album,
        genre=record.genre,
        genre_share=float(np.max(record.probabilities)),
        tempo=record.tempo,
        key=record.key,
        descriptors=confident_descriptors(record.tags, record.tag_labels),
    )


def refresh_vector_index(path: Path, *, exact_below: int = EXACT_BELOW) -> bool:
    """Bring the vector index of the catalogue at `path` in step with it, when it is large
    enough to have one (`streamer index` does, so that the first query need not); True
    when it has one."""
    with Catalogue(path, readonly=True) as catalogue:
        large = catalogue.track_count() >= exact_below
    if large:
        Library.open(path, exact_below=exact_below)
    return large


def _stored_index(path: Path, tracks: int) -> HnswIndex | None:
    """The index saved at `path`, if there is one that can be trusted and was built for a
    library of about this size (half to twice: past that the scales its vectors were made
    with no longer describe the library, and it is built anew); a damaged one is said."""
    if not path.exists():
        return None
    try:
        stored = HnswIndex.load(path)
    except Exception as error:  # zip, numpy, JSON, FAISS: a damaged file fails any way
        say(f"streamer: warning: {path}: damaged vector index ({first_line(error)}): "
            "building it anew")  # fmt: skip
        return None
    return stored if stored.built_with / 2 <= tracks <= 2 * stored.built_with else None


def _scale_arrays(scale: LibraryScale, musicnn: LibraryScale | None) -> dict[str, np.ndarray]:
    """The scales a library's vectors were made with, as an index stores them."""
    arrays = {"descriptor_mean": scale.mean, "descriptor_std": scale.std}
    if musicnn is not None:
        arrays |= {"musicnn_mean": musicnn.mean, "musicnn_std": musicnn.std}
    return arrays


def _scales(index: HnswIndex) -> tuple[LibraryScale, LibraryScale | None]:
    extra = index.extra
    musicnn = None
    if "musicnn_mean" in extra:
        musicnn = LibraryScale(extra["musicnn_mean"], extra["musicnn_std"])
    return LibraryScale(extra["descriptor_mean"], extra["descriptor_std"]), musicnn


def _has_scales(index: HnswIndex, descriptors: np.ndarray, musicnn: np.ndarray) -> bool:
    """Whether `index` stores scales that fit these parts (same widths, musicnn or not)."""
    extra = index.extra
    tagged = bool(musicnn.any())
    return (
        extra.get("descriptor_mean", np.zeros(0)).shape == descriptors.shape[1:]
        and ("musicnn_mean" in extra) == tagged
        and (not tagged or extra["musicnn_mean"].shape == musicnn.shape[1:])
    )


def musicnn_part(records: list[TrackRecord]) -> np.ndarray:
    """The musicnn part of each record (`MUSICNN_TAGGERS`); zeros for one indexed without
    the taggers."""
    tagged = next((r for r in records if r.tag_embedding is not None), None)
    if tagged is None or tagged.tag_embedding is None or tagged.tag_labels is None:
        return np.zeros((len(records), 0), dtype=np.float32)
    width = len(tagged.tag_embedding)
    pooled = np.stack(
        [r.tag_embedding if r.tag_embedding is not None else np.zeros(width) for r in records]
    )
    return tagger_embeddings(pooled, tagged.tag_labels, taggers=MUSICNN_TAGGERS)


@dataclass
class Session:
    """The memory of one listening session; see the module doc."""

    library: Library
    k: int = 5
    filters: Filters = Filters()
    played: list[int] = field(default_factory=list)  # in the order they were played
    skipped: set[int] = field(default_factory=set)
    liked: list[int] = field(default_factory=list)
    playing: int | None = None  # the track recognised as playing now
    maybe: frozenset[int] = frozenset()  # tracks that may be playing: not recommended now
    heard: np.ndarray | None = None  # the running score of each track (`recognise`)

    def feedback(self, track_id: int, action: str) -> None:
        """Record a client's like, skip or played; `ValueError` for an unknown track."""
        if track_id not in self.library.tracks:
            raise ValueError(f"no track {track_id} in the library")
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; use one of {list(ACTIONS)}")
        if action == "like":
            if track_id not in self.liked:
                self.liked.append(track_id)
        elif action == "skip":
            self.skipped.add(track_id)
        elif track_id not in self.played:
            self.played.append(track_id)

    def recognise(self, embedding: np.ndarray) -> LibraryTrack | None:
        """The library track playing, given the CNN embedding of the latest audio: the
        running score and hysteresis of `PLAYING_WEIGHT` and its neighbours (and `maybe`
        set). A track recognised counts as played from then on."""
        scores = self.library.section_scores(embedding)
        if self.heard is None:
            self.heard = scores
        else:
            self.heard = (1 - PLAYING_WEIGHT) * self.heard + PLAYING_WEIGHT * scores
        order = np.argsort(-self.heard)
        best = self.heard[order[0]]
        lead = best - self.heard[order[1]] if len(order) > 1 else np.inf
        top = int(self.library.ids[order[0]])
        near = self.heard >= max(PLAYING_MAYBE, best - PLAYING_MARGIN)
        self.maybe = frozenset(int(i) for i in self.library.ids[near])
        if best >= PLAYING_ENTER and lead >= PLAYING_MARGIN:
            self.playing = top
            if self.playing not in self.played:
                self.played.append(self.playing)
        elif (
            self.playing is not None and self.heard[self.library.row(self.playing)] < PLAYING_LEAVE
        ):
            self.playing = None
        return None if self.playing is None else self.library.tracks[self.playing]

    def recommend(
        self,
        embedding: np.ndarray,
        probabilities: np.ndarray,
        *,
        descriptor_vector: np.ndarray | None = None,
        tag_embedding: np.ndarray | None = None,
        tag_labels: Iterable[str] | None = None,
        basis: Basis = Basis(),
        recognise: bool = True,
    ) -> tuple[list[Recommendation], tuple[LibraryTrack, float] | None]:
        """Recommendations for the audio heard, and the library track playing (if any)
        with its similarity to the audio on the recommendations' scale; `tag_embedding`
        and `tag_labels`: musicnn's view of it, as `Library.query` takes. `recognise`:
        False for the same audio once more (after a feedback), which is no new evidence
        of the track playing."""
        if recognise:
            self.recognise(embedding)
        playing = None if self.playing is None else self.library.tracks[self.playing]
        query = self.library.query(
            embedding, probabilities, descriptor_vector,
            tag_embedding=tag_embedding, tag_labels=tag_labels,
        )  # fmt: skip
        if self.liked:
            liked = np.mean([self.library.vector(i) for i in self.liked], axis=0)
            query = unit_rows((1 - LIKE_WEIGHT) * query + LIKE_WEIGHT * unit_rows(liked))
        exclude = {*self.played, *self.skipped, *self.maybe}
        found = self.library.recommend(
            query, k=self.k, basis=basis, exclude=exclude, filters=self.filters
        )
        if playing is None:
            return found, None
        return found, (playing, float(query @ self.library.vector(playing.id)))
