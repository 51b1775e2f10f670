"""A private PulseAudio daemon with a null sink: a real input device on a machine without
a sound card.

Whatever is played into the null sink (`paplay`) comes back on its monitor source, which
is the default input, so PortAudio's ``pulse``/``default`` devices capture it. A loopback
module reads the monitor continuously; without a steady reader, a null sink runs in 2 s
bursts and the first capture callback arrives seconds late (see shared/NOTES.md).

Clients connect through one socket, and the tests control the daemon through another, so
that `unplug` can take the clients' socket away, as a device that goes away does (see
there why unloading the null sink is not enough).
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
CLIENTS = "module-native-protocol-unix auth-anonymous=1 socket={runtime}/pulse.sock"

SCRIPT = """\
load-module {clients}
load-module module-native-protocol-unix auth-anonymous=1 socket={runtime}/control.sock
load-module module-null-sink sink_name={sink} sink_properties=device.description=streamer-null
load-module module-null-sink sink_name=streamer_drain
load-module module-loopback source={sink}.monitor sink=streamer_drain latency_msec=20
set-default-sink {sink}
set-default-source {sink}.monitor
"""


def pulse_env(runtime: Path, socket: str = "pulse.sock") -> dict[str, str]:
    """Environment variables that point PulseAudio clients at the private daemon."""
    return {
        "PULSE_SERVER": f"unix:{runtime / socket}",
        "PULSE_RUNTIME_PATH": str(runtime),
        "PULSE_STATE_PATH": str(runtime / "state"),
    }


def _control(env: dict[str, str], *command: str) -> str:
    """Run ``pactl`` through the control socket, which `unplug` leaves in place."""
    control = {**os.environ, **pulse_env(Path(env["PULSE_RUNTIME_PATH"]), "control.sock")}
    done = subprocess.run(
        ["pactl", *command], env=control, capture_output=True, text=True, timeout=10
    )
    if done.returncode != 0:
        raise RuntimeError(f"pactl {' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


@contextmanager
def unplugged(env: dict[str, str]) -> Iterator[None]:
    """Take the input away from every client while the block runs, as unplugging a capture
    device does; afterwards clients can connect again: the device is back.

    Unloading the null sink is not enough: PulseAudio moves its streams to another
    source (and the player to another sink), so capture goes on and nothing is lost
    (measured: the sine still came back at full level). Unloading the clients' protocol
    module disconnects them: PortAudio's ALSA stream fails and stops within about 10 ms,
    which is what an unplugged ALSA device or a stopped sound server does to a capture.
    """
    runtime = env["PULSE_RUNTIME_PATH"]
    modules = _control(env, "list", "short", "modules").splitlines()
    index = next(line.split()[0] for line in modules if f"socket={runtime}/pulse.sock" in line)
    _control(env, "unload-module", index)
    try:
        yield
    finally:
        _control(env, "load-module", *CLIENTS.format(runtime=runtime).split())


@contextmanager
def null_sink_daemon() -> Iterator[dict[str, str]]:
    """Start the daemon, yield the client environment, stop the daemon afterwards."""
    if shutil.which("pulseaudio") is None:
        raise RuntimeError("pulseaudio is not installed: run the README's test command")
    runtime = Path(tempfile.mkdtemp(prefix="streamer-pulse-"))
    env = {**os.environ, **pulse_env(runtime)}
    script = runtime / "default.pa"
    script.write_text(
        SCRIPT.format(clients=CLIENTS.format(runtime=runtime), runtime=runtime, sink=SINK)
    )
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
        control = {**os.environ, **pulse_env(runtime, "control.sock")}
        subprocess.run(["pactl", "exit"], env=control, timeout=10, capture_output=True)
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
