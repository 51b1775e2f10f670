"""Network inference as requests, so that one stream or a hundred run the same code.

A stage that needs a network (`streamer.analysis.hops.HopAnalyzer`, the genre CNN;
`streamer.analysis.tagger.TagAnalyzer`, musicnn) does not call it: its ``steps`` method is a
generator that yields an `Inference` (this model, these patches) and is sent the model's
outputs back. `run_inline` answers each request at once, with the model's own call: that
is ``push`` of every stage, for `streamer listen` and `streamer tag`. `run_batched` drives
the steps of many streams together and answers the requests that wait for one model with
one onnxruntime call: that is `streamer monitor`, where a hundred streams share the CPU.

Both give the same numbers, so a stream's hops do not depend on which other streams were
due with it: each network says how many patches it takes in one call (`Network.batch_size`),
as many as it computes exactly as it computes each alone (checked bit for bit,
tests/test_inference.py). The genre CNN does so at 8 and more; musicnn's taggers do not
(their batched outputs differ by 1e-7 to 4e-6), so they take one patch a call, which
costs them nothing measurable (31 ms of compute a patch).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

Outputs = tuple[np.ndarray, np.ndarray]
"""What a network gives for ``n`` patches: its ``(n, labels)`` scores and ``(n, size)``
embeddings."""


class Network(Protocol):
    """A model that maps patches to `Outputs`, in calls of at most `batch` patches."""

    batch_size: int
    """Patches per call when many streams are due at once: at most as many as it computes
    each exactly as alone, and no more than it runs fastest per patch."""

    def predict(self, patches: np.ndarray, /, *, batch: int) -> Outputs: ...


@dataclass(frozen=True)
class Inference:
    """A stage's request: run `network` on `patches` ``(n, ...)`` and send back its outputs."""

    network: Network
    patches: np.ndarray


T = TypeVar("T")
Steps = Generator[Inference, Outputs, T]
"""A stage's work on one block: it yields its requests, is sent their outputs, and
returns what the block completes."""


def run_inline(steps: Steps[T]) -> T:
    """Drive `steps` alone, answering each request with calls of one patch each.

    Examples
    --------
    >>> class Doubler:
    ...     batch_size = 1
    ...     def predict(self, patches, *, batch):
    ...         return 2 * patches, patches[:, :1]
    >>> def steps():
    ...     scores, _ = yield Inference(Doubler(), np.ones((1, 3)))
    ...     return scores.sum()
    >>> float(run_inline(steps()))
    6.0
    """
    try:
        request = next(steps)
        while True:
            request = steps.send(request.network.predict(request.patches, batch=1))
    except StopIteration as done:
        result: T = done.value
        return result


def run_batched(streams: Sequence[Steps[T]]) -> list[T]:
    """Drive the steps of many streams together; return each one's result, in order.

    Every round, the requests that wait for one network, from all the streams, are
    answered by one `predict` on their patches joined (in calls of the network's
    `Network.batch_size`), and each stream is sent its own rows.
    """
    results: dict[int, T] = {}
    waiting: dict[int, Inference] = {}

    def advance(index: int, outputs: Outputs | None) -> None:
        steps = streams[index]
        try:
            waiting[index] = next(steps) if outputs is None else steps.send(outputs)
        except StopIteration as done:
            results[index] = done.value

    for index in range(len(streams)):
        advance(index, None)
    while waiting:
        by_network: dict[int, list[int]] = {}
        for index, request in waiting.items():
            by_network.setdefault(id(request.network), []).append(index)
        for indices in by_network.values():
            requests = [waiting.pop(index) for index in indices]
            joined = np.concatenate([request.patches for request in requests])
            network = requests[0].network
            scores, embeddings = network.predict(joined, batch=network.batch_size)
            start = 0
            for index, request in zip(indices, requests, strict=True):
                end = start + len(request.patches)
                advance(index, (scores[start:end], embeddings[start:end]))
                start = end
    return [results[index] for index in range(len(streams))]
