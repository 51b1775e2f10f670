"""`streamer index`: analyse the audio files of a music library into the catalogue.

Each file is decoded block by block (bounded memory, whatever its length) and analysed in
one pass: the genre model on consecutive patches (mean genre distribution, mean embedding,
and one embedding per 30 s section, which lets the live engine recognise a track as it
plays), musicnn's taggers on their own 3 s patches (`streamer.analysis.tagger`: mean tags,
mean and max embedding) and the hand-crafted descriptors (`streamer.analysis.describe`);
its tags come from mutagen.

Re-indexing is incremental: a file whose size and modification time are unchanged, and
that was analysed by the same model and the same taggers, is not decoded again, nor is an
unchanged file that failed before. A track analysed without the taggers (a catalogue
written before they were indexed) is analysed again, once. A file moved or renamed (same
name, size and modification time, new place) is moved in the catalogue without decoding; a
file that is gone is removed. Files are analysed in workers (`streamer.batch`: a local
process pool, or Ray), and the main process writes each result at once in its own
transaction, so an interrupted run keeps every track it finished; a worker that dies has
its files analysed again, and a file that kills its worker twice is recorded as failed.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamer import batch
from streamer.analysis.calibration import Calibration
from streamer.analysis.describe import DESCRIPTOR_VERSION, SECTION_SECONDS, DescriptorAccumulator
from streamer.analysis.fusion import GenreFusion, shipped_fusion
from streamer.analysis.hops import HopAnalyzer
from streamer.analysis.model import GenreModel, file_sha256, read_model_info
from streamer.analysis.tagger import TagAnalyzer, TagHop, TagModel, shipped_tagger_paths
from streamer.batch import Engine
from streamer.capture.file import AUDIO_EXTENSIONS, FileSource
from streamer.chain import TAG_DELAY_SECONDS, decision_calibration
from streamer.errors import StreamerError
from streamer.library.catalogue import Catalogue, TrackRecord
from streamer.progress import progress_bar, say
from streamer.tracking import DEFAULT_SMOOTHING

UNSUPPORTED_AUDIO = {
    ".m4a": "AAC/ALAC in MP4",
    ".mp4": "AAC/ALAC in MP4",
    ".aac": "AAC",
    ".alac": "ALAC",
    ".wma": "Windows Media Audio",
    ".ape": "Monkey's Audio",
    ".wv": "WavPack",
    ".mid": "MIDI (notes, not audio)",
    ".midi": "MIDI (notes, not audio)",
}
"""Audio-looking extensions that libsndfile cannot decode: recorded as failures, so the
user learns which tracks are missing and why. Other files (covers, playlists, text) are
not music and are passed over silently, only counted."""
BLOCK_SECONDS = 10.0  # decoded at a time: bounds memory, and batches model inference


@dataclass
class Plan:
    """What an index run has to do, from a folder scan and the catalogue."""

    analyse: list[Path] = field(default_factory=list)
    unsupported: list[Path] = field(default_factory=list)
    moved: list[tuple[Path, Path]] = field(default_factory=list)
    gone: list[Path] = field(default_factory=list)
    unchanged: int = 0
    ignored: int = 0  # files that are not audio


@dataclass
class Report:
    """What an index run did."""

    analysed: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    ignored: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    interrupted: bool = False


def scan(roots: Iterable[Path]) -> tuple[list[Path], list[Path], int]:
    """Audio files, unsupported audio files and the count of other files under `roots`.

    A root may be a folder, whose files are picked by extension, or a file, which is
    analysed whatever its extension: the user named it.
    """
    audio: set[Path] = set()
    unsupported: set[Path] = set()
    ignored = 0
    for root in roots:
        if root.is_file():
            (unsupported if root.suffix.lower() in UNSUPPORTED_AUDIO else audio).add(root)
            continue
        if not root.is_dir():
            raise StreamerError(f"{root}: no such file or folder: give your music's folder")
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder, name).resolve()
                suffix = path.suffix.lower()
                if suffix in AUDIO_EXTENSIONS:
                    audio.add(path)
                elif suffix in UNSUPPORTED_AUDIO:
                    unsupported.add(path)
                else:
                    ignored += 1
    return sorted(audio), sorted(unsupported), ignored


def file_state(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def joined_sha256(shas: Iterable[str]) -> str:
    """One sha256 for several files' sha256s, in order: what names a set of taggers."""
    return hashlib.sha256(",".join(shas).encode()).hexdigest()


