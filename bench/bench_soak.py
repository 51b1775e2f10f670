"""Soak: hours of audio through the whole live engine, faster than real time; RSS over time.

The live path as `streamer listen` runs it (FileSource, unpaced, in the capture block
size -> GenreChain -> the websocket server with two connected clients
-> a --record file), over a generated recording of `--hours` (2 by default) alternating
minutes of tones, noise and clicks (bench_tag's material). Every `--every` minutes of
stream the process's RSS is sampled; growth is the last sample minus the one after the
first 10 minutes (start-up and warm caches excluded), with the least-squares slope in MB
per hour. CPU time per second of audio is the other figure, compared with the first 10
minutes of the same run as the baseline.

    .venv/bin/python bench/bench_soak.py [--hours 2] [--every 10]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _models import bench_model
from bench_tag import write_recording
from websockets.asyncio.client import connect

from streamer.analysis.model import GenreModel
from streamer.capture.file import FileSource
from streamer.chain import GenreChain
from streamer.live.engine import Engine, SegmentRecord
from streamer.outlets import protocol
from streamer.outlets.server import BroadcastServer, ServerThread


def rss_mb() -> float:
    return int(re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text())[1]) / 1024


def follow(url: str, stop: threading.Event, counts: list[int]) -> None:
    """A websocket client that reads everything until `stop` (counts messages)."""

    async def run() -> None:
        async with connect(url) as client:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(client.recv(), 0.5)
                    counts[0] += 1
                except TimeoutError:
                    continue

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--every", type=float, default=10.0, help="minutes between samples")
    args = parser.parse_args()
    with bench_model() as bench, tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        recording = work / "soak.wav"
        write_recording(recording, 3600 * args.hours)
        model = GenreModel(bench.path)
        chain = GenreChain(model, hop_seconds=0.5)
        analyzer = chain.analyzer

        def hello() -> dict:
            return protocol.hello_message(
                labels=model.labels, model={"name": "m", "sha256": model.info.sha256},
                features=model.spec.to_dict(), hop_seconds=0.5,
                window_seconds=analyzer.window_seconds,
            )  # fmt: skip

        server = BroadcastServer(port=0, hello=hello)
        record = SegmentRecord(work / "soak.jsonl")
        samples: list[tuple[float, float, float]] = []  # stream minutes, RSS MB, CPU s
        next_sample = [0.0]

        def sample(message: dict) -> None:
            if message["type"] == "status" and message["time"] / 60 >= next_sample[0]:
                samples.append((message["time"] / 60, rss_mb(), time.process_time()))
                next_sample[0] += args.every

        source = FileSource(recording, sample_rate=model.spec.sample_rate, block_seconds=0.1)
        engine = Engine(
            source=source, chain=chain,
            sinks=[server.publish, sample], record=record,
            clients=lambda: (server.clients, server.dropped_messages), status_seconds=10.0,
        )  # fmt: skip
        stop, counts = threading.Event(), [0]
        with ServerThread(server):
            readers = [
                threading.Thread(target=follow, args=(server.url, stop, counts)) for _ in range(2)
            ]
            for reader in readers:
                reader.start()
            time.sleep(1.0)
            started = time.perf_counter()
            segments = engine.run(threading.Event())
            wall = time.perf_counter() - started
            time.sleep(1.0)
            stop.set()
            for reader in readers:
                reader.join()
        record.close()
    minutes, rss, cpu = (np.array(column) for column in zip(*samples, strict=True))
    print(f"model: {bench.description}; {args.hours:g} h of audio in {wall:.0f} s "
          f"({3600 * args.hours / wall:.0f}x real time), {len(segments)} segments, "
          f"{counts[0]} messages to 2 clients")  # fmt: skip
    for m, r in zip(minutes, rss, strict=True):
        print(f"   stream {m:6.1f} min: RSS {r:7.1f} MB")
    settled = minutes >= 10
    slope = np.polyfit(minutes[settled] / 60, rss[settled], 1)[0] if settled.sum() > 1 else 0.0
    print(f"RSS growth after the first 10 min: {rss[-1] - rss[settled][0]:+.1f} MB "
          f"(slope {slope:+.2f} MB per hour of audio)")  # fmt: skip
    first = np.argmax(settled)
    early = (cpu[first] - cpu[0]) / (60 * (minutes[first] - minutes[0]))
    late = (cpu[-1] - cpu[first]) / (60 * (minutes[-1] - minutes[first]))
    print(f"CPU per audio second: first 10 min {1e3 * early:.2f} ms, after {1e3 * late:.2f} ms "
          f"(ratio {late / early:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
