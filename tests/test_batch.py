"""Where batch work runs (`streamer.batch`): `streamer index` and `streamer tag` on the local
process pool and on Ray, with the same results, the same guarantees when a worker is
killed, Ctrl-C that keeps what finished, and one line when Ray is missing or a cluster
does not answer.

Ray runs as a real local cluster of two workers, started once for the module; the
commands whose real form is a process of their own (Ctrl-C, Ray missing) run as
subprocesses of the `streamer` CLI.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from conftest import TRAIN_RATE, render_genre
from test_library import BAD, GENRES, PER_GENRE, index, make_library

from streamer.cli import main
from streamer.errors import StreamerError
from streamer.library import indexer
from streamer.library.catalogue import Catalogue, TrackRecord

DIED_TWICE = "the worker analysing it died twice"
SLOW_SECONDS = 10.0  # longer than a worker's start-up and a file's analysis


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A local Ray cluster of two workers, joined by this process: the commands run in it
    use it (and leave it running) rather than start their own."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # CrashingSetup
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def pooled(trained: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test library indexed by the local pool (two workers): the reference."""
    work = tmp_path_factory.mktemp("batch")
    folder, db = make_library(work / "music", seed=21), work / "pool.sqlite"
    assert index(folder, db, trained["onnx"], "--workers", "2") == 0
    return {"folder": folder, "db": db, "model": trained["onnx"]}


def catalogue_of(db: Path) -> tuple[dict[Path, TrackRecord], dict[Path, str]]:
    with Catalogue(db, readonly=True) as catalogue:
        tracks = {record.path: record for record in catalogue.tracks()}
        failures = {failure.path: failure.reason for failure in catalogue.failures()}
    return tracks, failures


def finished_so_far(db: Path) -> int:
    """Tracks an index run being watched has recorded; 0 until its catalogue exists (SQLite
    creates the file a moment before the indexer writes the schema into it)."""
    try:
        return len(catalogue_of(db)[0]) if db.exists() else 0
    except StreamerError as error:
        if "no catalogue here" not in str(error):
            raise
        return 0


def assert_same_track(one: TrackRecord, other: TrackRecord) -> None:
    """Every field the same, vectors within float tolerance (ids and times aside)."""
    for field in dataclasses.fields(TrackRecord):
        if field.name in ("id", "indexed_at"):
            continue
        a, b = getattr(one, field.name), getattr(other, field.name)
        if field.name == "sections":
            assert [start for start, _ in a] == [start for start, _ in b]
            np.testing.assert_allclose(np.stack([e for _, e in a]), np.stack([e for _, e in b]),
                                       rtol=1e-5, atol=1e-6)  # fmt: skip
        elif isinstance(a, np.ndarray):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=field.name)
        elif field.name == "descriptors":
            assert a.keys() == b.keys()
            for name, value in a.items():
                close = isinstance(value, float)
                assert value == (pytest.approx(b[name], rel=1e-5) if close else b[name]), name
        else:
            assert a == b, (field.name, one.path)


def test_ray_indexes_the_same_catalogue_as_the_local_pool(
    pooled: dict[str, Path], ray_cluster: Any, tmp_path: Path
) -> None:
    db = tmp_path / "ray.sqlite"
    assert index(pooled["folder"], db, pooled["model"], "--engine", "ray") == 0
    tracks, failures = catalogue_of(db)
    expected_tracks, expected_failures = catalogue_of(pooled["db"])
    assert set(tracks) == set(expected_tracks) and len(tracks) == len(GENRES) * PER_GENRE
    for path, record in tracks.items():
        assert_same_track(record, expected_tracks[path])
    assert failures == expected_failures and {p.name for p in failures} == set(BAD)
    # incremental: a second run sends nothing to the workers and rewrites nothing
    assert index(pooled["folder"], db, pooled["model"], "--engine", "ray") == 0
    again, _ = catalogue_of(db)
    assert {p: r.indexed_at for p, r in again.items()} == {
        p: r.indexed_at for p, r in tracks.items()
    }


