"""Offline tagging: speed on one core for a 1-hour recording, and peak memory for 2 hours.

The recording is generated (44.1 kHz stereo 16-bit WAV, like a recorded set, so decoding,
downmixing and resampling are part of the cost): minutes of tones, noise and clicks.

- Speed: `streamer tag`'s path (`tag_file`: one pass of streaming features, batched ONNX
  inference, the live smoother) with numpy and onnxruntime on one thread, as a multiple of
  real time; against the naive baseline measured in the same run on the first
  `--naive-seconds`: each hop, librosa's log-mel of the whole window and Keras `predict`
  on it (the same architecture).
- Memory: peak RSS (VmHWM) of `streamer tag` in a fresh process for 2 minutes and for
  2 hours of the same material; the difference is what the length costs.

    .venv/bin/python bench/bench_tag.py [--hours 1] [--naive-seconds 60]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
from _models import bench_model, keras_twin
from bench_live import run_naive
from threadpoolctl import threadpool_limits

from streamer.analysis.model import GenreModel
from streamer.analysis.tagger import TagModel, shipped_tagger_paths
from streamer.chain import GenreChain
from streamer.offline.tagging import tag_file

RATE = 44100


def write_recording(path: Path, seconds: float) -> None:
    """Alternating minutes of harmonic tones, gated noise and click trains, block by block."""
    rng = np.random.default_rng(0)
    t = np.arange(60 * RATE) / RATE
    with soundfile.SoundFile(path, "w", RATE, 2, subtype="PCM_16") as sound:
        for minute in range(round(seconds / 60)):
            kind = minute % 3
            if kind == 0:
                f = rng.uniform(110, 440)
                y = sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 2, 3)) * 0.2
            elif kind == 1:
                y = rng.standard_normal(t.size) * 0.1 * (np.sin(2 * np.pi * 2 * t) > 0)
            else:
                y = np.zeros(t.size)
                y[:: int(RATE / rng.uniform(2, 8))] = 0.8
            sound.write(np.stack([y, 0.8 * y], axis=1))


def peak_rss_mb(path: Path, model: Path, out: Path) -> float:
    code = (
        "import re, sys; from streamer.cli import main; main(sys.argv[1:]); "
        "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1])"
    )
    args = ["tag", str(path), "--model", str(model), "--out", str(out), "--format", "json,cue"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return int(re.findall(r"\d+", done.stdout)[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0, help="length of the speed test")
    parser.add_argument("--naive-seconds", type=float, default=60.0)
    args = parser.parse_args()
    with bench_model() as bench, tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model = GenreModel(bench.path)
        print(f"model: {bench.description}; hop 0.5 s; one thread")
        hour = work / "set.wav"
        write_recording(hour, 3600 * args.hours)
        with threadpool_limits(1):
            taggers = [TagModel(p) for p in shipped_tagger_paths()]
            with_tags = GenreChain(model, taggers=taggers)  # the same cost with or without fusion
            cpu, wall = time.process_time(), time.perf_counter()
            tagged = tag_file(hour, chain=with_tags)
            tagged_cpu = time.process_time() - cpu
            cpu, wall = time.process_time(), time.perf_counter()
            timeline = tag_file(hour, chain=GenreChain(model))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            import keras  # the baseline's TensorFlow, imported after our timing

            keras_model = keras_twin(model)
            naive = run_naive(model, keras_model, hour, hop=0.5, block=1.0,
                              seconds=args.naive_seconds)  # fmt: skip
            keras.backend.clear_session()
        ours = timeline.duration / cpu
        baseline = naive.audio / naive.cpu
        print(
            f"tag {timeline.duration / 3600:.2f} h: {wall:.1f} s wall, {cpu:.1f} s CPU: "
            f"{timeline.duration / wall:.0f}x real time (wall), {ours:.0f}x per CPU second; "
            f"{len(timeline.times)} hops, {len(timeline.segments)} segments"
        )
        print(
            f"with musicnn's two taggers every 3 s: {tagged.duration / tagged_cpu:.0f}x real "
            f"time per CPU second ({tagged_cpu / cpu:.1f}x the CNN alone's CPU)"
        )
        print(
            f"naive librosa + Keras per hop, {naive.audio:.0f} s: {baseline:.1f}x real time "
            f"per CPU second; tag is {ours / baseline:.0f}x faster"
        )
        print("goal: >= 200x real time on one core and >= 20x the naive baseline")

        short, long = work / "two-minutes.wav", work / "two-hours.wav"
        write_recording(short, 120)
        write_recording(long, 7200)
        small = peak_rss_mb(short, bench.path, work)
        large = peak_rss_mb(long, bench.path, work)
        print(
            f"peak RSS of `streamer tag`: 2 min {small:.0f} MB, 2 h {large:.0f} MB "
            f"(+{large - small:.0f} MB for 60x the audio)"
        )


if __name__ == "__main__":
    main()
