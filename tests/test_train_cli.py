"""The `streamer-train` command as a user runs it: usage errors on stderr, and an export
that never replaces the shipped model unless told to."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streamer.analysis.model import DEFAULT_MODEL, file_sha256

TRAIN = [sys.executable, "-m", "training.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TRAIN, *args], capture_output=True, text=True, timeout=300)


def test_corpus_without_a_folder_is_a_usage_error_on_stderr() -> None:
    result = run("corpus")
    assert result.returncode == 2 and result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last == "streamer-train corpus: error: give the output folder (out), or --list"


def test_fit_options_are_checked_when_parsed(tmp_path: Path) -> None:
    result = run("fit", str(tmp_path), "--run", str(tmp_path / "run"), "--test-fraction", "1")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("streamer-train fit: error: argument --test-fraction: '1': give a number")
    )


def test_export_writes_into_the_run_folder_unless_told_where(trained: dict[str, Path]) -> None:
    shipped = file_sha256(DEFAULT_MODEL)
    result = run("export", "--run", str(trained["run"]))
    assert result.returncode == 0, result.stderr
    written = trained["run"] / "export" / "genre.onnx"
    assert result.stdout.startswith(f"wrote {written} ")
    assert written.is_file() and written.with_suffix(".json").is_file()
    assert file_sha256(DEFAULT_MODEL) == shipped
