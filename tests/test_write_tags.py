"""`streamer library write-tags`: genre, BPM and key into the files' own tags, and --undo.

A small library (FLAC with tags of its own, an MP3 with an ID3v2.3 tag, Ogg Vorbis, WAV,
and an AU file, whose format holds no tags) is indexed with the shipped models by the real
`streamer index`; each test works on a copy. The files are read back with mutagen and
decoded with soundfile (libsndfile: FLAC, Vorbis, MP3 through mpg123, WAV).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mutagen
import numpy as np
import pytest
import soundfile
from conftest import TRAIN_RATE, render_genre
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TCON, TSOP, TYER
from mutagen.mp4 import MP4, MP4FreeForm

from streamer.library.catalogue import Catalogue
from streamer.library.tags import (
    FIELDS,
    bpm_text,
    camelot_of,
    genre_text,
    key_text,
    open_tags,
)

FILES = {  # name: (genre rendered, soundfile format, subtype)
    "house.flac": ("tones", "FLAC", "PCM_16"),
    "old.mp3": ("noise", "MP3", "MPEG_LAYER_III"),
    "plain.ogg": ("clicks", "OGG", "VORBIS"),
    "room.wav": ("tones", "WAV", "PCM_16"),
    "sine.au": ("noise", "AU", "PCM_16"),
}
WRITABLE = ("house.flac", "old.mp3", "plain.ogg", "room.wav")


def streamer(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command, as a user runs it, on an 80-column terminal's width."""
    done = subprocess.run(
        [sys.executable, "-m", "streamer", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("tagging")
    folder, db = work / "music", work / "library.sqlite"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for name, (genre, kind, subtype) in FILES.items():
        y = render_genre(genre, rng, seconds=4.0)
        soundfile.write(folder / name, y, TRAIN_RATE, format=kind, subtype=subtype)
    flac = FLAC(folder / "house.flac")  # the user's own tags, in their own spellings
    flac.tags.extend([("Genre", "Deep House"), ("TITLE", "Old Song"), ("initialkey", "Am")])
    flac.save()
    id3 = ID3()
    id3.add(TCON(encoding=1, text=["Old"]))
    id3.add(TYER(encoding=0, text=["1999"]))
    id3.add(TSOP(encoding=0, text=["Sorted, The"]))  # mutagen's update_to_v23 drops it
    id3.save(folder / "old.mp3", v2_version=3)
    done = streamer("index", str(folder), "--db", str(db), "--workers", "1")
    assert done.returncode == 0 and "5 analysed" in done.stderr, done.stderr
    return {"folder": folder, "db": db}


def copy_library(indexed: dict[str, Path], work: Path) -> dict[str, Path]:
    """The indexed library in `work`, its catalogue pointing at the copies (mtimes kept)."""
    folder, db = work / "music", work / "library.sqlite"
    shutil.copytree(indexed["folder"], folder)
    shutil.copy(indexed["db"], db)
    raw = sqlite3.connect(db)
    with raw:
        raw.execute(
            "UPDATE tracks SET path = replace(path, ?, ?)",
            (str(indexed["folder"].resolve()), str(folder.resolve())),
        )
    raw.close()
    return {"folder": folder, "db": db}


@pytest.fixture
def library(indexed: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    return copy_library(indexed, tmp_path)


def samples(path: Path) -> np.ndarray:
    return soundfile.read(path, dtype="float32")[0]


def tag_state(path: Path) -> Any:
    """Everything of a file's tags that an undo must give back."""
    if path.suffix == ".mp3":
        id3 = ID3(path, translate=False)
        frames = {key: (frame.encoding, [str(t) for t in frame.text]) for key, frame in id3.items()}
        return id3.version, frames
    tags = mutagen.File(path).tags
    if tags is None or path.suffix == ".wav":
        return None if tags is None else dict(tags.items())
    return sorted(tags)


def expected(db: Path, notation: str = "camelot") -> dict[str, dict[str, str]]:
    """What write-tags writes, from the catalogue: per file name, per field."""
    with Catalogue(db, readonly=True) as catalogue:
        tracks = {t.path.name: t for t in catalogue.tracks(sections=False)}
    return {
        name: {
            "genre": genre_text(t.labels[int(np.argmax(t.probabilities))]),
            "bpm": bpm_text(t.tempo or 0.0),
            "key": key_text(t.key or "", notation=notation),
        }
        for name, t in tracks.items()
    }


def test_write_tags_then_undo_gives_back_every_file_as_it_was(library: dict[str, Path]) -> None:
    folder, db = library["folder"], library["db"]
    paths = {name: folder / name for name in FILES}
    audio = {name: samples(paths[name]) for name in WRITABLE}
    before = {name: tag_state(paths[name]) for name in WRITABLE}
    want = expected(db, "standard")

    done = streamer(
        "library", "write-tags", "--genre", "--bpm", "--key", "standard", "--db", str(db)
    )
    assert done.returncode == 1  # the AU file, reported and skipped
    errors = [line for line in done.stderr.splitlines() if "sine.au" in line]
    assert errors[0].startswith(f"streamer: error: {paths['sine.au']}: not a format")
    assert "4 of 5 files written" in done.stderr
    for name in WRITABLE:
        assert np.array_equal(samples(paths[name]), audio[name]), name
        written = open_tags(paths[name])
        got = {field: written.values(written.get(field)) for field in FIELDS}
        assert got == {field: [want[name][field]] for field in FIELDS}, name
    flac = FLAC(paths["house.flac"]).tags
    assert [key for key, _ in flac if key.lower() in ("genre", "initialkey")] == [
        "GENRE",
        "INITIALKEY",
    ]  # every spelling of the name replaced
    assert ("TITLE", "Old Song") in list(flac)
    id3 = ID3(paths["old.mp3"], translate=False)
    assert id3.version == (2, 3, 0)  # saved in its own version
    assert str(id3["TYER"]) == "1999" and str(id3["TSOP"]) == "Sorted, The"
    assert str(id3["TBPM"]) == want["old.mp3"]["bpm"] and str(id3["TKEY"]) == want["old.mp3"]["key"]
    assert len(want["old.mp3"]["key"]) <= 3  # ID3's TKEY limit
    assert mutagen.File(paths["room.wav"]).tags["TKEY"].text == [want["room.wav"]["key"]]

    done = streamer("library", "write-tags", "--undo", "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "4 of 5 files restored" in done.stderr
    for name in WRITABLE:
        assert np.array_equal(samples(paths[name]), audio[name]), name
        assert tag_state(paths[name]) == before[name], name
    assert FLAC(paths["house.flac"]).tags.get("BPM") is None  # it had none: removed again
    with Catalogue(db, readonly=True) as catalogue:
        assert all(not catalogue.written_tags(t.id or 0) for t in catalogue.tracks())


def test_a_dry_run_shows_old_and_new_and_writes_nothing(library: dict[str, Path]) -> None:
    folder, db = library["folder"], library["db"]

    def digests() -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}

    untouched, catalogue_bytes = digests(), db.read_bytes()
    want = expected(db)
    done = streamer("library", "write-tags", "--genre", "--dry-run", "--db", str(db))
    assert done.returncode == 1, done.stderr  # the AU file cannot hold tags
    assert digests() == untouched and db.read_bytes() == catalogue_bytes
    rows = [line for line in done.stdout.splitlines() if "house.flac" in line]
    assert len(rows) == 1 and "Deep House" in rows[0] and want["house.flac"]["genre"] in rows[0]
    assert "BPM" not in done.stdout and "dry run: nothing written" in done.stderr
    assert any("old.mp3" in line and "Old" in line for line in done.stdout.splitlines())


def test_reindexing_does_not_decode_a_file_again_because_its_tags_were_written(
    library: dict[str, Path],
) -> None:
    """The catalogue takes the file's new size and time when streamer saved only tags, but
    not for a file whose audio changed before: that one is analysed again."""
    folder, db = library["folder"], library["db"]
    with Catalogue(db, readonly=True) as catalogue:
        indexed_at = {t.path.name: t.indexed_at for t in catalogue.tracks()}
    changed = folder / "room.wav"  # new audio since the index: its old state must stay
    soundfile.write(changed, render_genre("clicks", np.random.default_rng(1), 4.0), TRAIN_RATE)
    done = streamer("library", "write-tags", "--db", str(db), str(folder / "house.flac"),
                    str(folder / "old.mp3"), str(changed))  # fmt: skip
    assert done.returncode == 0 and "3 of 3 files written" in done.stderr, done.stderr
    done = streamer("index", str(folder), "--db", str(db), "--workers", "1")
    assert done.returncode == 0
    assert "1 analysed" in done.stderr and "4 unchanged" in done.stderr, done.stderr
    with Catalogue(db, readonly=True) as catalogue:
        after = {t.path.name: t for t in catalogue.tracks()}
    assert {name for name in after if after[name].indexed_at != indexed_at[name]} == {"room.wav"}
    assert after["house.flac"].genre_tag == expected(db)["house.flac"]["genre"]  # the file's


def test_undo_keeps_a_value_another_program_changed_since(library: dict[str, Path]) -> None:
    folder, db = library["folder"], library["db"]
    path = folder / "house.flac"
    assert streamer("library", "write-tags", "--db", str(db), str(path)).returncode == 0
    flac = FLAC(path)
    flac["GENRE"] = ["Mine"]
    flac.save()
    done = streamer("library", "write-tags", "--undo", "--db", str(db), str(path))
    assert done.returncode == 0, done.stderr
    assert f"{path}: genre is Mine now, changed by another program" in done.stderr
    tags = FLAC(path).tags
    assert tags["GENRE"] == ["Mine"] and tags.get("BPM") is None
    assert [(k, v) for k, v in tags if k.lower() == "initialkey"] == [("initialkey", "Am")]


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` cannot be written: by its mode, or for root (whom modes do not stop) by the
    immutable attribute."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        yield
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("root without CAP_LINUX_IMMUTABLE: no file is read-only to it")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_file_that_cannot_be_written_is_reported_and_the_others_are_written(
    library: dict[str, Path],
) -> None:
    """A damaged file, a read-only one and a format without tags: one line each, skipped."""
    folder, db = library["folder"], library["db"]
    (folder / "plain.ogg").write_bytes(b"OggS" + bytes(300))  # damaged since indexed
    with read_only(folder / "room.wav"):
        done = streamer("library", "write-tags", "--db", str(db))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("streamer: error")]
    names = sorted(Path(line.split(": ")[2]).name for line in errors)
    assert names == ["plain.ogg", "room.wav", "sine.au"], done.stderr
    assert any("room.wav: cannot write its tags (" in line for line in errors)
    assert any("plain.ogg: cannot read its tags (" in line for line in errors)
    assert "2 of 5 files written" in done.stderr
    assert FLAC(folder / "house.flac").tags["BPM"] and ID3(folder / "old.mp3")["TBPM"]
    assert mutagen.File(folder / "room.wav").tags is None
    with Catalogue(db, readonly=True) as catalogue:  # nothing kept of what was not written
        kept = {t.path.name: catalogue.written_tags(t.id or 0) for t in catalogue.tracks()}
    assert {name for name, fields in kept.items() if fields} == {"house.flac", "old.mp3"}


def test_key_bpm_and_genre_are_written_as_dj_software_reads_them() -> None:
    assert [key_text("A minor", notation=n) for n in ("camelot", "open-key", "standard")] == [
        "8A",
        "1m",
        "Am",
    ]
    assert [key_text(k, notation="open-key") for k in ("C major", "G major", "F major")] == [
        "1d",
        "2d",
        "12d",
    ]
    standard = [key_text(k, notation="standard") for k in ("C# minor", "A# major", "F# major")]
    assert standard == ["Dbm", "Bb", "F#"]
    for code in [f"{n}{letter}" for n in range(1, 13) for letter in "AB"]:
        for notation in ("camelot", "open-key", "standard"):
            assert camelot_of(key_text(code, notation=notation)) == code, (code, notation)
    assert camelot_of("A minor") == camelot_of("am") == camelot_of("1m") == "8A"
    assert camelot_of("C#m") == "12A" and camelot_of("Gb") == "2B"
    with pytest.raises(ValueError):
        camelot_of("H")
    assert [bpm_text(t) for t in (127.5, 127.49, 64.0)] == ["128", "127", "64"]
    assert [genre_text(g) for g in ("hiphop", "rock", "electronic", "Deep House")] == [
        "Hip-Hop",
        "Rock",
        "Electronic",
        "Deep House",
    ]


def atom(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


MEDIA = bytes(range(256)) * 64


def minimal_m4a(path: Path) -> Path:
    """An MP4 file as small as mutagen reads: ftyp, a moov with its mvhd, and media data.
    No encoder of AAC is installed here; what counts is that `mdat` stays byte for byte."""
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = (
        bytes(4) + struct.pack(">IIII", 0, 0, 1000, 4000) + struct.pack(">IH", 0x10000, 0x100)
        + bytes(10) + matrix + bytes(24) + struct.pack(">I", 2)
    )  # fmt: skip
    ftyp = atom(b"ftyp", b"M4A \x00\x00\x00\x00M4A mp42isom")
    path.write_bytes(ftyp + atom(b"moov", atom(b"mvhd", mvhd)) + atom(b"mdat", MEDIA))
    return path


def media(path: Path) -> bytes:
    data = path.read_bytes()
    start = data.index(b"mdat") + 4
    return data[start : start + len(MEDIA)]


def test_mp4_atoms_are_written_and_put_back_exactly(tmp_path: Path) -> None:
    path = minimal_m4a(tmp_path / "song.m4a")
    original = MP4(path)
    original["\xa9gen"] = ["Old Genre"]
    original["----:com.apple.iTunes:initialkey"] = [MP4FreeForm(b"Am", dataformat=0)]
    original.save()
    before = dict(MP4(path).tags)

    tags = open_tags(path)
    kept = {field: tags.get(field) for field in FIELDS}
    assert kept["bpm"] is None
    for field, text in zip(FIELDS, ("Rock", "126", "8A"), strict=True):
        tags.put(field, text)
    tags.save()
    written = MP4(path).tags
    assert written["\xa9gen"] == ["Rock"] and written["tmpo"] == [126]
    assert bytes(written["----:com.apple.iTunes:initialkey"][0]) == b"8A"
    assert media(path) == MEDIA

    tags = open_tags(path)
    for field in FIELDS:
        tags.restore(field, kept[field])
    tags.save()
    after = MP4(path).tags
    assert dict(after) == before and "tmpo" not in after
    assert after["----:com.apple.iTunes:initialkey"][0].dataformat == 0  # its own type
    assert media(path) == MEDIA
    assert base64.b64decode(kept["key"][0]["data"]) == b"Am"


def test_write_tags_needs_a_catalogue(tmp_path: Path) -> None:
    done = streamer("library", "write-tags", "--db", str(tmp_path / "none.sqlite"))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "no catalogue here" in done.stderr
