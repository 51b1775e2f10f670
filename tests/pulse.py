"""A private PulseAudio daemon with a null sink: a real input device on a machine without
a sound card.

Whatever is played into the null sink (`paplay`) comes back on its monitor source, which
is the default input, so PortAudio's ``pulse``/``default`` devices capture it. A loopback
module reads the monitor continuously; without a steady reader, a null sink runs in 2 s
bursts and the first capture callback arrives seconds late (see shared/NOTES.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SINK = "streamer_sink"

SCRIPT = """\
load-module module-native-protocol-unix auth-anonymous=1 socket={socket}
load-module module-null-sink sink_name={sink} sink_properties=device.description=streamer-null
load-module module-null-sink sink_name=streamer_drain
load-module module-loopback source={sink}.monitor sink=streamer_drain latency_msec=20
set-default-sink {sink}
set-default-source {sink}.monitor
"""


def pulse_env(runtime: Path) -> dict[str, str]:
    """Environment variables that point PulseAudio clients at the private daemon."""
    return {
        "PULSE_SERVER": f"unix:{runtime / 'pulse.sock'}",
        "PULSE_RUNTIME_PATH": str(runtime),
        "PULSE_STATE_PATH": str(runtime / "state"),
    }


@contextmanager
def null_sink_daemon() -> Iterator[dict[str, str]]:
    """Start the daemon, yield the client environment, stop the daemon afterwards."""
    if shutil.which("pulseaudio") is None:
        raise RuntimeError("pulseaudio is not installed: run the README's test command")
    runtime = Path(tempfile.mkdtemp(prefix="streamer-pulse-"))
    env = {**os.environ, **pulse_env(runtime)}
    script = runtime / "default.pa"
    script.write_text(SCRIPT.format(socket=runtime / "pulse.sock", sink=SINK))
    subprocess.run(
        [
            "pulseaudio", "-n", "-F", str(script), "--daemonize=yes",
            "--exit-idle-time=-1", "--disallow-exit=no", "--log-target=file:"
            + str(runtime / "pulse.log"),
        ],
        env=env, check=True, timeout=30,
    )  # fmt: skip
    try:
        _wait_ready(env)
        yield pulse_env(runtime)
    finally:
        subprocess.run(["pactl", "exit"], env=env, timeout=10, capture_output=True)
        shutil.rmtree(runtime, ignore_errors=True)


def _wait_ready(env: dict[str, str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = subprocess.run(["pactl", "info"], env=env, capture_output=True, timeout=10)
        if probe.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("the PulseAudio test daemon did not become ready")


def play(path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start playing `path` into the null sink (`paplay`); returns the running process."""
    return subprocess.Popen(["paplay", f"--device={SINK}", str(path)], env={**os.environ, **env})
