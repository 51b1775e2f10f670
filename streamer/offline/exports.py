"""Exports of a tagged recording: what DJs load into their players, editors and posts.

`streamer tag` makes a `Timeline` of a recording (segments and per-hop probabilities);
`record_sessions` makes one per session of a `streamer listen --record` file (segments
only).
`export` writes it in any of the `FORMATS`, each to ``<stem><suffix>`` beside the source
or in a chosen folder, each file atomically, so that a crash or a full disk never leaves
half a CUE sheet for a player to choke on. All files are UTF-8.

A music segment in which `streamer tag --library` recognised a library track
(`Timeline.names`, see `streamer.offline.tagging`) is named by it in every format: its
title (the file name without suffix when untagged) and artist; the others by their genre
(or ``silence``, ``not-music``).

Data formats (``json``, ``csv``, ``audacity``) keep the segments' own times. The
presentation formats (``cue``, ``tracklist``) start the first segment at 0: the first hop
comes only once the model's window is full (about 3 s in), and the audio before it belongs
to the segment that hop opened, while a CUE sheet and a posted tracklist must start at 0.

``json`` (``set.json``): everything, for programs. Times are rounded to the millisecond,
confidences and probabilities to 1e-4, levels to 0.1 dB, as in the websocket protocol;
compact (a two-hour set at 0.5 s hops with ten labels is about 1 MB). ``hops`` holds one
entry per hop in each list: ``probabilities`` are the decision for that hop's patch
(the CNN's, or its fusion with the tags), calibrated, before any smoothing (a music
segment's ``confidence`` and ``mixture`` are their mean over it); ``level_dbfs`` is the
RMS level of the hop's own audio, and ``silent`` is true where that level is below the
silence threshold (``--silence-dbfs``): the model's guess on such a hop is no evidence,
the tracker ignores it.
``track`` is the recognised library track (its catalogue id, path and mean cosine
similarity), null when none was.
``invalid_samples`` counts samples of the source that were NaN, infinite or beyond ±1000,
analysed as zeros.
``hop_seconds``, ``level_dbfs`` and ``silent`` are null and the other ``hops`` lists empty
for a record file, which keeps no hops::

    {"source":"set.flac","duration":7300.25,"labels":["house","jazz"],
     "model":{"name":"genre.onnx","sha256":"9f2c..."},"hop_seconds":0.5,
     "segments":[{"index":0,"start":3.0,"end":59.5,"genre":"house","state":"music",
                  "confidence":0.8123,"mixture":{"house":0.8123},
                  "track":{"id":42,"title":"Jóga","artist":"Björk",
                           "path":"/music/joga.flac","similarity":0.9921}},...],
     "invalid_samples":0,
     "hops":{"times":[3.0,3.5,...],"probabilities":[[0.9012,0.0988],...],
             "level_dbfs":[-18.2,-17.9,...],"silent":[false,false,...]}}

``csv`` (``set.csv``): one row per segment, for spreadsheets. Seconds with 3 decimals;
``duration`` is ``end - start`` of those rounded values, so the columns add up; the genre
is empty for silence; ``start_clock`` is the start as H:MM:SS.mmm for humans; ``title`` and
``artist`` name the recognised library track (empty when none). RFC 4180 (CRLF line ends)::

    index,start,end,duration,genre,state,confidence,start_clock,title,artist
    0,3.000,59.500,56.500,house,music,0.8123,0:00:03.000,Jóga,Björk
    1,59.500,62.000,2.500,,silence,1.0000,0:00:59.500,,

``cue`` (``set.cue``): a CUE sheet, so that a player or a splitter shows the set as tracks.
``FILE`` names the audio file with the type ``MP3`` for .mp3, ``AIFF`` for .aif/.aiff and
``WAVE`` for every other format (flac, ogg, opus...): the sheet standard has no other audio
types and players read ``WAVE`` as "decode whatever the file is". The name is the audio's
path relative to the sheet's folder (the bare name beside it, ``../set.flac`` from an
``--out`` folder beside it), exactly as it is: CUE has no escapes, so a file whose name holds
a double quote or a line break cannot be named, and its sheet is refused. For a record file,
which has no audio, ``FILE`` names ``<stem>.wav`` beside the record: change it to the
recording of the session.
Every segment is a track, silence included (titled ``silence``), so that the tracks are
contiguous, as splitters and DJ tools expect, and a track starts where its music starts.
``INDEX 01 mm:ss:ff`` is the frame (1/75 s) nearest to the segment's start, a start exactly
between two frames going to the later one; the first track is at 00:00:00. Minutes are
written as they are, at least two digits, so a two-hour set has INDEX times beyond 99
minutes: most players read them, some old tools stop at 99:59:74. A sheet holds at most 99
tracks and a track must last at least one frame, so while a sheet would break either rule
the shortest track (the earliest of equals) is merged into the one before it (the first
into the one after it, which then starts at 0), and two neighbours left with the same title
become one track: short blips go, long tracks keep their exact starts. A recognised track's
``TITLE`` and ``PERFORMER`` are its title and artist; a genre's performer is ``streamer``
(so is that of a track whose file has no artist). CRLF line ends::

    REM GENERATOR "streamer 0.1.0"
    REM MODEL "genre.onnx"
    REM MODEL_SHA256 9f2c...
    PERFORMER "streamer"
    TITLE "set"
    FILE "set.flac" WAVE
      TRACK 01 AUDIO
        TITLE "house"
        PERFORMER "streamer"
        INDEX 01 00:00:00
      TRACK 02 AUDIO
        TITLE "silence"
        PERFORMER "streamer"
        INDEX 01 00:59:38
      TRACK 03 AUDIO
        TITLE "Jóga"
        PERFORMER "Björk"
        INDEX 01 01:02:00

``audacity`` (``set.labels.txt``): an Audacity label track (File > Import > Labels), to
cut a set into tracks in an editor: one ``start<TAB>end<TAB>label`` line per segment,
seconds with 6 decimals, silence labelled ``silence``, a recognised track "Artist - Title"::

    3.000000	59.500000	house
    59.500000	62.000000	silence

``tracklist`` (``set.tracklist.txt``): the timestamped list posted with a mix on YouTube or
Mixcloud. Silence is left out and consecutive lines of the same genre or track (even with
a silence between them) are one line; a recognised track is "Artist - Title". Times are
whole seconds, rounded down so that a listener who jumps to one hears the change rather
than its tail; ``M:SS`` under an hour, ``H:MM:SS`` from an hour on. A line that lasted
under a second gives way to the next::

    0:00 house
    4:35 Björk - Jóga
    1:02:07 house

``rekordbox-xml`` (``set.rekordbox.xml``): the recording as one track of a rekordbox
collection, with a memory cue at each track of the set, named as in the CUE sheet (at most
99, merged as the CUE sheet merges them); layout and limits in
`streamer.offline.rekordbox`.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, get_args

import numpy as np

from streamer import __version__
from streamer.errors import StreamerError
from streamer.files import write_output
from streamer.segments import Segment, State

CUE_FRAMES_PER_SECOND = 75
MAX_CUE_TRACKS = 99
STATES: tuple[State, ...] = get_args(State)
CSV_COLUMNS = (
    "index", "start", "end", "duration", "genre", "state", "confidence", "start_clock", "title",
    "artist",
)  # fmt: skip
PERFORMER = "streamer"  # a CUE track's performer when no library track was recognised in it


@dataclass(frozen=True)
class TrackName:
    """The library track recognised in a segment (`streamer tag --library`).

    ``title`` is the file's title tag, or its name without the suffix when untagged;
    ``similarity`` the mean cosine of the section matches that named it.
    """

    id: int
    title: str
    artist: str | None
    path: str
    similarity: float


class Label(NamedTuple):
    """What a track of a CUE sheet, a label or a memory cue is called."""

    title: str
    performer: str | None = None  # the artist of a recognised track; None: a genre

    @property
    def text(self) -> str:
        return f"{self.performer} - {self.title}" if self.performer else self.title


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class Timeline:
    """A tagged recording: what every export and the plot are made from.

    Parameters
    ----------
    source : str
        The audio file the timeline belongs to, or the record file it was read from;
        exports are named after it.
    labels : list of str
        The model's genre labels, in its order (which fixes each genre's plot colour).
    duration : float
        Seconds of audio.
    segments : list of Segment
        In order, tiling the audio from the first hop to `duration`.
    hop_seconds : float or None
        None when unknown (a record file).
    times : ndarray
        ``(n,)`` stream time of each hop: the end of the audio its patch saw. May be empty.
    probabilities : ndarray
        ``(n, len(labels))`` the per-hop decision, calibrated, not smoothed (it shows what
        the networks heard); ``(0, len(labels))`` when unknown.
    model : dict
        ``{"name": ..., "sha256": ...}`` of the model, or ``{}`` when unknown.
    levels_dbfs : ndarray or None
        ``(n,)`` RMS level of each hop's own audio; None when unknown (a record file).
    silent : ndarray or None
        ``(n,)`` bool: the hop was below the silence threshold, so the tracker took its
        probabilities as no evidence (`SmoothingConfig.quiet`); None when unknown.
    invalid_samples : int
        Samples of the source that were NaN, infinite or beyond ±1000, analysed as zeros.
    names : dict of int to TrackName
        The library track recognised in a music segment, by `Segment.index` (music
        segments only); the others, and music where nothing was recognised (or no library
        was given), are named by their genre or state.
    """

    source: str
    labels: list[str]
    duration: float
    segments: list[Segment]
    hop_seconds: float | None
    times: np.ndarray
    probabilities: np.ndarray
    model: dict[str, Any]
    levels_dbfs: np.ndarray | None = None
    silent: np.ndarray | None = None
    invalid_samples: int = 0
    names: dict[int, TrackName] = field(default_factory=dict)

    def label(self, segment: Segment) -> Label:
        """The recognised track of `segment`, else its genre (or state: silence...)."""
        named = self.names.get(segment.index)
        if named is not None:
            return Label(named.title, named.artist)
        if segment.state != "music":
            return Label(segment.state)  # "silence", "not-music": speech, noise, tones
        return Label(segment.genre or "music")  # the segmenter always names a music genre

    def __post_init__(self) -> None:
        n = len(self.times)
        per_hop = (self.levels_dbfs, self.silent)
        if (
            np.ndim(self.times) != 1
            or np.shape(self.probabilities) != (n, len(self.labels))
            or any(values is not None and np.shape(values) != (n,) for values in per_hop)
        ):
            raise ValueError(
                f"Timeline needs times, levels_dbfs and silent of shape (n,) and probabilities "
                f"of shape (n, {len(self.labels)}); got {np.shape(self.times)}, "
                f"{[None if v is None else np.shape(v) for v in per_hop]} and "
                f"{np.shape(self.probabilities)}"
            )


def clock(seconds: float) -> str:
    """``M:SS`` under an hour, ``H:MM:SS`` from an hour on, in whole seconds rounded down.

    >>> clock(59.9999), clock(275.0), clock(3723.5)
    ('0:59', '4:35', '1:02:03')
    """
    total = math.floor(round(seconds, 6))  # 6 decimals: float noise must not lose a second
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def clock_millis(seconds: float) -> str:
    """``H:MM:SS.mmm`` to the nearest millisecond.

    >>> clock_millis(59.9999), clock_millis(3599.987)
    ('0:01:00.000', '0:59:59.987')
    """
    hours, rest = divmod(_millis(seconds), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def cue_frame(seconds: float) -> int:
    """The CUE frame (1/75 s) nearest to `seconds`; exactly between two, the later one.

    >>> cue_frame(59.9999), cue_frame(0.02), cue_frame(7205.5)
    (4500, 2, 540413)
    """
    return _half_up(seconds * CUE_FRAMES_PER_SECOND)


def cue_time(frame: int) -> str:
    """``mm:ss:ff`` of a frame count; minutes unbounded, at least two digits.

    >>> cue_time(0), cue_time(4500), cue_time(540413)
    ('00:00:00', '01:00:00', '120:05:38')
    """
    minutes, rest = divmod(frame, 60 * CUE_FRAMES_PER_SECOND)
    seconds, frames = divmod(rest, CUE_FRAMES_PER_SECOND)
    return f"{minutes:02d}:{seconds:02d}:{frames:02d}"


def cue_tracks(
    timeline: Timeline, *, limit: int = MAX_CUE_TRACKS, per_second: int = CUE_FRAMES_PER_SECOND
) -> list[tuple[int, Label]]:
    """The ``(first frame, label)`` of each CUE track: one per segment, merged as the
    module notes say until there are at most `limit` tracks, each at least a frame long;
    frames are 1/`per_second` s (CUE's 75 by default), the nearest to each start.

    Merging takes the shortest track first from a heap (stale entries are skipped), so a
    flickering two-hour set of thousands of segments merges in milliseconds.
    """
    starts: list[int] = []
    titles: list[Label] = []
    for segment in timeline.segments:
        title = timeline.label(segment)
        if titles and titles[-1] == title:
            continue  # the same title again is the same track
        starts.append(_half_up(segment.start * per_second) if starts else 0)
        titles.append(title)
    if not starts:
        return []
    end = max(_half_up(timeline.duration * per_second), starts[-1])
    n = len(starts)
    before = list(range(-1, n - 1))  # a doubly linked list of the tracks left
    after = [*range(1, n), -1]
    alive = [True] * n
    left = n

    def length(i: int) -> int:
        return (end if after[i] < 0 else starts[after[i]]) - starts[i]

    def unlink(i: int) -> None:
        nonlocal left
        alive[i] = False
        left -= 1
        if before[i] >= 0:
            after[before[i]] = after[i]
        if after[i] >= 0:
            before[after[i]] = before[i]

    heap = [(length(i), starts[i], i) for i in range(n)]
    heapq.heapify(heap)
    while heap and left > 1:
        size, start, i = heap[0]
        if not alive[i] or (size, start) != (length(i), starts[i]):
            heapq.heappop(heap)  # stale: the track is gone or has changed since
            continue
        if left <= limit and size > 0:
            break
        heapq.heappop(heap)
        previous, following = before[i], after[i]
        if previous < 0:  # the first track: the one after it takes over from 0
            starts[following] = starts[i]
            unlink(i)
            heapq.heappush(heap, (length(following), starts[following], following))
        else:
            unlink(i)
            if following >= 0 and titles[following] == titles[previous]:
                unlink(following)
            heapq.heappush(heap, (length(previous), starts[previous], previous))
    return [(starts[i], titles[i]) for i in range(n) if alive[i]]


def write_json(timeline: Timeline) -> str:
    """The ``json`` export (see the module notes)."""
    document = {
        "source": timeline.source,
        "duration": _seconds(timeline.duration),
        "labels": list(timeline.labels),
        "model": dict(timeline.model),
        "hop_seconds": timeline.hop_seconds,
        "segments": [
            {
                "index": int(segment.index),
                "start": _seconds(segment.start),
                "end": _seconds(segment.end),
                "genre": segment.genre,
                "state": segment.state,
                "confidence": round(float(segment.confidence), 4),
                "mixture": {name: round(share, 4) for name, share in segment.mixture.items()},
                "track": _track_document(timeline.names.get(segment.index)),
            }
            for segment in timeline.segments
        ],
        "invalid_samples": int(timeline.invalid_samples),
        "hops": {
            "times": np.round(np.asarray(timeline.times, dtype=np.float64), 3).tolist(),
            "probabilities": np.round(
                np.asarray(timeline.probabilities, dtype=np.float64), 4
            ).tolist(),
            "level_dbfs": None  # rounded as the protocol's updates are
            if timeline.levels_dbfs is None
            else [round(float(level), 1) for level in timeline.levels_dbfs],
            "silent": None if timeline.silent is None else [bool(s) for s in timeline.silent],
        },
    }
    return json.dumps(document, separators=(",", ":"), allow_nan=False, default=str) + "\n"


def write_csv(timeline: Timeline) -> str:
    """The ``csv`` export (see the module notes)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for segment in timeline.segments:
        start, end = _millis(segment.start), _millis(segment.end)
        named = timeline.names.get(segment.index)
        writer.writerow(
            [
                segment.index,
                _millis_text(start),
                _millis_text(end),
                _millis_text(end - start),
                segment.genre or "",
                segment.state,
                f"{segment.confidence:.4f}",
                clock_millis(start / 1000),
                "" if named is None else named.title,
                "" if named is None else named.artist or "",
            ]
        )
    return buffer.getvalue()


def write_cue(timeline: Timeline, *, folder: Path | None = None) -> str:
    """The ``cue`` export (see the module notes) of a sheet to be written into `folder`
    (default: beside the source), which its ``FILE`` line is relative to."""
    tracks = cue_tracks(timeline)
    source = Path(timeline.source)
    if not tracks:
        raise StreamerError(
            f"{source.name} has no segments (shorter than the model's window?): "
            "a CUE sheet needs at least one track; choose another format"
        )
    audio = audio_path(timeline)
    name = os.path.relpath(os.path.abspath(audio), os.path.abspath(folder or source.parent))
    if any(character in name for character in '"\r\n'):
        raise StreamerError(
            f"{str(audio)!r}: a CUE sheet cannot name this file, as CUE has no way to write the "
            "double quote or line break in its name: rename it, or leave cue out of --format"
        )
    kind = {".mp3": "MP3", ".aif": "AIFF", ".aiff": "AIFF"}.get(audio.suffix.lower(), "WAVE")
    lines = [f'REM GENERATOR "streamer {__version__}"']
    if timeline.model.get("name"):
        lines.append(f'REM MODEL "{_quoted(timeline.model["name"])}"')
    if timeline.model.get("sha256"):
        lines.append(f"REM MODEL_SHA256 {_quoted(timeline.model['sha256'])}")
    lines += [
        f'PERFORMER "{PERFORMER}"',
        f'TITLE "{_quoted(source.stem)}"',
        f'FILE "{name}" {kind}',
    ]
    for number, (frame, label) in enumerate(tracks, start=1):
        lines += [
            f"  TRACK {number:02d} AUDIO",
            f'    TITLE "{_quoted(label.title)}"',
            f'    PERFORMER "{_quoted(label.performer or PERFORMER)}"',
            f"    INDEX 01 {cue_time(frame)}",
        ]
    return "\r\n".join(lines) + "\r\n"


def audio_path(timeline: Timeline) -> Path:
    """The audio file a sheet or a rekordbox set names: the source, or for a record file
    (no audio) ``<stem>.wav`` beside it."""
    from streamer.capture.file import AUDIO_EXTENSIONS  # only here: capture loads the resampler

    source = Path(timeline.source)
    return source if source.suffix.lower() in AUDIO_EXTENSIONS else source.with_suffix(".wav")


def write_audacity(timeline: Timeline) -> str:
    """The ``audacity`` export (see the module notes)."""
    return "".join(
        f"{segment.start:.6f}\t{segment.end:.6f}\t{timeline.label(segment).text}\n"
        for segment in timeline.segments
    )


def write_tracklist(timeline: Timeline) -> str:
    """The ``tracklist`` export (see the module notes)."""
    lines: list[tuple[int, str]] = []  # (whole seconds, genre or track)
    for number, segment in enumerate(timeline.segments):
        if segment.state != "music":
            continue
        second = 0 if number == 0 else math.floor(round(segment.start, 6))
        if lines and lines[-1][0] == second:
            lines.pop()  # the one before lasted under a second: this one plays from here
        name = timeline.label(segment).text
        if lines and lines[-1][1] == name:
            continue
        lines.append((second, name))
    return "".join(f"{clock(second)} {name}\n" for second, name in lines)


def write_rekordbox(timeline: Timeline) -> str:
    """The ``rekordbox-xml`` export (see the module notes)."""
    from streamer.offline.rekordbox import set_document  # it builds on this module

    return set_document(timeline)


class ExportFormat(NamedTuple):
    """How one export is named (``<stem><suffix>``) and made."""

    suffix: str
    write: Callable[[Timeline], str]


FORMATS: dict[str, ExportFormat] = {
    "json": ExportFormat(".json", write_json),
    "csv": ExportFormat(".csv", write_csv),
    "cue": ExportFormat(".cue", write_cue),
    "audacity": ExportFormat(".labels.txt", write_audacity),
    "tracklist": ExportFormat(".tracklist.txt", write_tracklist),
    "rekordbox-xml": ExportFormat(".rekordbox.xml", write_rekordbox),
}
"""Export formats by name, in the order the help lists them; the module notes show each."""


def output_path(timeline: Timeline, suffix: str, *, out_dir: Path | None = None) -> Path:
    """``<stem><suffix>`` beside the timeline's source, or in `out_dir`."""
    source = Path(timeline.source)
    return (source.parent if out_dir is None else Path(out_dir)) / f"{source.stem}{suffix}"


def export(
    timeline: Timeline, formats: Sequence[str], *, out_dir: Path | None = None
) -> list[Path]:
    """Write `timeline` in each of `formats` (names of `FORMATS`); return the paths.

    Each goes to ``<stem><suffix>`` beside ``timeline.source``, or into `out_dir` (created
    if need be). Every file is made before any is written, so an export that cannot be
    made (a CUE sheet of no segments) leaves nothing behind; each is written atomically.
    Raises `StreamerError` for an unknown format, a folder or file that cannot be
    written, and an export that would replace its own source.
    """
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise StreamerError(
            f"unknown export format {unknown[0]!r}: choose from {', '.join(FORMATS)}"
        )
    source = Path(timeline.source)
    folder = output_path(timeline, "", out_dir=out_dir).parent
    outputs: list[tuple[Path, str]] = []
    for name in dict.fromkeys(formats):
        suffix, write = FORMATS[name]
        path = output_path(timeline, suffix, out_dir=out_dir)
        if path.resolve() == source.resolve():
            raise StreamerError(
                f"the {name} export of {source} would replace it: write it elsewhere with --out DIR"
            )
        # A sheet names its audio relative to where it is written.
        text = write_cue(timeline, folder=path.parent) if name == "cue" else write(timeline)
        outputs.append((path, text))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StreamerError(
            f"cannot create {folder} ({error.strerror}): choose a writable folder with --out"
        ) from None
    for path, text in outputs:
        write_output(path, text.encode("utf-8"), advice="choose a writable folder with --out")
    return [path for path, _ in outputs]


def record_sessions(path: Path, *, labels: list[str] | None = None) -> list[Timeline]:
    """The sessions of a ``streamer listen --record`` JSON-lines file, one timeline each.

    Segment messages are taken, in order; other message types are skipped. ``--record``
    appends, so a file can hold several sessions: a segment whose index is not above the
    one before starts the next (each session numbers its segments from 0). With more than
    one, session N's timeline has the source ``<stem>-N<suffix>`` beside the record, so
    that its exports are ``<stem>-N.*``. The record is written a line at a time and
    fsynced, so a crash can leave only its last line cut short: a last line without its
    newline that is not JSON is ignored. Any other line that is not a valid message raises
    `StreamerError` naming its number, and so does a segment starting before the previous
    one of its session ended. A session's duration is the end of its last segment;
    `labels` default to the genres seen in the whole file, sorted (pass the model's labels
    to colour a plot as `streamer tag` does). No probabilities are known.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise StreamerError(
            f"cannot read {path} ({error.strerror}): give the file `streamer listen --record` wrote"
        ) from None
    if not data.strip():
        raise StreamerError(
            f"{path} is empty: `streamer listen --record` writes a segment when one closes, "
            "so record a session that lasts past its first segment"
        )
    *lines, tail = data.split(b"\n")  # tail: what follows the last newline
    numbered = list(enumerate(lines, start=1))
    if tail.strip():
        try:
            json.loads(tail.decode("utf-8"))
            numbered.append((len(lines) + 1, tail))
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass  # cut short by a crash mid-write
    sessions: list[list[Segment]] = []
    previous_line = 0
    for number, line in numbered:
        if not line.strip():
            continue
        try:
            segment = _segment_of_line(line)
        except ValueError as problem:
            raise StreamerError(
                f"{path} line {number}: {problem}: is it a `streamer listen --record` file? "
                "fix or delete that line"
            ) from None
        if segment is None:
            continue
        if not sessions or segment.index <= sessions[-1][-1].index:
            sessions.append([])
        elif segment.start < sessions[-1][-1].end:
            raise StreamerError(
                f"{path} line {number}: a segment starting at {segment.start} s, before the "
                f"one on line {previous_line} ends ({sessions[-1][-1].end} s): fix or delete "
                "that line"
            )
        previous_line = number
        sessions[-1].append(segment)
    if not sessions:
        raise StreamerError(
            f"{path} has no segment messages: give a file written by `streamer listen --record`"
        )
    genres = sorted({s.genre for session in sessions for s in session if s.genre is not None})
    if labels is None:
        labels = genres
    else:
        foreign = [genre for genre in genres if genre not in labels]
        if foreign:
            raise StreamerError(
                f"{path} has the genre {foreign[0]!r}, which is not one of the labels given "
                f"({', '.join(labels)}): was it recorded with another model?"
            )
    return [
        Timeline(
            source=str(path if len(sessions) == 1 else path.with_stem(f"{path.stem}-{number}")),
            labels=list(labels),
            duration=segments[-1].end,
            segments=segments,
            hop_seconds=None,
            times=np.zeros(0),
            probabilities=np.zeros((0, len(labels))),
            model={},
        )
        for number, segments in enumerate(sessions, start=1)
    ]


def timeline_from_record(path: Path, *, labels: list[str] | None = None) -> Timeline:
    """The one session of a record (`record_sessions`); `StreamerError` if it holds more."""
    sessions = record_sessions(path, labels=labels)
    if len(sessions) > 1:
        raise StreamerError(
            f"{path} holds {len(sessions)} sessions (--record appends): export them with "
            "`streamer export`, which writes each, or choose one with --session N"
        )
    return sessions[0]


def _segment_of_line(line: bytes) -> Segment | None:
    """The segment of one record line, None for another message type; `ValueError`
    saying what is wrong with a line that is not a valid message."""
    try:
        message = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg})") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError("not a protocol message (a JSON object with a type)")
    if message["type"] != "segment":
        return None
    for name in ("index", "start", "end", "genre", "state", "confidence"):
        if name not in message:
            raise ValueError(f'a segment message without "{name}"')
    index, start, end = message["index"], message["start"], message["end"]
    genre, state, confidence = message["genre"], message["state"], message["confidence"]
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"segment index {index!r} is not a whole number >= 0")
    for name, value in (("start", start), ("end", end), ("confidence", confidence)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"segment {name} {value!r} is not a finite number")
    if not 0 <= start <= end:
        raise ValueError(f"segment from {start} to {end} s: times must be >= 0 and in order")
    if state not in STATES:
        raise ValueError(f"segment state {state!r} is none of {', '.join(STATES)}")
    if genre is not None and not isinstance(genre, str):
        raise ValueError(f"segment genre {genre!r} is neither a name nor null")
    mixture = message.get("mixture", {})
    if not isinstance(mixture, dict) or not all(
        isinstance(name, str) and isinstance(share, int | float) and not isinstance(share, bool)
        for name, share in mixture.items()
    ):
        raise ValueError(f"segment mixture {mixture!r} is not an object of genre shares")
    return Segment(
        index=index,
        start=float(start),
        end=float(end),
        genre=genre,
        state=state,
        confidence=float(confidence),
        mixture={name: float(share) for name, share in mixture.items()},
    )


def _track_document(name: TrackName | None) -> dict[str, Any] | None:
    if name is None:
        return None
    return {**asdict(name), "similarity": round(name.similarity, 4)}


def _half_up(value: float) -> int:
    """The nearest whole number, halves up; float noise in the 7th decimal is ignored, so
    that 125.02 s (9376.5 frames, held as 9376.499999...) rounds as written."""
    return math.floor(round(value, 6) + 0.5)


def _millis(seconds: float) -> int:
    return _half_up(seconds * 1000)


def _millis_text(millis: int) -> str:
    return f"{millis // 1000}.{millis % 1000:03d}"


def _seconds(value: float) -> float:
    return round(float(value), 3)


def _quoted(text: str) -> str:
    """`text` fit for a double-quoted CUE field, which has no escapes."""
    return " ".join(str(text).replace('"', "'").split())
