"""Radio monitoring: CPU per stream and block-to-message latency of `streamer monitor` at
1, 10, 50 and 100 streams, against separate `streamer listen --url` processes.

Every stream is an `IcyServer` (tests/icyserver.py) of its own on loopback, serving the
same generated music as a 128 kbit/s MP3 (bare frames, as a station sends them), looped
and paced in real time in chunks of 50 ms, with ICY titles. The stations answer after
delays spread over one hop (`answer_delays`), so that the streams' hops are not all due in
the same milliseconds. The servers run in this process, the analysers in child processes
whose CPU alone is counted (user + system, from /proc, over a steady window after a
warm-up).

- CPU: seconds of CPU per second of wall time of the analyser process(es), in percent of
  one core, in all and per stream.
- Latency, per update: from the moment the server sent the chunk of the stream that
  completed the update's hop to the moment its JSON line reached this process (the
  monitor's stdout): network, decoding, resampling, the poll, the networks for every
  stream due, the tracker and the message. The position of a hop in the stream's bytes
  is its time times the constant bit rate.
- Block-to-message latency (column "block"): the p99 of the statuses' ``latency_ms``,
  from the moment the decoded block that completed a hop came into the analyser (its
  stream's ring) to the moment its update was handed to the websocket server and the
  stdout writer: the wait for the poll and for the other streams due, the analysis of them
  all, the message (the delivery to clients is bench_fanout.py's). What comes before it is the
  stream's, not the analyser's: the station's bursts (here 50 ms chunks), the MP3 frame
  that holds the hop's last sample (26 ms), and the receiver's pause between rounds of reads
  (up to 25 ms at 100 streams); the sent-to-received latency above has them all.
- Real time: every stream's last update against the wall time it ran, and the samples
  lost to overflows.

The baseline, in the same run, is `streamer listen --url` once per stream in separate
processes, measured at 1 and 10 streams (the machine has two cores: 50 or 100 such
processes are extrapolated from 10, and the table says so).

    .venv/bin/python bench/bench_monitor.py [--counts 1,10,50,100] [--seconds 20]
        [--tagger] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import icyserver
from icyserver import IcyServer, encode, make_music

MUSIC_SECONDS = 30.0
WARMUP_SECONDS = 8.0
HOP_SECONDS = 0.5  # the chain's hop
GOLDEN = (5**0.5 - 1) / 2
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process so far (/proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Run:
    """One measurement: `streams` streams in `processes` analyser processes."""

    kind: str  # "monitor" or "listen"
    streams: int
    processes: int
    cpu_percent: float  # of one core, all processes together
    per_stream_percent: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    block_p99_ms: float  # the statuses' latency_ms: from a block's arrival to publishing
    updates: int
    behind_seconds: float  # the worst stream's lag behind the wall clock at the end
    overflow_samples: int
    extrapolated: bool = False


class Analyser:
    """A child process printing JSON lines; its lines are kept with their arrival times."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("PULSE_")},
        )  # fmt: skip
        self.lines: list[tuple[float, dict]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), json.loads(line)))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._reader.join(timeout=10)


def measure(
    kind: str, servers: list[IcyServer], *, seconds: float, tagger: bool, folder: Path
) -> Run:
    """Run `kind` on every server's stream; measure over `seconds` after the warm-up."""
    chain = [] if tagger else ["--no-tagger"]
    common = ["--no-view", "--port", "0", *chain]
    names = [f"s{i:03d}" for i in range(len(servers))]
    if kind == "monitor":
        streams = folder / "streams.txt"
        streams.write_text(
            "".join(f"{s.url}/live {n}\n" for s, n in zip(servers, names, strict=True))
        )
        command = [sys.executable, "-m", "streamer", "monitor", str(streams),
                   "--records", str(folder / "records"), *common]  # fmt: skip
        analysers = [Analyser(command)]
    else:
        listen = [sys.executable, "-m", "streamer", "listen", *common]
        analysers = [
            Analyser([*listen, "--url", f"{s.url}/live", "--record", str(folder / f"{n}.jsonl")])
            for s, n in zip(servers, names, strict=True)
        ]
    try:
        time.sleep(WARMUP_SECONDS)
        started = time.monotonic()
        cpu_before = sum(cpu_seconds(a.process.pid) for a in analysers)
        time.sleep(seconds)
        cpu = sum(cpu_seconds(a.process.pid) for a in analysers) - cpu_before
        ended = time.monotonic()
    finally:
        for analyser in analysers:
            analyser.stop()
    return summarise(kind, servers, names, analysers, cpu / (ended - started), (started, ended))


