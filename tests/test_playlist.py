"""M3U8 playlists (`streamer.library.playlist`), read back by the PyPI `m3u8` parser: a
parser nobody here wrote (made for HLS, it reads plain #EXTINF playlists the same way)."""

from __future__ import annotations

from pathlib import Path

import m3u8
import pytest

from streamer.errors import StreamerError
from streamer.library.playlist import PlaylistEntry, write_m3u8


def test_a_playlist_names_its_tracks_relative_to_its_folder(tmp_path: Path) -> None:
    """Durations, "Artist - Title" (or the title, or the file name), and paths that lead from
    the playlist's folder to each file, non-ASCII names included, as another parser reads
    them; the playlist still finds its music after both move together."""
    music = tmp_path / "music"
    files = [
        music / "Björk" / "Jóga (live) #1.flac",
        music / "untagged 50%.mp3",
        tmp_path / "elsewhere" / "日本語 track.wav",
        music / "playlists" / "#1 hit.mp3",
    ]
    for file in files:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(b"audio")
    playlist = music / "playlists" / "Friday ☃.m3u8"
    write_m3u8(
        [
            PlaylistEntry(path=files[0], seconds=305.6, artist="Björk", title="Jóga"),
            PlaylistEntry(path=files[1], seconds=None, artist=None, title=None),
            PlaylistEntry(path=files[2], seconds=61.4, artist=None, title="Only\ta title"),
            PlaylistEntry(path=files[3], seconds=0.2, artist="X", title="Hit"),
        ],
        path=playlist,
    )
    raw = playlist.read_bytes()
    assert raw.startswith(b"#EXTM3U\n") and raw.decode("utf-8")  # UTF-8, no BOM

    parsed = m3u8.loads(raw.decode("utf-8"), uri=str(playlist))
    assert [(s.duration, s.title) for s in parsed.segments] == [
        (306.0, "Björk - Jóga"), (-1.0, "untagged 50%"), (61.0, "Only a title"), (0.0, "X - Hit"),
    ]  # fmt: skip
    assert [s.uri for s in parsed.segments] == [
        "../Björk/Jóga (live) #1.flac", "../untagged 50%.mp3", "../../elsewhere/日本語 track.wav",
        "./#1 hit.mp3",
    ]  # fmt: skip
    assert [Path(s.absolute_uri).resolve() for s in parsed.segments] == files

    moved = tmp_path.with_name(tmp_path.name + "-moved")
    tmp_path.rename(moved)
    again = moved / "music" / "playlists" / "Friday ☃.m3u8"
    reread = m3u8.loads(again.read_text(encoding="utf-8"), uri=str(again))
    assert all(Path(s.absolute_uri).read_bytes() == b"audio" for s in reread.segments)


def test_an_empty_playlist_is_just_its_header(tmp_path: Path) -> None:
    write_m3u8([], path=tmp_path / "empty.m3u8")
    assert (tmp_path / "empty.m3u8").read_text(encoding="utf-8") == "#EXTM3U\n"


@pytest.mark.parametrize("where", ["line\nbreak.mp3", "no such folder/list.m3u8"])
def test_what_a_playlist_cannot_hold_or_where_it_cannot_go_is_one_line(
    where: str, tmp_path: Path
) -> None:
    track, playlist = tmp_path / "a.mp3", tmp_path / "list.m3u8"
    if where.endswith(".mp3"):
        track = tmp_path / where
    else:
        playlist = tmp_path / where
    with pytest.raises(StreamerError) as caught:
        write_m3u8([PlaylistEntry(track, 1.0, None, "t")], path=playlist)
    assert "\n" not in str(caught.value) and not (tmp_path / "list.m3u8").exists()
