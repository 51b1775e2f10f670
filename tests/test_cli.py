"""The `streamer` command as a user runs it: real processes, real devices, real files."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from listening import NO_PULSE, start_listen

from streamer.analysis.model import GenreModel
from streamer.outlets import protocol

STREAMER = [sys.executable, "-m", "streamer"]


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        STREAMER + args, env=env or NO_PULSE, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("streamer: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_teaches_with_examples() -> None:
    result = run(["--help"])
    assert result.returncode == 0
    assert "streamer devices" in result.stdout and "streamer listen --file" in result.stdout
    assert "--device" in run(["listen", "--help"]).stdout
    assert "ws://" in run(["watch", "--help"]).stdout


def test_devices_lists_the_pulse_input(pulse_device: dict[str, str]) -> None:
    result = run(["devices"], env={**NO_PULSE, **pulse_device})
    assert result.returncode == 0, result.stderr
    assert "pulse" in result.stdout and "ALSA" in result.stdout and "Hz" in result.stdout


def test_no_sound_server_means_no_device(small_model: Path) -> None:
    assert_one_line_error(run(["devices"]), "no audio input device found", "--file")
    result = run(["listen", "--no-view", "--model", str(small_model)])
    assert_one_line_error(result, "no audio input device found")


def test_missing_portaudio_names_the_package() -> None:
    # PortAudio cannot be uninstalled inside a test; hide it from ctypes the way a machine
    # without libportaudio2 does, so sounddevice raises its real "not found" error.
    code = (
        "import ctypes.util as u; find = u.find_library; "
        "u.find_library = lambda name: None if 'portaudio' in name else find(name); "
        "from streamer.cli import main; raise SystemExit(main(['devices']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=NO_PULSE
    )
    assert_one_line_error(result, "PortAudio", "apt-get install libportaudio2")


def test_listen_to_a_device_that_matches_nothing(
    pulse_device: dict[str, str], small_model: Path
) -> None:
    result = run(
        ["listen", "--model", str(small_model), "--device", "no-such-mic"],
        env={**NO_PULSE, **pulse_device},
    )
    assert_one_line_error(result, "no-such-mic", "streamer devices")


def test_listen_to_a_non_audio_file(tmp_path: Path, small_model: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("not audio\n")
    result = run(["listen", "--model", str(small_model), "--file", str(path)])
    assert_one_line_error(result, str(path), "wav, flac")


def messages(result: subprocess.CompletedProcess) -> list[dict]:
    """The JSON lines of a headless run, each checked against its protocol schema."""
    parsed = [json.loads(line) for line in result.stdout.splitlines()]
    for message in parsed:
        protocol.validate(message)
    return parsed


def test_listen_to_a_file_headless(sine_44k: Path, small_model: Path) -> None:
    result = run(
        ["listen", "--model", str(small_model), "--file", str(sine_44k), "--fast", "--no-view",
         "--port", "0"]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sent = messages(result)
    assert sent[0]["type"] == "hello" and sent[0]["labels"] == ["a", "b", "c"]
    updates = [m for m in sent if m["type"] == "update"]
    spec = GenreModel(small_model).spec
    first = ((spec.patch_frames - 1) * spec.hop_length + spec.n_fft // 2) / spec.sample_rate
    expected = [first + 0.5 * k for k in range(4)]
    assert [u["time"] for u in updates] == pytest.approx(expected, abs=1e-3)  # ms in messages
    assert all(u["level_dbfs"] == pytest.approx(-9.0, abs=0.2) for u in updates)
    assert all(u["state"] == "music" for u in updates)
    segments = [m for m in sent if m["type"] == "segment"]
    assert segments and segments[-1]["end"] == pytest.approx(3.0, abs=0.01)
    assert sent[-1]["type"] == "status" and sent[-1]["overflow_samples"] == 0


def test_listen_to_the_real_device_headless(
    pulse_device: dict[str, str], small_model: Path, tmp_path: Path
) -> None:
    record = tmp_path / "session.jsonl"
    result = run(
        ["listen", "--model", str(small_model), "--no-view", "--duration", "2", "--port", "0",
         "--record", str(record)],
        env={**NO_PULSE, **pulse_device},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    updates = [m for m in messages(result) if m["type"] == "update"]
    assert len(updates) == 2  # hops at 1.02 s and 1.52 s of the 2 s heard
    assert all(u["state"] == "silence" and u["top"] is None for u in updates)  # nothing plays
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r["state"] for r in recorded] == ["silence"] and recorded[0]["genre"] is None


def test_listen_without_its_model_metadata(tmp_path: Path, sine_44k: Path) -> None:
    model = tmp_path / "genre.onnx"
    model.write_bytes(b"not a model")
    result = run(["listen", "--model", str(model), "--file", str(sine_44k)])
    assert_one_line_error(result, "genre.json is missing")


def test_runtime_does_not_import_tensorflow() -> None:
    code = (
        "import sys, streamer.cli, streamer.capture.device, streamer.capture.file, "
        "streamer.analysis.features, streamer.capture.ringbuffer; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


# --- batches, one-line messages, arguments checked when parsed (issue 14) ---------------


def last_line(result: subprocess.CompletedProcess) -> str:
    """The last line of stderr, which must say what happened; never a traceback or a bar."""
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def write_mp3(path: Path, *, seconds: float = 5.0) -> bytes:
    t = np.arange(int(seconds * 22050)) / 22050
    soundfile.write(path, 0.5 * np.sin(2 * np.pi * 440 * t), 22050, format="MP3")
    return path.read_bytes()


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files that cannot be tagged, each in its own way."""
    folder = tmp_path_factory.mktemp("broken")
    random_mp3 = folder / "random.mp3"
    random_mp3.write_bytes(np.random.default_rng(0).bytes(20_000))
    (folder / "folder.wav").mkdir()
    good = write_mp3(folder / "good.mp3")
    damaged = folder / "damaged.mp3"  # opens, then libmpg123 gives up in the middle
    damaged.write_bytes(good[:2000] + np.random.default_rng(1).bytes(3000) + good[5000:])
    return {"random": random_mp3, "folder": folder / "folder.wav", "damaged": damaged}


