"""Start-up costs users feel: `import streamer`, and `streamer devices` until it prints.

Each is timed as a fresh process, against a bare `python -c pass` measured in the same run.
`streamer devices` runs against a private PulseAudio null sink, so it has a device to list.

    .venv/bin/python bench/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pulse


def timed(command: list[str], env: dict[str, str] | None, runs: int) -> float:
    """Median wall time of `command` until it exits (its output is what it waits on)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    with pulse.null_sink_daemon() as pulse_vars:
        env = {**pulse.os.environ, **pulse_vars}
        bare = timed([python, "-c", "pass"], env, args.runs)
        package = timed([python, "-c", "import streamer"], env, args.runs)
        runtime = timed(
            [
                python,
                "-c",
                "import streamer.cli, streamer.capture.device, streamer.analysis.features",
            ],
            env,
            args.runs,
        )
        devices = timed([python, "-m", "streamer", "devices"], env, args.runs)
    print(f"median of {args.runs} fresh processes")
    print(f"python -c pass (baseline):              {1e3 * bare:7.0f} ms")
    print(
        f"import streamer:                        {1e3 * package:7.0f} ms ({package / bare:.2f}x)"
    )
    print(
        f"import streamer.cli/device/features:    {1e3 * runtime:7.0f} ms ({runtime / bare:.2f}x)"
    )
    print(
        f"streamer devices, start to output:      {1e3 * devices:7.0f} ms ({devices / bare:.2f}x)"
    )


if __name__ == "__main__":
    main()
