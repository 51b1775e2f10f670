"""The synthetic genre corpus: layout, manifest, audibility, determinism, genre separation."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from training import corpus
from training.grooves import GENRES, GTZAN_GENRES, MMA_FAMILIES, families, synth_class
from training.progressions import bar_line, chord_name, is_minor

# The test command installs these (Debian mma, timgm6mb-soundfont; tinysoundfont, music21):
# a missing one fails the suite rather than skipping it.
TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")

GENRES_UNDER_TEST = ("blues", "metal", "reggae")
SECONDS = 4.0
SMALL = dict(genres=GENRES_UNDER_TEST, clips_per_genre=2, clip_seconds=SECONDS,
             soundfonts=[TIMGM], progress=False)  # fmt: skip


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _rms_dbfs(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, corpus.CorpusSummary]:
    out = tmp_path_factory.mktemp("corpus")
    return out, corpus.generate_corpus(out, seed=7, workers=2, **SMALL)


def test_layout_and_manifest(small_corpus: tuple[Path, corpus.CorpusSummary]) -> None:
    out, summary = small_corpus
    rows = _rows(out)
    assert summary.clips == len(rows) == 6 and summary.skipped == 0
    assert set(corpus.MANIFEST_COLUMNS) <= set(rows[0])
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("*/*.wav")) == sorted(
        r["path"] for r in rows
    )
    for row in rows:
        genre_groups = {f.name for f in families(row["label"])}
        assert Path(row["path"]).parts[0] == row["label"]
        assert row["group"] in genre_groups
        assert row["soundfont"] == TIMGM.name and row["seed"] == "7"
        assert row["groove"] and row["key"].endswith(("major", "minor"))
        info = sf.info(out / row["path"])
        assert (info.samplerate, info.channels, info.frames) == (22050, 1, int(SECONDS * 22050))


def test_clips_are_audible_throughout(small_corpus: tuple[Path, corpus.CorpusSummary]) -> None:
    out, _ = small_corpus
    for row in _rows(out):
        audio, rate = sf.read(out / row["path"], dtype="float32")
        assert _rms_dbfs(audio) > -30, row["path"]
        for second in audio.reshape(-1, rate):
            assert _rms_dbfs(second) > -50, row["path"]
        assert np.max(np.abs(audio)) < 1.0


def test_genres_use_their_own_groove_families(
    small_corpus: tuple[Path, corpus.CorpusSummary],
) -> None:
    out, _ = small_corpus
    groups = {g: {r["group"] for r in _rows(out) if r["label"] == g} for g in GENRES_UNDER_TEST}
    assert all(len(s) == 2 for s in groups.values())  # two clips, two different families
    assert not (groups["blues"] & groups["metal"] or groups["metal"] & groups["reggae"])
    tempos = {r["label"]: int(r["tempo"]) for r in _rows(out)}
    assert all(40 <= t <= 260 for t in tempos.values())


def test_same_seed_same_bytes_whatever_the_workers(
    small_corpus: tuple[Path, corpus.CorpusSummary], tmp_path: Path
) -> None:
    out, _ = small_corpus
    again = tmp_path / "again"
    corpus.generate_corpus(again, seed=7, workers=1, **SMALL)
    assert (again / "manifest.csv").read_bytes() == (out / "manifest.csv").read_bytes()
    for row in _rows(out):
        assert (again / row["path"]).read_bytes() == (out / row["path"]).read_bytes()


def test_subset_of_genres_gives_the_same_clips(
    small_corpus: tuple[Path, corpus.CorpusSummary], tmp_path: Path
) -> None:
    out, _ = small_corpus
    corpus.generate_corpus(tmp_path, **{**SMALL, "genres": ["metal"], "clips_per_genre": 1},
                           seed=7, workers=1)  # fmt: skip
    clip = "metal/metal.00000.wav"
    assert (tmp_path / clip).read_bytes() == (out / clip).read_bytes()


def test_another_seed_gives_other_music(
    small_corpus: tuple[Path, corpus.CorpusSummary], tmp_path: Path
) -> None:
    out, _ = small_corpus
    corpus.generate_corpus(tmp_path, **{**SMALL, "genres": ["blues"]}, seed=8, workers=1)
    for index in range(2):
        clip = f"blues/blues.{index:05d}.wav"
        assert (tmp_path / clip).read_bytes() != (out / clip).read_bytes()


def test_classical_clip_from_a_music21_score(tmp_path: Path) -> None:
    summary = corpus.generate_corpus(
        tmp_path / "out", **{**SMALL, "genres": ["classical"], "clips_per_genre": 1},
        groups=["music21/bach"], cache_dir=tmp_path / "cache", workers=1,
    )  # fmt: skip
    (row,) = _rows(tmp_path / "out")
    assert summary.clips == 1 and row["group"] == "music21/bach"
    assert row["groove"].startswith("bach/") and row["drum_kit"] == ""
    assert list((tmp_path / "cache").glob("*.mid"))  # the export is cached for the next run
    audio, _ = sf.read(tmp_path / "out" / row["path"])
    assert _rms_dbfs(audio) > -30


def test_every_curated_family_exists_in_the_installed_mma() -> None:
    from training.mma import groove_variants

    empty = [f.name for f in MMA_FAMILIES if not groove_variants(f)]
    assert not empty
    assert all(not any(w in v.lower() for w in ("intro", "end", "fill"))
               for f in MMA_FAMILIES for v in groove_variants(f))  # fmt: skip


def test_every_accompaniment_plays_over_a_drum_groove() -> None:
    from training.grooves import ACCOMPANIMENTS
    from training.mma import accompaniment_tracks, chart_text, render_midi
    from training.render import channel_programs, load_midi

    for genre, accompaniments in ACCOMPANIMENTS.items():
        drums = next(f for f in MMA_FAMILIES if f.genre == genre and f.drums_only)
        for acc in accompaniments:
            programs = [part.programs[-1] for part in acc.parts]
            text = chart_text(
                library=drums.library, groove=drums.base, tempo=100, seed=1, bars=["C", "G7"],
                extra_tracks=accompaniment_tracks(acc, programs),
            )  # fmt: skip
            used = channel_programs(load_midi(render_midi(text)))
            assert sorted(p for ps in used.values() for p in ps) == sorted(set(programs)), acc


def test_each_genre_has_many_families_and_none_is_shared() -> None:
    names = [f.name for g in GENRES for f in families(g)]
    assert len(names) == len(set(names))
    assert all(len(families(g)) >= 8 for g in GENRES)


def test_silent_and_truncated_renders_are_rejected() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(corpus.ClipFailure):
        corpus._check_and_level(np.zeros(22050 * 4, np.float32), rng, 22050)
    stops_early = np.zeros(22050 * 4, np.float32)
    stops_early[:22050] = 0.3 * np.sin(np.arange(22050) * 0.1)
    with pytest.raises(corpus.ClipFailure):
        corpus._check_and_level(stops_early, rng, 22050)
    levelled = corpus._check_and_level(0.9 * np.sign(np.sin(np.arange(88200) * 0.01)), rng, 22050)
    assert np.max(np.abs(levelled)) <= 0.98


def test_progressions_are_spelled_in_key() -> None:
    assert [chord_name(t, 0) for t in ("I7", "ii7", "bVII", "i5", "iim7b5", "viidim")] == [
        "C7", "Dm7", "Bb", "C5", "Dm7b5", "Bdim",
    ]  # fmt: skip
    assert chord_name("IV", 7) == "C"
    assert bar_line("ii7:V7", 0, beats=4) == "Dm7 / G7 /"
    assert bar_line("ii7:V7", 0, beats=3) == "Dm7 / G7"


def test_a_chart_is_in_the_mode_of_its_tonic_chord() -> None:
    """The manifest's key: "ii7 V7 Imaj7" is major (its first chord is minor, its I is not);
    a vamp without a tonic chord counts as major."""
    assert is_minor("i iv v i") and is_minor("iv7:V7 i7")
    assert not is_minor("ii7 V7 Imaj7") and not is_minor("vi IV I V")
    assert not is_minor("ii7:V7") and not is_minor("bVII I")


def test_cli_help_teaches_and_list_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    help_text = corpus.build_parser().format_help()
    assert "examples:" in help_text and "--clips-per-genre" in help_text
    assert "--genres all" in help_text and "electronic" in help_text
    assert corpus.main(["--list", "--genres", "reggae"]) == 0
    printed = capsys.readouterr().out
    assert "reggae (" in printed and "zoom/REGG01" in printed and "electronic" not in printed
    assert corpus.main(["--list"]) == 0  # the whole table, electronic included
    printed = capsys.readouterr().out
    assert all(f"{genre} (" in printed for genre in GENRES)
    assert all(name in printed for name in ("casio/Trance1", "zoom/DnB01", "casio/Techno"))
    assert corpus.build_parser().parse_args(["out", "--genres", "all"]).genres == list(GENRES)


# sha256 over a corpus (every file's relative path, then its bytes, in path order) made by the
# call in the test below, computed with the corpus code as it was before `electronic` was added
# (commit e9d4eb1, Debian MMA 21.09, TimGM6mb.sf2, tinysoundfont as pinned). A regression guard:
# a change that alters any clip of the ten genres, or adds a genre to the default, changes it.
TEN_GENRES_SHA256 = "a6df1cc4e62b4fa4c1fd86143a7042ac208eb0147cd51b34ba79b13285855527"


def test_the_ten_genres_clips_are_unchanged_and_the_default(tmp_path: Path) -> None:
    groups = [f.name for f in MMA_FAMILIES if f.genre in GTZAN_GENRES]  # music21 is slow
    corpus.generate_corpus(tmp_path, clips_per_genre=2, clip_seconds=2.0, groups=groups,
                           soundfonts=[TIMGM], seed=2026, workers=1, progress=False)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == sorted(GTZAN_GENRES)
    digest = hashlib.sha256()
    for path in sorted(tmp_path.rglob("*.*")):
        digest.update(path.relative_to(tmp_path).as_posix().encode())
        digest.update(path.read_bytes())
    assert digest.hexdigest() == TEN_GENRES_SHA256


def test_electronic_clip_renders_and_is_labelled(tmp_path: Path) -> None:
    summary = corpus.generate_corpus(
        tmp_path, **{**SMALL, "genres": ["electronic"], "clips_per_genre": 1}, seed=7, workers=1
    )
    (row,) = _rows(tmp_path)
    assert summary.clips == 1 and row["label"] == "electronic"
    assert row["path"] == "electronic/electronic.00000.wav"
    assert row["group"] in {f.name for f in families("electronic")}
    assert row["drum_kit"] in {"24", "25"}  # Electronic and TR-808 kits
    assert 80 <= int(row["tempo"]) <= 176 and row["key"].endswith(("major", "minor"))
    audio, _ = sf.read(tmp_path / row["path"])
    assert _rms_dbfs(audio) > -30


def test_electronic_grooves_play_only_synthesizers() -> None:
    from training.render import channel_programs

    synths = {p for program in range(128) for p in synth_class(program)}
    assert synths == {38, 39, *range(80, 104)}  # synth basses, leads, pads, effects
    job = corpus.ClipJob("electronic", 0, 7, (TIMGM,), 2.0, 22050, Path("."), "PCM_16",
                         Path("."), None, 1)  # fmt: skip
    # Grooves written for piano, electric piano, organ, guitar, flute, acoustic bass...
    for name in ("casio/LatinHouse", "casio/Ambient2", "casio/Ambient3", "stdlib/Trance"):
        (family,) = [f for f in families("electronic") if f.name == name]
        for attempt in range(3):
            events, mix, _ = corpus._mma_clip(family, job, corpus._rng(7, attempt))
            used = {p for programs in channel_programs(events).values() for p in programs}
            assert used - synths, name  # ...so the voicing below has work to do
            assert {mix.programs.get(p, p) for p in used} <= synths, name


def test_unknown_genre_and_missing_soundfont_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown genres"):
        corpus.generate_corpus(tmp_path, genres=["polka"], progress=False)
    with pytest.raises(FileNotFoundError, match="soundfonts not found"):
        corpus.generate_corpus(tmp_path, soundfonts=[tmp_path / "none.sf2"], progress=False)


def test_held_out_families_use_only_the_held_out_soundfont(tmp_path: Path) -> None:
    other = tmp_path / "Other.sf2"  # a second font name; same timbre keeps the test quick
    shutil.copy(TIMGM, other)
    summary = corpus.generate_corpus(
        tmp_path / "corpus", genres=["reggae"], clips_per_genre=9, clip_seconds=2.0,
        soundfonts=[other, TIMGM], held_out_font=TIMGM, seed=3, workers=1, progress=False,
    )  # fmt: skip
    held = corpus.held_out_families("reggae", seed=3, fraction=0.2)
    assert len(held) == 3  # 20 % of 9 families, but at least three
    rows = _rows(summary.out_dir)
    assert len(rows) == 9
    for row in rows:
        is_held = row["group"] in held
        assert is_held == (row["soundfont"] == TIMGM.name) == (row["held_out"] == "1")
    assert {row["held_out"] for row in rows} == {"0", "1"}
