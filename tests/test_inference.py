"""Networks run for many streams at once (`streamer monitor`) give each stream exactly what
it gets alone (`streamer listen`): the same hops, tags and decisions, bit for bit."""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import pytest

from streamer.analysis.fusion import shipped_fusion
from streamer.analysis.inference import Inference, Outputs, run_batched, run_inline
from streamer.analysis.model import GenreModel
from streamer.analysis.tagger import TagModel, shipped_tagger_paths
from streamer.chain import GenreChain, TrackedHop

RATE = 22050


def streams_audio() -> list[np.ndarray]:
    """Three streams that sound unlike each other: a chord, noise bursts, a click train."""
    rng = np.random.default_rng(3)
    t = np.arange(int(7.3 * RATE)) / RATE
    chord = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330))
    bursts = rng.normal(0, 0.3, t.size) * (np.sin(2 * np.pi * 2 * t) > 0)
    clicks = np.zeros(t.size)
    clicks[:: RATE // 8] = 0.9
    return [np.asarray(x, dtype=np.float32) for x in (chord, bursts, clicks)]


def chains(model: GenreModel, taggers: list[TagModel]) -> list[GenreChain]:
    fusion = shipped_fusion(model.labels)
    return [GenreChain(model, taggers=taggers, fusion=fusion) for _ in range(3)]


def outcome(hops: list[list[TrackedHop]]) -> list[list[np.ndarray]]:
    return [
        [np.concatenate([h.hop.probabilities, h.hop.embedding, h.probabilities])]
        + ([h.tags.tags, h.tags.embedding] if h.tags is not None else [])
        for stream in hops
        for h in stream
    ]


@pytest.mark.parametrize("block_seconds", [0.37, 1.3])
def test_batched_networks_give_each_stream_what_it_gets_alone(block_seconds: float) -> None:
    model = GenreModel()
    taggers = [TagModel(path) for path in shipped_tagger_paths()]
    audio = streams_audio()
    block = int(block_seconds * RATE)
    alone, together = chains(model, taggers), chains(model, taggers)
    alone_hops: list[list[TrackedHop]] = [[] for _ in audio]
    together_hops: list[list[TrackedHop]] = [[] for _ in audio]
    for start in range(0, audio[0].size, block):
        pieces = [samples[start : start + block] for samples in audio]
        for stream, (chain, piece) in enumerate(zip(alone, pieces, strict=True)):
            alone_hops[stream] += chain.push(piece)
        batched = run_batched([c.steps(p) for c, p in zip(together, pieces, strict=True)])
        for stream, hops in enumerate(batched):
            together_hops[stream] += hops
    assert [len(hops) for hops in alone_hops] == [len(hops) for hops in together_hops]
    assert sum(h.tags is not None for h in together_hops[0]) > 0  # the taggers ran too
    for mine, theirs in zip(outcome(alone_hops), outcome(together_hops), strict=True):
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(a, b)
    # and the streams did not get each other's rows
    first = [h.hop.probabilities for h in together_hops[0]]
    second = [h.hop.probabilities for h in together_hops[1]]
    assert not np.allclose(first[-1], second[-1])


class Scaler:
    """A made-up network: scores are the patches times `factor`; it counts its calls."""

    batch_size = 8

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.calls: list[int] = []

    def predict(self, patches: np.ndarray, /, *, batch: int) -> Outputs:
        self.calls.append(len(patches))
        return self.factor * patches, patches[:, :1]


def stage(
    first: Scaler, second: Scaler, value: float, rounds: int
) -> Generator[Inference, Outputs, list[float]]:
    """A stream that asks `first` then `second` about its value, `rounds` times."""
    answers = []
    for _ in range(rounds):
        scores, _ = yield Inference(first, np.full((1, 2), value))
        answers.append(float(scores[0, 0]))
        scores, _ = yield Inference(second, np.full((2, 2), value))
        answers.append(float(scores[1, 0]))
    return answers


def test_requests_to_one_network_go_in_one_call_per_round() -> None:
    double, triple = Scaler(2.0), Scaler(3.0)
    results = run_batched([stage(double, triple, v, rounds) for v, rounds in ((1, 2), (5, 1))])
    assert results == [[2.0, 3.0, 2.0, 3.0], [10.0, 15.0]]
    assert double.calls == [2, 1]  # round 1: both streams in one call; round 3: the first
    assert triple.calls == [4, 2]
    assert run_inline(stage(double, triple, 4, 1)) == [8.0, 12.0]
    assert double.calls[-1] == triple.calls[-1] // 2 == 1  # alone, one call each