def summarise(
    kind: str,
    servers: list[IcyServer],
    names: list[str],
    analysers: list[Analyser],
    cpu_share: float,
    window: tuple[float, float],
) -> Run:
    """Latencies of the updates that arrived in `window`, and how far behind each stream is."""
    latencies, behind, overflow, blocks = [], [], 0, []
    for index, (server, name) in enumerate(zip(servers, names, strict=True)):
        lines = analysers[0 if kind == "monitor" else index].lines
        mine = [(at, m) for at, m in lines if m.get("stream", name) == name]
        # The connection the stream is on now, from when the server began to send it.
        opened = server.requests[-1].at + server.answer_delay
        chunk = max(1, round(server.bytes_per_second * icyserver.CHUNK_SECONDS))
        for at, message in mine:
            if message["type"] == "update" and window[0] <= at <= window[1]:
                position = message["time"] * server.bytes_per_second  # bytes into the stream
                sent = opened + (position // chunk) * chunk / server.bytes_per_second
                latencies.append(1000 * (at - sent))
        updates = [(at, m) for at, m in mine if m["type"] == "update" and at <= window[1]]
        if updates:
            at, last = updates[-1]
            behind.append((at - opened) - last["time"])
        statuses = [m for _, m in mine if m["type"] == "status"]
        blocks += [
            m["latency_ms"]
            for at, m in mine
            if m["type"] == "status" and window[0] <= at <= window[1] and m["latency_ms"]
        ]
        if statuses:
            overflow += statuses[-1]["overflow_samples"]
    ordered = sorted(latencies)
    return Run(
        kind=kind,
        streams=len(servers),
        processes=len(analysers),
        cpu_percent=100 * cpu_share,
        per_stream_percent=100 * cpu_share / len(servers),
        latency_p50_ms=statistics.median(ordered) if ordered else float("nan"),
        latency_p99_ms=float(np.percentile(ordered, 99)) if ordered else float("nan"),
        latency_max_ms=ordered[-1] if ordered else float("nan"),
        block_p99_ms=float(np.percentile(blocks, 99)) if blocks else float("nan"),
        updates=len(ordered),
        behind_seconds=max(behind) if behind else float("nan"),
        overflow_samples=overflow,
    )


def extrapolate(run: Run, streams: int) -> Run:
    """Separate processes at `streams`, from a measurement at fewer: CPU scales with the
    number of processes; the latencies are those measured."""
    factor = streams / run.streams
    return Run(**{**asdict(run), "streams": streams, "processes": run.processes * int(factor),
                  "cpu_percent": run.cpu_percent * factor, "extrapolated": True})  # fmt: skip


def answer_delays(count: int) -> list[float]:
    """Each station's answer delay: spread over one hop (0.5 s) for the first n of any n, as
    stations on the air since unrelated times are (golden-ratio steps). Without it every
    stream would complete its hops in the same few milliseconds, a coincidence no monitor
    of real stations meets, and each hop would wait for all the others'."""
    return [HOP_SECONDS * ((i * GOLDEN) % 1.0) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="1,10,50,100", help="stream counts to measure")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per run")
    parser.add_argument("--processes", default="1,10", help="counts run as separate processes")
    parser.add_argument("--tagger", action="store_true", help="the default chain, with musicnn")
    parser.add_argument("--json", type=Path, help="also write the runs here")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    separate = [int(c) for c in args.processes.split(",")]
    mp3 = encode(make_music(MUSIC_SECONDS, seed=7), rate=44100, encoding="mp3")
    titles = [(0.0, "Bench Band - First"), (MUSIC_SECONDS / 2, "Bench Band - Second")]
    runs: list[Run] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        servers = [
            stack.enter_context(
                IcyServer(mp3, duration=MUSIC_SECONDS, titles=titles, answer_delay=delay)
            )
            for delay in answer_delays(max(counts))
        ]
        for count in counts:
            folder = Path(tmp) / f"monitor-{count}"
            folder.mkdir()
            runs.append(measure("monitor", servers[:count], seconds=args.seconds,
                                tagger=args.tagger, folder=folder))  # fmt: skip
            print(runs[-1], flush=True)
        measured: dict[int, Run] = {}
        for count in separate:
            folder = Path(tmp) / f"listen-{count}"
            folder.mkdir()
            measured[count] = measure("listen", servers[:count], seconds=args.seconds,
                                      tagger=args.tagger, folder=folder)  # fmt: skip
            runs.append(measured[count])
            print(runs[-1], flush=True)
        largest = measured[max(measured)]
        runs += [extrapolate(largest, count) for count in counts if count > max(measured)]
    chain = "default chain (CNN + musicnn)" if args.tagger else "--no-tagger (the CNN alone)"
    print(f"\n{chain}, {args.seconds:g} s measured after {WARMUP_SECONDS:g} s of warm-up")
    print(f"{'':8} {'streams':>7} {'procs':>5} {'CPU %':>7} {'%/stream':>8} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'max ms':>7} {'block':>7} {'behind s':>8} {'lost':>6}")  # fmt: skip
    for run in runs:
        kind = run.kind + ("*" if run.extrapolated else "")
        print(
            f"{kind:8} {run.streams:7d} {run.processes:5d} {run.cpu_percent:7.1f} "
            f"{run.per_stream_percent:8.2f} {run.latency_p50_ms:7.1f} "
            f"{run.latency_p99_ms:7.1f} {run.latency_max_ms:7.1f} {run.block_p99_ms:7.1f} "
            f"{run.behind_seconds:8.2f} "
            f"{run.overflow_samples:6d}"
        )
    monitors = {run.streams: run for run in runs if run.kind == "monitor"}
    listens = {run.streams: run for run in runs if run.kind == "listen"}
    for count in counts:
        if count in listens:
            ratio = listens[count].cpu_percent / monitors[count].cpu_percent
            said = " (separate processes extrapolated)" if listens[count].extrapolated else ""
            print(f"{count} streams: separate processes use {ratio:.1f}x the CPU{said}")
    if any(run.extrapolated for run in runs):
        print(f"* extrapolated from {max(measured)} separate processes")
    if args.json:
        args.json.write_text(json.dumps([asdict(run) for run in runs], indent=1))


if __name__ == "__main__":
    main()