def plan(
    catalogue: Catalogue, roots: list[Path], *, model_sha256: str, taggers_sha256: str
) -> Plan:
    """Compare a scan of `roots` with what the catalogue holds for them."""
    audio, unsupported, ignored = scan(roots)
    result = Plan(ignored=ignored)
    present = set(audio) | set(unsupported)
    known = catalogue.known_paths(roots)
    gone = {path: catalogue.state(path) for path in sorted(known - present)}
    by_signature = {(path.name, state): path for path, state in gone.items() if state}
    for path in audio:
        state = file_state(path)
        recorded = catalogue.state(path)
        if recorded is None:
            old = by_signature.pop((path.name, state), None)
            if old is not None:
                result.moved.append((old, path))
                del gone[old]
                continue
        elif recorded == state and catalogue.analysed_by(path) in (
            (model_sha256, taggers_sha256),
            None,  # a failure
        ):
            result.unchanged += 1
            continue
        result.analyse.append(path)
    for path in unsupported:
        if catalogue.state(path) == file_state(path):
            result.unchanged += 1
        else:
            result.unsupported.append(path)
    result.gone = sorted(gone)
    return result


# --- one file, in a worker ----------------------------------------------------------------


@dataclass(frozen=True)
class IndexSetup:
    """How a batch worker (`streamer.batch`) sets up to index: the models, once, on one
    thread each."""

    model_path: Path
    tagger_paths: tuple[Path, ...]

    def __call__(self) -> Callable[[Path], TrackRecord]:
        model = GenreModel(self.model_path, threads=1)
        taggers = load_taggers(self.tagger_paths)
        return functools.partial(
            analyse_file, model=model, taggers=taggers, fusion=shipped_fusion(model.labels)
        )


def load_taggers(paths: Sequence[Path] | None = None) -> tuple[TagModel, ...]:
    """The taggers the library is indexed with (one thread each): the shipped ones unless
    `paths` says."""
    return tuple(TagModel(path) for path in (paths or shipped_tagger_paths()))