def test_a_tag_batch_tags_every_file_it_can(
    tmp_path: Path, small_model: Path, sine_44k: Path, broken: dict[str, Path]
) -> None:
    second = tmp_path / "second.wav"
    second.write_bytes(sine_44k.read_bytes())
    files = [sine_44k, broken["random"], broken["damaged"], broken["folder"], second]
    result = run(["tag", *map(str, files), "--model", str(small_model), "--format", "json",
                  "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.returncode == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["second.json", "sine440.json"]
    lines = result.stderr.strip().splitlines()
    for bad, reason in ((broken["random"], "mp3 decoder: no audio frames found"),
                        (broken["folder"], "a folder, not an audio file"),
                        (broken["damaged"], "the decoder gave up partway")):  # fmt: skip
        said = [line for line in lines if line.startswith(f"streamer: error: {bad}: ")]
        assert len(said) == 1 and reason in said[0], result.stderr
    summary = last_line(result)
    assert summary.startswith("streamer: 3 of 5 files failed: ")
    assert f"{broken['folder']} (a folder, not an audio file" in summary


def test_random_bytes_named_mp3_get_one_line_and_no_decoder_noise(
    small_model: Path, broken: dict[str, Path]
) -> None:
    result = run(["listen", "--model", str(small_model), "--file", str(broken["random"])])
    assert_one_line_error(result, "not a readable audio file (mp3 decoder: no audio frames found)")
    result = run(["listen", "--model", str(small_model), "--file", str(broken["folder"])])
    assert_one_line_error(result, "a folder, not an audio file")


def test_piped_stderr_holds_lines_never_wrapped_and_no_bar(
    tmp_path: Path, small_model: Path, sine_44k: Path
) -> None:
    deep = tmp_path / ("a-long-folder-name-" * 5)
    deep.mkdir()
    bad = deep / "notes.wav"
    bad.write_text("not audio\n")
    args = ["tag", str(sine_44k), str(bad), "--model", str(small_model), "--out", str(tmp_path)]
    result = run(args)
    assert result.returncode == 1 and "━" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr  # the tagged file, the bad one, the summary
    assert lines[1].startswith(f"streamer: error: {bad}: not a readable audio file")
    assert len(lines[1]) > 120  # one line, not wrapped at 80 columns
    assert last_line(result).startswith("streamer: 1 of 2 files failed: ")
    assert "━" in run([*args, "--progress"]).stderr  # asked for: drawn even when piped


def test_index_says_each_skipped_file_in_a_line_and_no_bar(
    tmp_path: Path, small_model: Path, sine_44k: Path, broken: dict[str, Path]
) -> None:
    db = tmp_path / "library.sqlite"
    result = run(["index", str(sine_44k), str(broken["random"]), "--db", str(db), "--model",
                  str(small_model), "--workers", "1"])  # fmt: skip
    assert result.returncode == 0 and "━" not in result.stderr
    first, summary = result.stderr.strip().splitlines()
    assert first == (
        f"streamer: skipped {broken['random']}: not a readable audio file "
        "(mp3 decoder: no audio frames found): give a wav, flac, ogg or mp3 file"
    )
    assert summary.startswith(f"{db}: 1 analysed") and "1 failed" in summary


def test_index_checks_its_paths_before_making_a_catalogue(tmp_path: Path) -> None:
    db = tmp_path / "library.sqlite"
    result = run(["index", str(tmp_path / "nowhere"), "--db", str(db)])
    assert result.returncode == 2 and "no such file or folder" in last_line(result)
    result = run(["index", str(tmp_path), "--db", str(db), "--model", str(tmp_path / "x.onnx")])
    assert_one_line_error(result, "no such model file")
    assert not db.exists()


def test_library_remove_says_which_paths_it_does_not_hold(
    tmp_path: Path, small_model: Path, sine_44k: Path
) -> None:
    db = tmp_path / "library.sqlite"
    assert_one_line_error(
        run(["library", "remove", str(sine_44k), "--db", str(db)]), "no catalogue"
    )
    assert not db.exists()
    run(["index", str(sine_44k), "--db", str(db), "--model", str(small_model), "--workers", "1"])
    result = run(["library", "remove", str(tmp_path / "other.wav"), str(sine_44k), "--db", str(db)])
    assert result.returncode == 1 and result.stdout == f"{db}: 1 entries removed\n"
    assert last_line(result) == (
        f"streamer: 1 of 2 paths failed: {tmp_path / 'other.wav'} (not in the catalogue)"
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["tag", "x.wav", "--format", "json,mp3"],
            "--format: unknown format 'mp3': choose from json",
        ),
        (["recommend", "x.wav", "--genre", "jungle"], "choose from blues, classical, country"),
        (["listen", "--library", "--genre", "jungle"], "'jungle' is not a genre of genre.onnx"),
        (["listen", "--hop", "0"], "--hop: '0': give a number from 0.025 to 60"),
        (["tag", "x.wav", "--confirm-hops", "0"], "--confirm-hops: '0': give a whole number"),
        (["listen", "--stay-probability", "1"], "give a number above 0 and below 1"),
        (["tag", "x.wav", "--silence-dbfs", "nan"], "--silence-dbfs: 'nan'"),
        (["listen", "--port", "70000"], "--port: '70000': give a whole number from 0 to 65535"),
        (["listen", "--duration", "-1"], "--duration: '-1': give a number above 0"),
        (["listen", "--device-rate", "0"], "--device-rate: '0'"),
        (["recommend", "x.wav", "-k", "0"], "-k/--recommendations: '0'"),
        (["index", ".", "--workers", "two"], "--workers: 'two'"),
        (["recommend", "x.wav", "--tempo", "120-inf"], "--tempo: '120-inf'"),
        (["listen", "--allow-origin", "https://a.example/page"], "give an origin such as"),
        (["tag", "x.wav", "--out", __file__], "a file, not a folder"),
        (["watch", "http://127.0.0.1:8765"], "give the websocket URL ws://127.0.0.1:8765"),
        (["watch", "127.0.0.1:8765"], "give a ws:// URL, e.g. ws://host:8765"),
    ],
)
def test_bad_arguments_are_refused_when_parsed(args: list[str], fragment: str) -> None:
    result = run(args)
    assert result.returncode == 2, result.stderr
    line = last_line(result)
    assert line.startswith(f"streamer {args[0]}: error: argument ") and fragment in line, line


