"""Indexing throughput of `streamer index`: the local process pool and Ray, at 1 and 2 workers,
on the same files, and Ray as a simulated cluster of two nodes.

The files are the first `--count` audio files of `--clips` (the held-out clips, say, linked
into a temporary folder like a user's music folder), or generated clips without it. Each
run indexes them from scratch into a fresh catalogue with the shipped model; the driver
notes on its own clock when each file's result is written.

Figures, each against its baseline in the same run:

- files/min and multiple of real time, over the whole run (start-up included) and in
  steady state: ``(N - w) / (t_N - t_w)``, from the w-th result written (every one of the
  w workers has set up and delivered) to the last.
- start-up: the wall time the steady rate does not account for, ``wall - N / steady``
  (starting processes or a Ray cluster, loading the models, librosa's first calls).
- the driver's CPU (this process, whatever its threads do) per file: the share of a core
  the main process takes from the workers.
- scaling 1 -> 2 workers, for each engine: the ratio of the rates, whole and steady.
- Ray's per-file overhead against the pool at the same worker count: ``pool steady rate /
  Ray steady rate - 1``, i.e. (Ray's wall per file - the pool's) / the pool's analysis
  seconds per file, where a worker's analysis seconds per file are ``w / rate``; start-up
  is compared on its own line.
- the simulated cluster: ``ray start --head --num-cpus 1`` and a second ``ray start
  --address ... --num-cpus 1`` (two raylets on this machine standing for two nodes), then
  ``--engine ray --address`` with one actor on each; audio and catalogue are on paths
  both reach. Against the local Ray cluster of 2 workers.

    .venv/bin/python bench/bench_index.py --clips /work/heldout --count 60
    .venv/bin/python bench/bench_index.py --count 6 --seconds 4      # generated: a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from streamer.analysis.model import DEFAULT_MODEL
from streamer.batch import Engine
from streamer.capture.file import AUDIO_EXTENSIONS
from streamer.library.catalogue import Catalogue
from streamer.library.indexer import index


class TimedCatalogue(Catalogue):
    """The catalogue, noting when (the driver's clock) each file's result is written."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.times: list[float] = []

    def put_track(self, *args: Any, **kwargs: Any) -> int:
        self.times.append(time.monotonic())
        return super().put_track(*args, **kwargs)

    def put_failure(self, *args: Any, **kwargs: Any) -> None:
        self.times.append(time.monotonic())
        super().put_failure(*args, **kwargs)


@dataclass
class Run:
    label: str
    workers: int
    files: int
    audio: float  # seconds of audio analysed
    wall: float
    steady: float  # files per second from the w-th result on
    driver_cpu: float  # seconds of this process's CPU

    @property
    def startup(self) -> float:
        return self.wall - self.files / self.steady

    def line(self) -> str:
        per_file = self.audio / max(self.files, 1)
        return (
            f"{self.label:<22} {self.workers:>2}  {self.wall:7.1f} s  "
            f"{60 * self.files / self.wall:6.1f} {self.audio / self.wall:6.1f}x  "
            f"{60 * self.steady:6.1f} {self.steady * per_file:6.1f}x  "
            f"{self.startup:6.1f} s  {1000 * self.driver_cpu / self.files:6.0f} ms"
        )


def generated_clips(folder: Path, *, count: int, seconds: float, rate: int = 22050) -> None:
    """`count` clips of tones, beats and noise: real decoding and analysis work."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * rate)) / rate
    for i in range(count):
        tone = np.sin(2 * np.pi * rng.uniform(110, 880) * t) * (0.5 + 0.5 * np.sin(t * i))
        beat = (np.sin(2 * np.pi * rng.uniform(1, 3) * t) > 0.95) * rng.standard_normal(t.size)
        audio = 0.3 * tone + 0.2 * beat + 0.02 * rng.standard_normal(t.size)
        soundfile.write(folder / f"clip-{i:04d}.wav", audio, rate)


def linked_clips(source: Path, folder: Path, *, count: int) -> None:
    """The first `count` audio files under `source`, linked into `folder`."""
    found = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if len(found) < count:
        raise SystemExit(f"{source}: {len(found)} audio files, fewer than --count {count}")
    for path in found[:count]:
        (folder / f"{path.parent.name}-{path.name}").symlink_to(path.resolve())


def timed(folder: Path, work: Path, *, label: str, engine: Engine, model: Path) -> Run:
    db = work / f"{label.replace(' ', '-')}-{engine.workers}.sqlite"
    workers = engine.workers or 2
    with TimedCatalogue(db) as catalogue:
        cpu, started = time.process_time(), time.monotonic()
        report = index([folder], catalogue=catalogue, model_path=model, engine=engine,
                       progress=False)  # fmt: skip
        wall, cpu = time.monotonic() - started, time.process_time() - cpu
    if report.failed:
        raise SystemExit(f"{label}: {len(report.failed)} files failed: {report.failed[0]}")
    times = catalogue.times
    n = len(times)
    steady = (n - workers) / (times[-1] - times[workers - 1]) if n > workers else math.nan
    return Run(label, workers, n, report.audio_seconds, wall, steady, cpu)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def simulated_cluster(work: Path) -> Iterator[str]:
    """Two Ray nodes of one CPU each on this machine (`ray start`, blocking, stopped at the
    end: only these, never `ray stop`, which would stop every Ray here); their address."""
    ray_cli = str(Path(sys.executable).with_name("ray"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--block", "--disable-usage-stats"]
    log = (work / "ray-start.log").open("w")
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths
    nodes = [subprocess.Popen([ray_cli, "start", "--head", f"--port={port}",
                               "--include-dashboard=false", f"--temp-dir={temp}", *common],
                              stdout=log, stderr=log)]  # fmt: skip
    try:
        import ray

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            time.sleep(0.5)
        nodes.append(subprocess.Popen([ray_cli, "start", f"--address={address}", *common],
                                      stdout=log, stderr=log))  # fmt: skip
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        while ray.cluster_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        cpus = ray.cluster_resources().get("CPU", 0)
        ray.shutdown()
        if cpus < 2:
            raise SystemExit(f"the simulated cluster has {cpus} CPUs, not 2: see {log.name}")
        yield address
    finally:
        for node in reversed(nodes):
            node.terminate()
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, help="a folder of audio (default: generated)")
    parser.add_argument("--count", type=int, default=40, help="files indexed in each run")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of generated clips")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--no-cluster", action="store_true", help="skip the simulated cluster")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores; {args.count} files per run")
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        folder = work / "music"
        folder.mkdir()
        if args.clips is None:
            generated_clips(folder, count=args.count, seconds=args.seconds)
        else:
            linked_clips(args.clips, folder, count=args.count)
        print(
            f"{'engine':<22} {'w':>2}  {'wall':>9}  {'whole: files/min, xRT':>14}  "
            f"{'steady: files/min, xRT':>14}  {'start-up':>8}  {'driver CPU/file':>9}"
        )
        runs: dict[tuple[str, int], Run] = {}
        for name in ("local", "ray"):
            for workers in (1, 2):
                label = "local pool" if name == "local" else "ray (local cluster)"
                run = timed(folder, work, label=label, engine=Engine(name, workers),
                            model=args.model)  # fmt: skip
                runs[name, workers] = run
                print(run.line(), flush=True)
        cluster = None
        if not args.no_cluster:
            with simulated_cluster(work) as address:
                cluster = timed(folder, work, label="ray (2-node cluster)",
                                engine=Engine("ray", 2, address), model=args.model)  # fmt: skip
            print(cluster.line())
    print()
    for name in ("local", "ray"):
        one, two = runs[name, 1], runs[name, 2]
        print(
            f"scaling 1 -> 2 workers, {name}: {one.wall / two.wall:.2f}x whole run, "
            f"{two.steady / one.steady:.2f}x steady state (target 1.8x)"
        )
    for workers in (1, 2):
        pool, ray_run = runs["local", workers], runs["ray", workers]
        print(
            f"Ray's overhead per file at {workers} worker(s): "
            f"{100 * (pool.steady / ray_run.steady - 1):+.1f} % of a track's analysis "
            f"(steady; target < 5 %), {100 * (ray_run.wall / pool.wall - 1):+.1f} % whole run; "
            f"start-up {ray_run.startup:.1f} s against {pool.startup:.1f} s"
        )
    if cluster is not None:
        local = runs["ray", 2]
        print(
            f"simulated 2-node cluster against the local Ray cluster of 2: "
            f"{cluster.steady / local.steady:.2f}x the steady rate, "
            f"{local.wall / cluster.wall:.2f}x the whole run's (the cluster already up: "
            f"joining it is its start-up, "
            f"{cluster.startup:.1f} s)"
        )


if __name__ == "__main__":
    main()