def analyse_file(
    path: Path,
    model: GenreModel,
    *,
    taggers: Sequence[TagModel],
    fusion: GenreFusion | None = None,
) -> TrackRecord:
    """Analyse one file into a catalogue record; a bad file raises `StreamerError`.

    One decode feeds both analyses: the genre model's hops and the taggers' (`TagAnalyzer`,
    pushed the same blocks). With `fusion`, the genre mixture is the decision's, as
    `streamer tag` makes it (each hop with the tag hop `GenreChain` would give it), over
    the decision's labels (``electronic`` too); without, the CNN's own.

    Only music counts: a hop that the live tracker would take as quiet
    (`SmoothingConfig.quiet` at the defaults) adds nothing to the genre mixture, the
    embedding or the sections, so a track with long silences is described by its music; a
    tag patch counts when the genre hop that ends nearest to it is music (the two hop on
    nearly the same 3 s grid). A track with no music hop at all is recorded as such
    (`TrackRecord.has_music`): zero mixture, embeddings and tags, no sections, no key, no
    tempo.
    """
    size, mtime_ns = file_state(path)
    analyzer = HopAnalyzer(model, hop_seconds=model.spec.patch_seconds)
    tagging = TagAnalyzer(taggers, input_rate=model.spec.sample_rate)
    descriptors = DescriptorAccumulator(sample_rate=model.spec.sample_rate)
    probabilities: list[np.ndarray] = []
    embeddings: list[np.ndarray] = []
    music_times: list[float] = []
    starts: list[float] = []
    hop_times: list[float] = []
    hop_music: list[bool] = []
    tag_hops: list[TagHop] = []
    with FileSource(
        path, sample_rate=model.spec.sample_rate, block_seconds=BLOCK_SECONDS
    ) as source:
        while (block := source.read()) is not None:
            descriptors.push(block)
            tag_hops.extend(tagging.push(block))
            for hop in analyzer.push(block):
                hop_times.append(hop.time)
                hop_music.append(not DEFAULT_SMOOTHING.quiet(hop.level_dbfs))
                if hop_music[-1]:
                    probabilities.append(hop.probabilities)
                    embeddings.append(hop.embedding)
                    music_times.append(hop.time)
                    starts.append(hop.time - analyzer.window_seconds)
    duration = analyzer.samples / model.spec.sample_rate
    if not hop_times:
        raise analyzer.too_short(path, seconds=duration)
    section_of = (np.asarray(starts) // SECTION_SECONDS).astype(int)
    sections = [
        (
            float(index * SECTION_SECONDS),
            np.mean(np.asarray(embeddings)[section_of == index], axis=0),
        )
        for index in np.unique(section_of)
    ]
    described = descriptors.result()
    music = bool(embeddings)
    nearest = _nearest(np.asarray(hop_times), np.array([hop.time for hop in tag_hops]))
    heard = [hop for hop, i in zip(tag_hops, nearest, strict=True) if hop_music[i]]
    tag_width = len(tagging.labels)
    tag_embedding_width = sum(tagger.info.embedding_size for tagger in taggers)
    labels, mixture = list(model.labels), np.zeros(len(model.labels))
    if fusion is not None:
        labels, mixture = list(fusion.labels), np.zeros(len(fusion.labels))
    if music:
        mixture = np.mean(
            _decide(
                fusion,
                decision_calibration(model, fusion),
                probabilities,
                music_times,
                tag_hops,
            ),
            axis=0,
        )
    tags = read_tags(path)
    return TrackRecord(
        path=path,
        size=size,
        mtime_ns=mtime_ns,
        duration=duration,
        title=tags.get("title"),
        artist=tags.get("artist"),
        album=tags.get("album"),
        genre_tag=tags.get("genre"),
        model_sha256=model.info.sha256,
        labels=labels,
        probabilities=mixture,
        embedding=np.mean(embeddings, axis=0) if music else np.zeros(model.info.embedding_size),
        descriptors=described.to_dict(),
        descriptor_vector=described.vector(),
        key=described.key if music else None,
        tempo=described.tempo_bpm if music else None,
        indexed_at=time.time(),
        taggers_sha256=analysis_sha256((tagger.info.sha256 for tagger in taggers), fusion),
        tag_labels=list(tagging.labels),
        tags=np.mean([h.tags for h in heard], axis=0) if heard else np.zeros(tag_width),
        tag_embedding=pooled([h.embedding for h in heard], width=tag_embedding_width),
        sections=sections,
    )


def _decide(
    fusion: GenreFusion | None,
    calibration: Calibration,
    probabilities: list[np.ndarray],
    times: list[float],
    tag_hops: list[TagHop],
) -> np.ndarray:
    """Each music hop's decision, as the chain makes it: the CNN's, or the fusion's from it
    and the tag hop that ended `TAG_DELAY_SECONDS` or more before it (NaN before the
    first: the CNN alone), calibrated with the decision's calibration."""
    cnn = np.asarray(probabilities)
    if fusion is None:
        return calibration.apply(cnn)
    ends = np.array([hop.time for hop in tag_hops])
    latest = np.searchsorted(ends, np.asarray(times) - TAG_DELAY_SECONDS, side="right") - 1
    width = len(fusion.tag_labels)
    tags = np.stack([tag_hops[i].tags if i >= 0 else np.full(width, np.nan) for i in latest])
    return calibration.apply(fusion.fuse_hops(cnn, tags))


def analysis_sha256(tagger_shas: Iterable[str], fusion: GenreFusion | None) -> str:
    """What a record was analysed with besides the CNN: the taggers (their files' sha256),
    the decision and the descriptors' version, so that a new decision (a new fusion file)
    or new key and tempo estimators re-analyse the library once."""
    shas = list(tagger_shas)
    if fusion is not None:
        shas.append(fusion.sha256)
    shas.append(f"descriptors {DESCRIPTOR_VERSION}")
    return joined_sha256(shas)


def pooled(embeddings: list[np.ndarray], *, width: int) -> np.ndarray:
    """The mean, then the max, of per-patch embeddings over a track (zeros without any)."""
    if not embeddings:
        return np.zeros(2 * width, dtype=np.float32)
    stacked = np.asarray(embeddings, dtype=np.float32)
    return np.concatenate([stacked.mean(axis=0), stacked.max(axis=0)])


def _nearest(times: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """For each of `queries`, the index of the nearest of the sorted, non-empty `times`."""
    right = np.searchsorted(times, queries).clip(0, len(times) - 1)
    left = (right - 1).clip(0)
    closer_left = np.abs(queries - times[left]) <= np.abs(times[right] - queries)
    found: np.ndarray = np.where(closer_left, left, right)
    return found


def read_tags(path: Path) -> dict[str, str]:
    """Title, artist, album and genre from the file's tags (empty when it has none)."""
    import mutagen

    try:
        tagged = mutagen.File(path, easy=True)
    except Exception:  # mutagen raises many types for damaged tags; the audio may be fine
        return {}
    if tagged is None or tagged.tags is None:
        return {}
    found = {}
    for name in ("title", "artist", "album", "genre"):
        values = tagged.tags.get(name)
        if values:
            found[name] = str(values[0])
    return found


# --- the run ------------------------------------------------------------------------------


def index(
    roots: list[Path],
    *,
    catalogue: Catalogue,
    model_path: Path,
    tagger_paths: Sequence[Path] | None = None,
    engine: Engine = batch.LOCAL,
    progress: bool | None = None,
) -> Report:
    """Bring the catalogue up to date with `roots` (folders or files); see the module doc.
    `tagger_paths`: musicnn's taggers (None: the shipped ones). `engine`: where the files
    are analysed (the local pool, one worker per core, unless it says). `progress`: draw a
    bar (None: when stderr is a terminal).

    Ctrl-C stops the run after the files in progress: every finished track is kept, and
    the next run goes on where this one stopped.
    """
    started = time.monotonic()
    roots = [Path(root).resolve() for root in roots]
    tagger_paths = tuple(tagger_paths or shipped_tagger_paths())
    sha = file_sha256(model_path)
    fusion = shipped_fusion(read_model_info(model_path).labels)  # as each worker loads it
    taggers_sha = analysis_sha256((file_sha256(path) for path in tagger_paths), fusion)
    todo = plan(catalogue, roots, model_sha256=sha, taggers_sha256=taggers_sha)
    report = Report(unchanged=todo.unchanged, ignored=todo.ignored)
    for old, new in todo.moved:
        catalogue.move(old, new)
    report.moved = len(todo.moved)
    report.removed = catalogue.remove(todo.gone)
    for path in todo.unsupported:
        reason = (
            f"unsupported format ({UNSUPPORTED_AUDIO[path.suffix.lower()]}): convert it to FLAC"
        )
        _fail(catalogue, report, path, reason)
    setup = IndexSetup(model_path=model_path, tagger_paths=tagger_paths)
    try:
        _analyse_all(todo.analyse, catalogue=catalogue, report=report, setup=setup,
                     engine=engine, progress=progress)  # fmt: skip
    except KeyboardInterrupt:
        report.interrupted = True
    report.wall_seconds = time.monotonic() - started
    return report


def _analyse_all(
    paths: list[Path],
    *,
    catalogue: Catalogue,
    report: Report,
    setup: IndexSetup,
    engine: Engine,
    progress: bool | None,
) -> None:
    if not paths:
        return
    with progress_bar(show=progress) as bar:
        task = bar.add_task("indexing", total=len(paths), rate="")
        started = time.monotonic()
        with closing(batch.results(paths, setup=setup, engine=engine)) as results:
            for path, result in results:
                if isinstance(result, batch.Failure):
                    _fail(catalogue, report, path, result.reason)
                else:
                    catalogue.put_track(result)
                    report.analysed += 1
                    report.audio_seconds += result.duration
                minutes = max(time.monotonic() - started, 1e-9) / 60
                done = report.analysed + len(report.failed)
                bar.update(task, advance=1, rate=f"{done / minutes:.0f} files/min")


def _fail(catalogue: Catalogue, report: Report, path: Path, reason: str) -> None:
    size, mtime_ns = file_state(path)
    catalogue.put_failure(path, size=size, mtime_ns=mtime_ns, reason=reason)
    report.failed.append((path, reason))
    say(f"streamer: skipped {path}: {reason}")
