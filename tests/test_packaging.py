"""streamer installed as a user installs it: a wheel built from the repository, in a fresh
virtual environment, run from another folder, tags a file with the model it ships."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent


def test_a_wheel_ships_the_model_and_tags_a_file_from_another_folder(tmp_path: Path) -> None:
    # From a copy: setuptools builds in the source tree and reuses a build/ folder left there.
    source = tmp_path / "source"
    skip = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__", "work")
    shutil.copytree(ROOT, source, ignore=skip)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = wheels.glob("streamer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("genre.onnx", "genre.json", "README.md"):
        assert f"streamer/models/{shipped}" in names
    assert "streamer/outlets/schemas/status.schema.json" in names
    assert "streamer/outlets/overlay/overlay.js" in names
    assert "streamer/py.typed" in names  # the package is typed (mypy --strict in the suite)

    fresh = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(fresh)], check=True, timeout=120)
    python = fresh / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    # The dependencies come from this test environment, after the fresh site-packages, so
    # that `import streamer` finds the installed wheel and never this checkout (the editable
    # install's finder is not loaded: .pth files only run from the environment's own folder).
    site = Path(
        subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                       check=True, capture_output=True, text=True).stdout.strip()
    )  # fmt: skip
    (site / "zz-test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rate = 22050
    t = np.arange(8 * rate) / rate
    soundfile.write(elsewhere / "song.wav", 0.3 * np.sin(2 * np.pi * 220 * t), rate)
    where = subprocess.run(
        [python, "-c", "import streamer.analysis.model as m; print(m.__file__, m.DEFAULT_MODEL)"],
        cwd=elsewhere, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert all(Path(path).is_relative_to(site) for path in where), where
    done = subprocess.run(
        [fresh / "bin" / "streamer", "tag", "song.wav", "--format", "json"],
        cwd=elsewhere, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    tagged = json.loads((elsewhere / "song.json").read_text())
    shipped = json.loads((ROOT / "models" / "genre.json").read_text())
    assert tagged["model"]["sha256"] == shipped["onnx_sha256"]
    decision = json.loads((ROOT / "models" / "fusion.json").read_text())  # and the taggers
    assert tagged["labels"] == decision["labels"] == [*shipped["labels"], "electronic"]
    assert tagged["model"]["decision"] == "fusion"
    assert [t["name"] for t in tagged["model"]["taggers"]] == [
        "musicnn-msd.onnx",
        "musicnn-mtt.onnx",
    ]
    assert tagged["segments"]