@dataclasses.dataclass(frozen=True)
class CrashingSetup(indexer.IndexSetup):
    """The indexer's worker set-up, whose worker SIGKILLs itself on the crash files while
    others are in flight: on crash-once's first analysis only (a mark beside it says it
    happened), on every analysis of crash-always; a slow file takes `SLOW_SECONDS` more."""

    def __call__(self) -> Callable[[Path], TrackRecord]:
        analyse = super().__call__()

        def run(path: Path) -> TrackRecord:
            if "slow" in path.name:
                time.sleep(SLOW_SECONDS)
            mark = path.with_name(path.name + ".crashed")
            if "crash-always" in path.name or ("crash-once" in path.name and not mark.exists()):
                mark.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return analyse(path)

        return run


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_killed_worker_loses_no_track_and_a_file_that_kills_it_twice_fails(
    engine: str,
    pooled: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    if engine == "ray":
        request.getfixturevalue("ray_cluster")
    # In the order they are sent: crash-once dies among the first files in flight; the
    # last of those (slow), analysed again, would still be in flight when crash-always
    # first kills its worker if a retried file were not analysed alone: it would then have
    # died twice, innocent.
    folder = tmp_path / "music"
    folder.mkdir()
    clips = {"clicks": "clicks-0", "crash-once": "tones-0", "crash-always": "noise-0",
             "noise": "noise-1", "tones": "tones-1", "slow": "noise-2"}  # fmt: skip
    order = ["clicks", "crash-once", "tones", "slow", "noise", "crash-always", "clicks", "tones"]
    for number, name in enumerate(order):
        clip = clips[name]
        shutil.copy2(pooled["folder"] / clip.split("-")[0] / f"{clip}.flac",
                     folder / f"{number}-{name}.flac")  # fmt: skip
    monkeypatch.setattr(indexer, "IndexSetup", CrashingSetup)
    db = tmp_path / "library.sqlite"
    assert index(folder, db, pooled["model"], "--engine", engine, "--workers", "2") == 0
    tracks, failures = catalogue_of(db)
    crashed = folder / "5-crash-always.flac"
    survivors = {path for path in folder.glob("*.flac") if path != crashed}
    assert set(tracks) == survivors  # every finished track kept, the innocent ones retried
    assert (folder / "1-crash-once.flac.crashed").exists()  # it did die once
    assert list(failures) == [crashed] and failures[crashed].startswith(DIED_TWICE)
    original = catalogue_of(pooled["db"])[0][pooled["folder"] / "tones" / "tones-0.flac"]
    retried = tracks[folder / "1-crash-once.flac"]
    assert_same_track(dataclasses.replace(retried, path=original.path), original)


def default_sigint() -> None:
    """In a child: Ctrl-C as in a terminal, even under a suite started with `&` (which
    leaves SIGINT ignored, and Python then never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_with_ray_keeps_finished_tracks_and_the_next_run_goes_on(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    folder = make_library(tmp_path / "music", seed=22)
    shutil.rmtree(folder / "bad")
    db, log = tmp_path / "library.sqlite", tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "streamer", "index", str(folder), "--db", str(db),
               "--model", str(trained["onnx"]), "--engine", "ray", "--workers", "1"]  # fmt: skip
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, stderr=stderr, start_new_session=True, preexec_fn=default_sigint
        )
    finished = 0
    for _ in range(900):  # three minutes at most, for Ray's start and three tracks
        time.sleep(0.2)
        finished = finished_so_far(db)
        if finished >= 3 or process.poll() is not None:
            break
    assert 3 <= finished < len(GENRES) * PER_GENRE, "too fast or too slow to interrupt"
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    assert process.wait(timeout=60) == 130, log.read_text()
    assert "interrupted: every finished track is kept" in log.read_text()
    kept = {path: record.indexed_at for path, record in catalogue_of(db)[0].items()}
    assert len(kept) >= finished
    assert index(folder, db, trained["onnx"]) == 0
    tracks, failures = catalogue_of(db)
    assert len(tracks) == len(GENRES) * PER_GENRE and not failures
    assert all(tracks[path].indexed_at == at for path, at in kept.items())  # not again


def write_set(path: Path, genres: tuple[str, ...], *, seed: int) -> Path:
    """A short "set": the genres' clips one after the other, 6 s each."""
    rng = np.random.default_rng(seed)
    audio = np.concatenate([render_genre(genre, rng, seconds=6.0) for genre in genres])
    soundfile.write(path, audio, TRAIN_RATE)
    return path


def test_tag_on_ray_or_the_pool_writes_what_tagging_here_writes(
    pooled: dict[str, Path],
    ray_cluster: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sets = tmp_path / "sets"
    sets.mkdir()
    files = [
        pooled["folder"] / "tones" / "tones-0.flac",  # a library track: named by it
        sets / "broken.flac",
        write_set(sets / "set.flac", ("noise", "tones", "clicks"), seed=2),
    ]
    files[1].write_bytes(b"fLaC not really")
    capsys.readouterr()
    said = {}
    for name, extra in {
        "here": [],
        "pool": ["--workers", "2"],
        "ray": ["--engine", "ray"],
    }.items():
        out = tmp_path / name
        arguments = ["tag", *map(str, files), "--model", str(pooled["model"]),
                     "--library", str(pooled["db"]), "--out", str(out),
                     "--format", "json,csv,cue,tracklist,rekordbox-xml", *extra]  # fmt: skip
        assert main(arguments) == 1  # the broken file
        said[name] = sorted(capsys.readouterr().err.replace(str(out), "OUT").splitlines())
    written = sorted(path.name for path in (tmp_path / "here").iterdir())
    assert len(written) == 2 * 5
    for name in ("pool", "ray"):
        assert sorted(path.name for path in (tmp_path / name).iterdir()) == written
        for file in written:
            assert (tmp_path / name / file).read_bytes() == (tmp_path / "here" / file).read_bytes()
        assert said[name] == said["here"]
    assert any("tones-0.flac: 1 tracks (1 named from the library)" in line
               for line in said["here"])  # fmt: skip
    assert any("broken.flac" in line and "error" in line for line in said["here"])


def run_streamer(*arguments: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """`streamer ARGUMENTS` in a subprocess, after `prelude` (Python) has run there."""
    script = f"import sys\n{prelude}\nfrom streamer.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", script, *arguments], capture_output=True, text=True, timeout=120
    )


def test_without_ray_or_without_a_cluster_it_is_one_line(
    pooled: dict[str, Path], tmp_path: Path
) -> None:
    clip = next((pooled["folder"] / "tones").iterdir())
    db = tmp_path / "library.sqlite"
    for command in (["index", str(clip), "--db", str(db)], ["tag", str(clip)]):
        missing = run_streamer(*command, "--engine", "ray", prelude="sys.modules['ray'] = None")
        assert missing.returncode == 2
        assert missing.stderr == (
            "streamer: error: --engine ray needs Ray: pip install 'streamer[cluster]'\n"
        )
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    nobody = run_streamer("index", str(clip), "--db", str(db), "--engine", "ray",
                          "--address", address)  # fmt: skip
    assert nobody.returncode == 2 and time.monotonic() - started < 30
    assert nobody.stderr.startswith(f"streamer: error: --address {address}: no Ray cluster")
    assert "ray start --head" in nobody.stderr and nobody.stderr.count("\n") == 1
    alone = run_streamer("index", str(clip), "--db", str(db), "--address", address)
    assert alone.returncode == 2
    assert alone.stderr == (
        f"streamer: error: --address {address} joins a Ray cluster: add --engine ray\n"
    )
    assert not db.exists()  # nothing was started, nothing written


def test_the_local_engine_never_imports_ray(pooled: dict[str, Path], tmp_path: Path) -> None:
    clip = next((pooled["folder"] / "tones").iterdir())
    done = run_streamer(
        "index", str(clip), "--db", str(tmp_path / "library.sqlite"),
        "--model", str(pooled["model"]),
        prelude="import atexit\natexit.register(lambda: print('ray' in sys.modules))",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "False\n"
