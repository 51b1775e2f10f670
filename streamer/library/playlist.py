"""M3U8 playlists of library tracks: what players and DJ software import as a crate.

The extended M3U format in UTF-8 (``.m3u8``), as rekordbox, Serato, Traktor, Mixxx, VLC and
foobar2000 read it::

    #EXTM3U
    #EXTINF:245,Artist - Title
    crates/house/track.flac
    #EXTINF:-1,untagged
    ../elsewhere/untagged.mp3

``#EXTINF`` holds the duration in whole seconds (rounded; ``-1`` when unknown, the format's
own convention) and the name a player shows: "Artist - Title", the title alone, or the
file name without its suffix for an untagged file. Paths are relative to the playlist's
folder, with ``/`` between folders, so that a playlist and its music can move together (a
path on another Windows drive stays absolute); one that would start with ``#`` starts with
``./``, so that no reader takes it for a comment. Line ends are LF; no byte-order mark.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from streamer.errors import StreamerError
from streamer.files import write_output


class PlaylistEntry(NamedTuple):
    """One track of a playlist; None where unknown."""

    path: Path
    seconds: float | None
    artist: str | None
    title: str | None


def write_m3u8(entries: Sequence[PlaylistEntry], *, path: Path) -> None:
    """Write `entries`, in order, as the M3U8 playlist `path` (module notes), atomically.

    Raises `StreamerError` (one line) for a track whose path holds a line break (M3U has no
    escapes: the playlist could not name it) and when `path` cannot be written.
    """
    path = Path(path)
    folder = path.absolute().parent
    lines = ["#EXTM3U"]
    for entry in entries:
        target = Path(entry.path).absolute()
        if any(character in str(target) for character in "\r\n"):
            raise StreamerError(
                f"{str(target)!r}: a playlist cannot name a file with a line break in its "
                "name: rename it"
            )
        try:
            relative = Path(os.path.relpath(target, folder)).as_posix()
        except ValueError:  # another drive (Windows): only an absolute path reaches it
            relative = target.as_posix()
        if relative.startswith("#"):  # "#1 hit.mp3" beside the playlist: not a comment
            relative = f"./{relative}"
        lines += [f"#EXTINF:{_seconds(entry.seconds)},{_name(entry)}", relative]
    write_output(
        path, ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"),
        advice="choose a file in a writable folder",
    )  # fmt: skip


def _seconds(seconds: float | None) -> int:
    return -1 if seconds is None or not math.isfinite(seconds) else round(seconds)


def _name(entry: PlaylistEntry) -> str:
    if entry.title:
        name = f"{entry.artist} - {entry.title}" if entry.artist else entry.title
    else:
        name = Path(entry.path).stem
    return " ".join(name.split())  # one line, whatever the tags hold