def test_genres_are_the_models_labels_in_any_case(tmp_path: Path) -> None:
    db = tmp_path / "none.sqlite"
    result = run(["recommend", "x.wav", "--genre", "Metal", "--db", str(db)])
    assert_one_line_error(result, "no catalogue here")  # past the parser: the genre is known
    assert "blues, classical, country, disco" in " ".join(
        run(["recommend", "--help"]).stdout.split()
    )


def test_the_no_device_error_points_to_the_readme_recipe() -> None:
    result = run(["devices"])
    assert_one_line_error(result, '"Without a sound card" in README.md')
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "\n## Without a sound card\n" in readme and "module-null-sink" in readme


def test_a_refused_device_rate_is_told_with_flags_that_exist(
    pulse_device: dict[str, str], small_model: Path
) -> None:
    result = run(["listen", "--model", str(small_model), "--device-rate", "700000", "--no-view"],
                 env={**NO_PULSE, **pulse_device})  # fmt: skip
    assert_one_line_error(result, "refuses", "omit --device-rate")
    assert "--channels" not in result.stderr


def test_help_wraps_to_the_terminal_and_keeps_the_examples() -> None:
    env = {**NO_PULSE, "COLUMNS": "60"}
    listen = run(["listen", "--help"], env=env).stdout
    description = listen.split("\n\n")[1]
    assert description.startswith("Capture audio") and "\n" in description
    assert max(map(len, description.splitlines())) <= 60
    assert "\n  streamer listen --device 2 --record set.jsonl\n" in listen
    assert "--on-device-loss exit" in " ".join(listen.split())  # never cut at a hyphen
    main_help = run(["--help"], env=env).stdout
    assert "  streamer devices                       list inputs" in main_help


def test_watch_connects_first_and_says_when_the_session_stops(
    small_model: Path, sine_44k: Path
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(["watch", f"ws://127.0.0.1:{port}"])
    assert_one_line_error(result, "cannot follow", "is `streamer listen` running there?")
    assert result.stdout == ""  # no view drawn before it has connected
    listen, url = start_listen(small_model, {}, "--file", str(sine_44k))
    try:
        result = run(["watch", url, "--no-view"])
    finally:
        listen.wait(timeout=30)
    assert result.returncode == 1
    assert json.loads(result.stdout.splitlines()[0])["type"] == "hello"
    assert (
        last_line(result)
        == f"streamer: {url} stopped: the connection closed (1001 server stopping)"
    )
